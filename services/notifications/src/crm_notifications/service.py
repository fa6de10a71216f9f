"""gRPC servicers of the notifications service, and `register`, which also adds the
event consumers, the dispatcher and the campaign runner to the process."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import grpc

from crm_api.crm.notifications.v1 import notifications_pb2 as pb
from crm_api.crm.notifications.v1 import notifications_pb2_grpc
from crm_api.crm.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from crm_kit.audit import SubjectTable
from crm_kit.context import Principal, current_principal
from crm_kit.db import transaction
from crm_kit.messaging import Consumer
from crm_kit.relocation import OwnedTable
from crm_kit.requests import audit_cross_region
from crm_kit.runtime import Runtime
from crm_kit.servicer import ServicerBase, caller
from crm_notifications import (
    campaigns,
    greetings,
    inbox,
    models,
    planner,
    privacy,
    working_hours,
)
from crm_notifications.channels import Channels
from crm_notifications.dispatcher import Dispatcher
from crm_notifications.lookups import Lookups
from crm_notifications.settings import NotificationsSettings

Job = Callable[[], Coroutine[Any, Any, None]]


class _Base(ServicerBase):
    def __init__(self, runtime: Runtime, settings: NotificationsSettings, lookups: Lookups) -> None:
        super().__init__(runtime)
        self.settings = settings
        self.lookups = lookups


class NotificationsServicer(_Base, notifications_pb2_grpc.NotificationsServiceServicer):
    async def ListNotifications(
        self, request: pb.ListNotificationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListNotificationsResponse:
        principal = caller()
        return await self.read(
            "notification.list",
            principal.user_id,
            lambda s: inbox.list_inbox(s, principal, request),
        )

    async def CountUnread(
        self, request: pb.CountUnreadRequest, context: grpc.aio.ServicerContext
    ) -> pb.CountUnreadResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await inbox.count_unread(session, principal)

    async def MarkRead(
        self, request: pb.MarkReadRequest, context: grpc.aio.ServicerContext
    ) -> pb.MarkReadResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await inbox.mark_read(session, principal, request)

    async def GetPreferences(
        self, request: pb.GetPreferencesRequest, context: grpc.aio.ServicerContext
    ) -> pb.Preferences:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await inbox.get_preferences(session, principal)

    async def PutPreferences(
        self, request: pb.PutPreferencesRequest, context: grpc.aio.ServicerContext
    ) -> pb.Preferences:
        principal = caller()
        return await self.configure(
            "PutPreferences",
            request,
            pb.Preferences,
            lambda s: inbox.put_preferences(s, principal, request),
        )

    async def PutTemplate(
        self, request: pb.PutTemplateRequest, context: grpc.aio.ServicerContext
    ) -> pb.Template:
        principal = caller()
        return await self.configure(
            "PutTemplate",
            request,
            pb.Template,
            lambda s: inbox.put_template(s, principal, request.template),
        )

    async def ListTemplates(
        self, request: pb.ListTemplatesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTemplatesResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await inbox.list_templates(session, principal, request)

    async def DeleteTemplate(
        self, request: pb.DeleteTemplateRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteTemplateResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await inbox.delete_template(session, principal, request)

    async def GetWorkingHours(
        self, request: pb.GetWorkingHoursRequest, context: grpc.aio.ServicerContext
    ) -> pb.WorkingHours:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await working_hours.get(session, principal)

    async def PutWorkingHours(
        self, request: pb.PutWorkingHoursRequest, context: grpc.aio.ServicerContext
    ) -> pb.WorkingHours:
        principal = caller()
        return await self.configure(
            "PutWorkingHours",
            request,
            pb.WorkingHours,
            lambda s: working_hours.put(s, principal, request.working_hours),
        )

    async def ListDeliveries(
        self, request: pb.ListDeliveriesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDeliveriesResponse:
        principal = caller()
        return await self.read(
            "delivery.list",
            request.recipient_id or "*",
            lambda s: inbox.list_deliveries(s, principal, request),
        )

    async def CreateCampaign(
        self, request: pb.CreateCampaignRequest, context: grpc.aio.ServicerContext
    ) -> pb.Campaign:
        principal = caller()
        return await self.write(
            "CreateCampaign",
            request,
            pb.Campaign,
            "campaign.create",
            lambda c: c.id,
            lambda s: campaigns.create(s, principal, self.region, self.settings, request.campaign),
        )

    async def GetCampaign(
        self, request: pb.GetCampaignRequest, context: grpc.aio.ServicerContext
    ) -> pb.Campaign:
        principal = caller()
        return await self.read(
            "campaign.read", request.id, lambda s: campaigns.get(s, principal, request.id)
        )

    async def ListCampaigns(
        self, request: pb.ListCampaignsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListCampaignsResponse:
        principal = caller()
        return await self.read("campaign.list", "*", lambda s: campaigns.list_all(s, principal))

    async def Unsubscribe(
        self, request: pb.UnsubscribeRequest, context: grpc.aio.ServicerContext
    ) -> pb.UnsubscribeResponse:
        # Public: the signed token is the authority, not the (absent) principal.
        _ = current_principal() or Principal(tenant_id="", user_id="public")
        return await campaigns.unsubscribe(
            self.runtime.sessions, self.lookups, self.settings, self.region, request.token
        )

    async def ReceiveSms(
        self, request: pb.ReceiveSmsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReceiveSmsResponse:
        # Public: the provider's signature is the authority.
        return await campaigns.receive_sms(
            self.runtime.sessions, self.lookups, self.settings, self.region, request
        )

    async def PutGreetingRule(
        self, request: pb.PutGreetingRuleRequest, context: grpc.aio.ServicerContext
    ) -> pb.GreetingRule:
        principal = caller()
        return await self.configure(
            "PutGreetingRule",
            request,
            pb.GreetingRule,
            lambda s: greetings.put_rule(s, principal, self.settings, request.rule),
        )

    async def ListGreetingRules(
        self, request: pb.ListGreetingRulesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListGreetingRulesResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await greetings.list_rules(session, principal)


class PrivacyServicer(_Base, privacy_pb2_grpc.PrivacyServiceServicer):
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


def background_jobs(
    runtime: Runtime, settings: NotificationsSettings, lookups: Lookups
) -> list[Job]:
    region = runtime.region
    channels = Channels(settings)
    dispatcher = Dispatcher(runtime.sessions, lookups, channels, settings, region, runtime.outbox)
    plans = planner.Planner(lookups, region, settings.notify_urgent_kinds)

    async def handle(session: Any, envelope: Any, msg: Any) -> None:
        await plans.handle(session, envelope, msg)
        dispatcher.wake.set()  # a new plan: look now rather than at the next tick

    events = Consumer(
        runtime.sessions,
        runtime.nats,
        durable=planner.DURABLE,
        subjects=planner.subjects(region),
        handler=handle,
    )
    contacts = Consumer(
        runtime.sessions,
        runtime.nats,
        durable=privacy.DURABLE,
        subjects=privacy.subjects(region),
        handler=privacy.on_contact_event,
    )
    runner = campaigns.CampaignRunner(
        runtime.sessions, lookups, settings, region, settings.notify_dispatch_interval
    )
    greeter = greetings.GreetingRunner(
        runtime.sessions, lookups, region, settings.greeting_interval
    )
    return [events.run, contacts.run, dispatcher.run, runner.run, greeter.run]


def register(server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
    settings = NotificationsSettings()
    lookups = Lookups(runtime.peers)
    # Residency proof and relocation (crm_kit.audit, crm_kit.relocation): messages about a
    # contact hold their address, so they count, and move, with the contact.
    runtime.subject_tables += [
        SubjectTable("delivery", "deliveries"),
        SubjectTable("inbox_item", "user_notifications"),
    ]
    runtime.owned_tables += [
        OwnedTable(models.Delivery, contact_column="contact_id"),
        OwnedTable(models.DeliveryAttempt, contact_column="contact_id", remap=("delivery_id",)),
        OwnedTable(models.InboxItem, contact_column="contact_id"),
    ]
    notifications_pb2_grpc.add_NotificationsServiceServicer_to_server(
        NotificationsServicer(runtime, settings, lookups), server
    )
    privacy_pb2_grpc.add_PrivacyServiceServicer_to_server(
        PrivacyServicer(runtime, settings, lookups), server
    )
    runtime.background.extend(background_jobs(runtime, settings, lookups))
    return [
        pb.DESCRIPTOR.services_by_name["NotificationsService"].full_name,
        privacy_pb2.DESCRIPTOR.services_by_name["PrivacyService"].full_name,
    ]
