"""Gateway configuration from the environment (prefix CRM_)."""

from __future__ import annotations

from pydantic import Field

from crm_kit.settings import CommonSettings


class GatewaySettings(CommonSettings):
    http_host: str = "0.0.0.0"
    http_port: int = 8000
    # Development signing key; production sets jwks_url instead.
    jwt_secret: str = ""
    jwks_url: str = ""
    # {"contacts": {"eu": "host:port", ...}, ...}
    service_endpoints: dict[str, dict[str, str]] = Field(default_factory=dict)
    # Deadline of every gRPC call, seconds.
    grpc_timeout: float = 5.0
    max_body_bytes: int = 1_048_576
    # Import uploads are streamed on in chunks, so they may be far larger.
    max_import_bytes: int = 500 * 1_048_576
    policy_cache_seconds: float = 30.0
    # The built web application (web/dist) to serve at `/`; empty: the API only.
    web_dir: str = ""

    @property
    def development_sign_in(self) -> bool:
        """Tokens are checked with the development key, so the dev sign-in may mint them."""
        return bool(self.jwt_secret) and not self.jwks_url
