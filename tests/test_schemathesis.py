"""Schemathesis against the running gateway's OpenAPI document: generated valid and
invalid requests for every operation, as an admin and as a sales rep, and every answer
held to the document (no 5xx, no undocumented status code or content type, bodies that
match their schema).

Bounded and deterministic: a few examples per operation, mode and role
(`CRM_SCHEMATHESIS_EXAMPLES`, default 5), derandomized, no shrinking, no example
database. The number of cases run is printed.
"""

from __future__ import annotations

import os
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
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Replays the region's whole event history: minutes, not a request to fuzz.
SKIPPED = {"POST /v1/reports/rebuild"}


# Bounded by EXAMPLES (about 1-2 minutes on 2 cores); the margin is for a loaded machine.
@pytest.mark.timeout(1200)
def test_generated_requests_get_only_documented_answers(system: Any, token_for: Any) -> None:
    schema = schemathesis.openapi.from_url(f"{system.gateway_url}/openapi.json")
    tenant = f"fuzz-{uuid.uuid4().hex[:8]}"
    roles = {
        "admin": token_for("fuzz-admin", "admin", "eu", tenant=tenant),
        "sales_rep": token_for("fuzz-rep", "sales_rep", "eu", tenant=tenant),
    }
    session = requests.Session()
    cases: dict[str, int] = {role: 0 for role in roles}
    retried: dict[str, int] = {role: 0 for role in roles}
    failures: list[str] = []
    started = time.monotonic()

    def fuzz(operation: Any, mode: GenerationMode, role: str) -> None:
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: schemathesis.Case) -> None:
            cases[role] += 1
            response = case.call(
                base_url=system.gateway_url, session=session, headers=roles[role], timeout=60
            )
            # A 503 says "retry after": a client does, and so does this test (a loaded
            # machine can miss a deadline); a 503 that persists is a failure.
            for _ in range(3):
                if response.status_code != 503:
                    break
                retried[role] += 1
                time.sleep(float(response.headers.get("Retry-After", ["2"])[0]))
                response = case.call(
                    base_url=system.gateway_url, session=session, headers=roles[role], timeout=60
                )
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
        f"\nschemathesis: {total} cases ({cases['admin']} as an admin, "
        f"{cases['sales_rep']} as a sales rep) in {time.monotonic() - started:.0f}s, "
        f"{sum(retried.values())} retried after 503, {len(failures)} failures"
    )
    assert total > 0
    assert not failures, "\n\n".join(failures)
