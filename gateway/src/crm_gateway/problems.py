"""RFC 9457 problem+json for every error the gateway returns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from crm_kit.errors import FieldViolation
from crm_kit.grpc_server import field_violations, parse_status_details

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 2


class Problem(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        errors: Sequence[FieldViolation] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers or {}


def problem_response(problem: Problem, instance: str = "") -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://atlas-crm.dev/problems/{problem.title.lower().replace(' ', '-')}",
        "title": problem.title,
        "status": problem.status,
    }
    if problem.detail:
        body["detail"] = problem.detail
    if instance:
        body["instance"] = instance
    if problem.errors:
        body["errors"] = [{"field": e.field, "message": e.description} for e in problem.errors]
    return JSONResponse(
        body, status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers
    )


def invalid(field: str, message: str) -> Problem:
    return Problem(
        422, "Invalid input", f"{field}: {message}", errors=[FieldViolation(field, message)]
    )


def unavailable(detail: str) -> Problem:
    return Problem(
        503, "Service unavailable", detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


_BY_CODE: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (422, "Invalid input"),
    grpc.StatusCode.NOT_FOUND: (404, "Not found"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "Conflict"),
    grpc.StatusCode.ABORTED: (409, "Conflict"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "Conflict"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "Forbidden"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "Unauthorized"),
}
# 429 means rate limiting and nothing else: the one rate limit behind gRPC (a form's
# submissions) is mapped where it is called. Any other RESOURCE_EXHAUSTED (a message over
# gRPC's size limits) or INTERNAL/UNKNOWN is the system's failure, told without its detail.
UPSTREAM_DETAIL = "a backing service could not answer this request"


def from_rpc_error(error: grpc.aio.AioRpcError) -> Problem:
    code = error.code()
    if code in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
    ):
        return unavailable("a backing service is unavailable; retry shortly")
    if code not in _BY_CODE:
        return Problem(502, "Upstream error", UPSTREAM_DETAIL)
    status, title = _BY_CODE[code]
    violations = field_violations(parse_status_details(error.trailing_metadata()))
    return Problem(status, title, error.details() or "", errors=violations)


def _field_path(loc: Sequence[Any]) -> str:
    path = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc, request.url.path)


async def _on_rpc_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, grpc.aio.AioRpcError)
    return problem_response(from_rpc_error(exc), request.url.path)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    violations = [FieldViolation(_field_path(e["loc"]), e["msg"]) for e in exc.errors()]
    detail = "; ".join(f"{v.field}: {v.description}" for v in violations)
    return problem_response(
        Problem(422, "Invalid input", detail, errors=violations), request.url.path
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    problem = Problem(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))
    return problem_response(problem, request.url.path)


def install(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(grpc.aio.AioRpcError, _on_rpc_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
