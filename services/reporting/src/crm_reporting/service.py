"""gRPC servicer of the reporting service, and `register`, which also starts the
read-model consumer."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from crm_api.crm.deals.v1 import deals_pb2, deals_pb2_grpc
from crm_api.crm.reporting.v1 import reporting_pb2 as pb
from crm_api.crm.reporting.v1 import reporting_pb2_grpc
from crm_kit.db import transaction
from crm_kit.errors import PermissionDenied
from crm_kit.messaging import Consumer
from crm_kit.peers import system_principal
from crm_kit.runtime import Runtime
from crm_kit.servicer import ServicerBase, caller
from crm_reporting import projector, rebuild, reports


class ReportingServicer(ServicerBase, reporting_pb2_grpc.ReportingServiceServicer):
    async def _rates(self, tenant_id: str) -> reports.Rates:
        """The tenant's reporting currency and rates, asked of this region's deals service
        at query time (they are configuration and may be corrected afterwards)."""
        peers = self.runtime.peers
        stub = peers.stub("deals", deals_pb2_grpc.DealsServiceStub)
        principal = system_principal(tenant_id)
        settings = await peers.call(
            stub.GetDealSettings, deals_pb2.GetDealSettingsRequest(), principal
        )
        rates = await peers.call(
            stub.ListExchangeRates, deals_pb2.ListExchangeRatesRequest(), principal
        )
        return reports.rates_from(settings.reporting_currency, rates.rates)

    async def GetReport(
        self, request: pb.GetReportRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReportPart:
        principal = caller()
        filters = reports.parse_filters(request.name, request.filter)
        reports.check_scope(principal, filters)
        rates = await self._rates(principal.tenant_id)
        # Aggregates only (no personal data): not audited as a cross-region transfer.
        async with transaction(self.runtime.sessions) as session:
            return await reports.report(
                session, principal, self.region, request.name, filters, rates
            )

    async def RebuildReadModel(
        self, request: pb.RebuildReadModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.RebuildReadModelResponse:
        principal = caller()
        if not principal.has_role("admin"):
            raise PermissionDenied("only admins rebuild the read model")
        replayed, applied = await rebuild.rebuild(
            self.runtime.sessions, self.runtime.nats, principal.tenant_id
        )
        return pb.RebuildReadModelResponse(
            region=self.region, events_replayed=replayed, events_applied=applied
        )


def register(server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
    reporting_pb2_grpc.add_ReportingServiceServicer_to_server(ReportingServicer(runtime), server)
    consumer = Consumer(
        runtime.sessions,
        runtime.nats,
        durable=projector.DURABLE,
        subjects=projector.subjects(runtime.region),
        handler=projector.handle,
        batch=200,
    )
    runtime.background.append(consumer.run)
    return [pb.DESCRIPTOR.services_by_name["ReportingService"].full_name]
