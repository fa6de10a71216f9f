"""Quiet hours in the recipient's zone, including the nights clocks change."""

from __future__ import annotations

from datetime import UTC, datetime

from crm_notifications.quiet import WorkingHours


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
