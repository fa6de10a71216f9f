"""Shared fixtures for the deployment checks: kustomize renders and reference schemas.

Every deployable kustomization is rendered once per session with the venv's kubectl
(`kubectl kustomize`). Tests that take a `target` argument run once per kustomization
(overlays/<region>, global, dev/*); tests that take a `region` argument run once per
regional overlay. The third-party schemas are read from ../shared/schemas beside the
repository and never copied into it.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
SCHEMAS = REPO_ROOT.parent / "shared" / "schemas"
KUBECTL = Path(sys.executable).parent / "kubectl"


def _kustomizations(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if (p / "kustomization.yaml").is_file())


def regions() -> list[str]:
    return [p.name for p in _kustomizations(DEPLOY / "overlays")]


def targets() -> list[str]:
    """Every kustomization meant to be applied: the regional overlays, global/, dev/*."""
    found = [f"overlays/{region}" for region in regions()]
    if (DEPLOY / "global" / "kustomization.yaml").is_file():
        found.append("global")
    dev = DEPLOY / "dev"
    if dev.is_dir():
        found += [f"dev/{p.name}" for p in _kustomizations(dev)]
    return found


def namespace_of(target: str) -> str:
    """The namespace a kustomization deploys into (atlas-<region> or atlas-global)."""
    return "atlas-" + target.rstrip("/").split("/")[-1]


@functools.cache
def _render(target: str) -> tuple[dict[str, Any], ...]:
    result = subprocess.run(
        [str(KUBECTL), "kustomize", str(DEPLOY / target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize deploy/{target} failed:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" in metafunc.fixturenames:
        metafunc.parametrize("target", targets())
    if "region" in metafunc.fixturenames:
        metafunc.parametrize("region", regions())


@pytest.fixture(scope="session")
def render() -> Callable[[str], list[dict[str, Any]]]:
    """render("overlays/eu") -> the rendered objects (a fresh deep copy each call)."""

    def _copy(target: str) -> list[dict[str, Any]]:
        return yaml.safe_load(yaml.safe_dump(list(_render(target))))

    return _copy


@pytest.fixture(scope="session")
def all_targets() -> list[str]:
    return targets()


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    if not SCHEMAS.is_dir():
        pytest.skip(f"reference schemas folder {SCHEMAS} is absent (it is present in CI)")
    return SCHEMAS
