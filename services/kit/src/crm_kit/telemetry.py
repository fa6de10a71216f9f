"""Structured JSON logs carrying the trace id, OpenTelemetry tracing and Prometheus metrics.

Traces are exported over OTLP only when OTEL_EXPORTER_OTLP_ENDPOINT is set (the
standard variable); otherwise spans are still created, so trace ids reach the logs
and travel in gRPC and NATS headers.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import Sampler
from prometheus_client import start_http_server
from pythonjsonlogger.json import JsonFormatter

_configured = False


class _TraceContextFormatter(JsonFormatter):
    """Adds the active span's trace and span ids to every record."""

    def add_fields(
        self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_record, record, message_dict)
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            log_record["trace_id"] = format(span_context.trace_id, "032x")
            log_record["span_id"] = format(span_context.span_id, "016x")


def setup(
    service_name: str, *, region: str = "", log_level: str = "INFO", metrics_port: int = 0
) -> None:
    """Configures logging, tracing and (if metrics_port) the Prometheus endpoint, once."""
    global _configured
    if _configured:
        return
    _configured = True

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        _TraceContextFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "asctime": "time", "name": "logger"},
            static_fields={"service": service_name, "region": region},
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(log_level.upper())
    # Library chatter at INFO drowns the service's own lines.
    for noisy in ("nats", "sqlalchemy.engine", "alembic", "asyncio", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    attributes = {"service.name": service_name}
    if region:
        attributes["cloud.region"] = region
    provider = TracerProvider(resource=Resource.create(attributes), sampler=sampler())
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)

    if metrics_port:
        start_http_server(metrics_port, addr=os.environ.get("CRM_METRICS_ADDR", "0.0.0.0"))


def sampler() -> Sampler:
    """Which traces are recorded: `OTEL_TRACES_SAMPLER` (and `OTEL_TRACES_SAMPLER_ARG`) as
    OpenTelemetry defines them when set; otherwise parent-based by ratio: a request that
    arrives sampled stays sampled, and new traces are sampled at `CRM_TRACES_SAMPLE_RATIO`,
    by default all of them when spans are exported (OTEL_EXPORTER_OTLP_ENDPOINT) and none
    when nothing would receive them. An unsampled span still carries its trace id (logs,
    NATS headers) but records nothing."""
    if os.environ.get("OTEL_TRACES_SAMPLER"):
        return sampling._get_from_env_or_default()
    exported = bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    ratio = float(os.environ.get("CRM_TRACES_SAMPLE_RATIO", "1" if exported else "0"))
    return sampling.ParentBased(sampling.TraceIdRatioBased(min(1.0, max(0.0, ratio))))
