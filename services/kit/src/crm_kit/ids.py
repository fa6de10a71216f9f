"""Record ids carry their region (`eu_01JD...`), so any request routes without a lookup."""

from __future__ import annotations

import re

from ulid import ULID

from crm_kit.errors import InvalidArgument

_ID_RE = re.compile(r"^([a-z]{2,8})_([0-9A-HJKMNP-TV-Z]{26})$")


def new_id(region: str) -> str:
    return f"{region}_{ULID()}"


def region_of(record_id: str, field: str = "id") -> str:
    """The region encoded in an id; InvalidArgument naming `field` if the id is malformed."""
    match = _ID_RE.match(record_id or "")
    if match is None:
        raise InvalidArgument.single(
            field, f"malformed id {record_id!r}: expected '<region>_<ULID>'"
        )
    return match.group(1)


def is_valid_id(record_id: str) -> bool:
    return _ID_RE.match(record_id or "") is not None
