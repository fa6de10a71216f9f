"""API keys of the `integration` role: tenant-scoped, stored as SHA-256, revocable, scoped.

A secret looks like `atk_<region>_<random>`: the region tells the gateway where to
verify it without a lookup; the random part has 256 bits, so a plain SHA-256 is safe.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.integrations.v1 import integrations_pb2 as pb
from crm_integrations import models
from crm_integrations.common import sha256
from crm_integrations.forms import _ts, require_admin
from crm_kit.context import Principal
from crm_kit.errors import FieldViolation, InvalidArgument, NotFound
from crm_kit.ids import new_id

SCOPE = re.compile(r"^(\*|[a-z][a-z-]*:(read|write|\*))$")


def key_to_pb(row: models.ApiKey) -> pb.ApiKey:
    return pb.ApiKey(
        id=row.id,
        name=row.name,
        scopes=row.scopes,
        prefix=row.prefix,
        created_at=_ts(row.created_at),
        revoked_at=_ts(row.revoked_at),
        last_used_at=_ts(row.last_used_at),
        created_by=row.created_by,
    )


async def create_key(
    session: AsyncSession, principal: Principal, region: str, request: pb.CreateApiKeyRequest
) -> pb.CreateApiKeyResponse:
    require_admin(principal)
    violations: list[FieldViolation] = []
    if not request.name.strip():
        violations.append(FieldViolation("name", "required"))
    if not request.scopes:
        violations.append(FieldViolation("scopes", "give at least one scope, e.g. contacts:read"))
    for i, scope in enumerate(request.scopes):
        if not SCOPE.match(scope):
            violations.append(
                FieldViolation(f"scopes[{i}]", "'<resource>:read', '<resource>:write' or '*'")
            )
    if violations:
        raise InvalidArgument(violations)
    secret = f"atk_{region}_{secrets.token_urlsafe(32)}"
    row = models.ApiKey(
        id=new_id(region),
        tenant_id=principal.tenant_id,
        name=request.name.strip()[:200],
        scopes=sorted(set(request.scopes)),
        secret_hash=sha256(secret),
        prefix=secret[:12],
        created_by=principal.user_id,
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return pb.CreateApiKeyResponse(key=key_to_pb(row), secret=secret)


async def list_keys(session: AsyncSession, principal: Principal) -> pb.ListApiKeysResponse:
    require_admin(principal)
    rows = await session.scalars(
        sa.select(models.ApiKey)
        .where(models.ApiKey.tenant_id == principal.tenant_id)
        .order_by(models.ApiKey.id)
    )
    return pb.ListApiKeysResponse(keys=[key_to_pb(r) for r in rows])


async def revoke_key(session: AsyncSession, principal: Principal, key_id: str) -> pb.ApiKey:
    require_admin(principal)
    row = await session.get(models.ApiKey, key_id, with_for_update=True)
    if row is None or row.tenant_id != principal.tenant_id:
        raise NotFound("no such API key")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
    return key_to_pb(row)


async def verify_key(session: AsyncSession, secret: str) -> pb.VerifyApiKeyResponse:
    """The key's tenant and scopes; NotFound for an unknown or revoked secret."""
    row = await session.scalar(
        sa.select(models.ApiKey).where(models.ApiKey.secret_hash == sha256(secret))
    )
    if row is None or row.revoked_at is not None:
        raise NotFound("unknown or revoked API key")
    now = datetime.now(UTC)
    # Written at most once a minute per key, so verification stays a read.
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        row.last_used_at = now
    region = secret.split("_", 2)[1] if secret.count("_") >= 2 else ""
    return pb.VerifyApiKeyResponse(
        tenant_id=row.tenant_id, key_id=row.id, scopes=row.scopes, region=region
    )
