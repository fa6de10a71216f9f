"""Domain errors shared by every service; the gRPC layer maps them to status codes.

Raise these from domain code; `crm_kit.grpc_server` turns them into canonical gRPC
statuses with `google.rpc` details, and the gateway turns those into problem+json.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One bad input field: `field` is a dotted path as the client sent it (e.g. `emails[1]`)."""

    field: str
    description: str


class CrmError(Exception):
    """Base class: an error the caller can act on (never a bug)."""


class InvalidArgument(CrmError):
    """Bad input: one or more fields are wrong. Maps to INVALID_ARGUMENT / HTTP 422."""

    def __init__(self, violations: Iterable[FieldViolation]) -> None:
        self.violations = list(violations)
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in self.violations))

    @classmethod
    def single(cls, field: str, description: str) -> InvalidArgument:
        return cls([FieldViolation(field, description)])


class NotFound(CrmError):
    """The record does not exist, or the caller may not see it (we never tell which)."""


class Conflict(CrmError):
    """The request conflicts with the current state (concurrent change, reused key...)."""


class FailedPrecondition(CrmError):
    """The record is in a state that forbids the operation (e.g. merged, erased, on hold)."""


class PermissionDenied(CrmError):
    """The caller is known but its role does not allow the operation."""


class Unavailable(CrmError):
    """A dependency (database, broker, another service) is down; the caller should retry."""
