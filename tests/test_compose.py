"""compose.yaml is a valid Compose file and its parts refer to each other correctly.

No Docker engine exists on CI, so the file is checked against the Compose specification's JSON schema
(check-jsonschema ships it as ``vendor.compose-spec``), and the cross-references the schema cannot see
are checked here: dependencies, health checks, service URLs, secrets only by interpolation.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from dncity.processes import FACTORIES
from shared.settings import SERVICE_NAMES

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"

# Environment variables holding a secret: their value must come from the operator's environment.
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|TOKEN|API_KEY|_AUTH$)")
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
REQUIRED_ONLY = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]*\}$")
# URLs browsers use (not container-to-container), allowed to point outside the compose network.
# What an operator's ${VAR:?…} values look like: long, random, URL-safe.
SECRET_STAND_IN = "s3cr3t" * 8
PUBLIC_URL_VARS = {"DNCITY_PUBLIC_BASE_URL", "DNCITY_SANDBOX_PUBLIC_URL", "DNCITY_IDENTITY_SMS_GATEWAY_URL"}


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def interpolate(value: str) -> str:
    """Compose interpolation with placeholder values: ``${X:-d}`` → d, ``${X:?…}`` / ``${X}`` → "x"."""

    def replace(match: re.Match[str]) -> str:
        if match.group("op") in (":-", "-"):
            return match.group("arg")
        return SECRET_STAND_IN

    return INTERPOLATION.sub(replace, value.replace("$$", "\0")).replace("\0", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))  # merge keys (<<) resolved by the loader


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment is written as a mapping"
    return {str(k): str(v) for k, v in env.items()}


def dncity_process(service: dict[str, Any]) -> str | None:
    """The ``dncity run --service NAME`` a container runs, if it runs one."""
    command = service.get("command") or []
    words = shlex.split(command[-1]) if command[:2] == ["sh", "-c"] else list(command)
    if "run" in words and "--service" in words:
        return words[words.index("--service") + 1]
    return None


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    result = check_jsonschema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_an_invalid_compose_file(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yaml"
    bad.write_text(
        "services:\n  web:\n    image: x\n    depends_on:\n      db:\n        condition: when_it_feels_like_it\n"
        "    healthcheck:\n      interval: 5\n",
        encoding="utf-8",
    )
    result = check_jsonschema(bad)
    assert result.returncode != 0, "the validator accepted an invalid file; the schema check proves nothing"


def test_every_platform_process_backing_store_and_the_sandbox_is_a_service(services: dict[str, Any]) -> None:
    runs = {dncity_process(s) for s in services.values()}
    assert runs >= {*SERVICE_NAMES, "gateway", "sandbox_provider"}, runs
    images = " ".join(str(s.get("image", "")) for s in services.values())
    assert "postgres" in images and "redis" in images


def test_every_dncity_process_is_one_the_cli_can_run(services: dict[str, Any]) -> None:
    for name, service in services.items():
        process = dncity_process(service)
        if process is not None:
            assert process in FACTORIES, f"{name}: `dncity run --service {process}` is not in dncity.processes"


def test_every_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no healthcheck"


def test_dncity_healthchecks_probe_readiness_on_the_port_the_process_listens_on(services: dict[str, Any]) -> None:
    from shared.settings import DEFAULT_PORTS

    for name, service in services.items():
        process = dncity_process(service)
        if process is None:
            continue
        probe = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{DEFAULT_PORTS[process]}/readyz" in probe, f"{name}: {probe}"


def test_every_dependency_exists_and_waits_for_health(services: dict[str, Any]) -> None:
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on must name a condition"
        for target, spec in depends.items():
            assert target in services, f"{name} depends on undefined service {target}"
            assert spec.get("condition") == "service_healthy", f"{name} → {target}: {spec}"
            assert services[target].get("healthcheck"), f"{name} waits for {target}, which has no healthcheck"


def test_gateway_waits_for_every_platform_service(services: dict[str, Any]) -> None:
    gateway = next(s for s in services.values() if dncity_process(s) == "gateway")
    waited = {dncity_process(services[t]) for t in gateway["depends_on"]}
    assert waited >= set(SERVICE_NAMES)


def test_every_url_in_the_environment_points_at_a_defined_service_and_port(services: dict[str, Any]) -> None:
    from shared.settings import DEFAULT_PORTS

    ports = {name: DEFAULT_PORTS[process] for name, s in services.items() if (process := dncity_process(s)) is not None}
    checked = 0
    for name, service in services.items():
        for key, raw in env_of(service).items():
            if not key.endswith("_URL") or key in PUBLIC_URL_VARS:
                continue
            url = urlsplit(interpolate(raw))
            assert url.hostname in services, f"{name}: {key}={raw} points at no service of compose.yaml"
            if url.hostname in ports:
                assert url.port == ports[url.hostname], (
                    f"{name}: {key}={raw}; {url.hostname} listens on {ports[url.hostname]}"
                )
            checked += 1
    # The platform's service URLs (DNCITY_<SERVICE>_URL) are all among them, in every dncity process.
    for name, service in services.items():
        if dncity_process(service) is not None:
            env = env_of(service)
            missing = [s for s in SERVICE_NAMES if f"DNCITY_{s.upper()}_URL" not in env]
            assert not missing, f"{name} does not know where {missing} live"
    assert checked > 0


def test_every_dncity_process_runs_the_prod_profile_on_postgres_and_redis(services: dict[str, Any]) -> None:
    for name, service in services.items():
        process = dncity_process(service)
        if process is None:
            continue
        env = env_of(service)
        assert env.get("DNCITY_PROFILE") == "prod", name
        assert env.get("DNCITY_REDIS_URL", "").startswith("redis://"), name
        if process in SERVICE_NAMES:
            database = env.get(f"DNCITY_{process.upper()}_DATABASE_URL", "")
            assert database.startswith("postgresql+asyncpg://"), f"{name}: {database}"
            # Its own database and role: no service can read another's tables.
            url = urlsplit(interpolate(database))
            assert url.path == f"/{process}" and url.username == process, f"{name}: {database}"


def test_secrets_come_only_from_the_environment(compose: dict[str, Any], services: dict[str, Any]) -> None:
    for name, service in services.items():
        for key, value in env_of(service).items():
            if SECRET_NAME.search(key):
                assert REQUIRED_ONLY.match(value), f"{name}: {key} must be ${{VAR:?…}}, not {value!r}"
            for match in INTERPOLATION.finditer(value):
                # A password inside a URL must be required too, never defaulted.
                if SECRET_NAME.search(match.group("name")):
                    assert match.group("op") == ":?", f"{name}: {key} defaults a secret ({match.group(0)})"
    text = COMPOSE.read_text(encoding="utf-8")
    assert "dev-insecure-" not in text


def test_dockerfile_installs_the_project_and_runs_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    assert "pip install" in dockerfile
    user = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert user and user[-1] not in ("root", "0"), user
    cmd = re.findall(r"^CMD\s+(.+)$", dockerfile, re.M)[-1]
    assert '"dncity", "run", "--service"' in cmd


def test_only_processes_behind_the_gateway_believe_forwarded_headers(services: dict[str, Any]) -> None:
    for name, service in services.items():
        env = env_of(service)
        if env.get("FORWARDED_ALLOW_IPS") == "*":
            assert not service.get("ports"), f"{name} is published yet believes any X-Forwarded-For"
    gateway = next(s for s in services.values() if dncity_process(s) == "gateway")
    assert gateway.get("ports") and env_of(gateway).get("FORWARDED_ALLOW_IPS") != "*"


def test_the_prod_profile_accepts_each_process_configuration(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every secret a service's prod settings demand is configured, with nothing left at a placeholder,
    no SQLite, Redis set and dev endpoints off: each container's settings pass the prod start-up check."""
    from dncity.cli import service_settings
    from services.payments.sandbox.settings import SandboxSettings
    from shared.settings import PlatformSettings, Profile

    checked = set()
    for name, service in services.items():
        process = dncity_process(service)
        if process is None or process == "gateway":
            continue
        for key in [k for k in os.environ if k.startswith("DNCITY_")]:
            monkeypatch.delenv(key)
        for key, value in env_of(service).items():
            monkeypatch.setenv(key, interpolate(value))
        platform = PlatformSettings()
        assert platform.profile is Profile.prod and not platform.dev_endpoints_enabled, name
        settings = SandboxSettings() if process == "sandbox_provider" else service_settings(process)
        settings.check(platform)  # raises ConfigError naming what is missing
        checked.add(process)
    assert checked >= {*SERVICE_NAMES, "sandbox_provider"}
