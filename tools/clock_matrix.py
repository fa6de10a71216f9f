"""Runs the time-sensitive tests with the session's clock started at chosen instants:
00:30, 06:00, 12:45, 18:15 and 23:50 UTC, and half an hour before each daylight-saving
change of Berlin and New York (spring and autumn), then prints one line per instant.

`make test-clock` runs it; `--only 23:50` runs one instant. Every instant lies ahead of
the real time (the next such hour, the next such change): the shared clock of a test
session is moved forward (CRM_TEST_NOW), never back before the data it finds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

TIMES = ["00:30", "06:00", "12:45", "18:15", "23:50"]
# Every test that reads the clock, moves it, or waits for working hours.
TIME_SENSITIVE = [
    "services/notifications/tests/test_delivery.py",
    "services/notifications/tests/test_working_hours.py",
    "services/notifications/tests/test_campaigns.py",
    "services/notifications/tests/test_sms_campaigns.py",
    "services/notifications/tests/test_greetings.py",
    "services/notifications/tests/test_locales.py",
    "services/notifications/tests/unit/test_quiet.py",
    "services/tasks/tests/test_scheduler.py",
    "services/tasks/tests/test_automation.py",
    "services/tasks/tests/test_tasks.py",
    "services/reporting/tests/test_reports.py",
    "services/reporting/tests/test_random_workload.py",
    "services/integrations/tests/test_forms.py",
    "services/integrations/tests/test_webhooks.py",
    "tests/test_compliance.py",
    "tests/test_e2e_workflow.py",
    "tests/test_e2e_money.py",
    "tests/test_small_business_day.py",
]


def next_utc(hhmm: str, now: datetime) -> datetime:
    hour, minute = (int(part) for part in hhmm.split(":"))
    at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return at if at > now + timedelta(minutes=5) else at + timedelta(days=1)


def dst_changes(zone: str, now: datetime) -> list[tuple[str, datetime]]:
    """The next spring-forward and fall-back instants in `zone` (UTC)."""
    tz, found = ZoneInfo(zone), {}
    at = now.replace(minute=0, second=0, microsecond=0)
    while len(found) < 2 and at < now + timedelta(days=400):
        before = at.astimezone(tz).utcoffset()
        after = (at + timedelta(hours=1)).astimezone(tz).utcoffset()
        if before is not None and after is not None and after != before:
            found.setdefault("spring" if after > before else "autumn", at + timedelta(hours=1))
        at += timedelta(hours=1)
    return sorted(found.items(), key=lambda item: item[1])


def instants(now: datetime) -> list[tuple[str, datetime]]:
    chosen = [(f"{hhmm} UTC", next_utc(hhmm, now)) for hhmm in TIMES]
    for zone in ("Europe/Berlin", "America/New_York"):
        for kind, change in dst_changes(zone, now):
            chosen.append((f"{zone} {kind} change -30m", change - timedelta(minutes=30)))
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help="one label (e.g. 23:50) or part of one")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments")
    args = parser.parse_args()
    results = []
    for label, start in instants(datetime.now(UTC)):
        if args.only and args.only not in label:
            continue
        env = {**os.environ, "CRM_TEST_NOW": start.isoformat()}
        print(f"--- {label}: the clock starts at {start:%Y-%m-%d %H:%M} UTC", flush=True)
        began = time.monotonic()
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        run = subprocess.run([*command, *TIME_SENSITIVE, *args.pytest_args], env=env)
        results.append((label, start, run.returncode, time.monotonic() - began))
    print("\nstart of the session's clock                        result   minutes")
    for label, start, code, seconds in results:
        verdict = "passed" if code == 0 else f"FAILED ({code})"
        print(f"{label:34} {start:%Y-%m-%d %H:%M}  {verdict:8} {seconds / 60:6.1f}")
    return max((code for _, _, code, _ in results), default=0)


if __name__ == "__main__":
    sys.exit(main())
