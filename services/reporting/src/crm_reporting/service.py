"""gRPC servicer of the reporting service, and `register`, which also starts the
read-model consumer."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from crm_api.crm.deals.v1 import deals_pb2, deals_pb2_grpc
from crm_api.crm.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from crm_api.crm.reporting.v1 import reporting_pb2 as pb
from crm_api.crm.reporting.v1 import reporting_pb2_grpc
from crm_kit.db import transaction
from crm_kit.errors import PermissionDenied
from crm_kit.ids import region_of
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


class PrivacyServicer(ServicerBase, privacy_pb2_grpc.PrivacyServiceServicer):
    """The read models hold ids, amounts and the tenant's staff, never a contact's record,
    so there is nothing to export or erase per contact. It is still a peer of the erasure,
    so its database is searched for copies of the subject like every other one."""

    def _officer(self) -> None:
        if not caller().has_role("admin", "compliance_officer"):
            raise PermissionDenied("data-subject requests are for compliance officers and admins")

    async def ExportSubject(
        self, request: privacy_pb2.ExportSubjectRequest, context: grpc.aio.ServicerContext
    ) -> privacy_pb2.ExportSubjectResponse:
        self._officer()
        region = region_of(request.contact_id, "contact_id")
        return privacy_pb2.ExportSubjectResponse(service="reporting", region=region)

    async def EraseSubject(
        self, request: privacy_pb2.EraseSubjectRequest, context: grpc.aio.ServicerContext
    ) -> privacy_pb2.EraseSubjectResponse:
        self._officer()
        region = region_of(request.contact_id, "contact_id")
        return privacy_pb2.EraseSubjectResponse(service="reporting", region=region)


def register(server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
    reporting_pb2_grpc.add_ReportingServiceServicer_to_server(ReportingServicer(runtime), server)
    privacy_pb2_grpc.add_PrivacyServiceServicer_to_server(PrivacyServicer(runtime), server)
    consumer = Consumer(
        runtime.sessions,
        runtime.nats,
        durable=projector.DURABLE,
        subjects=projector.subjects(runtime.region),
        handler=projector.handle,
        batch=200,
    )
    runtime.background.append(consumer.run)
    return [
        pb.DESCRIPTOR.services_by_name["ReportingService"].full_name,
        privacy_pb2.DESCRIPTOR.services_by_name["PrivacyService"].full_name,
    ]
