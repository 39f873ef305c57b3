"""The Dockerfile and docker-compose.yml have the properties we deploy on (no engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def test_dockerfile_is_multi_stage_on_a_slim_base(dockerfile: str) -> None:
    stages = [args for keyword, args in instructions(dockerfile) if keyword == "FROM"]
    assert len(stages) == 2
    assert all("-slim" in stage for stage in stages)
    assert any("COPY" == k and "--from=build" in a for k, a in instructions(dockerfile))


def test_dockerfile_runs_as_a_non_root_user(dockerfile: str) -> None:
    users = [args for keyword, args in instructions(dockerfile) if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_runtime_stage_installs_only_the_service(dockerfile: str) -> None:
    copies = [args for keyword, args in instructions(dockerfile) if keyword == "COPY"]
    copied = " ".join(copies)
    assert "tests" not in copied and "tools" not in copied and ".[dev]" not in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"tests", "tools", ".git"} <= set(ignored)


def test_healthcheck_probes_healthz_without_curl(dockerfile: str) -> None:
    checks = [args for keyword, args in instructions(dockerfile) if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "/healthz" in checks[0] and "curl" not in checks[0] and "python" in checks[0]


def test_uvicorn_is_pid_1_with_proxy_headers_limits_and_graceful_shutdown(dockerfile: str) -> None:
    commands = [args for keyword, args in instructions(dockerfile) if keyword == "CMD"]
    assert commands[-1].startswith("[")  # exec form: uvicorn receives SIGTERM itself
    argv = yaml.safe_load(commands[-1])
    assert argv[0] == "uvicorn" and "service.main:app" in argv
    for flag in ("--proxy-headers", "--limit-concurrency", "--timeout-graceful-shutdown"):
        assert flag in argv
    assert "--no-access-log" in argv  # the app writes its own JSON access log


def test_compose_has_redis_with_aof_and_healthcheck(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = " ".join(redis["command"]) if isinstance(redis["command"], list) else redis["command"]
    assert "--appendonly yes" in command
    assert "redis-cli" in " ".join(redis["healthcheck"]["test"])
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


def test_compose_runs_two_api_replicas_on_redis(compose: dict[str, Any]) -> None:
    services = compose["services"]
    replicas = [name for name, service in services.items() if service.get("build") == "."]
    assert len(replicas) == 2
    for name in replicas:
        service = services[name]
        assert service["environment"]["LRSCHED_STORE"] == "redis://redis:6379/0"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"


def test_compose_puts_a_real_load_balancer_in_front(compose: dict[str, Any]) -> None:
    lb = compose["services"]["lb"]
    assert lb["image"].startswith("nginx:")
    assert lb["ports"] == ["8000:80"]
    published = [n for n, s in compose["services"].items() if s.get("ports")]
    assert published == ["lb"]
    config = (ROOT / "deploy" / "nginx.conf").read_text()
    upstream = re.search(r"upstream lrsched \{(.*?)\}", config, re.S)
    assert upstream is not None
    servers = re.findall(r"server (\S+);|server (\S+) ", upstream.group(1))
    assert {"api-1:8000", "api-2:8000"} <= {a or b for a, b in servers}
    assert all(
        lb["depends_on"][name]["condition"] == "service_healthy" for name in ("api-1", "api-2")
    )


def test_docs_document_compose_on_the_published_port(compose: dict[str, Any]) -> None:
    readme = (ROOT / "docs" / "operations.md").read_text()
    assert "docker compose up --build" in readme
    host_port = compose["services"]["lb"]["ports"][0].split(":")[0]
    assert f"localhost:{host_port}" in readme
