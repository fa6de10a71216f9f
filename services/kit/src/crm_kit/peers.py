"""gRPC calls from one service to another service of the same region.

A service never reaches into another's database; it asks over gRPC, passing on the
principal it acts for (or the system principal, for schedulers and consumers).
Calls to another region are not possible from here by construction: only the own
region's endpoints are configured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from crm_kit.context import Principal

S = TypeVar("S")

# Both ends of every channel (servers, peers, the gateway): a relocation's copy or a
# privacy export carries a subject's files (at most 40 MiB, base64 in JSON).
MESSAGE_LIMITS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


def system_principal(tenant_id: str) -> Principal:
    """The principal automation, schedulers and consumers act as within a tenant."""
    return Principal(tenant_id=tenant_id, user_id="system", roles=("admin",))


class Peers:
    def __init__(self, endpoints: dict[str, str], timeout: float = 5.0) -> None:
        self.endpoints = endpoints
        self.timeout = timeout
        self._channels: dict[str, grpc.aio.Channel] = {}

    def stub(self, service: str, stub_class: Callable[[grpc.aio.Channel], S]) -> S:
        if service not in self._channels:
            target = self.endpoints.get(service)
            if not target:
                raise RuntimeError(f"no endpoint configured for peer service {service!r}")
            self._channels[service] = grpc.aio.insecure_channel(
                target,
                # A peer that restarts is found again within seconds, not after
                # gRPC's default exponential backoff of up to two minutes.
                options=[
                    *MESSAGE_LIMITS,
                    ("grpc.initial_reconnect_backoff_ms", 250),
                    ("grpc.min_reconnect_backoff_ms", 250),
                    ("grpc.max_reconnect_backoff_ms", 2000),
                ],
                interceptors=aio_client_interceptors(),  # type: ignore[no-untyped-call]
            )
        return stub_class(self._channels[service])

    async def call(
        self, method: Any, request: Any, principal: Principal, deadline: float | None = None
    ) -> Any:
        """`await peers.call(stub.GetContact, request, principal)` with the deadline set
        (the configured one, or `deadline` seconds for a call known to take longer)."""
        return await method(
            request, metadata=principal.to_metadata(), timeout=deadline or self.timeout
        )

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
