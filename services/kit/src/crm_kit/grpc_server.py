"""The gRPC server every service runs: health, reflection, tracing, metrics, the
caller's principal, domain-error mapping and graceful shutdown.

Servicer methods raise `crm_kit.errors` exceptions; the interceptor turns them into
canonical status codes with `google.rpc` details (BadRequest field violations for
INVALID_ARGUMENT), so every service reports errors the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from prometheus_client import Counter, Histogram

from crm_kit import errors
from crm_kit.context import Principal, reset_principal, set_principal
from crm_kit.db import is_unavailable
from crm_kit.peers import MESSAGE_LIMITS

log = logging.getLogger(__name__)

RPC_TOTAL = Counter("crm_grpc_requests_total", "gRPC calls handled", ["method", "code"])
RPC_SECONDS = Histogram("crm_grpc_request_seconds", "gRPC call latency", ["method"])

_STATUS_DETAILS_KEY = "grpc-status-details-bin"

_CODES: dict[type[errors.CrmError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.Conflict: grpc.StatusCode.ABORTED,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
}


# An error travels in trailing metadata (grpc-message, percent-encoded, and the
# google.rpc.Status again in grpc-status-details-bin, base64), which gRPC caps at 8 KiB
# before refusing the whole answer. Messages echo user input (an unknown country of 10,000
# characters), so they are bounded here, whatever the caller sent.
MESSAGE_BYTES = 512
DETAIL_BYTES = 3072
FIELD_BYTES = 200
DESCRIPTION_BYTES = 300


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, marked with an ellipsis when cut."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode(errors="ignore") + "\u2026"


def status_for(exc: errors.CrmError) -> tuple[grpc.StatusCode, str, tuple[tuple[str, bytes], ...]]:
    """The gRPC code, message and trailing metadata (google.rpc.Status) for a domain error."""
    code = next((c for kind, c in _CODES.items() if isinstance(exc, kind)), grpc.StatusCode.UNKNOWN)
    message = clip(str(exc) or code.name.lower(), MESSAGE_BYTES)
    status = status_pb2.Status(code=code.value[0], message=message)
    if isinstance(exc, errors.InvalidArgument):
        bad_request = error_details_pb2.BadRequest()
        for shown, violation in enumerate(exc.violations):
            if bad_request.ByteSize() > DETAIL_BYTES:
                left = len(exc.violations) - shown
                message = clip(f"{left} more invalid field(s) not shown; {message}", MESSAGE_BYTES)
                status.message = message
                break
            bad_request.field_violations.add(
                field=clip(violation.field, FIELD_BYTES),
                description=clip(violation.description, DESCRIPTION_BYTES),
            )
        detail = any_pb2.Any()
        detail.Pack(bad_request)
        status.details.append(detail)
    if isinstance(exc, errors.Unavailable):
        detail = any_pb2.Any()
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.seconds = 2
        detail.Pack(retry)
        status.details.append(detail)
    return code, message, ((_STATUS_DETAILS_KEY, status.SerializeToString()),)


def _failure(exc: Exception, method: str) -> tuple[grpc.StatusCode, str, Any]:
    """The status to end a call that raised `exc` with: a domain error's, UNAVAILABLE for
    a dependency that is down, INTERNAL for a bug. Cancellation and aborts pass through."""
    if isinstance(exc, asyncio.CancelledError) or type(exc).__name__ == "AbortError":
        raise exc
    if isinstance(exc, errors.CrmError):
        return status_for(exc)
    if is_unavailable(exc):
        log.warning("%s: dependency unavailable: %s", method, exc)
        return status_for(errors.Unavailable("database unavailable"))
    log.exception("%s failed", method, exc_info=exc)
    return grpc.StatusCode.INTERNAL, "internal error", ()


class CrmServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Sets the principal for the call, maps domain errors and records metrics."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        if handler.unary_stream is not None:
            return self._streaming(handler, handler_call_details.method)
        if handler.stream_unary is not None:
            return self._uploading(handler, handler_call_details.method)
        if handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        method: str = handler_call_details.method

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with _served(method, context):
                return await inner(request, context)
            raise AssertionError("unreachable: _served re-raises or aborts")

        return grpc.unary_unary_rpc_method_handler(
            unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _streaming(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        inner = handler.unary_stream

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async with _served(method, context):
                async for item in inner(request, context):
                    yield item

        return grpc.unary_stream_rpc_method_handler(
            streaming,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _uploading(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        """Client streaming (an upload in pieces): served like a unary call."""
        inner = handler.stream_unary

        async def uploading(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
            async with _served(method, context):
                return await inner(requests, context)
            raise AssertionError("unreachable: _served re-raises or aborts")

        return grpc.stream_unary_rpc_method_handler(
            uploading,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


@contextlib.asynccontextmanager
async def _served(method: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
    """Around every call, unary or streaming: the caller's principal, domain errors as
    status codes, and the metrics."""
    token = set_principal(Principal.from_metadata(context.invocation_metadata()))
    started = time.perf_counter()
    code = "OK"
    try:
        yield
    except Exception as exc:
        status, message, trailer = _failure(exc, method)
        code = status.name
        await context.abort(status, message, trailer)
    finally:
        RPC_TOTAL.labels(method, code).inc()
        RPC_SECONDS.labels(method).observe(time.perf_counter() - started)
        reset_principal(token)


def parse_status_details(
    trailing_metadata: Sequence[tuple[str, str | bytes]] | None,
) -> status_pb2.Status | None:
    """The google.rpc.Status a server attached to an error, if any (client side)."""
    for key, value in trailing_metadata or ():
        if key == _STATUS_DETAILS_KEY and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None


def field_violations(status: status_pb2.Status | None) -> list[errors.FieldViolation]:
    found: list[errors.FieldViolation] = []
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            found.extend(
                errors.FieldViolation(v.field, v.description) for v in bad_request.field_violations
            )
    return found


Registrar = Callable[[grpc.aio.Server], Sequence[str]]


async def serve(
    *,
    port: int,
    register: Registrar,
    background: Callable[[], Sequence[Callable[[], Coroutine[Any, Any, None]]]] = lambda: (),
    on_stop: Callable[[], Awaitable[None]] | None = None,
    grace: float = 10.0,
    host: str = "0.0.0.0",
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Runs the server until SIGTERM/SIGINT (or `stop`), then drains and shuts down.

    `register` adds the service's servicers and returns their full service names;
    `background()` lists long-running tasks (outbox relay, consumers, schedulers); it is
    called after `register`, which may add to it.
    """
    server = grpc.aio.server(
        interceptors=[aio_server_interceptor(), CrmServerInterceptor()],  # type: ignore[no-untyped-call]
        options=[("grpc.so_reuseport", 0), *MESSAGE_LIMITS],
    )
    names = list(register(server))
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"cannot bind gRPC port {host}:{port}")
    await server.start()
    for name in ["", *names]:
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    tasks = [
        asyncio.create_task(run(), name=getattr(run, "__name__", "task")) for run in background()
    ]
    for task in tasks:
        task.add_done_callback(_log_task_end)

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("gRPC server listening", extra={"port": port, "services": names})
    if ready is not None:
        ready.set()
    await stop.wait()

    log.info("shutting down: draining in-flight calls")
    await health.enter_graceful_shutdown()
    await server.stop(grace)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if on_stop is not None:
        await on_stop()
    log.info("stopped")


def _log_task_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s died", task.get_name(), exc_info=task.exception())
