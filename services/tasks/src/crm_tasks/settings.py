"""What the tasks service reads from the environment besides the common service settings."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class TasksSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore")

    # Seconds between scheduler passes (overdue tasks); tests run it at 0.5.
    scheduler_interval: float = Field(default=5.0, gt=0)
    # Seconds between checks of contacts' important dates (also on every new day).
    reminder_interval: float = Field(default=300.0, gt=0)
    # Remind this many days before a contact's important date, e.g. "7,1".
    reminder_days_before: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [7, 1])
    # Overdue tasks claimed per transaction.
    overdue_batch_size: int = Field(default=200, gt=0)
    # How long automation trusts a pipeline's stage names before asking deals again.
    pipeline_cache_seconds: float = Field(default=30.0, ge=0)

    @field_validator("reminder_days_before", mode="before")
    @classmethod
    def _split_days(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(part) for part in value.split(",") if part.strip()]
        return value

    @field_validator("reminder_days_before")
    @classmethod
    def _check_days(cls, value: list[int]) -> list[int]:
        if any(day < 0 or day > 366 for day in value):
            raise ValueError("days before must be between 0 and 366")
        return sorted(set(value), reverse=True)
