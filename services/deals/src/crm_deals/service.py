"""gRPC servicers of the deals service: thin adapters from requests to the domain."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from crm_api.crm.compliance.v1 import compliance_pb2, compliance_pb2_grpc
from crm_api.crm.deals.v1 import deals_pb2 as pb
from crm_api.crm.deals.v1 import deals_pb2_grpc
from crm_api.crm.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from crm_deals import (
    board,
    deals,
    documents,
    fx,
    handlers,
    models,
    payments,
    pipelines,
    privacy,
    retention,
    sending,
    value,
)
from crm_deals.links import ContactsDirectory
from crm_kit import task_access, teams
from crm_kit.audit import SubjectTable
from crm_kit.db import transaction
from crm_kit.ownership import register_ownership
from crm_kit.relocation import OwnedTable
from crm_kit.runtime import Runtime
from crm_kit.servicer import ServicerBase, caller

M = TypeVar("M", bound=Message)


class _Base(ServicerBase):
    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.directory = ContactsDirectory(runtime.peers)


class DealsServicer(_Base, deals_pb2_grpc.DealsServiceServicer):
    # ------------------------------------------------------------ pipelines

    async def ListPipelines(
        self, request: pb.ListPipelinesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPipelinesResponse:
        principal = caller()
        return await self.read(
            "pipeline.list", "*", lambda s: pipelines.list_pipelines(s, principal)
        )

    async def GetPipeline(
        self, request: pb.GetPipelineRequest, context: grpc.aio.ServicerContext
    ) -> pb.Pipeline:
        principal = caller()
        return await self.read(
            "pipeline.read", request.id, lambda s: pipelines.get_pipeline(s, principal, request.id)
        )

    async def CreatePipeline(
        self, request: pb.CreatePipelineRequest, context: grpc.aio.ServicerContext
    ) -> pb.Pipeline:
        principal = caller()
        return await self.configure(
            "CreatePipeline",
            request,
            pb.Pipeline,
            lambda s: pipelines.create_pipeline(s, principal, self.region, request.pipeline),
        )

    async def UpdatePipeline(
        self, request: pb.UpdatePipelineRequest, context: grpc.aio.ServicerContext
    ) -> pb.Pipeline:
        principal = caller()
        return await self.configure(
            "UpdatePipeline.check" if request.validate_only else "UpdatePipeline",
            request,
            pb.Pipeline,
            lambda s: pipelines.update_pipeline(
                s, principal, request.pipeline, request.validate_only
            ),
        )

    # ------------------------------------------------------------ deals

    async def CreateDeal(
        self, request: pb.CreateDealRequest, context: grpc.aio.ServicerContext
    ) -> pb.Deal:
        principal = caller()
        return await self.write(
            "CreateDeal",
            request,
            pb.Deal,
            "deal.create",
            lambda d: d.id,
            lambda s: deals.create_deal(
                s, principal, self.region, self.runtime.outbox, self.directory, request.deal
            ),
        )

    async def GetDeal(
        self, request: pb.GetDealRequest, context: grpc.aio.ServicerContext
    ) -> pb.Deal:
        principal = caller()
        return await self.read(
            "deal.read", request.id, lambda s: deals.get_deal(s, principal, request.id)
        )

    async def UpdateDeal(
        self, request: pb.UpdateDealRequest, context: grpc.aio.ServicerContext
    ) -> pb.Deal:
        principal = caller()
        return await self.write(
            "UpdateDeal",
            request,
            pb.Deal,
            "deal.update",
            lambda d: d.id,
            lambda s: deals.update_deal(
                s,
                principal,
                self.region,
                self.directory,
                request.deal,
                list(request.update_mask.paths),
                self.runtime.outbox,
            ),
        )

    async def ListDeals(
        self, request: pb.ListDealsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDealsResponse:
        principal = caller()
        return await self.read("deal.list", "*", lambda s: deals.list_deals(s, principal, request))

    async def MoveDeal(
        self, request: pb.MoveDealRequest, context: grpc.aio.ServicerContext
    ) -> pb.Deal:
        principal = caller()
        return await self.write(
            "MoveDeal",
            request,
            pb.Deal,
            "deal.move",
            lambda d: d.id,
            lambda s: deals.move_deal(s, principal, self.runtime.outbox, self.directory, request),
        )

    async def GetBoard(
        self, request: pb.GetBoardRequest, context: grpc.aio.ServicerContext
    ) -> pb.Board:
        principal = caller()
        return await self.read(
            "deal.board",
            request.pipeline_id or "*",
            lambda s: board.get_board(s, principal, request),
        )

    # ------------------------------------------------------------ exchange rates, settings

    async def PutExchangeRate(
        self, request: pb.PutExchangeRateRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExchangeRate:
        principal = caller()
        return await self.configure(
            "PutExchangeRate",
            request,
            pb.ExchangeRate,
            lambda s: fx.put_rate(s, principal, request.rate),
        )

    async def ListExchangeRates(
        self, request: pb.ListExchangeRatesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListExchangeRatesResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await fx.list_rates(session, principal)

    async def GetDealSettings(
        self, request: pb.GetDealSettingsRequest, context: grpc.aio.ServicerContext
    ) -> pb.DealSettings:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await fx.get_settings(session, principal)

    async def PutDealSettings(
        self, request: pb.PutDealSettingsRequest, context: grpc.aio.ServicerContext
    ) -> pb.DealSettings:
        principal = caller()
        return await self.configure(
            "PutDealSettings",
            request,
            pb.DealSettings,
            lambda s: fx.put_settings(s, principal, request.settings),
        )

    # ------------------------------------------------------------ documents

    async def PutDocumentTemplate(
        self, request: pb.PutDocumentTemplateRequest, context: grpc.aio.ServicerContext
    ) -> pb.DocumentTemplate:
        principal = caller()
        return await self.configure(
            "PutDocumentTemplate",
            request,
            pb.DocumentTemplate,
            lambda s: documents.put_template(s, principal, request.template),
        )

    async def ListDocumentTemplates(
        self, request: pb.ListDocumentTemplatesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDocumentTemplatesResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await documents.list_templates(session, principal)

    async def GenerateDocument(
        self, request: pb.GenerateDocumentRequest, context: grpc.aio.ServicerContext
    ) -> pb.Document:
        principal = caller()
        return await self.write(
            "GenerateDocument",
            request,
            pb.Document,
            "document.generate",
            lambda d: d.deal_id,
            lambda s: documents.generate_document(
                s, principal, self.runtime.outbox, self.directory, request
            ),
        )

    async def ListDocuments(
        self, request: pb.ListDocumentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDocumentsResponse:
        principal = caller()
        return await self.read(
            "document.list",
            request.deal_id,
            lambda s: documents.list_documents(s, principal, request.deal_id),
        )

    async def GetDocumentContent(
        self, request: pb.GetDocumentContentRequest, context: grpc.aio.ServicerContext
    ) -> pb.DocumentContent:
        principal = caller()
        return await self.read(
            "document.read",
            request.id,
            lambda s: documents.get_content(s, principal, request.id, request.format),
        )

    # ------------------------------------------------------------ payments

    async def RecordPayment(
        self, request: pb.RecordPaymentRequest, context: grpc.aio.ServicerContext
    ) -> pb.Payment:
        principal = caller()
        return await self.write(
            "RecordPayment",
            request,
            pb.Payment,
            "payment.record",
            lambda p: p.deal_id,
            lambda s: payments.record_payment(
                s, principal, self.region, self.runtime.outbox, request.payment
            ),
        )

    async def ListPayments(
        self, request: pb.ListPaymentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPaymentsResponse:
        principal = caller()
        return await self.read(
            "payment.list",
            request.deal_id,
            lambda s: payments.list_payments(s, principal, request.deal_id),
        )

    async def ReversePayment(
        self, request: pb.ReversePaymentRequest, context: grpc.aio.ServicerContext
    ) -> pb.Payment:
        principal = caller()
        return await self.write(
            "ReversePayment",
            request,
            pb.Payment,
            "payment.reverse",
            lambda p: p.deal_id,
            lambda s: payments.reverse_payment(s, principal, self.runtime.outbox, request),
        )

    async def GetClientValue(
        self, request: pb.GetClientValueRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClientValue:
        principal = caller()
        return await self.read(
            "client.value",
            request.contact_id or request.company_id,
            lambda s: value.client_value(s, principal, self.region, self.directory, request),
        )

    async def SendDocument(
        self, request: pb.SendDocumentRequest, context: grpc.aio.ServicerContext
    ) -> pb.DocumentSend:
        principal = caller()
        return await self.write(
            "SendDocument",
            request,
            pb.DocumentSend,
            "document.send",
            lambda d: d.deal_id,
            lambda s: sending.send_document(
                s, principal, self.runtime.outbox, self.directory, request
            ),
        )


class PrivacyServicer(_Base, privacy_pb2_grpc.PrivacyServiceServicer):
    async def ExportSubject(
        self, request: privacy_pb2.ExportSubjectRequest, context: grpc.aio.ServicerContext
    ) -> privacy_pb2.ExportSubjectResponse:
        principal = caller()
        return await self.read(
            "privacy.export",
            request.contact_id,
            lambda s: privacy.export_subject(s, principal, request.contact_id),
        )

    async def EraseSubject(
        self, request: privacy_pb2.EraseSubjectRequest, context: grpc.aio.ServicerContext
    ) -> privacy_pb2.EraseSubjectResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await privacy.erase_subject(session, principal, request.contact_id)


def register(server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
    # Residency proof: deals per region of their contact (crm_kit.audit).
    runtime.subject_tables.append(SubjectTable("deal", "deals"))
    # Erasure (crm_kit.subject_copies): a document is about its deal's contact, and its
    # PDF cannot be redacted in place, so a document quoting the subject goes.
    runtime.copy_rules = runtime.copy_rules.extend(
        delete=("documents",),
        contact_columns={
            "documents": "SELECT d.contact_id FROM deals d WHERE d.id = documents.deal_id"
        },
    )
    # A payment's note is about its deal's contact (a namesake's payment keeps its note).
    runtime.copy_rules = runtime.copy_rules.extend(
        contact_columns={
            "payments": "SELECT d.contact_id FROM deals d WHERE d.id = payments.deal_id"
        },
    )
    # Relocation: a subject's deals with their history, documents and payments
    # (crm_kit.relocation).
    runtime.owned_tables += [
        OwnedTable(models.Deal, contact_column="contact_id"),
        OwnedTable(models.StageChange, parent=("deal_id", "deals")),
        OwnedTable(models.Document, parent=("deal_id", "deals")),
        OwnedTable(models.Payment, parent=("deal_id", "deals")),
    ]
    compliance_pb2_grpc.add_RetentionServiceServicer_to_server(
        retention.RetentionServicer(runtime), server
    )
    deals_pb2_grpc.add_DealsServiceServicer_to_server(DealsServicer(runtime), server)
    privacy_pb2_grpc.add_PrivacyServiceServicer_to_server(PrivacyServicer(runtime), server)
    runtime.background.append(handlers.consumer(runtime).run)
    runtime.background.append(
        task_access.task_access_consumer(runtime, "deals-task-access", models.TaskGrant).run
    )
    runtime.background.append(
        teams.team_consumer(
            runtime, "deals-teams", models.UserTeam, [teams.OwnedBy(models.Deal)]
        ).run
    )
    runtime.background.append(documents.load_pdf_libraries)
    runtime.background.append(partial(pipelines.PIPELINES.listen, runtime.settings.database_url))
    ownership = register_ownership(server, runtime, [deals.reassignable(runtime.outbox)])
    return [
        ownership,
        pb.DESCRIPTOR.services_by_name["DealsService"].full_name,
        privacy_pb2.DESCRIPTOR.services_by_name["PrivacyService"].full_name,
        compliance_pb2.DESCRIPTOR.services_by_name["RetentionService"].full_name,
    ]
