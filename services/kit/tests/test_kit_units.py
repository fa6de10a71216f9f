"""Small units of the kit: ids, tokens, the principal in metadata, error statuses, and
idempotency keys (against the real database)."""

from __future__ import annotations

import asyncio
import base64
import time
from urllib.parse import quote

import grpc
import jwt
import pytest
import sqlalchemy as sa
from google.protobuf import wrappers_pb2
from google.rpc import code_pb2, error_details_pb2
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_kit import ids
from crm_kit.auth import AUDIENCE, DEV_ISSUER, InvalidToken, TokenVerifier, mint_token
from crm_kit.context import Principal
from crm_kit.db import idempotency_table
from crm_kit.errors import Conflict, FieldViolation, InvalidArgument, NotFound, Unavailable
from crm_kit.grpc_server import field_violations, parse_status_details, status_for
from crm_kit.requests import idempotent

REGION = "t3"
REGIONS = ("eu", "br", "us")
SECRET = "kit-tests-signing-key-0123456789abcdef"  # HS256 wants 32+ bytes


# --- ids ---------------------------------------------------------------------------


def test_new_id_carries_its_region() -> None:
    first, second = ids.new_id("eu"), ids.new_id("eu")
    assert first.startswith("eu_")
    assert len(first) == len("eu_") + 26
    assert first != second
    assert ids.is_valid_id(first)
    assert ids.region_of(first) == "eu"
    assert ids.region_of(ids.new_id("br")) == "br"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "eu",
        "eu_",
        "01JD8X3ZQK6Y0V6N3H2B4C5D6E",  # a ULID without its region
        "EU_01JD8X3ZQK6Y0V6N3H2B4C5D6E",  # region is lower case
        "eu-01JD8X3ZQK6Y0V6N3H2B4C5D6E",
        "eu_01JD8X3ZQK6Y0V6N3H2B4C5D6",  # 25 characters
        "eu_01JD8X3ZQK6Y0V6N3H2B4C5D6EX",  # 27 characters
        "eu_01JD8X3ZQK6Y0V6N3H2B4C5D6U",  # U is not Crockford base32
        "x_01JD8X3ZQK6Y0V6N3H2B4C5D6E",  # region too short
        " eu_01JD8X3ZQK6Y0V6N3H2B4C5D6E",
    ],
)
def test_region_of_rejects_malformed_ids_naming_the_field(bad: str) -> None:
    assert not ids.is_valid_id(bad)
    with pytest.raises(InvalidArgument) as raised:
        ids.region_of(bad, field="company_ids[2]")
    [violation] = raised.value.violations
    assert violation.field == "company_ids[2]"
    assert "malformed id" in violation.description
    assert "company_ids[2]" in str(raised.value)


def test_region_of_names_id_by_default() -> None:
    with pytest.raises(InvalidArgument) as raised:
        ids.region_of("nope")
    assert [v.field for v in raised.value.violations] == ["id"]


# --- auth --------------------------------------------------------------------------


def verifier() -> TokenVerifier:
    return TokenVerifier(secret=SECRET, regions=REGIONS)


def test_minted_token_verifies_to_its_principal() -> None:
    token = mint_token(
        SECRET,
        tenant="acme",
        user="u_1",
        roles=["manager", "sales_rep"],
        home_region="br",
        team="north",
    )
    principal = verifier().verify(token)
    assert principal == Principal(
        tenant_id="acme",
        user_id="u_1",
        roles=("manager", "sales_rep"),
        team="north",
        home_region="br",
    )


def test_expired_token_is_refused() -> None:
    token = mint_token(
        SECRET, tenant="acme", user="u_1", roles=["admin"], home_region="eu", ttl_seconds=-60
    )
    with pytest.raises(InvalidToken, match="expired"):
        verifier().verify(token)


def test_token_signed_with_another_key_is_refused() -> None:
    token = mint_token(
        "another-signing-key-0123456789abcdef",
        tenant="acme",
        user="u_1",
        roles=["admin"],
        home_region="eu",
    )
    with pytest.raises(InvalidToken, match=r"[Ss]ignature"):
        verifier().verify(token)


def test_token_for_another_audience_is_refused() -> None:
    now = int(time.time())
    claims = {
        "iss": DEV_ISSUER,
        "sub": "u_1",
        "tenant": "acme",
        "roles": ["admin"],
        "region": "eu",
        "iat": now,
        "exp": now + 600,
    }
    other = jwt.encode({**claims, "aud": "some-other-app"}, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken, match=r"[Aa]udience"):
        verifier().verify(other)
    missing = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        verifier().verify(missing)
    # The same claims with our audience pass: only the audience was wrong.
    ours = jwt.encode({**claims, "aud": AUDIENCE}, SECRET, algorithm="HS256")
    assert verifier().verify(ours).user_id == "u_1"


def test_token_from_an_unknown_region_is_refused() -> None:
    token = mint_token(SECRET, tenant="acme", user="u_1", roles=["admin"], home_region="mars")
    with pytest.raises(InvalidToken, match="mars"):
        verifier().verify(token)
    # A verifier that was not told the regions does not judge them.
    assert TokenVerifier(secret=SECRET).verify(token).home_region == "mars"


def test_token_without_a_known_role_is_refused() -> None:
    now = int(time.time())
    claims = {
        "iss": DEV_ISSUER,
        "aud": AUDIENCE,
        "sub": "u_1",
        "tenant": "acme",
        "region": "eu",
        "exp": now + 600,
    }
    token = jwt.encode({**claims, "roles": ["root"]}, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        verifier().verify(token)


def test_minting_an_unknown_role_raises() -> None:
    with pytest.raises(ValueError, match="superuser"):
        mint_token(SECRET, tenant="acme", user="u_1", roles=["superuser"], home_region="eu")


def test_verifier_needs_a_key_source() -> None:
    with pytest.raises(ValueError):
        TokenVerifier()


# --- principal in gRPC metadata ----------------------------------------------------


def test_principal_metadata_round_trip() -> None:
    principal = Principal(
        tenant_id="acme",
        user_id="u_1",
        roles=("manager", "compliance_officer"),
        team="north",
        home_region="eu",
        cross_region_basis="scc-2021",
        idempotency_key="key-123",
    )
    metadata = principal.to_metadata()
    assert all(key == key.lower() for key, _ in metadata)  # gRPC metadata keys
    assert Principal.from_metadata(metadata) == principal
    # As a gRPC server sees it: bytes values, and other headers mixed in.
    wire = [("user-agent", "grpc-python"), *((k, v.encode()) for k, v in metadata)]
    assert Principal.from_metadata(wire) == principal


def test_principal_metadata_minimal_and_missing() -> None:
    minimal = Principal(tenant_id="acme", user_id="u_1")
    keys = [key for key, _ in minimal.to_metadata()]
    assert "x-crm-cross-region-basis" not in keys
    assert "x-crm-idempotency-key" not in keys
    assert Principal.from_metadata(minimal.to_metadata()) == minimal
    assert Principal.from_metadata(None) is None
    assert Principal.from_metadata([("x-crm-tenant", "acme")]) is None  # no user
    assert Principal.from_metadata([("x-crm-user", "u_1")]) is None  # no tenant


# --- domain errors as gRPC statuses ------------------------------------------------


def test_invalid_argument_maps_to_bad_request_details() -> None:
    violations = [
        FieldViolation("emails[1]", "not an email address"),
        FieldViolation("owner_id", "malformed id"),
    ]
    code, message, trailer = status_for(InvalidArgument(violations))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert "emails[1]: not an email address" in message
    status = parse_status_details(trailer)
    assert status is not None
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert status.message == message
    assert field_violations(status) == violations
    [detail] = status.details
    assert detail.Is(error_details_pb2.BadRequest.DESCRIPTOR)


def test_an_error_echoing_huge_input_fits_grpc_metadata() -> None:
    """gRPC refuses trailers over 8 KiB ("metadata size exceeds hard limit"): an error that
    quotes a 10,000-character value, or names 1,000 fields, must still arrive."""
    huge = "Ж" * 10_000
    many = [FieldViolation(f"emails[{i}]", f"not an email address: {huge}") for i in range(1000)]
    code, message, trailer = status_for(InvalidArgument([FieldViolation(huge, huge), *many]))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    size = len(quote(message.encode(), safe="")) + len(base64.b64encode(trailer[0][1]))
    assert size < 8 * 1024
    status = parse_status_details(trailer)
    assert status is not None
    shown = field_violations(status)
    assert shown[1].field == "emails[0]" and shown[1].description.endswith("\u2026")
    assert "more invalid field(s) not shown" in message


def test_other_errors_map_to_their_codes() -> None:
    assert status_for(NotFound("contact"))[0] is grpc.StatusCode.NOT_FOUND
    code, _, trailer = status_for(Conflict("stale"))
    assert code is grpc.StatusCode.ABORTED
    assert field_violations(parse_status_details(trailer)) == []
    code, _, trailer = status_for(Unavailable("database unavailable"))
    assert code is grpc.StatusCode.UNAVAILABLE
    status = parse_status_details(trailer)
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    assert retry.retry_delay.seconds > 0
    assert parse_status_details(None) is None
    assert parse_status_details([("other", b"x")]) is None


# --- idempotency keys (real database) ----------------------------------------------

uses_db = pytest.mark.usefixtures("clean_db")


class Work:
    """A unit of work that writes a row and answers with a fresh id, counting its runs."""

    def __init__(self, rows: sa.Table, barrier: asyncio.Barrier | None = None) -> None:
        self.rows = rows
        self.barrier = barrier
        self.runs = 0

    async def __call__(self, session: AsyncSession) -> wrappers_pb2.StringValue:
        self.runs += 1
        answer = ids.new_id(REGION)
        await session.execute(sa.insert(self.rows).values(source="idempotent", event_id=answer))
        if self.barrier is not None:
            # Both calls are inside their transaction before either commits. An
            # implementation that serialises same-key calls instead is fine too.
            try:
                async with asyncio.timeout(2):
                    await self.barrier.wait()
            except (TimeoutError, asyncio.BrokenBarrierError):
                pass
        return wrappers_pb2.StringValue(value=answer)


async def committed(sessions: async_sessionmaker[AsyncSession], rows: sa.Table) -> list[str]:
    async with sessions() as session:
        return list((await session.execute(sa.select(rows.c.event_id))).scalars())


def caller(key: str, tenant: str = "acme") -> Principal:
    return Principal(tenant_id=tenant, user_id="u_1", roles=("admin",), idempotency_key=key)


METHOD = "/crm.contacts.v1.Contacts/CreateContact"


@uses_db
async def test_same_key_same_request_returns_the_stored_response(
    sessions: async_sessionmaker[AsyncSession], rows: sa.Table
) -> None:
    work = Work(rows)
    request = wrappers_pb2.StringValue(value="Ada")
    first = await idempotent(
        sessions, caller("k1"), METHOD, request, wrappers_pb2.StringValue, work
    )
    again = await idempotent(
        sessions, caller("k1"), METHOD, request, wrappers_pb2.StringValue, work
    )
    assert again == first
    assert work.runs == 1
    assert await committed(sessions, rows) == [first.value]

    # Another tenant's identical key is another key.
    other = await idempotent(
        sessions, caller("k1", tenant="globex"), METHOD, request, wrappers_pb2.StringValue, work
    )
    assert other != first
    assert work.runs == 2


@uses_db
async def test_same_key_different_request_is_a_conflict(
    sessions: async_sessionmaker[AsyncSession], rows: sa.Table
) -> None:
    work = Work(rows)
    request = wrappers_pb2.StringValue(value="Ada")
    await idempotent(sessions, caller("k2"), METHOD, request, wrappers_pb2.StringValue, work)
    with pytest.raises(Conflict):
        await idempotent(
            sessions,
            caller("k2"),
            METHOD,
            wrappers_pb2.StringValue(value="Grace"),
            wrappers_pb2.StringValue,
            work,
        )
    with pytest.raises(Conflict):
        await idempotent(
            sessions,
            caller("k2"),
            "/crm.contacts.v1.Contacts/UpdateContact",
            request,
            wrappers_pb2.StringValue,
            work,
        )
    assert work.runs == 1
    assert len(await committed(sessions, rows)) == 1


@uses_db
async def test_without_a_key_every_call_does_the_work(
    sessions: async_sessionmaker[AsyncSession], rows: sa.Table
) -> None:
    work = Work(rows)
    request = wrappers_pb2.StringValue(value="Ada")
    for _ in range(2):
        await idempotent(sessions, caller(""), METHOD, request, wrappers_pb2.StringValue, work)
    assert work.runs == 2
    assert len(await committed(sessions, rows)) == 2


@uses_db
async def test_concurrent_calls_with_one_key_commit_the_work_once(
    sessions: async_sessionmaker[AsyncSession], rows: sa.Table
) -> None:
    work = Work(rows, asyncio.Barrier(2))
    request = wrappers_pb2.StringValue(value="Ada")
    answers = await asyncio.wait_for(
        asyncio.gather(
            *(
                idempotent(sessions, caller("k3"), METHOD, request, wrappers_pb2.StringValue, work)
                for _ in range(2)
            )
        ),
        timeout=15,
    )
    assert answers[0] == answers[1]
    assert await committed(sessions, rows) == [answers[0].value]
    async with sessions() as session:
        keys = (await session.execute(sa.select(idempotency_table.c.key))).scalars().all()
    assert keys == ["k3"]


# --- the movable clock ---------------------------------------------------------------


def test_every_move_of_the_shared_clock_is_seen_at_once(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Moves faster than the file system's timestamp granularity (several within one
    mtime tick) are each seen, and a reader never sees a half-written file."""
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from crm_kit import clock

    path = Path(str(tmp_path)) / "clock-offset"
    monkeypatch.setenv("CRM_CLOCK_FILE", str(path))
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)
    for hours in range(1, 200):
        clock.set_offset(path, timedelta(hours=hours))
        seen = clock.now() - datetime.now(UTC)
        assert abs(seen - timedelta(hours=hours)) < timedelta(seconds=5), hours
    clock.set_offset(path, timedelta(days=-1))  # back, as a test's teardown does
    assert clock.now().date() == (datetime.now(UTC) - timedelta(days=1)).date()
    assert clock.offset(path) == timedelta(days=-1)
