"""The published OpenAPI document against the running gateway, in both upload modes:
schemathesis (its CLI, in a subprocess) generates requests from the document, valid and
invalid, and checks that no answer is a 5xx and every answer matches the document."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.access_support import create_key
from tests.stack import RunningStack, in_network_of, isolated_network, stack_env
from tests.support import open_dir

pytestmark = pytest.mark.e2e

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance")
EXAMPLES = 25  # per operation and phase: about half a minute per mode on two cores


@pytest.fixture(params=["open", "keys"])
def fuzzed_stack(request):
    """A stack of its own per mode, with the rate limit out of the way: at the usual limit
    most generated writes would only meet the gateway's 429 and test nothing behind it."""
    data_dir = open_dir(f"kitteh-openapi-{request.param}-") / "var"
    # In a network of its own: generated links for upload from a link reach nothing (no DNS
    # query either) off this machine.
    running = RunningStack(data_dir, stack_env(data_dir, KITTEH_UPLOADS=request.param,
                                               KITTEH_RATE_LIMIT="100000"),
                           command_prefix=isolated_network())
    running.start()
    running.mode = request.param
    yield running
    status = running.stop()
    assert status == 0, "".join(running.output[-40:])
    shutil.rmtree(data_dir.parent, ignore_errors=True)


def schemathesis(stack: RunningStack, report: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run in the report's directory: schemathesis keeps a cache folder where it runs. In the
    stack's network namespace, where its gateway is. One worker: with two, hypothesis's
    ast.parse from two threads at once trips CPython 3.11.7's "AST constructor recursion depth
    mismatch" (gh-106905, fixed in 3.11.8) now and then, a runtime error of the fuzzer's."""
    schemathesis_cli = Path(sys.executable).with_name("schemathesis")
    url = stack.url
    return subprocess.run(
        [*in_network_of(stack), str(schemathesis_cli), "run", f"{url}/api/openapi.json",
         "--checks", CHECKS,
         "--max-examples", str(EXAMPLES), "--phases", "examples,coverage,fuzzing",
         "--seed", "14", "--generation-database", "none", "--no-color", "--workers", "1",
         "--request-timeout", "30", "--report", "json", "--report-json-path", str(report),
         *extra],
        capture_output=True, text=True, timeout=300, cwd=report.parent)


def test_the_document_describes_every_api_endpoint(stack):
    with urllib.request.urlopen(f"{stack.url}/api/openapi.json") as response:
        document = json.load(response)
    assert document["openapi"].startswith("3.1")
    operations = {(method.upper(), path) for path, item in document["paths"].items()
                  for method in item if method != "parameters"}
    assert operations >= {
        ("GET", "/api/images"), ("POST", "/api/images"), ("GET", "/api/images/{token}"),
        ("DELETE", "/api/images/{token}"), ("GET", "/api/limits"), ("GET", "/api/keys/me"),
        ("GET", "/api/sharex.sxcu"), ("GET", "/api/openapi.json"), ("GET", "/img/{token}"),
        ("GET", "/"), ("POST", "/upload"), ("GET", "/{name}"), ("GET", "/healthz"),
        ("POST", "/api/albums"), ("GET", "/api/albums/{token}"),
        ("DELETE", "/api/albums/{token}"), ("POST", "/share"),
        ("GET", "/manifest.webmanifest")}
    upload = document["paths"]["/api/images"]["post"]
    assert {"401", "413", "415", "422", "429"} <= set(upload["responses"])
    assert document["components"]["securitySchemes"]["uploadKey"]["scheme"] == "bearer"


def test_schemathesis_finds_no_5xx_and_no_answer_off_the_document(fuzzed_stack, tmp_path):
    extra = []
    if fuzzed_stack.mode == "keys":  # an admin key: uploads and deletes get past the 401
        key = create_key(fuzzed_stack, "schemathesis", admin=True)
        extra = ["--header", f"Authorization: Bearer {key}"]
    result = schemathesis(fuzzed_stack, tmp_path / "report.json", *extra)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert "passed" in result.stdout and " 0 generated" not in result.stdout, result.stdout
