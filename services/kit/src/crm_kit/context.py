"""Who is calling: tenant, user, roles, team and home region, carried in gRPC metadata.

The gateway authenticates the bearer token and forwards the principal as metadata;
services trust it because only the gateway and other services can reach them
(NetworkPolicies). Every query a service runs is scoped by `principal.tenant_id`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ROLES = ("admin", "manager", "sales_rep", "compliance_officer", "integration")

_TENANT = "x-crm-tenant"
_USER = "x-crm-user"
_ROLES = "x-crm-roles"
_TEAM = "x-crm-team"
_HOME_REGION = "x-crm-home-region"
_CROSS_REGION_BASIS = "x-crm-cross-region-basis"
_IDEMPOTENCY_KEY = "x-crm-idempotency-key"


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    user_id: str
    roles: tuple[str, ...] = ()
    team: str = ""
    home_region: str = ""
    # Set by the gateway when the call reaches a region other than the caller's home
    # region: the legal basis of the transfer. The service audits such calls.
    cross_region_basis: str = ""
    idempotency_key: str = ""

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)

    @property
    def sees_whole_tenant(self) -> bool:
        """Admins, compliance officers and integrations see every record of the tenant."""
        return self.has_role("admin", "compliance_officer", "integration")

    def to_metadata(self) -> list[tuple[str, str]]:
        pairs = [
            (_TENANT, self.tenant_id),
            (_USER, self.user_id),
            (_ROLES, ",".join(self.roles)),
            (_TEAM, self.team),
            (_HOME_REGION, self.home_region),
        ]
        if self.cross_region_basis:
            pairs.append((_CROSS_REGION_BASIS, self.cross_region_basis))
        if self.idempotency_key:
            pairs.append((_IDEMPOTENCY_KEY, self.idempotency_key))
        return pairs

    @classmethod
    def from_metadata(cls, metadata: Iterable[tuple[str, str | bytes]] | None) -> Principal | None:
        values: dict[str, str] = {}
        for key, value in metadata or ():
            values[key] = value.decode() if isinstance(value, bytes) else value
        if not values.get(_TENANT) or not values.get(_USER):
            return None
        return cls(
            tenant_id=values[_TENANT],
            user_id=values[_USER],
            roles=tuple(r for r in values.get(_ROLES, "").split(",") if r),
            team=values.get(_TEAM, ""),
            home_region=values.get(_HOME_REGION, ""),
            cross_region_basis=values.get(_CROSS_REGION_BASIS, ""),
            idempotency_key=values.get(_IDEMPOTENCY_KEY, ""),
        )

    def with_changes(self, **changes: str | Sequence[str]) -> Principal:
        from dataclasses import replace

        return replace(self, **changes)  # type: ignore[arg-type]


_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "crm_principal", default=None
)


def current_principal() -> Principal | None:
    return _current.get()


def set_principal(principal: Principal | None) -> contextvars.Token[Principal | None]:
    return _current.set(principal)


def reset_principal(token: contextvars.Token[Principal | None]) -> None:
    _current.reset(token)
