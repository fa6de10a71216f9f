"""The time business rules see (due dates, overdue, reminders).

In production it is the system clock. Tests and demos can move it forward without
waiting: when CRM_CLOCK_FILE names a file, its content is an offset in seconds added
to the system clock, read again whenever the file changes, by every process that
shares the file. `advance()` is how a test says "15 minutes later".
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

_cache: tuple[float, float] = (-1.0, 0.0)  # (file mtime, offset seconds)


def _offset() -> float:
    global _cache
    path = os.environ.get("CRM_CLOCK_FILE")
    if not path:
        return 0.0
    try:
        mtime = os.stat(path).st_mtime
    except FileNotFoundError:
        return 0.0
    if mtime != _cache[0]:
        text = Path(path).read_text().strip()
        _cache = (mtime, float(text) if text else 0.0)
    return _cache[1]


def now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC) + timedelta(seconds=_offset())


def advance(path: Path, by: timedelta) -> None:
    """Moves the shared clock forward (tests and demos only)."""
    current = float(path.read_text().strip() or 0) if path.exists() else 0.0
    path.write_text(str(current + by.total_seconds()))
