"""The time business rules see (due dates, overdue, reminders).

In production it is the system clock. Tests and demos can move it without waiting:
when CRM_CLOCK_FILE names a file, its content is an offset in seconds added to the
system clock, read again whenever the file changes, by every process that shares the
file. `advance()` is how a test says "15 minutes later"; `set_offset()` how a test
session starts at a chosen instant or puts the clock back after a test.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

# (inode, mtime ns, size) of the file last read, and its offset in seconds.
_cache: tuple[tuple[int, int, int], float] = ((-1, -1, -1), 0.0)
# A file changed this recently may change again within the file system's timestamp
# granularity without a new mtime, so it is read again rather than trusted.
_SETTLED_SECONDS = 0.1


def _offset() -> float:
    global _cache
    path = os.environ.get("CRM_CLOCK_FILE")
    if not path:
        return 0.0
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return 0.0
    key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    if key != _cache[0] or time.time() - stat.st_mtime < _SETTLED_SECONDS:
        text = Path(path).read_text().strip()
        _cache = (key, float(text) if text else 0.0)
    return _cache[1]


def now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC) + timedelta(seconds=_offset())


def offset(path: Path) -> timedelta:
    """The shared clock's offset from the system clock (tests and demos only)."""
    text = path.read_text().strip() if path.exists() else ""
    return timedelta(seconds=float(text) if text else 0.0)


def set_offset(path: Path, by: timedelta) -> None:
    """Sets the shared clock's offset (tests and demos only). The file is replaced in
    one step, so a reader never sees it half written."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(repr(by.total_seconds()))
    os.replace(partial, path)


def advance(path: Path, by: timedelta) -> None:
    """Moves the shared clock forward (tests and demos only)."""
    set_offset(path, offset(path) + by)
