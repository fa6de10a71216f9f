"""gRPC servicers of the contacts service: thin adapters from requests to the domain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.contacts.v1 import contacts_pb2 as pb
from crm_api.crm.contacts.v1 import contacts_pb2_grpc
from crm_api.crm.policy.v1 import policy_pb2, policy_pb2_grpc
from crm_api.crm.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from crm_contacts import companies, contacts, custom_field_defs, policy, privacy, timeline
from crm_kit.db import transaction
from crm_kit.errors import PermissionDenied
from crm_kit.requests import idempotent
from crm_kit.runtime import Runtime
from crm_kit.servicer import ServicerBase, caller

M = TypeVar("M", bound=Message)


class _Base(ServicerBase):
    """The shared servicer behaviour (crm_kit.servicer)."""


class ContactsServicer(_Base, contacts_pb2_grpc.ContactsServiceServicer):
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

    async def GetContact(
        self, request: pb.GetContactRequest, context: grpc.aio.ServicerContext
    ) -> pb.Contact:
        principal = caller()

        async def work(session: AsyncSession) -> pb.Contact:
            return await contacts.to_pb(
                session, await contacts.get_row(session, principal, request.id)
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
        return await self.read(
            "contact.list", "*", lambda s: contacts.list_contacts(s, principal, request)
        )

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
            lambda s: timeline.add_entry(s, principal, request.entry),
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

    async def ListCustomFields(
        self, request: pb.ListCustomFieldsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListCustomFieldsResponse:
        principal = caller()
        return await self.read(
            "custom_field.list",
            "*",
            lambda s: custom_field_defs.list_definitions(s, principal, request.entity),
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
            return await policy.put_policy(session, principal, self.regions, request.policy)


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


def register(server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
    contacts_pb2_grpc.add_ContactsServiceServicer_to_server(ContactsServicer(runtime), server)
    policy_pb2_grpc.add_PolicyServiceServicer_to_server(PolicyServicer(runtime), server)
    privacy_pb2_grpc.add_PrivacyServiceServicer_to_server(PrivacyServicer(runtime), server)
    return [
        pb.DESCRIPTOR.services_by_name["ContactsService"].full_name,
        policy_pb2.DESCRIPTOR.services_by_name["PolicyService"].full_name,
        privacy_pb2.DESCRIPTOR.services_by_name["PrivacyService"].full_name,
    ]
