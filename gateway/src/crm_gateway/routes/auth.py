"""/v1/auth/config: how the web application signs in, read before anyone has a token.

With an identity provider (CRM_JWKS_URL, CRM_JWT_ISSUER and CRM_OIDC_CLIENT_ID) the
application signs in there with the authorization code flow and PKCE; with the
development key it offers the development sign-in (/v1/dev). Nothing here is secret:
a public client has no secret, and the issuer publishes the rest.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from crm_gateway.settings import GatewaySettings


class OidcClient(BaseModel):
    model_config = {"extra": "forbid"}  # answers declare every field (OpenAPI)

    issuer: str = Field(description="the provider's issuer; its discovery document is below it")
    client_id: str = Field(description="the web application's public client id there")
    scope: str
    bearer: Literal["access_token", "id_token"] = Field(
        description="the token the application sends to this API"
    )


class SignInConfig(BaseModel):
    model_config = {"extra": "forbid"}  # answers declare every field (OpenAPI)

    mode: Literal["oidc", "development", "none"] = Field(
        description="oidc: the identity provider below; development: /v1/dev mints tokens; "
        "none: tokens come from elsewhere (API keys, a provider not set up for the web)"
    )
    oidc: OidcClient | None = None


def sign_in_config(config: GatewaySettings) -> SignInConfig:
    if config.jwks_url and config.oidc_client_id:
        return SignInConfig(
            mode="oidc",
            oidc=OidcClient(
                issuer=config.jwt_issuer,
                client_id=config.oidc_client_id,
                scope=config.oidc_scope,
                bearer=config.oidc_bearer,
            ),
        )
    return SignInConfig(mode="development" if config.development_sign_in else "none")


def router(config: GatewaySettings) -> APIRouter:
    routes = APIRouter(prefix="/v1/auth", tags=["sign-in"])
    answer = sign_in_config(config)

    @routes.get(
        "/config",
        response_model=SignInConfig,
        summary="How the web application signs in (no token needed)",
    )
    async def get_sign_in_config() -> SignInConfig:
        return answer

    return routes
