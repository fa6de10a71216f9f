"""/v1/dev: the web application's development sign-in.

Mounted only while the gateway verifies tokens with the development signing key
(CRM_JWT_SECRET, no CRM_JWKS_URL): anyone who can reach the gateway may then mint a
token, which is what a developer's machine wants and a production gateway must never
offer. Production signs in through the identity provider; there these paths are 404.
"""

from __future__ import annotations

from typing import Literal, get_args

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from crm_api.crm.directory.v1 import directory_pb2
from crm_gateway.access import gateway_of
from crm_gateway.problems import invalid
from crm_kit.auth import mint_token
from crm_kit.context import ROLES, Principal

Role = Literal["admin", "manager", "sales_rep", "compliance_officer", "integration"]
assert set(get_args(Role)) == set(ROLES), "keep Role in step with crm_kit.context.ROLES"

TOKEN_TTL_SECONDS = 8 * 3600
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$"


class DevUser(BaseModel):
    model_config = {"extra": "forbid"}  # answers declare every field (OpenAPI)

    id: str
    display_name: str
    email: str
    team: str
    job_roles: list[str]
    time_zone: str
    locale: str


class DevDirectory(BaseModel):
    model_config = {"extra": "forbid"}  # answers declare every field (OpenAPI)

    tenant: str
    data: list[DevUser]
    roles: list[str] = Field(description="every role a development token may carry")
    regions: list[str] = Field(description="the home regions a development token may name")


class DevTokenIn(BaseModel):
    model_config = {"extra": "forbid"}

    tenant: str = Field(pattern=_NAME)
    user: str = Field(pattern=_NAME)
    role: Role
    region: str
    team: str = Field("", max_length=100)


class DevToken(BaseModel):
    model_config = {"extra": "forbid"}  # answers declare every field (OpenAPI)

    token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (the scheme's name)
    expires_in: int


def router(jwt_secret: str) -> APIRouter:
    """The routes, bound to the development key they mint with."""
    routes = APIRouter(prefix="/v1/dev", tags=["development sign-in"])

    @routes.get(
        "/users",
        summary="The tenant's users, for the development sign-in page (development key only)",
        response_model=DevDirectory,
    )
    async def dev_users(
        request: Request, tenant: str = Query("demo", pattern=_NAME)
    ) -> DevDirectory:
        gateway = gateway_of(request)
        region = gateway.regions[0]
        # Nobody is signed in yet: ask the directory as the tenant's administrator.
        principal = Principal(
            tenant_id=tenant, user_id="dev-sign-in", roles=("admin",), home_region=region
        )
        reply = await gateway.clients.stub("tasks", "directory", region).ListUsers(
            directory_pb2.ListUsersRequest(),
            metadata=principal.to_metadata(),
            timeout=gateway.timeout,
        )
        users = [
            DevUser(
                id=u.id,
                display_name=u.display_name,
                email=u.email,
                team=u.team,
                job_roles=list(u.job_roles),
                time_zone=u.time_zone,
                locale=u.locale,
            )
            for u in reply.users
        ]
        return DevDirectory(
            tenant=tenant,
            data=sorted(users, key=lambda u: (u.display_name or u.id).casefold()),
            roles=list(ROLES),
            regions=list(gateway.regions),
        )

    @routes.post(
        "/token",
        summary="Mint a development token for a tenant, user, role and home region "
        "(development key only)",
        response_model=DevToken,
    )
    async def dev_token(body: DevTokenIn, request: Request) -> DevToken:
        regions = gateway_of(request).regions
        if body.region not in regions:
            raise invalid("region", f"unknown region; regions are {', '.join(regions)}")
        token = mint_token(
            jwt_secret,
            tenant=body.tenant,
            user=body.user,
            roles=[body.role],
            home_region=body.region,
            team=body.team,
            ttl_seconds=TOKEN_TTL_SECONDS,
        )
        return DevToken(token=token, expires_in=TOKEN_TTL_SECONDS)

    return routes
