"""Every rendered object, skaffold.yaml and the NATS values validate against their schemas.

- Built-in kinds: kubernetes-validate, strict (unknown fields are errors), Kubernetes 1.37.0.
- Custom resources (CloudNativePG): the CRD's openAPIV3Schema from ../shared/schemas,
  made strict the way the API server prunes: an object with `properties` accepts no other
  keys unless it says x-kubernetes-preserve-unknown-fields.
- skaffold.yaml: the skaffold v4beta14 JSON schema.
- NATS Helm values: only keys that exist in the chart's default values.yaml.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
KUBERNETES_VERSION = "1.37.0"

Render = Callable[[str], list[dict[str, Any]]]


class NotBuiltin(Exception):
    """kubernetes-validate has no schema for this kind: it is a custom resource."""


def validate_builtin(doc: dict[str, Any]) -> str | None:
    """The strict validation error of a built-in object, or None; NotBuiltin for a CR."""
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError as error:
        raise NotBuiltin(doc["kind"]) from error
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(p) for p in error.path)
        return f"{doc['kind']}/{doc['metadata']['name']}: {path}: {error.message}"
    return None


def is_builtin(doc: dict[str, Any]) -> bool:
    try:
        validate_builtin(doc)
    except NotBuiltin:
        return False
    return True


def strict_schema(schema: Any) -> Any:
    """Close every object schema that lists its properties (what the API server prunes)."""
    if isinstance(schema, dict):
        out = {key: strict_schema(value) for key, value in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    return schema


def crd_validators(schemas_dir: Path) -> dict[tuple[str, str], jsonschema.Validator]:
    """(apiVersion, kind) -> validator, from every *.crd.yaml in the schemas folder."""
    validators: dict[tuple[str, str], jsonschema.Validator] = {}
    for path in sorted(schemas_dir.glob("*.crd.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = strict_schema(version["schema"]["openAPIV3Schema"])
                # metadata is validated by the API server, not by the CRD schema.
                schema["properties"]["metadata"] = {"type": "object"}
                validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(
                    schema
                )
    return validators


@pytest.fixture(scope="module")
def crds(schemas_dir: Path) -> dict[tuple[str, str], jsonschema.Validator]:
    validators = crd_validators(schemas_dir)
    assert ("postgresql.cnpg.io/v1", "Cluster") in validators
    assert ("postgresql.cnpg.io/v1", "Database") in validators
    return validators


def test_builtin_objects_validate_strictly(target: str, render: Render) -> None:
    errors, checked = [], 0
    for doc in render(target):
        try:
            error = validate_builtin(doc)
        except NotBuiltin:
            continue
        checked += 1
        if error:
            errors.append(error)
    assert checked, f"deploy/{target}: no built-in object validated"
    assert not errors, "\n".join(errors)


def test_custom_resources_validate_against_their_crds(
    target: str, render: Render, crds: dict[tuple[str, str], jsonschema.Validator]
) -> None:
    errors = []
    for doc in render(target):
        if is_builtin(doc):
            continue
        key = (doc["apiVersion"], doc["kind"])
        assert key in crds, f"no schema for {key}: add its CRD to ../shared/schemas"
        for error in crds[key].iter_errors(doc):
            path = ".".join(str(p) for p in error.path)
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {path}: {error.message}")
    assert not errors, "\n".join(errors)


def test_crd_validation_is_strict(
    render: Render, crds: dict[tuple[str, str], jsonschema.Validator]
) -> None:
    """A typo'd or mistyped field in a CNPG Cluster is caught, not pruned silently."""
    docs = render("overlays/" + sorted(p.name for p in (DEPLOY / "overlays").iterdir())[0])
    (cluster,) = [d for d in docs if d["kind"] == "Cluster"]
    validator = crds[(cluster["apiVersion"], "Cluster")]
    assert not list(validator.iter_errors(cluster))
    typo = copy.deepcopy(cluster)
    typo["spec"]["storage"]["sizee"] = "1Gi"
    assert list(validator.iter_errors(typo))
    wrong_type = copy.deepcopy(cluster)
    wrong_type["spec"]["instances"] = "three"
    assert list(validator.iter_errors(wrong_type))


def test_skaffold_yaml_validates(schemas_dir: Path) -> None:
    schema = json.loads((schemas_dir / "skaffold-v4beta14.json").read_text())
    config = yaml.safe_load((REPO_ROOT / "skaffold.yaml").read_text())
    assert config["apiVersion"] == "skaffold/v4beta14"
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(config)]
    assert not errors, "\n".join(errors)
    # the schema rejects unknown keys, so the check above is meaningful
    config["build"]["artifacts"][0]["dockerr"] = {}
    assert list(validator.iter_errors(config))
    profiles = {
        p["name"] for p in yaml.safe_load((REPO_ROOT / "skaffold.yaml").read_text())["profiles"]
    }
    regions = {p.name for p in (DEPLOY / "overlays").iterdir() if p.is_dir()}
    assert regions <= profiles, "a skaffold profile per region"


def unknown_keys(values: Any, defaults: Any, path: str = "") -> list[str]:
    """Keys of `values` that the chart's defaults don't have.

    A default that is an empty map or null is free-form (`merge`, `env`, `labels`,
    `podTemplate.topologySpreadConstraints`, ...): anything may go under it.
    """
    if not isinstance(values, dict):
        return []
    if not isinstance(defaults, dict):
        return [f"{path or '.'}: the chart expects a scalar or list here, not a map"]
    if not defaults:
        return []
    problems = []
    for key, value in values.items():
        where = f"{path}.{key}" if path else key
        if key not in defaults:
            problems.append(f"{where}: not a key of the chart's values.yaml")
            continue
        default = defaults[key]
        if default is None:
            continue
        problems += unknown_keys(value, default, where)
    return problems


def nats_value_files() -> list[Path]:
    return sorted((DEPLOY / "nats").glob("values*.yaml"))


def test_nats_values_use_only_chart_keys(schemas_dir: Path) -> None:
    defaults = yaml.safe_load((schemas_dir / "nats-helm-values.default.yaml").read_text())
    files = nats_value_files()
    regions = sorted(p.name for p in (DEPLOY / "overlays").iterdir() if p.is_dir())
    assert {f.name for f in files} == {"values.yaml"} | {f"values-{r}.yaml" for r in regions}
    problems = []
    for path in files:
        values = yaml.safe_load(path.read_text())
        problems += [f"{path.name}: {p}" for p in unknown_keys(values, defaults)]
    assert not problems, "\n".join(problems)
    common = yaml.safe_load((DEPLOY / "nats" / "values.yaml").read_text())
    assert common["config"]["jetstream"]["enabled"] is True


def test_nats_key_check_catches_unknown_keys(schemas_dir: Path) -> None:
    defaults = yaml.safe_load((schemas_dir / "nats-helm-values.default.yaml").read_text())
    bad = {
        "config": {"jetstream": {"enabled": True, "fileStorage": {"size": "1Gi"}}},
        "natsbox": {"enabled": False},
        "container": {"image": {"tag": {"nested": 1}}},
    }
    problems = unknown_keys(bad, defaults)
    assert any("config.jetstream.fileStorage" in p for p in problems), problems
    assert any(p.startswith("natsbox") for p in problems), problems
    assert any("container.image.tag" in p for p in problems), problems
    free_form = {"config": {"jetstream": {"merge": {"domain": "eu", "anything": {"x": 1}}}}}
    assert unknown_keys(free_form, defaults) == []


def test_builtin_validation_is_strict(render: Render) -> None:
    """An unknown field in a Deployment is an error, not silently dropped."""
    docs = render("global")
    (deployment,) = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "gateway"
    ]
    assert validate_builtin(deployment) is None
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    assert validate_builtin(deployment)
