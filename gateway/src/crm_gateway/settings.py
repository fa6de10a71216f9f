"""Gateway configuration from the environment (prefix CRM_)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from crm_kit.settings import CommonSettings


class GatewaySettings(CommonSettings):
    http_host: str = "0.0.0.0"
    http_port: int = 8000
    # Development signing key; production sets jwks_url instead.
    jwt_secret: str = ""
    jwks_url: str = ""
    # The identity provider's issuer (`iss`), required with jwks_url.
    jwt_issuer: str = ""
    # The web application's sign-in at that provider (authorization code with PKCE): its
    # public client id there, the scopes it asks for, and which token it sends to the
    # API: the access token, or the ID token for a provider whose access tokens are
    # opaque (either must carry aud "atlas-crm" and the tenant, roles and region claims).
    oidc_client_id: str = ""
    oidc_scope: str = "openid profile email"
    oidc_bearer: Literal["access_token", "id_token"] = "access_token"
    # {"contacts": {"eu": "host:port", ...}, ...}
    service_endpoints: dict[str, dict[str, str]] = Field(default_factory=dict)
    # Deadline of every gRPC call, seconds.
    grpc_timeout: float = 5.0
    max_body_bytes: int = 1_048_576
    # Import uploads are streamed on in chunks, so they may be far larger.
    max_import_bytes: int = 500 * 1_048_576
    policy_cache_seconds: float = 30.0
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (comma-separated
    # addresses or CIDRs: the Ingress). Empty: none, the connecting peer is the client.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            for item in value:
                # A typo must stop the start, not silently trust nobody (or everybody).
                ipaddress.ip_network(str(item), strict=False)
        return value

    # The built web application (web/dist) to serve at `/`; empty: the API only.
    web_dir: str = ""

    @property
    def development_sign_in(self) -> bool:
        """Tokens are checked with the development key, so the dev sign-in may mint them."""
        return bool(self.jwt_secret) and not self.jwks_url
