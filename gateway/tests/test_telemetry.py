"""The gateway's own telemetry per request: one server span (not one more each for the
ASGI receive and send), the request counted by route and status; and which traces are
sampled. In process, against the real application (no backing service is needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from crm_gateway.app import create_app
from crm_gateway.settings import GatewaySettings
from crm_kit import telemetry

SPANS = InMemorySpanExporter()


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the first in this process sets it
        provider = TracerProvider(sampler=sampling.ALWAYS_ON)
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(SPANS))
    app = create_app(
        GatewaySettings(
            jwt_secret="telemetry-test-secret-of-enough-length",
            regions=["eu"],
            service_endpoints={"contacts": {"eu": "127.0.0.1:9"}},
        )
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http


async def test_one_server_span_and_one_count_per_request(client: httpx.AsyncClient) -> None:
    SPANS.clear()
    reply = await client.get("/v1/contacts", params={"q": "x"})
    assert reply.status_code == 401  # no token: answered by the gateway alone
    spans = [s for s in SPANS.get_finished_spans() if s.name.startswith("GET /v1/contacts")]
    assert [(s.name, s.kind) for s in spans] == [("GET /v1/contacts", trace.SpanKind.SERVER)]
    metrics = (await client.get("/metrics/")).text
    assert 'crm_http_requests_total{method="GET",route="/v1/contacts",status="401"}' in metrics


def test_traces_are_sampled_by_parent_and_ratio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("CRM_TRACES_SAMPLE_RATIO", raising=False)
    # Nothing exported: new traces are not recorded; a sampled caller's trace still is.
    assert "ParentBased{root:TraceIdRatioBased{0.0}" in telemetry.sampler().get_description()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")
    assert "TraceIdRatioBased{1.0}" in telemetry.sampler().get_description()
    monkeypatch.setenv("CRM_TRACES_SAMPLE_RATIO", "0.25")
    assert "TraceIdRatioBased{0.25}" in telemetry.sampler().get_description()
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    assert telemetry.sampler().get_description() == "AlwaysOffSampler"
