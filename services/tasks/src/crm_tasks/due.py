"""Due times: stored in UTC, given and shown in a person's zone, and the relative forms
automation rules use ("+15m", "next working day 09:00", "field:<name>").

Pure functions of their arguments (the current time is passed in), so they are unit
tested without a clock.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from crm_kit.errors import InvalidArgument

DEFAULT_ZONE = "UTC"
DEFAULT_WORKING_DAYS = (1, 2, 3, 4, 5)

_LOCAL = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_RELATIVE = re.compile(r"^\+(\d{1,4})([mhd])$")
_NEXT_WORKING_DAY = re.compile(r"^next working day ([01]\d|2[0-3]):([0-5]\d)$")
_FIELD = re.compile(r"^field:([A-Za-z_][A-Za-z0-9_]{0,63})$")
# Generous but bounded: a rule that says "+9999d" is a typo, not an intent.
_MAX_RELATIVE = timedelta(days=366)
_UNIT = {"m": "minutes", "h": "hours", "d": "days"}


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_zone(name: str) -> bool:
    """An IANA zone name from the tz database (tzdata), e.g. "Europe/Berlin"."""
    return name in _zones()


def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name if is_zone(name) else DEFAULT_ZONE)


# "24:00" ends a working day at midnight; as the day's last instant it compares rightly.
END_OF_DAY = time.max


def parse_hhmm(value: str, *, end: bool = False) -> time | None:
    """HH:MM from 00:00 to 23:59; an `end` may also be 24:00 (END_OF_DAY)."""
    if end and value == "24:00":
        return END_OF_DAY
    match = _HHMM.match(value)
    return time(int(match.group(1)), int(match.group(2))) if match else None


def local_to_utc(value: str, zone_name: str, field: str) -> datetime:
    """ "YYYY-MM-DDTHH:MM" read in `zone_name`, as an aware UTC datetime.

    A wall time that does not exist (skipped by a DST change) is refused rather than
    silently shifted; an ambiguous one (repeated hour) means its first occurrence.
    """
    match = _LOCAL.match(value.strip())
    if match is None:
        raise InvalidArgument.single(field, "expected a local time YYYY-MM-DDTHH:MM")
    try:
        year, month, day, hour, minute = (int(part) for part in match.groups())
        naive = datetime(year, month, day, hour, minute)
    except ValueError as exc:
        raise InvalidArgument.single(field, f"not a valid date and time: {exc}") from exc
    tz = zone(zone_name)
    local = naive.replace(tzinfo=tz, fold=0)
    utc = local.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) != naive:
        raise InvalidArgument.single(
            field, f"{value} does not exist in {zone_name} (skipped by a daylight-saving change)"
        )
    return utc


def to_local(value: datetime, zone_name: str) -> str:
    """ISO 8601 with the zone's offset, to the minute: "2026-03-10T09:00+01:00"."""
    return value.astimezone(zone(zone_name)).isoformat(timespec="minutes")


def next_working_day_at(
    now: datetime, zone_name: str, working_days: Sequence[int], at: time
) -> datetime:
    """`at` on the first working day after today (today in the zone), in UTC."""
    tz = zone(zone_name)
    days = set(working_days) or set(DEFAULT_WORKING_DAYS)
    day = now.astimezone(tz).date()
    for _ in range(7):
        day += timedelta(days=1)
        if day.isoweekday() in days:
            break
    return wall_time(day, at, zone_name)


def wall_time(day: date, at: time, zone_name: str) -> datetime:
    """`at` on `day` in the zone, in UTC (a time skipped by DST moves past the gap)."""
    tz = zone(zone_name)
    local = datetime.combine(day, at, tzinfo=tz)
    return local.astimezone(UTC)


DUE_FILTERS = ("today", "this_week", "overdue")


def due_window(kind: str, now: datetime, zone_name: str) -> tuple[datetime | None, datetime]:
    """[start, end) in UTC of "today" or "this_week" (ISO week, Monday first) on the
    wall clock of `zone_name`, or (None, now) for "overdue"."""
    if kind == "overdue":
        return None, now
    tz = zone(zone_name)
    day = now.astimezone(tz).date()
    if kind == "this_week":
        day -= timedelta(days=day.isoweekday() - 1)
        length = 7
    else:
        length = 1
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=length), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True)
class DueSpec:
    """A parsed rule due time: exactly one of the three forms is set."""

    relative: timedelta | None = None
    next_working_day: time | None = None
    field: str = ""


def parse_due_spec(spec: str) -> DueSpec | None:
    """The rule form of a due time; None when it is not one (the caller names the field)."""
    spec = spec.strip()
    if match := _RELATIVE.match(spec):
        amount = int(match.group(1))
        delta = timedelta(**{_UNIT[match.group(2)]: amount})
        if amount == 0 or delta > _MAX_RELATIVE:
            return None
        return DueSpec(relative=delta)
    if match := _NEXT_WORKING_DAY.match(spec):
        return DueSpec(next_working_day=time(int(match.group(1)), int(match.group(2))))
    if match := _FIELD.match(spec):
        return DueSpec(field=match.group(1))
    return None


def parse_field_value(value: object, zone_name: str) -> datetime | None:
    """A deal's date-time custom field: local "YYYY-MM-DDTHH:MM" (read in the zone) or
    full ISO 8601 with an offset. None when absent or unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if _LOCAL.match(text):
        try:
            return local_to_utc(text, zone_name, "field")
        except InvalidArgument:
            return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=zone(zone_name)).astimezone(UTC)
    return parsed.astimezone(UTC)
