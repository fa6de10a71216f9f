"""The OpenAPI document: every operation's answers, the errors included.

Each route declares its 2xx answer (`answers.ok`, `answers.file`); the problem answers
follow from what the route is, and are added here in one place: every error is
`application/problem+json` (the `Problem` schema), 422 included.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from crm_gateway import answers
from crm_gateway.access import caller
from crm_gateway.problems import PROBLEM_JSON

TITLES = {
    400: "Malformed request (e.g. a multipart body that cannot be parsed)",
    401: "Missing, invalid or expired credentials",
    403: "The caller's role or scope does not allow this",
    404: "No such record (or not one the caller may see)",
    409: "Conflict with the current state (stale version, duplicate, wrong state)",
    413: "The body is larger than the limit (1 MiB; imports 500 MiB)",
    415: "Unsupported media type",
    422: "Invalid input: `errors` names each bad field",
    429: "Too many requests: retry after `Retry-After` seconds",
    503: "A backing service is unavailable: retry after `Retry-After` seconds",
}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
SECURITY = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT or atk_… API key"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
# Public entry points with their own keys (not bearer tokens) and what else they answer.
_PUBLIC_EXTRA: dict[str, set[int]] = {
    "/public/forms/{key}": {415, 429},
    "/public/telephony/{provider_id}": {401},
    "/public/email/{provider_id}": {401},
}
# GET operations that refuse with 409 while the record is not ready.
_GET_CONFLICTS = {"/v1/privacy/requests/{request_id}/export"}


def _needs_caller(dependant: Dependant) -> bool:
    return any(d.call is caller or _needs_caller(d) for d in dependant.dependencies)


def problem_codes(route: APIRoute, method: str) -> set[int]:
    """The problem answers an operation can give."""
    codes = {404, 422, 503}
    if _needs_caller(route.dependant):
        codes |= {401, 403}
    codes |= _PUBLIC_EXTRA.get(route.path_format, set())
    if method != "GET" or route.path_format in _GET_CONFLICTS:
        codes.add(409)
    if method in ("POST", "PUT", "PATCH"):
        codes |= {400, 413}
    return codes


def _problem(code: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": TITLES[code],
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if code in (429, 503):
        response["headers"] = _RETRY_AFTER
    return response


def build(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    problem = answers.Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    document["components"]["securitySchemes"] = SECURITY
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = document["paths"][route.path_format][method.lower()]
            if _needs_caller(route.dependant):
                operation["security"] = [{"bearer": []}, {"apiKey": []}]
            responses = operation["responses"]
            for code in problem_codes(route, method):
                responses[str(code)] = _problem(code)
            operation["responses"] = dict(sorted(responses.items()))
    document["paths"]["/v1/contacts/{contact_id}"]["get"]["responses"]["308"] = {
        "description": "The contact was relocated: `Location` is its new id",
        "headers": {"Location": {"schema": {"type": "string"}}},
    }
    return document


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
