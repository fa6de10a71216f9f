"""gRPC servicers of the contacts service: thin adapters from requests to the domain."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.compliance.v1 import privacy_requests_pb2 as requests_pb
from crm_api.crm.compliance.v1 import privacy_requests_pb2_grpc
from crm_api.crm.contacts.v1 import contacts_pb2 as pb
from crm_api.crm.contacts.v1 import contacts_pb2_grpc
from crm_api.crm.policy.v1 import policy_pb2, policy_pb2_grpc
from crm_api.crm.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from crm_contacts import (
    attachments,
    companies,
    contacts,
    custom_field_defs,
    models,
    policy,
    privacy,
    privacy_requests,
    timeline,
    views,
)
from crm_contacts.compliance_scheduler import ComplianceScheduler
from crm_kit import task_access, teams
from crm_kit.audit import SubjectTable
from crm_kit.db import transaction
from crm_kit.errors import InvalidArgument, PermissionDenied, Unavailable
from crm_kit.ownership import register_ownership
from crm_kit.placement import warm_country_names
from crm_kit.relocation import OwnedTable
from crm_kit.requests import audit_cross_region, idempotent
from crm_kit.runtime import Runtime
from crm_kit.servicer import ServicerBase, caller

M = TypeVar("M", bound=Message)

# Searches get their own share of the connection pool: at most SEARCH_SLOTS at a time
# per process, so a burst of searches cannot take the connections that writes and the
# outbox relay need. A search that cannot get a slot in time is a 503 to retry.
SEARCH_SLOTS = 3
SEARCH_SLOT_WAIT_S = 5.0


class _Base(ServicerBase):
    """The shared servicer behaviour (crm_kit.servicer)."""


class ContactsServicer(_Base, contacts_pb2_grpc.ContactsServiceServicer):
    _search_slots = asyncio.Semaphore(SEARCH_SLOTS)  # one servicer per process

    async def CreateContact(
        self, request: pb.CreateContactRequest, context: grpc.aio.ServicerContext
    ) -> pb.Contact:
        principal = caller()
        return await self.write(
            "CreateContact",
            request,
            pb.Contact,
            "contact.create",
            lambda c: c.id,
            lambda s: contacts.create_contact(
                s, principal, self.region, self.regions, self.runtime.outbox, request.contact
            ),
        )

    async def ImportContacts(
        self, request: pb.ImportContactsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ImportContactsResponse:
        principal = caller()
        return await self.write(
            "ImportContacts",
            request,
            pb.ImportContactsResponse,
            "contact.import",
            lambda r: ",".join(c.contact.id for c in r.results if c.contact.id)[:2000],
            lambda s: contacts.import_contacts(
                s, principal, self.region, self.regions, self.runtime.outbox, request.items
            ),
        )

    async def GetContact(
        self, request: pb.GetContactRequest, context: grpc.aio.ServicerContext
    ) -> pb.Contact:
        principal = caller()

        async def work(session: AsyncSession) -> pb.Contact:
            return await contacts.to_pb(
                session,
                await contacts.get_row(session, principal, request.id, via_task="contact.read"),
            )

        return await self.read("contact.read", request.id, work)

    async def UpdateContact(
        self, request: pb.UpdateContactRequest, context: grpc.aio.ServicerContext
    ) -> pb.Contact:
        principal = caller()
        return await self.write(
            "UpdateContact",
            request,
            pb.Contact,
            "contact.update",
            lambda c: c.id,
            lambda s: contacts.update_contact(
                s,
                principal,
                self.region,
                self.regions,
                self.runtime.outbox,
                request.contact,
                list(request.update_mask.paths),
                request.expected_version,
            ),
        )

    async def ListContacts(
        self, request: pb.ListContactsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListContactsResponse:
        principal = caller()
        if not request.query.strip():
            return await self.read(
                "contact.list", "*", lambda s: contacts.list_contacts(s, principal, request)
            )
        try:
            await asyncio.wait_for(self._search_slots.acquire(), SEARCH_SLOT_WAIT_S)
        except TimeoutError:
            raise Unavailable("too many searches at once; try again shortly") from None
        try:
            return await self.read(
                "contact.list", "*", lambda s: contacts.list_contacts(s, principal, request)
            )
        finally:
            self._search_slots.release()

    async def FindDuplicates(
        self, request: pb.FindDuplicatesRequest, context: grpc.aio.ServicerContext
    ) -> pb.FindDuplicatesResponse:
        principal = caller()
        return await self.read(
            "contact.duplicates",
            request.contact_id or "*",
            lambda s: contacts.find_duplicate_pairs(s, principal, request),
        )

    async def MergeContacts(
        self, request: pb.MergeContactsRequest, context: grpc.aio.ServicerContext
    ) -> pb.Contact:
        principal = caller()
        return await self.write(
            "MergeContacts",
            request,
            pb.Contact,
            "contact.merge",
            lambda c: c.id,
            lambda s: contacts.merge_contacts(
                s, principal, self.runtime.outbox, request.survivor_id, request.merged_id
            ),
        )

    async def AddTimelineEntry(
        self, request: pb.AddTimelineEntryRequest, context: grpc.aio.ServicerContext
    ) -> pb.TimelineEntry:
        principal = caller()
        return await self.write(
            "AddTimelineEntry",
            request,
            pb.TimelineEntry,
            "timeline.add",
            lambda e: e.contact_id,
            lambda s: timeline.add_entry(s, principal, self.runtime.outbox, request.entry),
        )

    async def ListTimeline(
        self, request: pb.ListTimelineRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTimelineResponse:
        principal = caller()
        return await self.read(
            "timeline.read",
            request.contact_id,
            lambda s: timeline.list_entries(s, principal, request),
        )

    async def UploadAttachment(
        self,
        requests: AsyncIterator[pb.UploadAttachmentRequest],
        context: grpc.aio.ServicerContext,
    ) -> pb.Attachment:
        principal = caller()
        described: pb.Attachment | None = None
        pieces: list[bytes] = []
        size = 0
        async for message in requests:
            if described is None:
                described = message.attachment
            size += len(message.data)
            if size > attachments.MAX_FILE_BYTES:
                # Refused while it arrives: the rest is never held in memory.
                raise InvalidArgument.single(
                    "file",
                    f"a file may be at most {attachments.MAX_FILE_BYTES // 1048576} MiB",
                )
            pieces.append(message.data)
        if described is None:
            raise InvalidArgument.single("attachment", "describe the file in the first message")
        content = b"".join(pieces)
        # What Idempotency-Key compares: the description and the content's digest.
        fingerprint = pb.Attachment()
        fingerprint.CopyFrom(described)
        fingerprint.sha256 = hashlib.sha256(content).hexdigest()
        return await self.write(
            "UploadAttachment",
            fingerprint,
            pb.Attachment,
            "attachments.add",
            lambda a: a.contact_id,
            lambda s: attachments.upload(s, principal, described, content),
        )

    async def ListAttachments(
        self, request: pb.ListAttachmentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAttachmentsResponse:
        principal = caller()
        return await self.read(
            "attachments.read",
            request.contact_id,
            lambda s: attachments.list_attachments(s, principal, request),
        )

    async def GetAttachmentContent(
        self, request: pb.GetAttachmentContentRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.AttachmentContent]:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            contact_id = ""
            async for piece in attachments.content(session, principal, request.id):
                contact_id = contact_id or piece.attachment.contact_id
                yield piece
            await audit_cross_region(
                session, principal, self.region, "attachments.read", contact_id
            )

    async def DeleteAttachment(
        self, request: pb.DeleteAttachmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteAttachmentResponse:
        principal = caller()

        async def work(session: AsyncSession) -> pb.DeleteAttachmentResponse:
            contact_id = await attachments.delete(session, principal, request.id)
            await audit_cross_region(
                session, principal, self.region, "attachments.delete", contact_id
            )
            return pb.DeleteAttachmentResponse()

        return await idempotent(
            self.runtime.sessions,
            principal,
            "DeleteAttachment",
            request,
            pb.DeleteAttachmentResponse,
            work,
        )

    async def RecordConsent(
        self, request: pb.RecordConsentRequest, context: grpc.aio.ServicerContext
    ) -> pb.Consent:
        principal = caller()
        return await self.write(
            "RecordConsent",
            request,
            pb.Consent,
            "consent.record",
            lambda c: c.contact_id,
            lambda s: timeline.record_consent(s, principal, self.runtime.outbox, request.consent),
        )

    async def ListConsents(
        self, request: pb.ListConsentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListConsentsResponse:
        principal = caller()
        return await self.read(
            "consent.read",
            request.contact_id,
            lambda s: timeline.list_consents(s, principal, request.contact_id),
        )

    async def CreateCompany(
        self, request: pb.CreateCompanyRequest, context: grpc.aio.ServicerContext
    ) -> pb.Company:
        principal = caller()
        return await self.write(
            "CreateCompany",
            request,
            pb.Company,
            "company.create",
            lambda c: c.id,
            lambda s: companies.create_company(
                s, principal, self.region, self.regions, self.runtime.outbox, request.company
            ),
        )

    async def GetCompany(
        self, request: pb.GetCompanyRequest, context: grpc.aio.ServicerContext
    ) -> pb.Company:
        principal = caller()
        return await self.read(
            "company.read", request.id, lambda s: companies.get_company(s, principal, request.id)
        )

    async def UpdateCompany(
        self, request: pb.UpdateCompanyRequest, context: grpc.aio.ServicerContext
    ) -> pb.Company:
        principal = caller()
        return await self.write(
            "UpdateCompany",
            request,
            pb.Company,
            "company.update",
            lambda c: c.id,
            lambda s: companies.update_company(
                s,
                principal,
                self.region,
                self.regions,
                request.company,
                list(request.update_mask.paths),
            ),
        )

    async def ListCompanies(
        self, request: pb.ListCompaniesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListCompaniesResponse:
        principal = caller()
        return await self.read(
            "company.list", "*", lambda s: companies.list_companies(s, principal, request)
        )

    async def DefineCustomField(
        self, request: pb.DefineCustomFieldRequest, context: grpc.aio.ServicerContext
    ) -> pb.CustomFieldDefinition:
        # Tenant configuration, not personal data: written to every region, not audited.
        principal = caller()
        return await idempotent(
            self.runtime.sessions,
            principal,
            "DefineCustomField",
            request,
            pb.CustomFieldDefinition,
            lambda s: custom_field_defs.define(s, principal, request.definition),
        )

    async def DeleteCustomField(
        self, request: pb.DeleteCustomFieldRequest, context: grpc.aio.ServicerContext
    ) -> pb.CustomFieldDefinition:
        principal = caller()
        return await idempotent(
            self.runtime.sessions,
            principal,
            "DeleteCustomField",
            request,
            pb.CustomFieldDefinition,
            lambda s: custom_field_defs.delete(s, principal, request.entity, request.key),
        )

    async def ListCustomFields(
        self, request: pb.ListCustomFieldsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListCustomFieldsResponse:
        principal = caller()
        return await self.read(
            "custom_field.list",
            "*",
            lambda s: custom_field_defs.list_definitions(s, principal, request.entity),
        )

    async def SaveContactView(
        self, request: pb.SaveContactViewRequest, context: grpc.aio.ServicerContext
    ) -> pb.ContactView:
        # A user's own setting, not personal data of a contact: not audited.
        principal = caller()
        return await idempotent(
            self.runtime.sessions,
            principal,
            "SaveContactView",
            request,
            pb.ContactView,
            lambda s: views.save(s, principal, self.region, request.view),
        )

    async def ListContactViews(
        self, request: pb.ListContactViewsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListContactViewsResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await views.list_views(session, principal)

    async def DeleteContactView(
        self, request: pb.DeleteContactViewRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteContactViewResponse:
        principal = caller()

        async def work(session: AsyncSession) -> pb.DeleteContactViewResponse:
            await views.delete(session, principal, request.id)
            return pb.DeleteContactViewResponse()

        return await idempotent(
            self.runtime.sessions,
            principal,
            "DeleteContactView",
            request,
            pb.DeleteContactViewResponse,
            work,
        )

    async def ListUpcomingDates(
        self, request: pb.ListUpcomingDatesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListUpcomingDatesResponse:
        # For the reminder scheduler (tenant "*" = every tenant of this region).
        principal = caller()
        if not principal.has_role("admin"):
            raise PermissionDenied("only the system lists upcoming dates")
        async with transaction(self.runtime.sessions) as session:
            return await contacts.upcoming_dates(session, principal, request.on_date)


class PolicyServicer(_Base, policy_pb2_grpc.PolicyServiceServicer):
    async def GetTenantPolicy(
        self, request: policy_pb2.GetTenantPolicyRequest, context: grpc.aio.ServicerContext
    ) -> policy_pb2.TenantPolicy:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await policy.get_policy(session, principal)

    async def PutTenantPolicy(
        self, request: policy_pb2.PutTenantPolicyRequest, context: grpc.aio.ServicerContext
    ) -> policy_pb2.TenantPolicy:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await policy.put_policy(
                session, principal, self.regions, request.policy, self.region
            )

    async def ListPolicyVersions(
        self, request: policy_pb2.ListPolicyVersionsRequest, context: grpc.aio.ServicerContext
    ) -> policy_pb2.ListPolicyVersionsResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await policy.list_versions(session, principal)

    async def ListRetentionRuns(
        self, request: policy_pb2.ListRetentionRunsRequest, context: grpc.aio.ServicerContext
    ) -> policy_pb2.ListRetentionRunsResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await policy.list_retention_runs(session, principal)


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
            return await privacy.erase_subject(
                session, principal, self.runtime.outbox, request.contact_id
            )


class PrivacyRequestsServicer(_Base, privacy_requests_pb2_grpc.PrivacyRequestsServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.requests = privacy_requests.PrivacyRequests(runtime)

    async def CreatePrivacyRequest(
        self, request: requests_pb.CreatePrivacyRequestRequest, context: grpc.aio.ServicerContext
    ) -> requests_pb.PrivacyRequest:
        principal = caller()
        created = await idempotent(
            self.runtime.sessions,
            principal,
            "CreatePrivacyRequest",
            request,
            requests_pb.PrivacyRequest,
            lambda s: self.requests.create(s, principal, request),
        )
        # Runs in the call: every step is a short in-region call. A replayed
        # Idempotency-Key finds the request already run (or still running, when the
        # caller stopped waiting: it then runs to its end) and returns its state.
        await self.requests.run(principal, created.id)
        return await self.requests.get(principal, created.id)

    async def GetPrivacyRequest(
        self, request: requests_pb.GetPrivacyRequestRequest, context: grpc.aio.ServicerContext
    ) -> requests_pb.PrivacyRequest:
        return await self.requests.get(caller(), request.id)

    async def ListPrivacyRequests(
        self, request: requests_pb.ListPrivacyRequestsRequest, context: grpc.aio.ServicerContext
    ) -> requests_pb.ListPrivacyRequestsResponse:
        return await self.requests.list_requests(caller(), request.status)

    async def RetryPrivacyRequest(
        self, request: requests_pb.RetryPrivacyRequestRequest, context: grpc.aio.ServicerContext
    ) -> requests_pb.PrivacyRequest:
        principal = caller()
        privacy_requests.require_officer(principal)
        await self.requests.run(principal, request.id, retry=True)
        return await self.requests.get(principal, request.id)

    async def DownloadExport(
        self, request: requests_pb.DownloadExportRequest, context: grpc.aio.ServicerContext
    ) -> requests_pb.DownloadExportResponse:
        return await self.requests.download(caller(), request.id)

    async def VerifyReceipt(
        self, request: requests_pb.VerifyReceiptRequest, context: grpc.aio.ServicerContext
    ) -> requests_pb.VerifyReceiptResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await privacy_requests.verify_receipt(
                session, principal, request.receipt, request.signature
            )

    async def FindSubjects(
        self, request: requests_pb.FindSubjectsRequest, context: grpc.aio.ServicerContext
    ) -> requests_pb.FindSubjectsResponse:
        principal = caller()
        return await self.read(
            "privacy.find_subject",
            "*",
            lambda s: privacy_requests.find_subjects(s, principal, request.email, request.phone),
        )

    async def SetLegalHold(
        self, request: requests_pb.SetLegalHoldRequest, context: grpc.aio.ServicerContext
    ) -> requests_pb.LegalHold:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await privacy_requests.set_legal_hold(
                session, principal, self.region, request.contact_id, request.reason
            )

    async def ClearLegalHold(
        self, request: requests_pb.ClearLegalHoldRequest, context: grpc.aio.ServicerContext
    ) -> requests_pb.ClearLegalHoldResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            await privacy_requests.clear_legal_hold(
                session, principal, self.region, request.contact_id
            )
        return requests_pb.ClearLegalHoldResponse()

    async def RecordElevatedLogin(
        self,
        request: requests_pb.RecordElevatedLoginRequest,
        context: grpc.aio.ServicerContext,
    ) -> requests_pb.RecordElevatedLoginResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            recorded = await privacy_requests.record_elevated_login(
                session, principal, self.region, request.token_hash, list(request.roles)
            )
        return requests_pb.RecordElevatedLoginResponse(recorded=recorded)

    async def ResolveContactAlias(
        self,
        request: requests_pb.ResolveContactAliasRequest,
        context: grpc.aio.ServicerContext,
    ) -> requests_pb.ResolveContactAliasResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await privacy_requests.resolve_alias(session, principal, request.contact_id)


def register(server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
    privacy_requests_pb2_grpc.add_PrivacyRequestsServiceServicer_to_server(
        PrivacyRequestsServicer(runtime), server
    )
    runtime.residency_counter = privacy_requests.count_contacts
    runtime.subject_tables.append(SubjectTable("attachment", "attachments"))
    # Erasure (crm_kit.subject_copies): a contact's own row is about that contact; the
    # signing keys and the signed requests and receipts never change.
    runtime.copy_rules = runtime.copy_rules.extend(
        # The search tables are derived from contacts.search_text by a trigger, which
        # follows the redaction and deletion of that column; edited directly they would
        # no longer match it.
        keep=("tenant_keys", "privacy_requests", "search_terms", "contact_terms"),
        contact_columns={"contacts": '"id"'},
    )
    # Relocation (crm_kit.relocation): company links stay behind with their company,
    # which lives in its own region; everything about the person moves.
    runtime.owned_tables += [
        OwnedTable(models.Contact, contact_column="id"),
        # Deal ids are remapped: the gateway copies contacts in after deals.
        OwnedTable(models.Attachment, contact_column="contact_id", remap=("deal_id",)),
        OwnedTable(models.AttachmentChunk, parent=("attachment_id", "attachments")),
        OwnedTable(models.TimelineEntry, contact_column="contact_id", remap=("attachment_id",)),
        OwnedTable(models.Consent, contact_column="contact_id"),
    ]
    runtime.relocation_copy_in = privacy_requests.relocation_copy_in
    runtime.relocation_remove = privacy_requests.relocation_remove
    runtime.background.append(partial(contacts.CONFIG.listen, runtime.settings.database_url))
    runtime.background.append(ComplianceScheduler(runtime).run)
    runtime.background.append(warm_country_names)
    runtime.background.append(
        task_access.task_access_consumer(runtime, "contacts-task-access", models.TaskGrant).run
    )
    runtime.background.append(
        teams.team_consumer(
            runtime,
            "contacts-teams",
            models.UserTeam,
            [teams.OwnedBy(models.Contact), teams.OwnedBy(models.Company)],
        ).run
    )
    contacts_pb2_grpc.add_ContactsServiceServicer_to_server(ContactsServicer(runtime), server)
    policy_pb2_grpc.add_PolicyServiceServicer_to_server(PolicyServicer(runtime), server)
    privacy_pb2_grpc.add_PrivacyServiceServicer_to_server(PrivacyServicer(runtime), server)
    ownership = register_ownership(server, runtime, [contacts.reassignable(runtime.outbox)])
    return [
        ownership,
        pb.DESCRIPTOR.services_by_name["ContactsService"].full_name,
        policy_pb2.DESCRIPTOR.services_by_name["PolicyService"].full_name,
        privacy_pb2.DESCRIPTOR.services_by_name["PrivacyService"].full_name,
        requests_pb.DESCRIPTOR.services_by_name["PrivacyRequestsService"].full_name,
    ]
