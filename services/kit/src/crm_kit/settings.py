"""Process configuration from the environment (prefix CRM_), the same for every service."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class CommonSettings(BaseSettings):
    """What every process (service or gateway) reads."""

    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore")

    regions: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["eu", "br", "us"])
    log_level: str = "INFO"
    # 0 disables the Prometheus endpoint (the gateway serves /metrics itself).
    metrics_port: int = 0

    @field_validator("regions", mode="before")
    @classmethod
    def _split_regions(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class ServiceSettings(CommonSettings):
    """A regional service: one region, its own database and its region's NATS."""

    service_name: str = ""
    region: str = "us"
    database_url: str = "postgresql+asyncpg://postgres@localhost/postgres"
    database_pool_size: int = 10
    nats_url: str = "nats://127.0.0.1:4222"
    grpc_port: int = 50051
    # Seconds a draining server waits for in-flight calls on SIGTERM.
    shutdown_grace: float = 10.0
    outbox_poll_interval: float = 0.5
    outbox_batch_size: int = 200
    # Run alembic migrations at start-up (Kubernetes runs `migrate` as an init container).
    migrate_on_start: bool = False
    # Other services of the same region this one calls: {"contacts": "host:port"}.
    peer_endpoints: dict[str, str] = Field(default_factory=dict)
    # Deadline of calls to peers, seconds.
    peer_timeout: float = 5.0
