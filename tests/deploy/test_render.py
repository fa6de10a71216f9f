"""`kubectl kustomize` renders every kustomization, and every service is wired everywhere.

A service (a folder under services/ other than the kit and the API stubs) must have a
Dockerfile, a skaffold artifact, a Component under deploy/base/services listed in the
base kustomization, its objects in every regional render, a managed Postgres role,
a gateway endpoint per region, and third-party dependencies that are all in the lock.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
LIBRARIES = {"kit", "api"}  # services/ folders that are packages, not deployable services
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}

Render = Callable[[str], list[dict[str, Any]]]


def services() -> list[str]:
    return sorted(
        p.name
        for p in (REPO_ROOT / "services").iterdir()
        if p.is_dir() and p.name not in LIBRARIES and (p / "pyproject.toml").is_file()
    )


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc.get("kind") not in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
        return []
    spec = doc["spec"]["template"]["spec"]
    return list(spec.get("initContainers", [])) + list(spec.get("containers", []))


def test_kustomize_renders_into_one_namespace(target: str, render: Render) -> None:
    docs = render(target)
    assert docs, f"deploy/{target} rendered nothing"
    expected = "atlas-" + target.split("/")[-1]
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "Namespace":
            assert doc["metadata"]["name"] == expected, name
        else:
            assert doc["kind"] not in CLUSTER_SCOPED, f"{name}: no cluster-scoped objects"
            assert doc["metadata"].get("namespace") == expected, f"{name} in deploy/{target}"
    assert any(d["kind"] == "Namespace" for d in docs), f"deploy/{target} has no Namespace"


def test_images_are_pinned_by_tag(target: str, render: Render) -> None:
    for doc in render(target):
        for container in containers(doc):
            image = container["image"]
            where = f"{doc['kind']}/{doc['metadata']['name']}:{container['name']}"
            if "@sha256:" in image:
                continue
            last = image.rsplit("/", 1)[-1]
            assert ":" in last, f"{where}: image {image} has no tag (set it in kustomize images:)"
            assert not last.endswith(":latest"), f"{where}: image {image} uses latest"
            assert container.get("imagePullPolicy") == "IfNotPresent", where
    for doc in render(target):
        if doc["kind"] == "Cluster":
            tag = doc["spec"]["imageName"].rsplit(":", 1)[-1]
            assert re.fullmatch(r"\d+\.\d+.*", tag), doc["spec"]["imageName"]


def test_every_service_is_wired_everywhere(render: Render) -> None:
    names = services()
    assert "contacts" in names
    base = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())
    skaffold = yaml.safe_load((REPO_ROOT / "skaffold.yaml").read_text())
    dockerfiles = {a["docker"]["dockerfile"] for a in skaffold["build"]["artifacts"]}
    endpoints = json.loads((DEPLOY / "global" / "service-endpoints.json").read_text())
    region_dirs = sorted(p.name for p in (DEPLOY / "overlays").iterdir() if p.is_dir())
    for name in names:
        assert (REPO_ROOT / "services" / name / "Dockerfile").is_file(), name
        assert f"services/{name}/Dockerfile" in dockerfiles, f"{name}: no skaffold artifact"
        assert f"services/{name}" in base["components"], f"{name}: not in base components"
        assert sorted(endpoints.get(name, {})) == sorted(region_dirs), f"{name}: gateway endpoints"
        for region in region_dirs:
            docs = render(f"overlays/{region}")
            kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
            for kind in ("Deployment", "Service", "HorizontalPodAutoscaler"):
                assert (kind, name) in kinds, f"{kind}/{name} missing in {region}"
            for kind in ("PodDisruptionBudget", "ServiceAccount"):
                assert (kind, name) in kinds, f"{kind}/{name} missing in {region}"
            assert any(k == "ConfigMap" and n.startswith(f"{name}-") for k, n in kinds), name
            databases = [d["spec"] for d in docs if d["kind"] == "Database"]
            assert {"name": name, "owner": name} in [
                {"name": d["name"], "owner": d["owner"]} for d in databases
            ], f"{name}: no CNPG Database in {region}"
            (cluster,) = [d for d in docs if d["kind"] == "Cluster"]
            roles = {r["name"] for r in cluster["spec"]["managed"]["roles"]}
            assert name in roles, f"{name}: no managed role in {region}"
        for region, address in endpoints[name].items():
            assert address == f"{name}.atlas-{region}.svc.cluster.local:50051", address


def test_image_dependencies_are_all_in_the_lock() -> None:
    """The Dockerfiles install each image's dependencies pinned from requirements.lock."""
    script = DEPLOY / "images" / "pin_requirements.py"
    images = {name: ["services/api", "services/kit", f"services/{name}"] for name in services()}
    images["gateway"] = ["services/api", "services/kit", "gateway"]
    for image, packages in images.items():
        result = subprocess.run(
            [sys.executable, str(script), "requirements.lock", *packages],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"{image}: {result.stderr}"
        lines = result.stdout.split()
        assert lines and all("==" in line for line in lines), result.stdout
        assert not any(line.startswith("crm-") for line in lines), "local packages leaked"
