"""gRPC servicers of the integrations service (thin adapters to the domain modules), and
`register`, which adds the submission retry worker, the import runner and the webhook
dispatcher and deliverer to the process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from functools import partial

import grpc
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.integrations.v1 import integrations_pb2 as pb
from crm_api.crm.integrations.v1 import integrations_pb2_grpc
from crm_api.crm.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from crm_integrations import forms, imports, keys, models, privacy, providers, webhooks
from crm_integrations.common import Downstream
from crm_integrations.settings import IntegrationsSettings
from crm_kit.audit import SubjectTable, append_audit
from crm_kit.db import transaction
from crm_kit.errors import InvalidArgument
from crm_kit.messaging import Consumer
from crm_kit.placement import warm_country_names
from crm_kit.relocation import OwnedTable
from crm_kit.requests import audit_cross_region
from crm_kit.runtime import Runtime
from crm_kit.servicer import ServicerBase, caller

EXPORT_KINDS = ("contacts", "deals")


class IntegrationsServicer(ServicerBase, integrations_pb2_grpc.IntegrationsServiceServicer):
    def __init__(self, runtime: Runtime, settings: IntegrationsSettings) -> None:
        super().__init__(runtime)
        self.settings = settings
        self.downstream = Downstream(runtime.peers)
        self.completer = forms.Completer(
            runtime.sessions, runtime.outbox, self.downstream, self.region, settings
        )
        self.providers = providers.Providers(
            runtime.sessions,
            runtime.outbox,
            self.downstream,
            self.region,
            call_timeout=settings.webhook_timeout,
        )
        self.importer = imports.Importer(
            runtime.sessions, self.downstream, self.region, settings, list(self.regions)
        )
        self.webhooks = webhooks.Webhooks(runtime.sessions, self.downstream, self.region, settings)

    # ------------------------------------------------------------------ forms

    async def PutForm(
        self, request: pb.PutFormRequest, context: grpc.aio.ServicerContext
    ) -> pb.Form:
        principal = caller()
        return await self.configure(
            "PutForm",
            request,
            pb.Form,
            lambda s: forms.put_form(s, principal, request.form, self.region),
        )

    async def GetForm(
        self, request: pb.GetFormRequest, context: grpc.aio.ServicerContext
    ) -> pb.Form:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await forms.get_form(session, principal, request.id)

    async def DeleteForm(
        self, request: pb.DeleteFormRequest, context: grpc.aio.ServicerContext
    ) -> pb.Form:
        principal = caller()
        return await self.configure(
            "DeleteForm", request, pb.Form, lambda s: forms.delete_form(s, principal, request.id)
        )

    async def ListForms(
        self, request: pb.ListFormsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListFormsResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await forms.list_forms(session, principal)

    async def ResolveFormKey(
        self, request: pb.ResolveFormKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.Form:
        try:
            async with transaction(self.runtime.sessions) as session:
                return await forms.resolve_key(session, request.key, request.client_ip)
        except forms.RateLimited as exc:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, exc.what)
            raise

    async def SubmitForm(
        self, request: pb.SubmitFormRequest, context: grpc.aio.ServicerContext
    ) -> pb.Submission:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            row = await forms.store_submission(session, principal, self.region, request)
            fresh = row.attempts == 0 and row.status == "pending"
        if fresh:
            row = await self.completer.complete(row.id)
        return forms.submission_to_pb(row)

    async def GetSubmission(
        self, request: pb.GetSubmissionRequest, context: grpc.aio.ServicerContext
    ) -> pb.Submission:
        principal = caller()

        async def work(session: AsyncSession) -> pb.Submission:
            from crm_integrations import models
            from crm_kit.errors import NotFound

            row = await session.get(models.Submission, request.id)
            if row is None or row.tenant_id != principal.tenant_id:
                raise NotFound("no such submission")
            return forms.submission_to_pb(row)

        return await self.read("submission.read", request.id, work)

    # ------------------------------------------------------------------ API keys

    async def CreateApiKey(
        self, request: pb.CreateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateApiKeyResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await keys.create_key(session, principal, self.region, request)

    async def ListApiKeys(
        self, request: pb.ListApiKeysRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListApiKeysResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await keys.list_keys(session, principal)

    async def RevokeApiKey(
        self, request: pb.RevokeApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ApiKey:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await keys.revoke_key(session, principal, request.id)

    async def VerifyApiKey(
        self, request: pb.VerifyApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.VerifyApiKeyResponse:
        async with transaction(self.runtime.sessions) as session:
            return await keys.verify_key(session, request.secret)

    # ------------------------------------------------------------------ providers

    async def CreateProvider(
        self, request: pb.CreateProviderRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateProviderResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await providers.create_provider(session, principal, self.region, request)

    async def LogCall(
        self, request: pb.LogCallRequest, context: grpc.aio.ServicerContext
    ) -> pb.CallRecord:
        return await self.providers.log_call(request)

    async def LogEmail(
        self, request: pb.LogEmailRequest, context: grpc.aio.ServicerContext
    ) -> pb.EmailRecord:
        return await self.providers.log_email(request)

    async def StartCall(
        self, request: pb.StartCallRequest, context: grpc.aio.ServicerContext
    ) -> pb.StartCallResponse:
        return await self.providers.start_call(caller(), request)

    # ------------------------------------------------------------------ imports

    async def CreateImport(
        self, request: pb.CreateImportRequest, context: grpc.aio.ServicerContext
    ) -> pb.ImportJob:
        return await self.importer.create(caller(), request)

    async def UploadImportChunk(
        self, request: pb.UploadImportChunkRequest, context: grpc.aio.ServicerContext
    ) -> pb.ImportJob:
        return await self.importer.upload(caller(), request)

    async def PreviewImport(
        self, request: pb.PreviewImportRequest, context: grpc.aio.ServicerContext
    ) -> pb.ImportJob:
        return await self.importer.preview(caller(), request)

    async def SplitImport(
        self, request: pb.SplitImportRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SplitImportChunk]:
        async for chunk in self.importer.split(caller(), request):
            yield chunk

    async def StartImport(
        self, request: pb.StartImportRequest, context: grpc.aio.ServicerContext
    ) -> pb.ImportJob:
        return await self.importer.start(caller(), request)

    async def GetImport(
        self, request: pb.GetImportRequest, context: grpc.aio.ServicerContext
    ) -> pb.ImportJob:
        return await self.importer.get(caller(), request.id)

    async def CancelImport(
        self, request: pb.CancelImportRequest, context: grpc.aio.ServicerContext
    ) -> pb.ImportJob:
        return await self.importer.cancel(caller(), request.id)

    async def GetImportErrors(
        self, request: pb.GetImportErrorsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ImportErrorReport]:
        async for piece in self.importer.errors(caller(), request.id):
            yield piece

    # ------------------------------------------------------------------ webhooks

    async def PutWebhook(
        self, request: pb.PutWebhookRequest, context: grpc.aio.ServicerContext
    ) -> pb.Webhook:
        return await self.webhooks.put(caller(), request.webhook)

    async def DeleteWebhook(
        self, request: pb.DeleteWebhookRequest, context: grpc.aio.ServicerContext
    ) -> pb.Webhook:
        return await self.webhooks.delete(caller(), request.id)

    async def ListWebhooks(
        self, request: pb.ListWebhooksRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListWebhooksResponse:
        return await self.webhooks.list(caller())

    async def ListDeliveries(
        self, request: pb.ListDeliveriesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDeliveriesResponse:
        return await self.webhooks.deliveries(caller(), request)

    async def ReplayDelivery(
        self, request: pb.ReplayDeliveryRequest, context: grpc.aio.ServicerContext
    ) -> pb.Delivery:
        return await self.webhooks.replay(caller(), request.id)

    async def PutIntegrationSettings(
        self, request: pb.PutIntegrationSettingsRequest, context: grpc.aio.ServicerContext
    ) -> pb.IntegrationSettings:
        return await self.webhooks.put_settings(caller(), request.settings)

    async def GetIntegrationSettings(
        self, request: pb.GetIntegrationSettingsRequest, context: grpc.aio.ServicerContext
    ) -> pb.IntegrationSettings:
        return await self.webhooks.get_settings(caller())

    # ------------------------------------------------------------------ exports

    async def RecordExport(
        self, request: pb.RecordExportRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordExportResponse:
        """The audit record of an export, in the region whose data was exported."""
        principal = caller()
        if request.kind not in EXPORT_KINDS:
            raise InvalidArgument.single("kind", f"one of {', '.join(EXPORT_KINDS)}")
        async with transaction(self.runtime.sessions) as session:
            await append_audit(
                session,
                tenant_id=principal.tenant_id,
                actor_id=principal.user_id,
                actor_home_region=principal.home_region or self.region,
                region=self.region,
                action=f"export.{request.kind}",
                record_id=(f"{request.format}:{request.rows} rows:{request.filters_json}")[:1000],
                legal_basis=principal.cross_region_basis or "home region",
            )
        return pb.RecordExportResponse()


class PrivacyServicer(ServicerBase, privacy_pb2_grpc.PrivacyServiceServicer):
    async def ExportSubject(
        self, request: privacy_pb2.ExportSubjectRequest, context: grpc.aio.ServicerContext
    ) -> privacy_pb2.ExportSubjectResponse:
        principal = caller()
        return await self.read(
            "subject.export",
            request.contact_id,
            lambda s: privacy.export_subject(s, principal, request.contact_id),
        )

    async def EraseSubject(
        self, request: privacy_pb2.EraseSubjectRequest, context: grpc.aio.ServicerContext
    ) -> privacy_pb2.EraseSubjectResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            response = await privacy.erase_subject(session, principal, request.contact_id)
            await audit_cross_region(
                session, principal, self.region, "subject.erase", request.contact_id
            )
            return response


def register(server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
    settings = IntegrationsSettings()
    # Residency proof and relocation (crm_kit.audit, crm_kit.relocation): submissions,
    # calls and emails hold a contact's details, so they count, and move, with the contact.
    # Erasure (crm_kit.subject_copies): an import's file and error report belong to the
    # tenant of their import.
    of_tenant = "import_id IN (SELECT i.id FROM imports i WHERE i.tenant_id = :tenant)"
    runtime.copy_rules = runtime.copy_rules.extend(
        scopes={"import_chunks": of_tenant, "import_errors": of_tenant}
    )
    runtime.subject_tables += [
        SubjectTable("submission", "submissions"),
        SubjectTable("call", "calls"),
        SubjectTable("call_request", "call_requests"),
        SubjectTable("inbound_email", "inbound_emails"),
    ]
    runtime.owned_tables += [
        OwnedTable(models.Submission, contact_column="contact_id"),
        OwnedTable(models.Call, contact_column="contact_id"),
        OwnedTable(models.CallRequest, contact_column="contact_id"),
        OwnedTable(models.InboundEmail, contact_column="contact_id"),
    ]
    servicer = IntegrationsServicer(runtime, settings)
    integrations_pb2_grpc.add_IntegrationsServiceServicer_to_server(servicer, server)
    privacy_pb2_grpc.add_PrivacyServiceServicer_to_server(PrivacyServicer(runtime), server)
    dispatcher = Consumer(
        runtime.sessions,
        runtime.nats,
        durable=webhooks.DURABLE,
        subjects=[f"crm.{runtime.region}.>"],
        handler=servicer.webhooks.on_event,
        wants=servicer.webhooks.wants,
    )
    runtime.background.append(warm_country_names)
    runtime.background.append(partial(webhooks.HOOKS.listen, runtime.settings.database_url))
    runtime.background.extend(
        [servicer.completer.run, servicer.importer.run, servicer.webhooks.run, dispatcher.run]
    )
    return [
        pb.DESCRIPTOR.services_by_name["IntegrationsService"].full_name,
        privacy_pb2.DESCRIPTOR.services_by_name["PrivacyService"].full_name,
    ]
