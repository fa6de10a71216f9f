"""The FastAPI application: the one public entry point of Atlas CRM."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from fastapi import Depends, FastAPI
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import Counter, Histogram, make_asgi_app
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from crm_gateway import openapi, problems
from crm_gateway.access import Gateway
from crm_gateway.clients import Clients
from crm_gateway.guards import BodyLimit, TextGuard
from crm_gateway.limits import bounded_query
from crm_gateway.problems import problem_response
from crm_gateway.routes import (
    attachments,
    auth,
    calendar,
    companies,
    compliance,
    contact_views,
    contacts,
    deals,
    dev,
    imports,
    integrations,
    notifications,
    ownership,
    reports,
    settings,
    tasks,
)
from crm_gateway.routes.auth import sign_in_config
from crm_gateway.settings import GatewaySettings
from crm_gateway.web import WebApp, check_build, origin_of
from crm_kit.auth import TokenVerifier
from crm_kit.placement import warm_country_names

HTTP_REQUESTS = Counter("crm_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_SECONDS = Histogram("crm_http_request_seconds", "HTTP latency", ["method", "route"])


class Measure:
    """Request count and latency per route: plain ASGI, so a request costs no extra task
    and no response copy (BaseHTTPMiddleware does both)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # The router sets the matched route in the request's scope.
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            HTTP_REQUESTS.labels(method, route, status).inc()
            HTTP_SECONDS.labels(method, route).observe(time.perf_counter() - started)


def create_app(config: GatewaySettings | None = None) -> FastAPI:
    config = config or GatewaySettings()
    clients = Clients(config.service_endpoints)
    gateway = Gateway(
        clients,
        TokenVerifier(
            secret=config.jwt_secret,
            jwks_url=config.jwks_url,
            issuer=config.jwt_issuer,
            regions=config.regions,
        ),
        list(config.regions),
        config.grpc_timeout,
        config.policy_cache_seconds,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warming = asyncio.create_task(warm_country_names())
        yield
        warming.cancel()
        await clients.close()

    app = FastAPI(
        title="Atlas CRM",
        version="1.0",
        description="Contacts, companies and more, each stored in the region its law requires.",
        lifespan=lifespan,
        docs_url="/docs",
        dependencies=[Depends(bounded_query)],
    )
    app.state.gateway = gateway
    problems.install(app)
    openapi.install(app)
    app.include_router(attachments.router)
    # Before contacts: /v1/contacts/views is not a contact id.
    app.include_router(contact_views.router)
    app.include_router(contacts.router)
    app.include_router(companies.router)
    app.include_router(deals.router)
    app.include_router(tasks.router)
    app.include_router(ownership.router)
    app.include_router(calendar.router)
    app.include_router(calendar.public)
    app.include_router(settings.router)
    app.include_router(compliance.router)
    app.include_router(reports.router)
    app.include_router(notifications.router)
    app.include_router(integrations.router)
    app.include_router(integrations.public)
    app.include_router(imports.router)
    app.include_router(auth.router(config))
    if config.development_sign_in:
        app.include_router(dev.router(config.jwt_secret))
    app.mount("/metrics", make_asgi_app())
    # Innermost first: the text guard reads JSON bodies that the body limit counts.
    app.add_middleware(TextGuard, max_bytes=config.max_body_bytes)
    app.add_middleware(
        BodyLimit,
        max_bytes=config.max_body_bytes,
        larger={
            "/v1/imports": config.max_import_bytes,
            # A file of 10 MiB in a multipart body; the service refuses a larger file.
            "/v1/attachments": 11 * 1_048_576,
        },
    )
    if config.trusted_proxies:
        # The client's address (per-address limits, what a submission records) comes from
        # X-Forwarded-For only when a configured proxy sent it.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=config.trusted_proxies)

    app.add_middleware(Measure)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Any:
        """Ready while at least one backing service answers; per-service detail in the body.

        One region's outage must not take the gateway out of rotation for every region:
        requests to the failed region get 503 with Retry-After on their own.
        """

        async def check(service: str, region: str) -> tuple[str, bool]:
            try:
                reply = await health_pb2_grpc.HealthStub(clients.channel(service, region)).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
                return f"{service}.{region}", reply.status == health_pb2.HealthCheckResponse.SERVING
            except grpc.aio.AioRpcError:
                return f"{service}.{region}", False

        results = dict(
            await asyncio.gather(
                *(check(s, r) for s, regions in config.service_endpoints.items() for r in regions)
            )
        )
        if any(results.values()):
            return {"status": "ready", "services": results}
        return problem_response(problems.unavailable("no backing service answers"))

    # One server span per request: not two more for the ASGI receive and send.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="healthz,readyz,metrics", exclude_spans=["receive", "send"]
    )
    if config.web_dir:
        check_build(config.web_dir)
        sign_in = sign_in_config(config)
        app.add_middleware(
            WebApp,
            web_dir=config.web_dir,
            sign_in_origin=origin_of(sign_in.oidc.issuer) if sign_in.oidc else "",
        )
    return app
