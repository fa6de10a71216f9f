"""Quiet hours: when a message may reach a person, from their working hours and days in
their own time zone. Pure functions of their arguments (the current time is passed in).

A person's own hours win; what they leave unset comes from the tenant's default
(`Schedule`), and without one from the built-in 09:00-18:00 Monday to Friday.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# "24:00" ends a window at midnight (00:00-24:00 is the whole day). As the last instant of
# the day it needs no special case when windows are compared and placed in a zone.
END_OF_DAY = time.max
DEFAULT_START, DEFAULT_END = time(9, 0), time(18, 0)
DEFAULT_DAYS = (1, 2, 3, 4, 5)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def parse_hhmm(value: str) -> time | None:
    """00:00 to 23:59, or 24:00 (END_OF_DAY, which only an end may be)."""
    if value == "24:00":
        return END_OF_DAY
    match = _HHMM.match(value or "")
    return time(int(match.group(1)), int(match.group(2))) if match else None


def format_hhmm(value: time) -> str:
    return "24:00" if value == END_OF_DAY else f"{value:%H:%M}"


def weekdays(days: Sequence[int]) -> tuple[int, ...]:
    """The valid ISO weekdays of `days`, sorted, without repeats."""
    return tuple(sorted({d for d in days if 1 <= d <= 7}))


@dataclass(frozen=True)
class Schedule:
    """Working hours without a zone: a tenant's default, read in each person's own zone."""

    start: time = DEFAULT_START
    end: time = DEFAULT_END
    days: tuple[int, ...] = DEFAULT_DAYS


BUILTIN = Schedule()


@dataclass(frozen=True)
class WorkingHours:
    zone: ZoneInfo
    start: time = DEFAULT_START
    end: time = DEFAULT_END
    days: tuple[int, ...] = DEFAULT_DAYS

    @classmethod
    def of(
        cls,
        zone_name: str,
        start: str = "",
        end: str = "",
        days: Sequence[int] = (),
        default: Schedule = BUILTIN,
    ) -> WorkingHours:
        """A person's hours in their zone. Hours are taken as a pair (a start of one's own
        with the default's end could be no window at all); days on their own."""
        begin, finish = parse_hhmm(start), parse_hhmm(end)
        if begin is None or finish is None or begin >= finish:
            begin, finish = default.start, default.end
        return cls(zone(zone_name), begin, finish, weekdays(days) or default.days)

    def _at(self, day: datetime, at: time) -> datetime:
        """The instant of wall time `at` on `day`'s date in the zone. A wall time skipped
        by a DST change (02:30 on the spring-forward night) becomes the first instant
        after the gap, by the round trip through UTC."""
        local = datetime.combine(day.date(), at, tzinfo=self.zone)
        return local.astimezone(UTC).astimezone(self.zone)

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(self.zone)
        if local.isoweekday() not in self.days:
            return False
        return self._at(local, self.start) <= local < self._at(local, self.end)

    def next_open(self, now: datetime) -> datetime:
        """`now` if within working hours, else the start of the next working window (UTC)."""
        if self.is_open(now):
            return now.astimezone(UTC)
        local = now.astimezone(self.zone)
        for offset in range(0, 8):
            day = (local + timedelta(days=offset)).replace(hour=12)
            if day.isoweekday() not in self.days:
                continue
            start = self._at(day, self.start)
            if start > local:
                return start.astimezone(UTC)
        return (now + timedelta(days=1)).astimezone(UTC)  # unreachable: days is never empty
