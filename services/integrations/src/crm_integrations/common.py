"""What the integrations features share: calls to the region's contacts, deals and tasks
services (as the tenant's system principal), contact matching and value normalization."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import phonenumbers
from email_validator import EmailNotValidError, validate_email

from crm_api.crm.contacts.v1 import contacts_pb2 as cpb
from crm_api.crm.contacts.v1 import contacts_pb2_grpc
from crm_api.crm.deals.v1 import deals_pb2_grpc
from crm_api.crm.directory.v1 import directory_pb2_grpc
from crm_api.crm.tasks.v1 import tasks_pb2_grpc
from crm_kit.context import Principal
from crm_kit.errors import FieldViolation, InvalidArgument, NotFound, Unavailable
from crm_kit.grpc_server import field_violations, parse_status_details
from crm_kit.peers import Peers

RETRYABLE = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
)


def acting(tenant_id: str, region: str, key: str = "", user: str = "integrations") -> Principal:
    """The principal integrations acts as: it may assign any owner, like an admin."""
    return Principal(
        tenant_id=tenant_id,
        user_id=user,
        roles=("integration",),
        home_region=region,
        idempotency_key=key,
    )


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str) -> str:
    return f"{prefix}{secrets.token_urlsafe(32)}"


def backoff(attempts: int, base: float, cap: float) -> timedelta:
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), cap))


def utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def translate(error: grpc.aio.AioRpcError, what: str) -> Exception:
    """A peer's gRPC error as our own domain error (retryable ones become Unavailable)."""
    code = error.code()
    if code in RETRYABLE:
        return Unavailable(f"{what} is unavailable: {error.details()}")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        violations = field_violations(parse_status_details(error.trailing_metadata()))
        return InvalidArgument(violations or [FieldViolation(what, error.details() or "")])
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(f"{what}: {error.details()}")
    return InvalidArgument.single(what, error.details() or code.name)


class Downstream:
    """gRPC stubs of the region's contacts, deals and tasks services."""

    def __init__(self, peers: Peers) -> None:
        self.peers = peers

    @property
    def contacts(self) -> Any:
        return self.peers.stub("contacts", contacts_pb2_grpc.ContactsServiceStub)

    @property
    def deals(self) -> Any:
        return self.peers.stub("deals", deals_pb2_grpc.DealsServiceStub)

    @property
    def tasks(self) -> Any:
        return self.peers.stub("tasks", tasks_pb2_grpc.TasksServiceStub)

    @property
    def directory(self) -> Any:
        return self.peers.stub("tasks", directory_pb2_grpc.DirectoryServiceStub)

    async def call(
        self,
        what: str,
        method: Any,
        request: Any,
        principal: Principal,
        deadline: float | None = None,
    ) -> Any:
        try:
            return await self.peers.call(method, request, principal, deadline)
        except grpc.aio.AioRpcError as error:
            raise translate(error, what) from error

    async def find_contacts(
        self, principal: Principal, *, email: str = "", phone: str = ""
    ) -> list[cpb.Contact]:
        """Live contacts with exactly this email or this E.164 phone."""
        query = email or phone
        if not query:
            return []
        reply = await self.call(
            "contacts",
            self.contacts.ListContacts,
            cpb.ListContactsRequest(query=query, page_size=20),
            principal.with_changes(idempotency_key=""),
        )
        found = []
        for hit in reply.hits:
            contact = hit.contact
            if (email and email in contact.emails) or (phone and phone in contact.phones):
                found.append(contact)
        # Oldest first: the earliest record survives a merge.
        found.sort(key=lambda c: c.id)
        return found


def normalize_email(value: str) -> str:
    try:
        return str(validate_email(value.strip(), check_deliverability=False).normalized).lower()
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc


def normalize_phone(value: str, country: str = "") -> str:
    """E.164 from "+7 ...", "8 ..." or a local number read in `country`."""
    text = value.strip()
    region = country.upper() if country.upper() in phonenumbers.SUPPORTED_REGIONS else None
    digits = "".join(ch for ch in text if ch.isdigit())
    attempts = [text]
    if not text.startswith("+") and digits.startswith("00"):
        attempts.append("+" + digits[2:])
    for attempt in attempts:
        try:
            number = phonenumbers.parse(attempt, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    if not text.startswith("+") and region is None:
        raise ValueError("add a country code (+..) or a country")
    raise ValueError("not a valid phone number")
