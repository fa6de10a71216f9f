"""Authentication, the tenant's cross-region access policy, and call metadata.

A user works in their home region. Reaching another region is a transfer of personal
data: it needs an access grant in the tenant's policy (with its legal basis), and the
target service writes an audit record for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import grpc
from fastapi import Depends, Header, Request

from crm_api.crm.compliance.v1 import privacy_requests_pb2
from crm_api.crm.policy.v1 import policy_pb2
from crm_gateway.clients import Clients
from crm_gateway.problems import Problem, invalid
from crm_kit.auth import InvalidToken, TokenVerifier
from crm_kit.context import Principal
from crm_kit.ids import is_valid_id

log = logging.getLogger(__name__)
# Roles whose logins the audit trail records.
ELEVATED_ROLES = ("admin", "compliance_officer")


@dataclass
class Caller:
    """The authenticated principal plus what the gateway needs to route its calls."""

    principal: Principal
    gateway: Gateway

    async def metadata(self, region: str, idempotency_key: str = "") -> list[tuple[str, str]]:
        principal = await self.gateway.principal_in(self.principal, region)
        if idempotency_key:
            principal = principal.with_changes(idempotency_key=idempotency_key)
        return principal.to_metadata()

    def stub(self, service: str, name: str, region: str) -> Any:
        return self.gateway.clients.stub(service, name, region)

    @property
    def timeout(self) -> float:
        return self.gateway.timeout

    async def accessible_regions(self) -> list[str]:
        """The caller's home region plus the regions the tenant's access policy grants."""
        home = self.principal.home_region
        policy = await self.gateway.policy(self.principal)
        granted = [g.to_region for g in policy.access_grants if g.from_region == home]
        return [r for r in self.gateway.regions if r == home or r in granted]

    def regions_param(self, value: str | None, **record_ids: str) -> list[str]:
        """`region=eu,br` of a list request; defaults to the region of the first record
        id filtered on (`deal_id=br_…`: a deal's tasks live in its region, which its id
        names), else the caller's home region."""
        if not value:
            for field, record_id in record_ids.items():
                if record_id:
                    return [region_of_id(record_id, field)]
            return [self.principal.home_region]
        regions = [part.strip() for part in value.split(",") if part.strip()]
        unknown = [r for r in regions if r not in self.gateway.regions]
        if unknown or not regions:
            raise invalid(
                "region",
                f"unknown region(s) {unknown}; regions are {', '.join(self.gateway.regions)}",
            )
        return list(dict.fromkeys(regions))


class Gateway:
    def __init__(
        self,
        clients: Clients,
        verifier: TokenVerifier,
        regions: list[str],
        timeout: float,
        policy_cache_seconds: float,
    ) -> None:
        self.clients = clients
        self.verifier = verifier
        self.regions = regions
        self.timeout = timeout
        self.policy_cache_seconds = policy_cache_seconds
        self._policies: dict[str, tuple[float, policy_pb2.TenantPolicy]] = {}
        # Tokens with an elevated role whose login this replica has recorded.
        self._elevated_seen: set[str] = set()
        self._api_keys: dict[str, tuple[float, Principal, tuple[str, ...]]] = {}

    async def record_elevated_login(self, principal: Principal, token: str) -> None:
        """Audits a login with an elevated role (admin, compliance officer) once per token
        per gateway replica; contacts also skips a token it has already recorded, so
        several replicas leave one record. A failure is logged, never blocks the call."""
        if not principal.has_role(*ELEVATED_ROLES) or not principal.home_region:
            return
        token_hash = hashlib.sha256(token.encode()).hexdigest()
        if token_hash in self._elevated_seen:
            return
        try:
            stub = self.clients.stub("contacts", "privacy_requests", principal.home_region)
            await stub.RecordElevatedLogin(
                privacy_requests_pb2.RecordElevatedLoginRequest(
                    token_hash=token_hash, roles=list(principal.roles)
                ),
                metadata=principal.to_metadata(),
                timeout=self.timeout,
            )
        except (grpc.aio.AioRpcError, Problem):
            log.warning("could not record an elevated login; retried on the next request")
            return
        if len(self._elevated_seen) > 100_000:
            self._elevated_seen.clear()
        self._elevated_seen.add(token_hash)

    async def policy(self, principal: Principal) -> policy_pb2.TenantPolicy:
        """The tenant's policy as stored in the caller's home region (briefly cached)."""
        cached = self._policies.get(principal.tenant_id)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        stub = self.clients.stub("contacts", "policy", principal.home_region)
        policy: policy_pb2.TenantPolicy = await stub.GetTenantPolicy(
            policy_pb2.GetTenantPolicyRequest(),
            metadata=principal.to_metadata(),
            timeout=self.timeout,
        )
        self._policies[principal.tenant_id] = (time.monotonic() + self.policy_cache_seconds, policy)
        return policy

    async def api_key(self, secret: str) -> tuple[Principal, tuple[str, ...]]:
        """The `integration` principal of an API key (`atk_<region>_...`) and its scopes,
        verified by the integrations service of the key's region and cached briefly (a
        revoked key stops working within API_KEY_CACHE_SECONDS)."""
        import hashlib

        from crm_api.crm.integrations.v1 import integrations_pb2

        digest = hashlib.sha256(secret.encode()).hexdigest()
        cached = self._api_keys.get(digest)
        if cached and cached[0] > time.monotonic():
            return cached[1], cached[2]
        parts = secret.split("_", 2)
        region = parts[1] if len(parts) == 3 and parts[0] == "atk" else ""
        if region not in self.regions:
            raise _unauthorized("malformed API key")
        try:
            reply = await self.clients.stub("integrations", "integrations", region).VerifyApiKey(
                integrations_pb2.VerifyApiKeyRequest(secret=secret), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise _unauthorized("unknown or revoked API key") from error
            raise
        principal = Principal(
            tenant_id=reply.tenant_id,
            user_id=f"apikey-{reply.key_id}",
            roles=("integration",),
            home_region=region,
        )
        if len(self._api_keys) > 10_000:
            self._api_keys.clear()
        entry = (time.monotonic() + API_KEY_CACHE_SECONDS, principal, tuple(reply.scopes))
        self._api_keys[digest] = entry
        return principal, entry[2]

    def forget_policy(self, tenant_id: str) -> None:
        self._policies.pop(tenant_id, None)

    async def principal_in(self, principal: Principal, region: str) -> Principal:
        """The principal to send to `region`, or 403 if the policy does not allow it."""
        if region not in self.regions:
            raise invalid("region", f"unknown region {region!r}")
        if region == principal.home_region:
            return principal
        policy = await self.policy(principal)
        for grant in policy.access_grants:
            if grant.from_region == principal.home_region and grant.to_region == region:
                return principal.with_changes(cross_region_basis=grant.legal_basis)
        raise Problem(
            403,
            "Forbidden",
            f"users whose home region is {principal.home_region} may not access data stored in "
            f"{region}: the tenant's access policy has no grant for it",
        )


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def current_gateway(request: Request) -> Gateway:
    """`gateway_of` as a dependency: async, since a sync one runs in the thread pool (a
    thread hop per request)."""
    return gateway_of(request)


API_KEY_CACHE_SECONDS = 5.0


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def require_scope(scopes: tuple[str, ...], method: str, path: str) -> None:
    """API keys carry scopes `<resource>:read|write` (`*` for all), resource being the
    first path segment after /v1 (contacts, deals, forms, imports, exports, ...)."""
    parts = path.strip("/").split("/")
    resource = parts[1] if len(parts) > 1 else ""
    access = "read" if method in ("GET", "HEAD", "OPTIONS") else "write"
    if not {"*", f"{resource}:*", f"{resource}:{access}"} & set(scopes):
        raise Problem(403, "Forbidden", f"this API key lacks the scope {resource}:{access}")


async def caller(
    request: Request,
    authorization: str | None = Header(default=None, include_in_schema=False),
    x_api_key: str | None = Header(default=None, alias="X-API-Key", include_in_schema=False),
    gateway: Gateway = Depends(current_gateway),
) -> Caller:
    bearer = (authorization or "").partition(" ")[2].strip()
    secret = x_api_key or (bearer if bearer.startswith("atk_") else "")
    if secret:
        principal, scopes = await gateway.api_key(secret.strip())
        require_scope(scopes, request.method, request.url.path)
        return Caller(principal=principal, gateway=gateway)
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Problem(
            401,
            "Unauthorized",
            "send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    token = authorization.split(" ", 1)[1].strip()
    try:
        if gateway.verifier.fetches_keys:
            # A key not yet cached is fetched over HTTP: not on the event loop.
            principal = await asyncio.to_thread(gateway.verifier.verify, token)
        else:
            principal = gateway.verifier.verify(token)
    except InvalidToken as exc:
        raise Problem(
            401, "Unauthorized", f"invalid token: {exc}", headers={"WWW-Authenticate": "Bearer"}
        ) from exc
    await gateway.record_elevated_login(principal, token)
    return Caller(principal=principal, gateway=gateway)


def region_of_id(record_id: str, field: str = "id") -> str:
    if not is_valid_id(record_id):
        raise invalid(field, f"malformed id {record_id!r}: expected '<region>_<ULID>'")
    return record_id.split("_", 1)[0]


def idempotency_key(value: str | None) -> str:
    if value is None:
        return ""
    if not 1 <= len(value) <= 200 or not value.isprintable():
        raise invalid("Idempotency-Key", "1 to 200 printable characters")
    return value


async def in_every_region(who: Caller, call: Any) -> list[Any]:
    """Runs `call(region, metadata)` in every region at once: for tenant configuration
    (pipelines, rules, users, rates) that holds no customer data and every cell needs."""
    import asyncio

    metadata = who.principal.to_metadata()
    return list(await asyncio.gather(*(call(r, metadata) for r in who.gateway.regions)))


async def delete_in_every_region(who: Caller, call: Any) -> Any:
    """Deletes tenant configuration with `call(region, metadata)`: in the caller's home
    region first, whose NOT_FOUND is the answer (another tenant's record, or none), then
    in every other region at once, where a copy already gone is no error."""
    metadata = who.principal.to_metadata()
    home = who.principal.home_region
    deleted = await call(home, metadata)

    async def elsewhere(region: str) -> None:
        try:
            await call(region, metadata)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise

    await asyncio.gather(*(elsewhere(r) for r in who.gateway.regions if r != home))
    return deleted


def require_role(who: Caller, *roles: str) -> None:
    if not who.principal.has_role(*roles):
        from crm_gateway.problems import Problem

        raise Problem(403, "Forbidden", f"this needs one of the roles: {', '.join(roles)}")
