"""gRPC servicers of the tasks service (thin adapters from requests to the domain), and
`register`, which also adds the scheduler and the event consumers to the process."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from crm_api.crm.directory.v1 import directory_pb2, directory_pb2_grpc
from crm_api.crm.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from crm_api.crm.tasks.v1 import tasks_pb2 as pb
from crm_api.crm.tasks.v1 import tasks_pb2_grpc
from crm_kit.audit import SubjectTable
from crm_kit.db import transaction
from crm_kit.messaging import Consumer
from crm_kit.ownership import register_ownership
from crm_kit.relocation import OwnedTable
from crm_kit.requests import audit_cross_region
from crm_kit.runtime import Runtime
from crm_kit.servicer import ServicerBase, caller
from crm_tasks import automation, calendar, directory, models, privacy, rules, tasks
from crm_tasks.links import PeerLinks
from crm_tasks.scheduler import Scheduler
from crm_tasks.settings import TasksSettings

M = TypeVar("M", bound=Message)
Job = Callable[[], Coroutine[Any, Any, None]]


class _Base(ServicerBase):
    """The shared servicer behaviour (crm_kit.servicer)."""


class TasksServicer(_Base, tasks_pb2_grpc.TasksServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.links = PeerLinks(runtime.peers)

    async def CreateTask(
        self, request: pb.CreateTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.Task:
        principal = caller()
        return await self.write(
            "CreateTask",
            request,
            pb.Task,
            "task.create",
            lambda t: t.id,
            lambda s: tasks.create_task(
                s, principal, self.region, self.runtime.outbox, self.links, request
            ),
        )

    async def GetTask(
        self, request: pb.GetTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.Task:
        principal = caller()
        return await self.read(
            "task.read", request.id, lambda s: tasks.get_task(s, principal, request.id)
        )

    async def UpdateTask(
        self, request: pb.UpdateTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.Task:
        principal = caller()
        return await self.write(
            "UpdateTask",
            request,
            pb.Task,
            "task.update",
            lambda t: t.id,
            lambda s: tasks.update_task(
                s, principal, self.region, self.runtime.outbox, self.links, request
            ),
        )

    async def ListTasks(
        self, request: pb.ListTasksRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTasksResponse:
        principal = caller()
        return await self.read("task.list", "*", lambda s: tasks.list_tasks(s, principal, request))

    async def CompleteTask(
        self, request: pb.CompleteTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.Task:
        principal = caller()
        return await self.write(
            "CompleteTask",
            request,
            pb.Task,
            "task.complete",
            lambda t: t.id,
            lambda s: tasks.complete_task(s, principal, self.runtime.outbox, request.id),
        )

    async def CreateAutomationRule(
        self, request: pb.CreateAutomationRuleRequest, context: grpc.aio.ServicerContext
    ) -> pb.AutomationRule:
        principal = caller()
        return await self.configure(
            "CreateAutomationRule",
            request,
            pb.AutomationRule,
            lambda s: rules.create_rule(
                s, principal, self.region, self.runtime.peers, request.rule
            ),
        )

    async def GetAutomationRule(
        self, request: pb.GetAutomationRuleRequest, context: grpc.aio.ServicerContext
    ) -> pb.AutomationRule:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await rules.get_rule(session, principal, request.id)

    async def UpdateAutomationRule(
        self, request: pb.UpdateAutomationRuleRequest, context: grpc.aio.ServicerContext
    ) -> pb.AutomationRule:
        principal = caller()
        return await self.configure(
            "UpdateAutomationRule",
            request,
            pb.AutomationRule,
            lambda s: rules.update_rule(s, principal, self.runtime.peers, request.rule),
        )

    async def ListAutomationRules(
        self, request: pb.ListAutomationRulesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAutomationRulesResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await rules.list_rules(session, principal)

    async def DeleteAutomationRule(
        self, request: pb.DeleteAutomationRuleRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteAutomationRuleResponse:
        principal = caller()
        return await self.configure(
            "DeleteAutomationRule",
            request,
            pb.DeleteAutomationRuleResponse,
            lambda s: rules.delete_rule(s, principal, request.id),
        )


class DirectoryServicer(_Base, directory_pb2_grpc.DirectoryServiceServicer):
    async def PutUser(
        self, request: directory_pb2.PutUserRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.User:
        principal = caller()
        return await self.configure(
            "PutUser",
            request,
            directory_pb2.User,
            lambda s: directory.put_user(s, principal, self.runtime.outbox, request.user),
        )

    async def GetUser(
        self, request: directory_pb2.GetUserRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.User:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await directory.get_user(session, principal, request.id)

    async def ListUsers(
        self, request: directory_pb2.ListUsersRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.ListUsersResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await directory.list_users(session, principal, request)

    async def PutCalendarFeed(
        self, request: directory_pb2.PutCalendarFeedRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.CalendarFeed:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            return await calendar.put_feed(session, principal, self.region)

    async def DeleteCalendarFeed(
        self, request: directory_pb2.DeleteCalendarFeedRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.DeleteCalendarFeedResponse:
        principal = caller()
        async with transaction(self.runtime.sessions) as session:
            revoked = await calendar.delete_feed(session, principal)
        return directory_pb2.DeleteCalendarFeedResponse(revoked=revoked)

    async def ResolveCalendarFeed(
        self, request: directory_pb2.ResolveCalendarFeedRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.CalendarFeedOwner:
        # The public calendar URL: the secret is the only credential, there is no caller.
        async with transaction(self.runtime.sessions) as session:
            return await calendar.resolve_feed(session, request.secret, self.region)


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


def background_jobs(runtime: Runtime, settings: TasksSettings) -> list[Job]:
    """The scheduler, the automation engine and the contact-lifecycle consumer."""
    region = runtime.region
    scheduler = Scheduler(
        runtime.sessions,
        runtime.outbox,
        runtime.peers,
        region,
        interval=settings.scheduler_interval,
        reminder_interval=settings.reminder_interval,
        reminder_days_before=settings.reminder_days_before,
        batch_size=settings.overdue_batch_size,
    )
    engine = automation.Automation(
        runtime.outbox,
        runtime.peers,
        region,
        pipeline_cache_seconds=settings.pipeline_cache_seconds,
    )
    rules_consumer = Consumer(
        runtime.sessions,
        runtime.nats,
        durable=automation.DURABLE,
        subjects=automation.subjects(region),
        handler=engine.handle,
        wants=partial(rules.wants_event, runtime.sessions),
    )
    contacts_consumer = Consumer(
        runtime.sessions,
        runtime.nats,
        durable=privacy.DURABLE,
        subjects=privacy.subjects(region),
        handler=privacy.on_contact_event,
    )
    return [
        partial(rules.RULES.listen, runtime.settings.database_url),
        scheduler.run,
        rules_consumer.run,
        contacts_consumer.run,
    ]


def register(server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
    # Residency proof: tasks per region of their contact (crm_kit.audit).
    runtime.subject_tables.append(SubjectTable("task", "tasks"))
    # Erasure (crm_kit.subject_copies): the staff directory is not a contact's data; a
    # match there (a colleague who is also a contact) is reported, never changed.
    runtime.copy_rules = runtime.copy_rules.extend(keep=("users",))
    # Relocation: a subject's tasks, linked to their moved deals (crm_kit.relocation).
    runtime.owned_tables.append(
        OwnedTable(models.Task, contact_column="contact_id", remap=("deal_id",))
    )
    tasks_pb2_grpc.add_TasksServiceServicer_to_server(TasksServicer(runtime), server)
    directory_pb2_grpc.add_DirectoryServiceServicer_to_server(DirectoryServicer(runtime), server)
    privacy_pb2_grpc.add_PrivacyServiceServicer_to_server(PrivacyServicer(runtime), server)
    # Started by the kit with the outbox relay once the server is up.
    runtime.background.extend(background_jobs(runtime, TasksSettings()))
    ownership = register_ownership(server, runtime, [tasks.reassignable(runtime.outbox)])
    return [
        ownership,
        pb.DESCRIPTOR.services_by_name["TasksService"].full_name,
        directory_pb2.DESCRIPTOR.services_by_name["DirectoryService"].full_name,
        privacy_pb2.DESCRIPTOR.services_by_name["PrivacyService"].full_name,
    ]
