"""What the notifications service reads from the environment besides the common settings.

Provider credentials (SMTP login, HTTP provider URLs and signing secrets) come from here,
that is from the environment or a mounted secret, never from code.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class HttpProvider(BaseModel):
    """An SMS or chat provider reached over HTTP. `generic` POSTs HMAC-signed JSON."""

    kind: str = "generic"
    url: str
    # HMAC-SHA256 key of the X-Crm-Signature header.
    secret: str = ""
    timeout: float = Field(default=5.0, gt=0)


class NotificationsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore")

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_timeout: float = Field(default=10.0, gt=0)
    mail_from: str = "Atlas CRM <notifications@atlas-crm.local>"
    # Channel name ("sms", "chat") -> provider, as JSON.
    notify_providers: dict[str, HttpProvider] = Field(default_factory=dict)
    # Seconds between dispatcher passes when idle.
    notify_dispatch_interval: float = Field(default=1.0, gt=0)
    notify_batch_size: int = Field(default=50, gt=0)
    # How long a claimed delivery is held by one replica before another may retry it.
    notify_lease_seconds: float = Field(default=60.0, gt=0)
    # Attempts before a delivery is dead-lettered.
    notify_max_attempts: int = Field(default=5, gt=0)
    # First retry delay; doubled on every further failure.
    notify_backoff_seconds: float = Field(default=30.0, gt=0)
    notify_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    # Kinds that skip the recipient's quiet hours, e.g. "task.overdue".
    notify_urgent_kinds: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Campaign messages handed to the dispatcher per second (per replica).
    campaign_rate: float = Field(default=20.0, gt=0)
    # Seconds between looks for today's birthday greetings (greeting rules).
    greeting_interval: float = Field(default=60.0, gt=0)
    # Signs unsubscribe tokens; the public base URL is where the gateway is reached.
    unsubscribe_secret: str = ""
    public_base_url: str = "http://localhost:8000"

    @field_validator("notify_urgent_kinds", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
