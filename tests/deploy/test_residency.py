"""Residency wiring, proved from the rendered YAML of each regional overlay.

For each region the checker learns the region's own facts from its render (namespace,
CRM_REGION, node-region label value, database host, NATS URL, collector URL) and then
reports, for that render:

- any string anywhere that names another region's namespace, node-region value,
  database host or NATS URL;
- a workload whose resolved environment (literal values, configMapKeyRef, envFrom)
  names a `*.svc` host outside the region's namespace, a CRM_REGION other than its
  own, a NATS URL or database host other than the region's, or a database Secret
  that the region's own CloudNativePG cluster does not manage;
- a workload (or the CNPG Cluster) without the required nodeAffinity on
  topology.kubernetes.io/region to exactly the region's value;
- a NetworkPolicy egress rule that allows all destinations, any namespace other than
  the region's own (and kube-system for DNS), or an ipBlock other than the single
  Kubernetes API server address for the CNPG instances (ports 443/6443).

The same checks run over the region's NATS Helm values. The last tests corrupt a good
render in several ways and assert the checker reports each corruption.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
REGION_LABEL = "topology.kubernetes.io/region"
SVC_HOST = re.compile(r"\b([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc\b")
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}
DNS_NAMESPACE = "kube-system"
API_SERVER_PORTS = {443, 6443}

Render = Callable[[str], list[dict[str, Any]]]
Doc = dict[str, Any]


@dataclass(frozen=True)
class RegionFacts:
    region: str
    namespace: str
    node_regions: frozenset[str]
    db_host: str
    nats_url: str
    otel_endpoint: str

    def markers(self) -> set[str]:
        """Strings that, found in another region's render, point at this region."""
        return {self.namespace, self.db_host, self.nats_url, *self.node_regions}


def pod_spec(doc: Doc) -> Doc | None:
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
        return spec["template"]["spec"]
    if kind == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    if kind == "Pod":
        return spec
    return None


def node_regions(affinity: Doc | None) -> list[list[str]] | None:
    """Per required nodeSelectorTerm, the allowed region values; None if not pinned."""
    required = ((affinity or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return None
    values = []
    for term in terms:
        pins = [
            e.get("values", [])
            for e in term.get("matchExpressions", [])
            if e.get("key") == REGION_LABEL and e.get("operator") == "In"
        ]
        if not pins:
            return None  # a term that doesn't pin the region lets pods go anywhere
        values.append(sorted({v for pin in pins for v in pin}))
    return values


def config_maps(docs: list[Doc]) -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d.get("data") or {} for d in docs if d["kind"] == "ConfigMap"}


def facts_from_render(region: str, docs: list[Doc]) -> RegionFacts:
    """What the region's own render says about itself (checked for consistency later)."""
    namespace = f"atlas-{region}"
    (region_config,) = [
        data for name, data in config_maps(docs).items() if name.startswith("atlas-region-")
    ]
    (cluster,) = [d for d in docs if d["kind"] == "Cluster"]
    pins = node_regions(cluster["spec"].get("affinity")) or []
    return RegionFacts(
        region=region,
        namespace=namespace,
        node_regions=frozenset(v for term in pins for v in term),
        db_host=region_config["CRM_DB_HOST"],
        nats_url=region_config["CRM_NATS_URL"],
        otel_endpoint=region_config["OTEL_EXPORTER_OTLP_ENDPOINT"],
    )


def strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key, path)
            yield from strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, node


def resolved_env(container: Doc, maps: dict[str, dict[str, str]]) -> dict[str, tuple[str, str]]:
    """name -> (value, source); `$(VAR)` references are expanded like the kubelet does."""
    env: dict[str, tuple[str, str]] = {}
    for source in container.get("envFrom", []):
        name = (source.get("configMapRef") or {}).get("name")
        for key, value in maps.get(name, {}).items():
            env[key] = (value, f"configMap {name}")
    for item in container.get("env", []):
        ref = (item.get("valueFrom") or {}).get("configMapKeyRef")
        if "value" in item:
            value = re.sub(
                r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                lambda m: env.get(m.group(1), (m.group(0), ""))[0],
                item["value"],
            )
            env[item["name"]] = (value, "literal")
        elif ref:
            env[item["name"]] = (maps.get(ref["name"], {}).get(ref["key"], ""), ref["name"])
    return env


def secret_refs(container: Doc) -> set[str]:
    names = set()
    for item in container.get("env", []):
        ref = (item.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            names.add(ref["name"])
    for source in container.get("envFrom", []):
        if source.get("secretRef"):
            names.add(source["secretRef"]["name"])
    return names


def workload_violations(doc: Doc, facts: RegionFacts, docs: list[Doc]) -> list[str]:
    name = f"{doc['kind']}/{doc['metadata']['name']}"
    pod = pod_spec(doc)
    assert pod is not None
    problems = []
    pins = node_regions(pod.get("affinity"))
    if pins is None:
        problems.append(f"{name}: no required nodeAffinity on {REGION_LABEL}")
    elif any(set(term) != set(facts.node_regions) for term in pins):
        problems.append(
            f"{name}: nodeAffinity allows {pins}, not only {sorted(facts.node_regions)}"
        )
    selector_region = (pod.get("nodeSelector") or {}).get(REGION_LABEL)
    if selector_region is not None and selector_region not in facts.node_regions:
        problems.append(f"{name}: nodeSelector {REGION_LABEL}={selector_region}")
    maps = config_maps(docs)
    (cluster,) = [d for d in docs if d["kind"] == "Cluster"]
    managed = {
        role["passwordSecret"]["name"]
        for role in cluster["spec"].get("managed", {}).get("roles", [])
        if role.get("passwordSecret")
    }
    for container in pod.get("initContainers", []) + pod["containers"]:
        where = f"{name}:{container['name']}"
        env = resolved_env(container, maps)
        for var, (value, source) in env.items():
            for match in SVC_HOST.finditer(value):
                if match.group(3) != facts.namespace:
                    problems.append(
                        f"{where}: {var} ({source}) points at namespace {match.group(3)}"
                    )
        expected = {
            "CRM_REGION": facts.region,
            "CRM_NATS_URL": facts.nats_url,
            "CRM_DB_HOST": facts.db_host,
            "OTEL_EXPORTER_OTLP_ENDPOINT": facts.otel_endpoint,
        }
        for var, want in expected.items():
            if var in env and env[var][0] != want:
                problems.append(f"{where}: {var}={env[var][0]!r}, expected {want!r}")
        url = env.get("CRM_DATABASE_URL", ("", ""))[0]
        if url and f"@{facts.db_host}:" not in url:
            problems.append(f"{where}: CRM_DATABASE_URL does not use {facts.db_host}")
        for secret in secret_refs(container):
            if secret.startswith("atlas-pg") and secret not in managed:
                problems.append(
                    f"{where}: database secret {secret} is not managed by the region's cluster"
                )
    return problems


def namespace_selector_targets(selector: Doc) -> set[str] | None:
    """The namespaces a namespaceSelector can match, None if it isn't pinned by name."""
    key = "kubernetes.io/metadata.name"
    labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    names: set[str] | None = {labels[key]} if key in labels else None
    for expression in expressions:
        if expression.get("key") == key and expression.get("operator") == "In":
            values = set(expression.get("values", []))
            names = values if names is None else names & values
    return names


def policy_violations(doc: Doc, facts: RegionFacts) -> list[str]:
    name = f"NetworkPolicy/{doc['metadata']['name']}"
    spec = doc["spec"]
    problems = []
    selects_postgres = "cnpg.io/cluster" in (spec.get("podSelector", {}).get("matchLabels") or {})
    for index, rule in enumerate(spec.get("egress") or []):
        where = f"{name} egress[{index}]"
        peers = rule.get("to")
        if not peers:
            problems.append(f"{where}: allows every destination")
            continue
        ports = {p.get("port") for p in rule.get("ports") or []}
        for peer in peers:
            if "ipBlock" in peer:
                block = peer["ipBlock"]
                network = ipaddress.ip_network(block["cidr"], strict=False)
                single_host = network.num_addresses == 1
                if not (selects_postgres and single_host and ports and ports <= API_SERVER_PORTS):
                    problems.append(f"{where}: ipBlock {block['cidr']} is not strictly needed")
            if "namespaceSelector" in peer:
                allowed = {facts.namespace}
                if ports and ports <= {53}:
                    allowed.add(DNS_NAMESPACE)
                targets = namespace_selector_targets(peer["namespaceSelector"])
                if targets is None:
                    problems.append(f"{where}: namespaceSelector can match any namespace")
                elif not targets <= allowed:
                    problems.append(f"{where}: egress to namespaces {sorted(targets - allowed)}")
    return problems


def residency_violations(
    docs: list[Doc], facts: RegionFacts, others: list[RegionFacts]
) -> list[str]:
    problems = []
    foreign = {marker: other.region for other in others for marker in other.markers()}
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        namespace = doc["metadata"].get("namespace", doc["metadata"]["name"])
        if namespace != facts.namespace:
            problems.append(f"{name}: in namespace {namespace}, not {facts.namespace}")
        for path, text in strings(doc):
            for marker, region in foreign.items():
                if marker in text:
                    problems.append(f"{name} {path}: {text!r} names region {region} ({marker})")
        if doc["kind"] in WORKLOAD_KINDS:
            problems += workload_violations(doc, facts, docs)
        if doc["kind"] == "Cluster":
            pins = node_regions(doc["spec"].get("affinity"))
            if pins is None or any(set(t) != set(facts.node_regions) for t in pins):
                problems.append(f"{name}: instances not pinned to {sorted(facts.node_regions)}")
        if doc["kind"] == "NetworkPolicy":
            problems += policy_violations(doc, facts)
    return problems


def nats_values_violations(values: Doc, facts: RegionFacts, others: list[RegionFacts]) -> list[str]:
    problems = []
    foreign = {marker: other.region for other in others for marker in other.markers()}
    for path, text in strings(values):
        for marker, region in foreign.items():
            if marker in text:
                problems.append(f"{path}: {text!r} names region {region}")
    affinity = (((values.get("podTemplate") or {}).get("merge") or {}).get("spec") or {}).get(
        "affinity"
    )
    pins = node_regions(affinity)
    if pins is None or any(set(t) != set(facts.node_regions) for t in pins):
        problems.append(f"NATS servers not pinned to {sorted(facts.node_regions)}: {pins}")
    return problems


@pytest.fixture(scope="module")
def all_facts(render: Render) -> dict[str, RegionFacts]:
    regions = sorted(p.name for p in (DEPLOY / "overlays").iterdir() if p.is_dir())
    return {r: facts_from_render(r, render(f"overlays/{r}")) for r in regions}


def test_regions_have_distinct_facts(all_facts: dict[str, RegionFacts]) -> None:
    assert len(all_facts) >= 3
    for region, facts in all_facts.items():
        assert facts.node_regions, f"{region}: the CNPG cluster is not pinned to a region"
        assert facts.db_host == f"atlas-pg-rw.{facts.namespace}.svc.cluster.local"
        assert facts.nats_url == f"nats://nats.{facts.namespace}.svc.cluster.local:4222"
        assert (
            facts.otel_endpoint == f"http://otel-collector.{facts.namespace}.svc.cluster.local:4317"
        )
        for other in all_facts.values():
            if other is not facts:
                assert not facts.markers() & other.markers(), (region, other.region)


def test_region_render_stays_in_region(
    region: str, render: Render, all_facts: dict[str, RegionFacts]
) -> None:
    docs = render(f"overlays/{region}")
    facts = all_facts[region]
    others = [f for r, f in all_facts.items() if r != region]
    assert any(d["kind"] in WORKLOAD_KINDS for d in docs)
    assert any(d["kind"] == "NetworkPolicy" for d in docs)
    violations = residency_violations(docs, facts, others)
    assert not violations, "\n".join(violations)


def test_region_dev_variant_stays_in_region(
    region: str, render: Render, all_facts: dict[str, RegionFacts]
) -> None:
    """deploy/dev/<region> (skaffold) relaxes HA, never residency."""
    if not (DEPLOY / "dev" / region / "kustomization.yaml").is_file():
        return
    others = [f for r, f in all_facts.items() if r != region]
    violations = residency_violations(render(f"dev/{region}"), all_facts[region], others)
    assert not violations, "\n".join(violations)


def test_region_nats_values_stay_in_region(region: str, all_facts: dict[str, RegionFacts]) -> None:
    values = yaml.safe_load((DEPLOY / "nats" / f"values-{region}.yaml").read_text())
    common = yaml.safe_load((DEPLOY / "nats" / "values.yaml").read_text())
    others = [f for r, f in all_facts.items() if r != region]
    assert not nats_values_violations(values, all_facts[region], others)
    # the shared file must not pin anything region-specific
    assert not [
        m
        for _, text in strings(common)
        for f in all_facts.values()
        for m in f.markers()
        if m in text
    ]
    assert values["config"]["jetstream"]["merge"]["domain"] == region


# --- the checker catches what it should ---------------------------------------------


def _first_region(all_facts: dict[str, RegionFacts]) -> str:
    return sorted(all_facts)[0]


def _corrupt(
    render: Render,
    all_facts: dict[str, RegionFacts],
    mutate: Callable[[list[Doc], RegionFacts, RegionFacts], None],
) -> list[str]:
    region = _first_region(all_facts)
    facts = all_facts[region]
    other = next(f for r, f in sorted(all_facts.items()) if r != region)
    docs = copy.deepcopy(render(f"overlays/{region}"))
    assert not residency_violations(docs, facts, [f for r, f in all_facts.items() if r != region])
    mutate(docs, facts, other)
    return residency_violations(docs, facts, [f for r, f in all_facts.items() if r != region])


def _service(docs: list[Doc]) -> Doc:
    return next(
        d
        for d in docs
        if d["kind"] == "Deployment"
        and d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
        == "grpc-service"
    )


def _policy(docs: list[Doc], name: str) -> Doc:
    return next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == name)


def test_catches_env_pointing_at_another_regions_namespace(
    render: Render, all_facts: dict[str, RegionFacts]
) -> None:
    """The brief's example: one env var of a rendered doc names the other region's namespace."""

    def mutate(docs: list[Doc], facts: RegionFacts, other: RegionFacts) -> None:
        container = _service(docs)["spec"]["template"]["spec"]["containers"][0]
        for item in container["env"]:
            if item["name"] == "CRM_NATS_URL":
                item.pop("valueFrom")
                item["value"] = facts.nats_url.replace(facts.namespace, other.namespace)

    problems = _corrupt(render, all_facts, mutate)
    assert any("CRM_NATS_URL" in p and "points at namespace" in p for p in problems), problems
    assert any("names region" in p for p in problems), problems


def test_catches_region_configmap_pointing_elsewhere(
    render: Render, all_facts: dict[str, RegionFacts]
) -> None:
    """Subtler: a host in the shared ConfigMap that only env resolution reveals."""

    def mutate(docs: list[Doc], facts: RegionFacts, other: RegionFacts) -> None:
        for doc in docs:
            if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("atlas-region-"):
                doc["data"]["CRM_DB_HOST"] = "atlas-pg-rw.shared-db.svc.cluster.local"
                doc["data"]["CRM_REGION"] = other.region

    problems = _corrupt(render, all_facts, mutate)
    assert any("CRM_DB_HOST" in p and "shared-db" in p for p in problems), problems
    assert any("CRM_DATABASE_URL does not use" in p for p in problems), problems
    assert any("CRM_REGION=" in p and "expected" in p for p in problems), problems


def test_catches_a_foreign_database_secret(
    render: Render, all_facts: dict[str, RegionFacts]
) -> None:
    def mutate(docs: list[Doc], facts: RegionFacts, other: RegionFacts) -> None:
        container = _service(docs)["spec"]["template"]["spec"]["containers"][0]
        for item in container["env"]:
            if item["name"] == "CRM_DB_PASSWORD":
                item["valueFrom"]["secretKeyRef"]["name"] = "atlas-pg-replica-of-another-region"

    problems = _corrupt(render, all_facts, mutate)
    assert any("is not managed by the region's cluster" in p for p in problems), problems


def test_catches_foreign_or_missing_node_affinity(
    render: Render, all_facts: dict[str, RegionFacts]
) -> None:
    def mutate(docs: list[Doc], facts: RegionFacts, other: RegionFacts) -> None:
        workloads = [d for d in docs if d["kind"] == "Deployment"]
        first, second = workloads[0], workloads[1]
        terms = first["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        terms[0]["matchExpressions"][0]["values"] = sorted(other.node_regions)
        del second["spec"]["template"]["spec"]["affinity"]
        (cluster,) = [d for d in docs if d["kind"] == "Cluster"]
        cluster["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"].append(
            sorted(other.node_regions)[0]
        )

    problems = _corrupt(render, all_facts, mutate)
    assert any("nodeAffinity allows" in p for p in problems), problems
    assert any("no required nodeAffinity" in p for p in problems), problems
    assert any(p.startswith("Cluster/") and "not pinned" in p for p in problems), problems


def test_catches_cross_region_or_open_egress(
    render: Render, all_facts: dict[str, RegionFacts]
) -> None:
    def mutate(docs: list[Doc], facts: RegionFacts, other: RegionFacts) -> None:
        policy = _policy(docs, "grpc-services")
        policy["spec"]["egress"].append(
            {
                "to": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "neighbour"}
                        }
                    }
                ],
                "ports": [{"protocol": "TCP", "port": 50051}],
            }
        )
        policy["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})
        policy["spec"]["egress"].append({"to": [{"namespaceSelector": {}}]})
        policy["spec"]["egress"].append({"ports": [{"protocol": "TCP", "port": 4222}]})
        apiserver = _policy(docs, "postgres-kube-apiserver-egress")
        apiserver["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"] = "10.0.0.0/8"

    problems = _corrupt(render, all_facts, mutate)
    assert any("egress to namespaces ['neighbour']" in p for p in problems), problems
    assert any("ipBlock 0.0.0.0/0" in p for p in problems), problems
    assert any("can match any namespace" in p for p in problems), problems
    assert any("allows every destination" in p for p in problems), problems
    assert any("ipBlock 10.0.0.0/8" in p for p in problems), problems


def test_catches_foreign_nats_values(all_facts: dict[str, RegionFacts]) -> None:
    region = _first_region(all_facts)
    other = next(f for r, f in sorted(all_facts.items()) if r != region)
    values = yaml.safe_load((DEPLOY / "nats" / f"values-{region}.yaml").read_text())
    others = [f for r, f in all_facts.items() if r != region]
    assert not nats_values_violations(values, all_facts[region], others)
    terms = values["podTemplate"]["merge"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    terms[0]["matchExpressions"][0]["values"] = sorted(other.node_regions)
    problems = nats_values_violations(values, all_facts[region], others)
    assert any("names region" in p for p in problems), problems
    assert any("not pinned" in p for p in problems), problems
