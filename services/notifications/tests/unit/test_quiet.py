"""Quiet hours in the recipient's zone, including the nights clocks change."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from crm_api.crm.notifications.v1 import notifications_pb2 as pb
from crm_kit.errors import InvalidArgument
from crm_notifications.quiet import Schedule, WorkingHours
from crm_notifications.working_hours import validate


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_inside_working_hours_is_now() -> None:
    hours = WorkingHours.of("Europe/Berlin", "09:00", "18:00", [1, 2, 3, 4, 5])
    now = utc(2027, 1, 12, 10, 0)  # Tuesday 11:00 in Berlin
    assert hours.is_open(now)
    assert hours.next_open(now) == now


def test_the_same_instant_is_night_in_one_zone_and_working_time_in_another() -> None:
    now = utc(2027, 1, 12, 20, 0)  # Tuesday
    sao_paulo = WorkingHours.of("America/Sao_Paulo", "09:00", "18:00")  # 17:00 there
    kolkata = WorkingHours.of("Asia/Kolkata", "09:00", "18:00")  # 01:30 Wednesday there
    assert sao_paulo.is_open(now)
    assert not kolkata.is_open(now)
    assert kolkata.next_open(now) == utc(2027, 1, 13, 3, 30)  # 09:00 IST


def test_friday_evening_waits_for_monday_morning() -> None:
    hours = WorkingHours.of("Europe/Berlin", "09:00", "18:00", [1, 2, 3, 4, 5])
    assert hours.next_open(utc(2027, 1, 15, 18, 0)) == utc(2027, 1, 18, 8, 0)


def test_spring_forward_weekend_new_york() -> None:
    # DST starts Sunday 14 March 2027 in New York: Monday 09:00 is EDT (UTC-4), not EST.
    hours = WorkingHours.of("America/New_York", "09:00", "17:00", [1, 2, 3, 4, 5])
    saturday_evening = utc(2027, 3, 13, 23, 0)  # 18:00 EST
    assert hours.next_open(saturday_evening) == utc(2027, 3, 15, 13, 0)
    # The Friday before, 09:00 was still 14:00 UTC.
    assert hours.next_open(utc(2027, 3, 12, 3, 0)) == utc(2027, 3, 12, 14, 0)


def test_a_window_starting_inside_the_skipped_hour_starts_after_the_gap() -> None:
    # 02:30 does not exist in Berlin on 28 March 2027; the window opens at 03:30 CEST.
    hours = WorkingHours.of("Europe/Berlin", "02:30", "06:00", [7])
    assert hours.next_open(utc(2027, 3, 27, 22, 0)) == utc(2027, 3, 28, 1, 30)


def test_fall_back_berlin() -> None:
    # DST ends Sunday 31 October 2027: Monday 09:00 is CET (UTC+1) again.
    hours = WorkingHours.of("Europe/Berlin", "09:00", "18:00", [1, 2, 3, 4, 5])
    assert hours.next_open(utc(2027, 10, 29, 17, 0)) == utc(2027, 11, 1, 8, 0)
    assert hours.is_open(utc(2027, 10, 29, 7, 0))  # Friday 09:00 CEST


def test_bad_settings_fall_back_to_the_default_day() -> None:
    hours = WorkingHours.of("Not/AZone", "18:00", "09:00", [9])
    assert str(hours.zone) == "UTC"
    assert hours.is_open(utc(2027, 1, 12, 9, 30)) and not hours.is_open(utc(2027, 1, 16, 10, 0))


EARLY = Schedule(time(6, 0), time(14, 0), (1, 2, 3, 4, 5, 6))


def test_what_a_user_leaves_unset_comes_from_the_tenant_default() -> None:
    saturday = utc(2027, 1, 16, 6, 30)  # 07:30 in Berlin
    unset = WorkingHours.of("Europe/Berlin", "", "", [], EARLY)
    assert (unset.start, unset.end, unset.days) == (EARLY.start, EARLY.end, EARLY.days)
    assert unset.is_open(saturday)
    # Own hours are kept; their days, if unset, are still the tenant's.
    own_hours = WorkingHours.of("Europe/Berlin", "10:00", "12:00", [], EARLY)
    assert (own_hours.start, own_hours.days) == (time(10, 0), EARLY.days)
    assert own_hours.next_open(saturday) == utc(2027, 1, 16, 9, 0)
    own_days = WorkingHours.of("Europe/Berlin", "", "", [1], EARLY)
    assert (own_days.start, own_days.days) == (EARLY.start, (1,))
    # The same default read in another zone is another instant.
    assert WorkingHours.of("Asia/Tokyo", default=EARLY).next_open(saturday) == utc(
        2027, 1, 17, 21, 0
    )  # Monday 06:00 in Tokyo (Sunday is not a working day)


def test_without_a_tenant_default_it_is_nine_to_six_on_weekdays() -> None:
    hours = WorkingHours.of("America/Sao_Paulo")
    assert (hours.start, hours.end, hours.days) == (time(9), time(18), (1, 2, 3, 4, 5))


def _fields(hours: pb.WorkingHours) -> set[str]:
    with pytest.raises(InvalidArgument) as caught:
        validate(hours)
    return {v.field for v in caught.value.violations}


def test_a_tenant_default_is_checked_field_by_field() -> None:
    assert _fields(pb.WorkingHours(start="9am", end="25:00", days=[1, 8])) == {
        "start",
        "end",
        "days[1]",
    }
    assert _fields(pb.WorkingHours(start="18:00", end="09:00", days=[1])) == {"end"}
    assert _fields(pb.WorkingHours(start="08:00", end="16:00")) == {"days"}
    assert validate(pb.WorkingHours(start="08:00", end="16:30", days=[5, 1, 1])) == Schedule(
        time(8), time(16, 30), (1, 5)
    )


def test_a_day_may_end_at_midnight() -> None:
    # 24:00 is the end of the day: 00:00-24:00 is always open, even at 23:59:59.
    always = WorkingHours.of("Asia/Kolkata", "00:00", "24:00", range(1, 8))
    last_second = datetime(2027, 1, 12, 23, 59, 59, tzinfo=always.zone)
    assert always.is_open(last_second)
    assert always.next_open(last_second) == last_second.astimezone(UTC)
    evening = WorkingHours.of("Asia/Kolkata", "18:00", "24:00", range(1, 8))
    assert evening.is_open(utc(2027, 1, 12, 18, 29))  # 23:59 in Kolkata (+05:30)
    assert not evening.is_open(utc(2027, 1, 12, 18, 30))  # midnight: the next day's night
    assert evening.next_open(utc(2027, 1, 12, 18, 30)) == utc(2027, 1, 13, 12, 30)


def test_midnight_ends_a_day_across_a_dst_change() -> None:
    # Berlin's spring-forward Sunday has 23 hours; 20:00-24:00 is still until midnight.
    hours = WorkingHours.of("Europe/Berlin", "20:00", "24:00", [7])
    assert hours.is_open(utc(2027, 3, 28, 21, 59))  # 23:59 CEST
    assert not hours.is_open(utc(2027, 3, 28, 22, 0))  # Monday 00:00 CEST


def test_24_00_ends_a_window_but_does_not_start_one() -> None:
    assert validate(pb.WorkingHours(start="00:00", end="24:00", days=[1])) == Schedule(
        time(0), time.max, (1,)
    )
    assert _fields(pb.WorkingHours(start="24:00", end="24:00", days=[1])) == {"start"}
