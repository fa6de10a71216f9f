"""Fixtures of the notifications tests: the shared system, with the eu notifications
service restarted to send to an SMTP server (aiosmtpd) and an HTTP provider receiver
that these tests start themselves; gRPC helpers; the movable clock.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import grpc
import nats
import pytest
from aiosmtpd.controller import Controller
from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import Message
from ulid import ULID

from crm_api.crm.contacts.v1 import contacts_pb2, contacts_pb2_grpc
from crm_api.crm.deals.v1 import deals_pb2_grpc
from crm_api.crm.directory.v1 import directory_pb2, directory_pb2_grpc
from crm_api.crm.events.v1 import envelope_pb2
from crm_api.crm.notifications.v1 import notifications_pb2_grpc
from crm_api.crm.tasks.v1 import tasks_pb2_grpc
from crm_cli.cluster import Cluster, Process, free_port
from crm_kit.context import Principal

PROVIDER_SECRET = "test-provider-secret"


class Mailbox:
    """aiosmtpd handler: keeps every message it receives."""

    def __init__(self) -> None:
        self.port = 0
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()
        # Addresses whose next message is held before the server answers, and those of
        # them that have arrived (a test does something while a send is in flight).
        self.held: set[str] = set()
        self.arrived: set[str] = set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = message_from_bytes(
            envelope.original_content or envelope.content, policy=policy.default
        )
        assert isinstance(mail, EmailMessage)
        held = self.held.intersection(envelope.rcpt_tos)
        self.arrived |= held
        # Polled: the test releases it from another thread (another event loop).
        while self.held.intersection(held):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        with self.lock:
            self.messages.append(mail)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]


@dataclass
class Receiver:
    """A real local HTTP provider: records POSTs; answers 503 for failing tenants."""

    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)

    def for_tenant(self, tenant: str) -> list[dict[str, Any]]:
        return [r for r in list(self.requests) if r["json"].get("tenant_id") == tenant]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            payload = json.loads(body)
            receiver.requests.append(
                {"path": self.path, "headers": dict(self.headers), "body": body, "json": payload}
            )
            code = 503 if payload.get("tenant_id") in receiver.failing else 202
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="session")
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    box.port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()


def _restart(cluster: Cluster, process: Process) -> None:
    process.stop()
    process.start(cluster.log_dir)
    deadline = time.monotonic() + 60
    while not process.healthy():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.name} did not restart")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def cluster(system: Cluster, mailbox: Mailbox, receiver: Receiver) -> Iterator[Cluster]:
    """The shared system; notifications-eu sends to this session's SMTP server and HTTP
    receiver, retries after 60 s (doubling), dead-letters after 3 attempts and looks for
    birthdays to greet twice a second."""
    process = next(p for p in system.processes if p.name == "notifications-eu")
    original = dict(process.env)
    provider = {"url": f"http://127.0.0.1:{receiver.port}/chat", "secret": PROVIDER_SECRET}
    process.env.update(
        {
            "CRM_SMTP_PORT": str(mailbox.port),
            "CRM_NOTIFY_PROVIDERS": json.dumps(
                {
                    "chat": provider,
                    "sms": {**provider, "url": f"http://127.0.0.1:{receiver.port}/sms"},
                }
            ),
            # A message held by the test SMTP server (Mailbox.held) is waited for.
            "CRM_SMTP_TIMEOUT": "120",
            "CRM_NOTIFY_MAX_ATTEMPTS": "3",
            "CRM_NOTIFY_BACKOFF_SECONDS": "60",
            "CRM_NOTIFY_DISPATCH_INTERVAL": "0.2",
            "CRM_CAMPAIGN_RATE": "50",
            "CRM_GREETING_INTERVAL": "0.5",
        }
    )
    _restart(system, process)
    try:
        yield system
    finally:
        process.env.clear()
        process.env.update(original)
        _restart(system, process)


@pytest.fixture
def tenant() -> str:
    return f"ntf-{uuid.uuid4().hex[:8]}"


def meta(tenant: str, user: str = "u-admin", role: str = "admin") -> list[tuple[str, str]]:
    return Principal(tenant_id=tenant, user_id=user, roles=(role,), home_region="eu").to_metadata()


@dataclass
class Eu:
    """gRPC stubs of the eu services for one tenant."""

    tenant: str
    channels: list[grpc.aio.Channel]
    directory: Any
    tasks: Any
    contacts: Any
    deals: Any
    notifications: Any

    def meta(self, user: str = "u-admin", role: str = "admin") -> list[tuple[str, str]]:
        return meta(self.tenant, user, role)

    async def user(self, user_id: str, **fields: Any) -> directory_pb2.User:
        values: dict[str, Any] = {
            "display_name": user_id.title(),
            "email": f"{user_id}@{self.tenant}.example",
            "time_zone": "UTC",
            # The whole day, every day: a message to this user is never held.
            "working_hours_start": "00:00",
            "working_hours_end": "24:00",
            "working_days": [1, 2, 3, 4, 5, 6, 7],
            **fields,
        }
        return await self.directory.PutUser(
            directory_pb2.PutUserRequest(user=directory_pb2.User(id=user_id, **values)),
            metadata=self.meta(),
            timeout=10,
        )

    async def contact(self, **fields: Any) -> contacts_pb2.Contact:
        values: dict[str, Any] = {
            "first_name": "Maria",
            "last_name": "Silva",
            "address": contacts_pb2.Address(country="PT"),
            **fields,
        }
        return await self.contacts.CreateContact(
            contacts_pb2.CreateContactRequest(contact=contacts_pb2.Contact(**values)),
            metadata=self.meta(),
            timeout=10,
        )


@pytest.fixture
async def eu(cluster: Cluster, tenant: str) -> AsyncIterator[Eu]:
    ends = cluster.endpoints
    opened = {
        name: grpc.aio.insecure_channel(ends[name]["eu"])
        for name in ("tasks", "contacts", "deals", "notifications")
    }
    yield Eu(
        tenant,
        list(opened.values()),
        directory_pb2_grpc.DirectoryServiceStub(opened["tasks"]),
        tasks_pb2_grpc.TasksServiceStub(opened["tasks"]),
        contacts_pb2_grpc.ContactsServiceStub(opened["contacts"]),
        deals_pb2_grpc.DealsServiceStub(opened["deals"]),
        notifications_pb2_grpc.NotificationsServiceStub(opened["notifications"]),
    )
    for channel in opened.values():
        await channel.close()


@pytest.fixture
def eventually() -> Callable[..., Awaitable[Any]]:
    async def wait(predicate: Callable[[], Any], *, within: float = 60.0, what: str = "") -> Any:
        deadline = time.monotonic() + within
        while True:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            if time.monotonic() >= deadline:
                pytest.fail(f"timed out after {within:.0f}s waiting for {what}")
            await asyncio.sleep(0.1)

    return wait


def make_envelope(tenant: str, event_type: str, payload: Message, actor: str = "tests") -> Any:
    """An Envelope as a service's outbox writes it (region eu)."""
    packed = any_pb2.Any()
    packed.Pack(payload)
    occurred = timestamp_pb2.Timestamp()
    occurred.FromDatetime(datetime.now(UTC))
    return envelope_pb2.Envelope(
        event_id=str(ULID()),
        event_type=event_type,
        tenant_id=tenant,
        region="eu",
        occurred_at=occurred,
        actor_id=actor,
        schema_version=1,
        payload=packed,
    )


@pytest.fixture
def envelope() -> Callable[..., Any]:
    """envelope(tenant, event_type, payload, actor="tests")."""
    return make_envelope


@pytest.fixture
def provider_secret() -> str:
    return PROVIDER_SECRET


@pytest.fixture
def publish(cluster: Cluster) -> Callable[..., Awaitable[None]]:
    """publish(envelope, msg_id=None): onto crm.eu.<event_type>, as NATS would redeliver."""

    async def send(event: Any, msg_id: str | None = None) -> None:
        client = await nats.connect(cluster.nats.url)
        try:
            js = client.jetstream(timeout=5)
            await js.publish(
                f"crm.{event.region}.{event.event_type}",
                event.SerializeToString(),
                headers={"Nats-Msg-Id": msg_id or event.event_id},
            )
        finally:
            await client.close()

    return send


@pytest.fixture
def db(cluster: Cluster) -> Callable[..., Awaitable[list[Any]]]:
    """db(sql, *args) -> rows of notifications_eu."""

    async def query(sql: str, *args: object) -> list[Any]:
        connection = await asyncpg.connect(cluster.postgres.dsn("notifications_eu"))
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()

    return query


@pytest.fixture
def attempt_log(
    db: Callable[..., Awaitable[list[Any]]], eventually: Callable[..., Awaitable[Any]]
) -> Callable[[Any, int], Awaitable[list[str]]]:
    """attempt_log(delivery_id, count) -> the outcomes of a delivery's attempts, once
    `count` are logged. The dispatcher records an attempt after the SMTP server has taken
    the message, so the mailbox can show it a moment before the log does."""

    async def outcomes(delivery_id: Any, count: int) -> list[str]:
        async def logged() -> list[str] | None:
            rows = await db(
                "SELECT outcome FROM delivery_attempts WHERE delivery_id=$1 ORDER BY id",
                delivery_id,
            )
            return [row["outcome"] for row in rows] if len(rows) >= count else None

        return await eventually(logged, what=f"{count} attempts logged")  # type: ignore[no-any-return]

    return outcomes
