"""Schemathesis against the running gateway's OpenAPI document: generated valid and
invalid requests for every operation, as a caller of every role (admin, sales rep,
manager, compliance officer, and an API key of the integration role), and every answer
held to the document (no 5xx, no undocumented status code or content type, bodies that
match their schema) and to the error contract: every refusal (4xx) is problem+json, and
a 422 names each bad field, by a name the request has (a parameter, a header, a field of
the body).

Then stateful sequences: schemathesis follows the links it infers between operations
(create a contact, then read, change, note it …) as an admin.

Bounded and deterministic: `CRM_SCHEMATHESIS_EXAMPLES` examples per operation, mode and
role (default 5 for the admin and the sales rep, two fifths of it for the other roles)
and as many stateful sequences; derandomized, no shrinking, no example database. The
number of cases run is printed. `make chaos` runs it longer, e.g.
`CRM_SCHEMATHESIS_EXAMPLES=50 .venv/bin/pytest tests/test_schemathesis.py`.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = int(os.environ.get("CRM_SCHEMATHESIS_EXAMPLES", "5"))
# The roles the suite's other tests exercise least get fewer examples in the bounded run.
EXAMPLES_PER_ROLE = {
    "admin": EXAMPLES,
    "sales_rep": EXAMPLES,
    "manager": max(1, EXAMPLES * 2 // 5),
    "compliance_officer": max(1, EXAMPLES * 2 // 5),
    "integration": max(1, EXAMPLES * 2 // 5),
}
PROBLEM = "application/problem+json"
# Names a 422 may give that are not a parameter or a body field of the operation: the
# body as a whole (or an item of a body that is a list: `[0]`), the path and the record
# id in it, and an uploaded file.
WHOLE = {"body", "path", "file", "query", "id", ""}
# Replays the region's whole event history: minutes, not a request to fuzz.
SKIPPED = {"POST /v1/reports/rebuild"}


def _root(name: str) -> str:
    """`stages[1].name` -> `stages`, `address.country` -> `address`."""
    return re.split(r"[.\[]", name, maxsplit=1)[0].lower()


def _request_names(case: schemathesis.Case) -> set[str]:
    """Every name a field of this request can have: its parameters and body fields."""
    operation = case.operation
    definition = operation.definition.raw
    names = {str(p.get("name", "")).lower() for p in definition.get("parameters", [])}
    body = definition.get("requestBody", {}).get("content", {})
    components = operation.schema.raw_schema.get("components", {}).get("schemas", {})
    for media in body.values():
        schema = media.get("schema", {})
        while "$ref" in schema:
            schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
        for alternative in [schema, *schema.get("anyOf", []), *schema.get("oneOf", [])]:
            while "$ref" in alternative:
                alternative = components.get(alternative["$ref"].rsplit("/", 1)[-1], {})
            names |= {key.lower() for key in alternative.get("properties", {})}
            if alternative.get("additionalProperties"):
                names.add("*")
    if isinstance(case.body, dict):
        names |= {str(key).lower() for key in case.body}
    names |= {str(key).lower() for key in (case.query or {})}
    names |= {str(key).lower() for key in (case.headers or {})}
    # A name holding NUL is named with it written out as \u0000 (JSON-safe, readable).
    return names | {name.replace("\x00", "\\u0000") for name in names}


@schemathesis.check
def refusals_are_problems_naming_the_field(
    ctx: Any, response: Any, case: schemathesis.Case
) -> bool | None:
    """A 4xx is problem+json; a 422 names every bad field, by a name of the request."""
    if not 400 <= response.status_code < 500:
        return None
    media = (response.headers.get("content-type") or [""])[0].split(";")[0].strip()
    if media != PROBLEM:
        raise AssertionError(f"a {response.status_code} answered as {media!r}, not {PROBLEM}")
    body = response.json()
    if body.get("status") != response.status_code or not body.get("title"):
        raise AssertionError(f"a problem without its status and title: {body}")
    if response.status_code != 422:
        return None
    errors = body.get("errors") or []
    if not errors:
        raise AssertionError(f"a 422 that names no field: {body}")
    names = _request_names(case)
    keys = {str(key).lower() for key in case.body} if isinstance(case.body, dict) else set()
    keys |= {key.replace("\x00", "\\u0000") for key in keys}
    for error in errors:
        field = error.get("field")
        if not isinstance(field, str) or not field or not error.get("message"):
            raise AssertionError(f"a 422 error without a field and a message: {error}")
        # A key of the body may itself hold "." or "[": then the field starts with it.
        sent = any(field.lower().startswith(key) for key in keys)
        if _root(field) not in names | WHOLE and "*" not in names and not sent:
            raise AssertionError(f"a 422 names {field!r}, which this request does not have: {body}")
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    refusals_are_problems_naming_the_field,
]


def _callers(system: Any, token_for: Any) -> dict[str, dict[str, str]]:
    tenant = f"fuzz-{uuid.uuid4().hex[:8]}"
    admin = token_for("fuzz-admin", "admin", "eu", tenant=tenant)
    key = requests.post(
        f"{system.gateway_url}/v1/api-keys",
        json={"name": "fuzz", "scopes": ["*"]},
        headers=admin,
        timeout=60,
    )
    assert key.status_code == 201, key.text
    return {
        "admin": admin,
        "sales_rep": token_for("fuzz-rep", "sales_rep", "eu", tenant=tenant, team="north"),
        "manager": token_for("fuzz-manager", "manager", "eu", tenant=tenant, team="north"),
        "compliance_officer": token_for("fuzz-dpo", "compliance_officer", "eu", tenant=tenant),
        "integration": {"Authorization": f"Bearer {key.json()['secret']}"},
    }


def _call(case: schemathesis.Case, base_url: str, session: Any, headers: dict[str, str]) -> Any:
    """One request; a 503 says "retry after": a client does, and so does this test (a
    loaded machine can miss a deadline); a 503 that persists is a failure."""
    response = case.call(base_url=base_url, session=session, headers=headers, timeout=60)
    for _ in range(3):
        if response.status_code != 503:
            break
        time.sleep(float(response.headers.get("Retry-After", ["2"])[0]))
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=60)
    return response


# Bounded by EXAMPLES (about 2-3 minutes on 2 cores); the margin is for a loaded machine.
@pytest.mark.timeout(1800)
def test_generated_requests_get_only_documented_answers(system: Any, token_for: Any) -> None:
    schema = schemathesis.openapi.from_url(f"{system.gateway_url}/openapi.json")
    roles = _callers(system, token_for)
    session = requests.Session()
    cases: dict[str, int] = {role: 0 for role in roles}
    failures: list[str] = []
    started = time.monotonic()

    def fuzz(operation: Any, mode: GenerationMode, role: str) -> None:
        @settings(
            max_examples=EXAMPLES_PER_ROLE[role],
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: schemathesis.Case) -> None:
            cases[role] += 1
            response = _call(case, system.gateway_url, session, roles[role])
            case.validate_response(response, checks=CHECKS)

        run()

    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in SKIPPED:
            continue
        for role in roles:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    fuzz(operation, mode, role)
                except Unsatisfiable:
                    pass  # nothing about this operation can be made invalid (e.g. a free path key)
                except (Exception, BaseExceptionGroup) as exc:  # report every failure
                    failures.append(f"{role} {mode.value} {operation.label}: {exc}")
    total = sum(cases.values())
    print(
        f"\nschemathesis: {total} cases ("
        + ", ".join(f"{count} as {role}" for role, count in cases.items())
        + f") in {time.monotonic() - started:.0f}s, {len(failures)} failures"
    )
    assert total >= 1000 or EXAMPLES < 5, total
    assert not failures, "\n\n".join(failures)


@pytest.mark.timeout(1200)
def test_stateful_sequences_follow_the_links_between_operations(
    system: Any, token_for: Any
) -> None:
    schema = schemathesis.openapi.from_url(f"{system.gateway_url}/openapi.json").exclude(
        method="POST", path="/v1/reports/rebuild"
    )
    admin = _callers(system, token_for)["admin"]
    session = requests.Session()
    steps = {"calls": 0, "sequences": 0}

    class Sequences(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            steps["sequences"] += 1

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": system.gateway_url, "session": session, "headers": admin}

        def call(self, case: schemathesis.Case, **kwargs: Any) -> Any:
            steps["calls"] += 1
            return _call(case, kwargs["base_url"], kwargs["session"], kwargs["headers"])

        def validate_response(
            self, response: Any, case: schemathesis.Case, additional_checks: Any = None, **_: Any
        ) -> None:
            case.validate_response(response, checks=CHECKS, recorder=self.recorder)

    started = time.monotonic()
    Sequences.run(
        settings=settings(
            max_examples=EXAMPLES * 2,
            stateful_step_count=5,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )
    print(
        f"\nschemathesis stateful: {steps['sequences']} sequences, {steps['calls']} calls "
        f"in {time.monotonic() - started:.0f}s"
    )
    assert steps["calls"] > 0
