r"""Print hash-checkable requirements for an image: names pinned to requirements.lock.

Used by the Dockerfiles (build stage only), so that an image installs only the
third-party packages its local packages declare, still verified against the hashes
in the one lock:

    python pin_requirements.py requirements.lock services/api services/kit \
        services/contacts > runtime.txt
    uv pip install --require-hashes -c requirements.lock -r runtime.txt

Each argument is either a local package folder (its ``[project].dependencies`` are
taken, minus the local packages named on the same command line) or a bare package
name (pinned itself, e.g. ``hatchling`` for the build venv). uv then resolves the
transitive dependencies inside the constraints and, with ``--require-hashes``, checks
every downloaded file against the lock's hashes. The script fails if a dependency is
neither local nor in the lock, so a typo or an unlocked package never reaches an index.
Standard library only (it runs in the bare python image).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

_LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
_REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?P<extras>\[[^\]]*\])?[^;]*(?P<marker>;.*)?$"
)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _LOCK_LINE.match(line)
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def pinned_requirements(lock: Path, targets: list[str]) -> list[str]:
    pins = read_lock(lock)
    projects = [Path(t) for t in targets if (Path(t) / "pyproject.toml").is_file()]
    names = [t for t in targets if not (Path(t) / "pyproject.toml").is_file()]
    local: set[str] = set()
    wanted: list[str] = []
    for folder in projects:
        project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        local.add(canonical(project["name"]))
        wanted.extend(project.get("dependencies", []))
    wanted.extend(names)
    out: dict[str, str] = {}
    for requirement in wanted:
        match = _REQUIREMENT.match(requirement)
        if not match:
            raise SystemExit(f"cannot parse requirement {requirement!r}")
        name = canonical(match.group("name"))
        if name in local:
            continue
        if name not in pins:
            raise SystemExit(f"{requirement!r} is neither a local package given here nor in {lock}")
        extras = (match.group("extras") or "").replace(" ", "")
        marker = (match.group("marker") or "").strip()
        line = f"{name}{extras}=={pins[name]}" + (f" {marker}" if marker else "")
        # The same name twice (e.g. with and without extras): keep the one with extras.
        if name not in out or len(line) > len(out[name]):
            out[name] = line
    return [out[name] for name in sorted(out)]


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    for line in pinned_requirements(Path(argv[0]), argv[1:]):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
