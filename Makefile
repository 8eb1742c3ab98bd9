# The two commands of the README: `make run` and `make test`. Both create the venv first.
PYTHON ?= python3
VENV   ?= .venv
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "kitteh: installing python3-venv"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; \
	  $(PYTHON) -m venv $(VENV); }
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# Runs the whole stack in the foreground (Ctrl-C stops it). KITTEH_PORT, KITTEH_DATA_DIR...
run: $(STAMP)
	$(VENV)/bin/python -m deploy.runner

# Lint, then every test: unit, service, end-to-end (real nginx, Postgres, Chromium).
# System packages the tests need are installed with apt-get when missing.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest

# The four benchmarks (not tests): each prints a table with ratios against a baseline.
bench: $(STAMP)
	$(VENV)/bin/python -m bench.resize
	$(VENV)/bin/python -m bench.serve
	$(VENV)/bin/python -m bench.ingest
	$(VENV)/bin/python -m bench.e2e
	$(VENV)/bin/python -m bench.tls

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) var test-artifacts
