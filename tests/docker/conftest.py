"""pytest-docker wiring for the image smoke tests (tests/docker-compose.yml).

The tests need a Docker engine with the compose plugin. Where there is none (this
development machine, for one), every test here is skipped with the reason "no Docker
engine on this machine" before pytest-docker would try to run `docker compose`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

COMPOSE_FILE = Path(__file__).resolve().parents[1] / "docker-compose.yml"
NO_ENGINE = "no Docker engine on this machine"


def docker_engine_problem() -> str | None:
    """None when `docker info` and `docker compose version` work, else why not."""
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    for command in (["docker", "info"], ["docker", "compose", "version"]):
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"`{' '.join(command)}` failed: {error}"
        if result.returncode != 0:
            return f"`{' '.join(command)}` failed: {result.stderr.strip()[:200]}"
    return None


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(COMPOSE_FILE)


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return f"atlas-crm-smoke-{os.getpid()}"


@pytest.fixture(scope="session")
def compose(request: pytest.FixtureRequest) -> Any:
    """The running compose project (pytest-docker's `docker_services`), or a skip."""
    problem = docker_engine_problem()
    if problem is not None:
        pytest.skip(f"{NO_ENGINE} ({problem})")
    return request.getfixturevalue("docker_services")


@pytest.fixture(scope="session")
def compose_command(docker_compose_project_name: str) -> list[str]:
    return ["docker", "compose", "-f", str(COMPOSE_FILE), "-p", docker_compose_project_name]
