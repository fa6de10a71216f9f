"""Due-time arithmetic: local times in zones, DST, rule forms, next working day."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from crm_kit.errors import InvalidArgument
from crm_tasks import due


def test_local_time_is_read_in_the_zone_and_shown_with_its_offset() -> None:
    winter = due.local_to_utc("2031-01-15T10:00", "Europe/Berlin", "due_local")
    assert winter == datetime(2031, 1, 15, 9, 0, tzinfo=UTC)
    assert due.to_local(winter, "Europe/Berlin") == "2031-01-15T10:00+01:00"
    summer = due.local_to_utc("2031-07-15T10:00", "Europe/Berlin", "due_local")
    assert summer == datetime(2031, 7, 15, 8, 0, tzinfo=UTC)
    assert due.to_local(summer, "America/Sao_Paulo") == "2031-07-15T05:00-03:00"


def test_a_wall_time_skipped_by_dst_is_refused_and_a_repeated_one_is_the_first() -> None:
    with pytest.raises(InvalidArgument) as caught:
        due.local_to_utc("2031-03-30T02:30", "Europe/Berlin", "due_local")
    assert caught.value.violations[0].field == "due_local"
    repeated = due.local_to_utc("2031-10-26T02:30", "Europe/Berlin", "due_local")
    assert repeated == datetime(2031, 10, 26, 0, 30, tzinfo=UTC)  # still summer time


@pytest.mark.parametrize("value", ["2031-01-15 10:00", "2031-02-30T10:00", "tomorrow", ""])
def test_malformed_local_times_name_the_field(value: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        due.local_to_utc(value, "UTC", "due_local")
    assert [v.field for v in caught.value.violations] == ["due_local"]


def test_rule_due_forms() -> None:
    assert due.parse_due_spec("+15m") == due.DueSpec(relative=timedelta(minutes=15))
    assert due.parse_due_spec("+2h") == due.DueSpec(relative=timedelta(hours=2))
    assert due.parse_due_spec("+3d") == due.DueSpec(relative=timedelta(days=3))
    assert due.parse_due_spec("next working day 09:00") == due.DueSpec(next_working_day=time(9, 0))
    assert due.parse_due_spec("field:measurement_at") == due.DueSpec(field="measurement_at")
    for bad in ("15m", "+0m", "+15x", "+400d", "next working day 9am", "field:", "soon"):
        assert due.parse_due_spec(bad) is None, bad


def test_next_working_day_is_after_today_in_the_persons_zone() -> None:
    friday_evening_utc = datetime(2031, 1, 17, 20, 0, tzinfo=UTC)  # Friday
    # Berlin: still Friday 21:00 -> Monday 09:00 Berlin = 08:00 UTC.
    assert due.next_working_day_at(
        friday_evening_utc, "Europe/Berlin", [1, 2, 3, 4, 5], time(9)
    ) == datetime(2031, 1, 20, 8, 0, tzinfo=UTC)
    # Tokyo: already Saturday 05:00 -> Monday 09:00 Tokyo = Monday 00:00 UTC.
    assert due.next_working_day_at(
        friday_evening_utc, "Asia/Tokyo", [1, 2, 3, 4, 5], time(9)
    ) == datetime(2031, 1, 20, 0, 0, tzinfo=UTC)
    # Someone working Tuesday and Saturday only.
    assert due.next_working_day_at(friday_evening_utc, "UTC", [2, 6], time(9, 30)) == datetime(
        2031, 1, 18, 9, 30, tzinfo=UTC
    )


def test_deal_field_values() -> None:
    assert due.parse_field_value("2031-01-15T10:00", "Europe/Berlin") == datetime(
        2031, 1, 15, 9, 0, tzinfo=UTC
    )
    assert due.parse_field_value("2031-01-15T10:00:00+00:00", "Europe/Berlin") == datetime(
        2031, 1, 15, 10, 0, tzinfo=UTC
    )
    for bad in (None, "", "soon", 42):
        assert due.parse_field_value(bad, "UTC") is None
