"""gRPC channels to every service in every region, with deadlines and tracing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from crm_api.crm.compliance.v1 import privacy_requests_pb2_grpc
from crm_api.crm.contacts.v1 import contacts_pb2_grpc
from crm_api.crm.deals.v1 import deals_pb2_grpc
from crm_api.crm.directory.v1 import directory_pb2_grpc
from crm_api.crm.integrations.v1 import integrations_pb2_grpc
from crm_api.crm.notifications.v1 import notifications_pb2_grpc
from crm_api.crm.ownership.v1 import ownership_pb2_grpc
from crm_api.crm.policy.v1 import policy_pb2_grpc
from crm_api.crm.privacy.v1 import privacy_pb2_grpc
from crm_api.crm.reporting.v1 import reporting_pb2_grpc
from crm_api.crm.tasks.v1 import tasks_pb2_grpc
from crm_gateway.problems import Problem
from crm_kit.peers import MESSAGE_LIMITS

S = TypeVar("S")

# Stub classes per service; a new service adds its line here.
STUBS: dict[str, dict[str, Callable[[grpc.aio.Channel], Any]]] = {
    "contacts": {
        "contacts": contacts_pb2_grpc.ContactsServiceStub,
        "policy": policy_pb2_grpc.PolicyServiceStub,
        "privacy": privacy_pb2_grpc.PrivacyServiceStub,
        "privacy_requests": privacy_requests_pb2_grpc.PrivacyRequestsServiceStub,
        "ownership": ownership_pb2_grpc.OwnershipServiceStub,
    },
    "deals": {
        "deals": deals_pb2_grpc.DealsServiceStub,
        "privacy": privacy_pb2_grpc.PrivacyServiceStub,
        "ownership": ownership_pb2_grpc.OwnershipServiceStub,
    },
    "tasks": {
        "tasks": tasks_pb2_grpc.TasksServiceStub,
        "directory": directory_pb2_grpc.DirectoryServiceStub,
        "privacy": privacy_pb2_grpc.PrivacyServiceStub,
        "ownership": ownership_pb2_grpc.OwnershipServiceStub,
    },
    "reporting": {
        "reporting": reporting_pb2_grpc.ReportingServiceStub,
    },
    "notifications": {
        "notifications": notifications_pb2_grpc.NotificationsServiceStub,
        "privacy": privacy_pb2_grpc.PrivacyServiceStub,
    },
    "integrations": {
        "integrations": integrations_pb2_grpc.IntegrationsServiceStub,
        "privacy": privacy_pb2_grpc.PrivacyServiceStub,
    },
}


class Clients:
    def __init__(self, endpoints: dict[str, dict[str, str]]) -> None:
        self.endpoints = endpoints
        self._channels: dict[tuple[str, str], grpc.aio.Channel] = {}

    def channel(self, service: str, region: str) -> grpc.aio.Channel:
        key = (service, region)
        if key not in self._channels:
            target = self.endpoints.get(service, {}).get(region)
            if target is None:
                raise Problem(
                    404, "Not found", f"no {service} service is configured for region {region}"
                )
            self._channels[key] = grpc.aio.insecure_channel(
                target,
                options=MESSAGE_LIMITS,
                interceptors=aio_client_interceptors(),  # type: ignore[no-untyped-call]
            )
        return self._channels[key]

    def stub(self, service: str, name: str, region: str) -> Any:
        return STUBS[service][name](self.channel(service, region))

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
