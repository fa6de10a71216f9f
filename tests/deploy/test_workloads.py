"""Every Deployment is production-shaped, asserted per container (init containers too).

Probes (startup, readiness, liveness; native gRPC on 50051 for gRPC services), requests
and limits for CPU and memory, a hardened securityContext (non-root, no privilege
escalation, read-only root filesystem with a /tmp emptyDir, all capabilities dropped,
seccomp RuntimeDefault), topology spread, no service-account token, and, for each gRPC
service, its migration init container, its database URL built from the role secret, and
its own Service, HPA, PDB, ServiceAccount and ConfigMap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Render = Callable[[str], list[dict[str, Any]]]


def deployments(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == "Deployment"]


def effective(pod: dict[str, Any], container: dict[str, Any], key: str) -> Any:
    """A securityContext field as the kubelet sees it: the container's, else the pod's."""
    value = (container.get("securityContext") or {}).get(key)
    if value is None:
        value = (pod.get("securityContext") or {}).get(key)
    return value


def container_problems(pod: dict[str, Any], container: dict[str, Any], init: bool) -> list[str]:
    problems = []
    resources = container.get("resources") or {}
    for section in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in (resources.get(section) or {}):
                problems.append(f"no {section}.{resource}")
    context = container.get("securityContext") or {}
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if context.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    if context.get("privileged"):
        problems.append("privileged")
    if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
        problems.append("capabilities.drop lacks ALL")
    if (context.get("capabilities") or {}).get("add"):
        problems.append("adds capabilities")
    if effective(pod, container, "runAsNonRoot") is not True:
        problems.append("runAsNonRoot is not true")
    user = effective(pod, container, "runAsUser")
    if not isinstance(user, int) or user < 10000:
        problems.append(f"runAsUser {user!r} is not a numeric uid >= 10000")
    seccomp = effective(pod, container, "seccompProfile") or {}
    if seccomp.get("type") != "RuntimeDefault":
        problems.append("seccompProfile is not RuntimeDefault")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
    if not tmp or "emptyDir" not in volumes.get(tmp[0]["name"], {}):
        problems.append("/tmp is not an emptyDir (needed with a read-only root filesystem)")
    if not init:
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if probe not in container:
                problems.append(f"no {probe}")
    return problems


def test_every_container_is_hardened_and_bounded(target: str, render: Render) -> None:
    problems = []
    found = deployments(render(target))
    assert found
    for doc in found:
        pod = doc["spec"]["template"]["spec"]
        for init, container in [(True, c) for c in pod.get("initContainers", [])] + [
            (False, c) for c in pod["containers"]
        ]:
            where = f"{doc['metadata']['name']}/{container['name']}"
            problems += [f"{where}: {p}" for p in container_problems(pod, container, init)]
    assert not problems, "\n".join(problems)


def test_every_pod_is_spread_and_has_no_token(target: str, render: Render) -> None:
    for doc in deployments(render(target)):
        name = doc["metadata"]["name"]
        pod = doc["spec"]["template"]["spec"]
        assert pod.get("automountServiceAccountToken") is False, name
        assert pod.get("serviceAccountName") not in (None, "", "default"), name
        assert not pod.get("hostNetwork") and not pod.get("hostPID"), name
        keys = [c["topologyKey"] for c in pod.get("topologySpreadConstraints", [])]
        assert {"topology.kubernetes.io/zone", "kubernetes.io/hostname"} <= set(keys), name
        # the zone constraint comes first: deploy/dev/components/single-node patches index 0
        assert keys[0] == "topology.kubernetes.io/zone", name
        for constraint in pod["topologySpreadConstraints"]:
            selector = constraint["labelSelector"]["matchLabels"]
            assert selector.items() <= doc["spec"]["template"]["metadata"]["labels"].items()
        service_accounts = {
            d["metadata"]["name"]: d for d in render(target) if d["kind"] == "ServiceAccount"
        }
        assert service_accounts[pod["serviceAccountName"]]["automountServiceAccountToken"] is False


def grpc_services(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        d
        for d in deployments(docs)
        if d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
        == "grpc-service"
    ]


def test_grpc_services_follow_the_runtime_contract(region: str, render: Render) -> None:
    docs = render(f"overlays/{region}")
    services = grpc_services(docs)
    assert services, f"no gRPC service in {region}"
    by_kind: dict[str, set[str]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], set()).add(doc["metadata"]["name"])
    for doc in services:
        name = doc["metadata"]["name"]
        pod = doc["spec"]["template"]["spec"]
        (main,) = [c for c in pod["containers"] if c["name"] == name]
        assert main["command"] == ["python", "-m", f"crm_{name}", "serve"], name
        ports = {p["name"]: p["containerPort"] for p in main["ports"]}
        assert ports == {"grpc": 50051, "metrics": 9090}, name
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert main[probe].get("grpc", {}).get("port") == 50051, f"{name} {probe}"
        (migrate,) = pod["initContainers"]
        assert migrate["command"] == ["python", "-m", f"crm_{name}", "migrate"], name
        assert migrate["image"] == main["image"], name
        for container in (main, migrate):
            env = {e["name"]: e for e in container["env"]}
            names = [e["name"] for e in container["env"]]
            url = env["CRM_DATABASE_URL"]["value"]
            assert url == (
                f"postgresql+asyncpg://$(CRM_DB_USER):$(CRM_DB_PASSWORD)@$(CRM_DB_HOST):5432/{name}"
            ), url
            # $(VAR) interpolation only sees variables defined earlier in the list
            for var in ("CRM_DB_USER", "CRM_DB_PASSWORD", "CRM_DB_HOST"):
                assert names.index(var) < names.index("CRM_DATABASE_URL"), f"{name}: {var}"
            secret = env["CRM_DB_PASSWORD"]["valueFrom"]["secretKeyRef"]
            assert secret == {"name": f"atlas-pg-{name}", "key": "password"}, secret
            assert env["CRM_REGION"]["valueFrom"]["configMapKeyRef"]["key"] == "CRM_REGION"
        main_env = {e["name"] for e in main["env"]}
        assert {"CRM_NATS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"} <= main_env, name
        for kind in ("Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceAccount"):
            assert name in by_kind.get(kind, set()), f"{kind}/{name} missing"
        config_maps = [r["configMapRef"]["name"] for r in main.get("envFrom", [])]
        assert any(c.startswith(f"{name}-") for c in config_maps), f"{name}: own ConfigMap"
        assert "replicas" not in doc["spec"], f"{name}: the HPA owns replicas"


def test_hpas_and_pdbs_target_existing_workloads(target: str, render: Render) -> None:
    docs = render(target)
    workloads = {d["metadata"]["name"]: d for d in deployments(docs)}
    for doc in docs:
        if doc["kind"] == "HorizontalPodAutoscaler":
            ref = doc["spec"]["scaleTargetRef"]
            assert ref["kind"] == "Deployment" and ref["name"] in workloads, ref
            assert 2 <= doc["spec"]["minReplicas"] <= doc["spec"]["maxReplicas"]
        if doc["kind"] == "PodDisruptionBudget":
            selector = doc["spec"]["selector"]["matchLabels"]
            assert any(
                selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
                for w in workloads.values()
            ), doc["metadata"]["name"]
        if doc["kind"] == "Service":
            selector = doc["spec"]["selector"]
            assert any(
                selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
                for w in workloads.values()
            ), doc["metadata"]["name"]


def test_checks_catch_an_unhardened_container(render: Render) -> None:
    (doc,) = [d for d in deployments(render("global")) if d["metadata"]["name"] == "gateway"]
    pod = doc["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container_problems(pod, container, init=False) == []
    del container["resources"]["limits"]["memory"]
    container["securityContext"]["readOnlyRootFilesystem"] = False
    del container["livenessProbe"]
    pod["securityContext"]["runAsUser"] = 0
    problems = container_problems(pod, container, init=False)
    assert len(problems) == 4, problems


def test_gateway_probes_and_auth(render: Render) -> None:
    """Production gateway: liveness /healthz, readiness /readyz, OIDC and no secret in env."""
    (doc,) = [d for d in deployments(render("global")) if d["metadata"]["name"] == "gateway"]
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "crm_gateway"]
    assert container["ports"] == [{"name": "http", "containerPort": 8000}]
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = {e["name"]: e for e in container["env"]}
    assert "CRM_JWKS_URL" in env and "CRM_JWT_SECRET" not in env
    assert "CRM_JWT_ISSUER" in env  # the gateway refuses to start with JWKS but no issuer
    assert not [e for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    assert env["CRM_SERVICE_ENDPOINTS"]["valueFrom"]["configMapKeyRef"]["key"] == (
        "service-endpoints.json"
    )
