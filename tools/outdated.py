"""List the pins of requirements.lock and tools/uv-bootstrap.txt behind their latest release.

For each pin behind the newest release on the package index it prints the pinned version, the
newest version `make lock-upgrade` would resolve to (what the constraints allow), and the newest
release. A pin whose "resolvable" equals its "pinned" is held back by a constraint (ours in
requirements.in or another package's); the last column says who requires it.

Usage: `make outdated` (or `.venv/bin/python tools/outdated.py [--check]`); `--check` exits 1 when
a pin could be upgraded, so a CI job can use it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
UV = str(VENV_BIN / "uv")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = PIN.match(line)
        if match:
            found[canonical(match.group(1))] = match.group(2)
    return found


def resolvable(requirements: Path) -> dict[str, str]:
    """The versions an upgrade would pick within every constraint (uv pip compile --upgrade)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "upgraded.txt"
        subprocess.run(
            [
                UV,
                "pip",
                "compile",
                str(requirements),
                "--upgrade",
                "--python-version",
                "3.11",
                "--no-header",
                "--quiet",
                "-o",
                str(out),
            ],
            check=True,
            cwd=ROOT,
        )
        return pins(out.read_text())


def newest() -> dict[str, str]:
    """The newest release of every package installed in the venv.

    The index's for those uv lists as outdated, the installed version for the others (so a lock
    older than the venv is still compared)."""

    def listed(*extra: str) -> list[dict[str, str]]:
        out = subprocess.run(
            [UV, "pip", "list", "--python", str(VENV_BIN / "python"), "--format", "json", *extra],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout
        rows: list[dict[str, str]] = json.loads(out or "[]")
        return rows

    found = {canonical(row["name"]): row["version"] for row in listed()}
    found |= {canonical(row["name"]): row["latest_version"] for row in listed("--outdated")}
    return found


def held_by(name: str, lock_text: str) -> str:
    """Who requires the package, from the lock's `# via` comments."""
    lines = lock_text.splitlines()
    for index, line in enumerate(lines):
        match = PIN.match(line)
        if match and canonical(match.group(1)) == name:
            via: list[str] = []
            for follow in lines[index + 1 :]:
                if PIN.match(follow):
                    break
                comment = follow.strip().lstrip("#").strip()
                if comment.startswith("via "):
                    comment = comment[4:]
                if comment and not comment.startswith("--hash") and comment != "via":
                    via.append(comment.replace("-r requirements.in", "requirements.in"))
            return ", ".join(via)
    return ""


def main() -> int:
    lock = ROOT / "requirements.lock"
    lock_text = lock.read_text()
    pinned = pins(lock_text) | pins((ROOT / "tools" / "uv-bootstrap.txt").read_text())
    latest = newest()
    upgrade = resolvable(ROOT / "requirements.in")
    rows = []
    upgradable = 0
    for name in sorted(pinned):
        if name not in latest or latest[name] == pinned[name]:
            continue
        could = upgrade.get(name, pinned[name])
        if name == "uv":
            could = latest[name]  # tools/uv-bootstrap.txt pins uv alone: nothing holds it back
        upgradable += could != pinned[name]
        held = could == pinned[name]
        note = f"held back; required by: {held_by(name, lock_text)}" if held else ""
        rows.append((name, pinned[name], could, latest[name], note))
    if not rows:
        print(f"All {len(pinned)} pins are at their latest release.")
        return 0
    header = ("package", "pinned", "resolvable", "latest", "")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print(
            "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)),
            row[4],
        )
    print(
        f"\n{len(rows)} of {len(pinned)} pins are behind their latest release; "
        f"{upgradable} can move now with `make lock-upgrade`."
    )
    return 1 if "--check" in sys.argv[1:] and upgradable else 0


if __name__ == "__main__":
    sys.exit(main())
