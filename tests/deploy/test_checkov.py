"""checkov finds nothing beyond the written waivers in deploy/checkov.yaml.

checkov 3.3.30 runs in its own environment (`uv tool run`, it pins many packages that
must not enter the project venv) over the rendered output of every kustomization
(rendering first: the raw base and patch files are fragments without namespaces or
image tags, which checkov would misreport) and over every Dockerfile, with the
kubernetes and dockerfile frameworks. Offline, checkov has no severity data (that
needs a Prisma Cloud key), so the rule is the stricter one: no failed check at all,
unless a waiver with its reason covers it. A waiver that no longer matches anything
also fails, so the file stays honest.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
WAIVERS = DEPLOY / "checkov.yaml"
CHECKOV = "checkov==3.3.30"
UV = Path(sys.executable).parent / "uv"

Render = Callable[[str], list[dict[str, Any]]]


def dockerfiles() -> list[Path]:
    found = sorted((REPO_ROOT / "services").glob("*/Dockerfile"))
    found += sorted((REPO_ROOT / "gateway").glob("Dockerfile"))
    return found


def load_waivers() -> list[dict[str, Any]]:
    waivers = yaml.safe_load(WAIVERS.read_text())["waivers"]
    for waiver in waivers:
        assert set(waiver) <= {"check", "resources", "targets", "reason"}, waiver
        assert waiver["check"].startswith("CKV"), waiver
        assert waiver["resources"], f"{waiver['check']}: say which resources it covers"
        assert len(waiver.get("reason", "").split()) >= 10, f"{waiver['check']}: give a reason"
    return waivers


def covering(
    waivers: list[dict[str, Any]], check: str, resource: str, target: str
) -> dict[str, Any] | None:
    for waiver in waivers:
        if waiver["check"] != check:
            continue
        if "targets" in waiver and not any(
            fnmatch.fnmatchcase(target, pattern) for pattern in waiver["targets"]
        ):
            continue
        if any(fnmatch.fnmatchcase(resource, pattern) for pattern in waiver["resources"]):
            return waiver
    return None


def test_waivers_file_is_well_formed() -> None:
    waivers = load_waivers()
    assert waivers
    assert covering(waivers, "CKV_K8S_35", "Deployment.atlas-global.gateway", "global") is None
    assert covering(waivers, "CKV_K8S_35", "Deployment.atlas-eu.contacts", "overlays/eu")
    assert covering(waivers, "CKV_K8S_1", "Deployment.atlas-eu.contacts", "overlays/eu") is None


def test_checkov_reports_nothing_beyond_the_waivers(
    tmp_path: Path, render: Render, all_targets: list[str]
) -> None:
    waivers = load_waivers()
    rendered: dict[str, str] = {}
    for target in all_targets:
        name = target.replace("/", "--") + ".yaml"
        (tmp_path / name).write_text(yaml.safe_dump_all(render(target), sort_keys=False))
        rendered["/" + name] = target
    for dockerfile in dockerfiles():
        copy = tmp_path / dockerfile.relative_to(REPO_ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(dockerfile, copy)
    assert UV.is_file(), f"{UV} missing: run `make install`"
    command = [
        str(UV),
        "tool",
        "run",
        "--from",
        CHECKOV,
        "checkov",
        "--directory",
        str(tmp_path),
        "--framework",
        "kubernetes",
        "dockerfile",
        "--skip-download",
        "--compact",
        "--quiet",
        "--output",
        "json",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    try:
        reports = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov did not run ({result.returncode}):\n{result.stderr[-3000:]}")
    reports = reports if isinstance(reports, list) else [reports]
    by_type = {r["check_type"]: r for r in reports}
    assert set(by_type) == {"kubernetes", "dockerfile"}, result.stderr[-3000:]
    assert by_type["kubernetes"]["summary"]["passed"] > 100
    assert by_type["dockerfile"]["summary"]["resource_count"] == len(dockerfiles())
    unwaived, used = [], set()
    for report in reports:
        assert report["summary"]["parsing_errors"] == 0, report["summary"]
        for failed in report["results"]["failed_checks"]:
            target = rendered.get(failed["file_path"], failed["file_path"])
            waiver = covering(waivers, failed["check_id"], failed["resource"], target)
            if waiver is None:
                unwaived.append(
                    f"{failed['check_id']} {failed['check_name']}: {failed['resource']} ({target})"
                )
            else:
                used.add(id(waiver))
    assert not unwaived, "failed checks without a waiver:\n" + "\n".join(unwaived)
    stale = [w["check"] for w in waivers if id(w) not in used]
    assert not stale, f"waivers that match nothing any more (remove them): {stale}"
