"""The OpenAPI document tells the truth: every operation declares its answers (the web
application's types are generated from it), and real answers match what is declared."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import schemathesis

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def document(system: Any) -> dict[str, Any]:
    reply = httpx.get(f"{system.gateway_url}/openapi.json", timeout=30)
    assert reply.status_code == 200
    return dict(reply.json())


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_every_operation_declares_its_success_answer(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    missing = []
    for method, path, operation in operations(document):
        success = {c: r for c, r in operation["responses"].items() if c.startswith("2")}
        if not success:
            missing.append(f"{method} {path}: no 2xx answer")
        for code, response in success.items():
            content = response.get("content", {})
            if code == "204":
                assert not content, (method, path)
                continue
            if not content:
                missing.append(f"{method} {path} {code}: no content")
            json_schema = content.get("application/json", {}).get("schema")
            if json_schema is None:
                continue  # a file: CSV, PDF, ZIP, HTML
            model = schemas[json_schema["$ref"].rsplit("/", 1)[1]]
            if not model.get("properties") or model.get("additionalProperties") is not False:
                missing.append(f"{method} {path} {code}: {json_schema['$ref']} is not a model")
    assert not missing, "\n".join(missing)
    assert len(operations(document)) >= 100


def test_every_problem_answer_is_problem_json(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "errors"} <= set(problem["properties"])
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for method, path, operation in operations(document):
        responses = operation["responses"]
        assert "422" in responses and "503" in responses, (method, path)
        for code, response in responses.items():
            if int(code) >= 400:
                assert list(response["content"]) == [PROBLEM], (method, path, code)
        if method in ("POST", "PUT", "PATCH"):
            assert "413" in responses, (method, path)
        if "security" in operation:
            assert {"401", "403"} <= set(responses), (method, path)


@pytest.mark.asyncio(loop_scope="session")
async def test_real_answers_match_their_declared_schemas(
    api: httpx.AsyncClient, token_for: Any, system: Any
) -> None:
    schema = schemathesis.openapi.from_url(f"{system.gateway_url}/openapi.json")
    tenant = f"contract-{uuid.uuid4().hex[:8]}"
    admin = token_for("boss", "admin", "eu", tenant=tenant)
    rep = token_for("rep-ana", "sales_rep", "eu", tenant=tenant)
    checked: list[str] = []

    async def call(
        method: str,
        template: str,
        path: str,
        headers: dict[str, str],
        status: int,
        **kwargs: Any,
    ) -> Any:
        reply = await api.request(method, path, headers=headers, **kwargs)
        assert reply.status_code == status, (method, path, reply.text)
        operation = schema[template][method]
        declared = operation.definition.raw["responses"]
        assert str(status) in declared, (method, template, status)
        media = reply.headers["content-type"].split(";")[0]
        assert media in declared[str(status)].get("content", {}), (method, template, media)
        operation.validate_response(reply)
        checked.append(f"{method} {template} {status}")
        return reply.json() if media.endswith("json") else reply.content

    contact = await call(
        "POST",
        "/v1/contacts",
        "/v1/contacts",
        rep,
        201,
        json={
            "first_name": "Lena",
            "emails": ["lena@example.org"],
            "address": {"country": "DE", "city": "Köln"},
            "tags": ["vip"],
            "important_dates": [{"kind": "birthday", "date": "1990-05-01"}],
            "custom_fields": {},
        },
    )
    cid = contact["id"]
    await call("GET", "/v1/contacts/{contact_id}", f"/v1/contacts/{cid}", rep, 200)
    await call("GET", "/v1/contacts", "/v1/contacts", rep, 200, params={"q": "Lena"})
    await call(
        "PATCH", "/v1/contacts/{contact_id}", f"/v1/contacts/{cid}", rep, 200, json={"tags": []}
    )
    await call(
        "POST",
        "/v1/contacts/{contact_id}/notes",
        f"/v1/contacts/{cid}/notes",
        rep,
        201,
        json={"kind": "call", "body": "Called", "duration_seconds": 60},
    )
    await call("GET", "/v1/contacts/{contact_id}/notes", f"/v1/contacts/{cid}/notes", rep, 200)
    await call(
        "POST",
        "/v1/contacts/{contact_id}/consents",
        f"/v1/contacts/{cid}/consents",
        rep,
        201,
        json={"purpose": "marketing_email", "status": "granted"},
    )
    await call(
        "GET", "/v1/contacts/{contact_id}/consents", f"/v1/contacts/{cid}/consents", rep, 200
    )
    await call("GET", "/v1/contacts/duplicates", "/v1/contacts/duplicates", admin, 200)
    company = await call(
        "POST",
        "/v1/companies",
        "/v1/companies",
        admin,
        201,
        json={"name": "Fenster GmbH", "address": {"country": "DE"}},
    )
    await call("GET", "/v1/companies/{company_id}", f"/v1/companies/{company['id']}", admin, 200)
    await call("GET", "/v1/companies", "/v1/companies", admin, 200)
    pipelines = await call("GET", "/v1/pipelines", "/v1/pipelines", rep, 200)
    pipeline = pipelines["data"][0]
    deal = await call(
        "POST",
        "/v1/deals",
        "/v1/deals",
        rep,
        201,
        json={
            "title": "Windows",
            "contact_id": cid,
            "amount": {"amount": "1299.90", "currency": "EUR"},
        },
    )
    await call("GET", "/v1/deals/{deal_id}", f"/v1/deals/{deal['id']}", rep, 200)
    await call("GET", "/v1/deals", "/v1/deals", rep, 200)
    await call(
        "POST",
        "/v1/deals/{deal_id}/stage",
        f"/v1/deals/{deal['id']}/stage",
        rep,
        200,
        json={"stage_id": pipeline["stages"][1]["id"]},
    )
    payment = await call(
        "POST",
        "/v1/deals/{deal_id}/payments",
        f"/v1/deals/{deal['id']}/payments",
        rep,
        201,
        json={"amount": "300.00", "method": "pix", "note": "deposit"},
    )
    await call(
        "POST",
        "/v1/deals/{deal_id}/payments/{payment_id}/reverse",
        f"/v1/deals/{deal['id']}/payments/{payment['id']}/reverse",
        rep,
        200,
        json={"reason": "wrong deal"},
    )
    await call("GET", "/v1/deals/{deal_id}/payments", f"/v1/deals/{deal['id']}/payments", rep, 200)
    await call("GET", "/v1/contacts/{contact_id}/value", f"/v1/contacts/{cid}/value", rep, 200)
    await call(
        "GET",
        "/v1/pipelines/{pipeline_id}/board",
        f"/v1/pipelines/{pipeline['id']}/board",
        rep,
        200,
    )
    task = await call(
        "POST",
        "/v1/tasks",
        "/v1/tasks",
        rep,
        201,
        json={"title": "Call back", "deal_id": deal["id"], "due_local": "2031-01-15T10:00"},
    )
    await call("GET", "/v1/tasks", "/v1/tasks", rep, 200, params={"deal_id": deal["id"]})
    await call("POST", "/v1/tasks/{task_id}/complete", f"/v1/tasks/{task['id']}/complete", rep, 200)
    await call("PUT", "/v1/users/{user_id}", "/v1/users/rep-ana", admin, 200, json={"team": "n"})
    await call("GET", "/v1/users", "/v1/users", rep, 200)
    await call("GET", "/v1/notifications", "/v1/notifications", rep, 200)
    await call("GET", "/v1/custom-fields", "/v1/custom-fields", admin, 200)
    await call("GET", "/v1/compliance/policies", "/v1/compliance/policies", admin, 200)
    await call("GET", "/v1/reports/{name}", "/v1/reports/funnel", admin, 200)
    await call("GET", "/v1/reports/{name}", "/v1/reports/win_rate", rep, 200)
    await call("GET", "/v1/reports/{name}", "/v1/reports/payments", admin, 200)
    await call(
        "GET", "/v1/reports/{name}", "/v1/reports/revenue", admin, 200, params={"format": "csv"}
    )
    await call("GET", "/v1/compliance/residency", "/v1/compliance/residency", admin, 200)
    # Problems: 422 naming the field, 404, 403, 401.
    await call(
        "POST",
        "/v1/contacts",
        "/v1/contacts",
        rep,
        422,
        json={"emails": ["nope"], "address": {"country": "DE"}},
    )
    await call("GET", "/v1/deals/{deal_id}", f"/v1/deals/{deal['id'][:-1]}0", rep, 404)
    stages = [{"name": "a"}, {"name": "b", "kind": "won"}, {"name": "c", "kind": "lost"}]
    await call(
        "POST", "/v1/pipelines", "/v1/pipelines", rep, 403, json={"name": "p", "stages": stages}
    )
    await call("GET", "/v1/contacts", "/v1/contacts", {}, 401)
    assert len(checked) == 39  # every call above was checked


@pytest.mark.asyncio(loop_scope="session")
async def test_a_manager_asking_for_another_teams_rep_is_refused(
    api: httpx.AsyncClient, token_for: Any
) -> None:
    tenant = f"reports-{uuid.uuid4().hex[:8]}"
    admin = token_for("boss", "admin", "eu", tenant=tenant)
    for user, team in (("rep-n", "north"), ("rep-s", "south")):
        reply = await api.put(f"/v1/users/{user}", json={"team": team}, headers=admin)
        assert reply.status_code == 200, reply.text
    north = token_for("boss-north", "manager", "eu", tenant=tenant, team="north")
    for owner, status in (("rep-n", 200), ("rep-s", 403), ("nobody", 403), ("rep-n,rep-s", 403)):
        reply = await api.get("/v1/reports/funnel", params={"owner": owner}, headers=north)
        assert reply.status_code == status, (owner, reply.text)
        if status == 403:
            assert reply.headers["content-type"] == PROBLEM
            assert "own team" in reply.json()["detail"]
    # The admin sees anyone's.
    reply = await api.get("/v1/reports/funnel", params={"owner": "rep-s"}, headers=admin)
    assert reply.status_code == 200
