"""CPU time per process group, read from /proc: the figure that a noisy machine distorts least.

Requests per second and latency move with whatever else the machine is doing; the CPU a
process group spends per operation barely does. Every bench prints both.

A group is a set of root processes and all their descendants (PostgreSQL's backends are
children of the postmaster; a service may fork workers). For each live process we add
its own user+system time and the time of its children that have already exited and been
reaped (`cutime`/`cstime`), so a backend that ends between two readings is still counted:
its time moves from "its own" to "its parent's reaped children".

    groups = cluster_groups(cluster)                  # {"gateway": [pid], "contacts": [...], ...}
    before = cpu_seconds(groups)
    ... run the measurement ...
    used = cpu_delta(before, cpu_seconds(groups))     # seconds per group
    print(format_cpu_per_op(used, operations))
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    return raw[raw.rindex(")") + 2 :].split()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    tasks = Path(f"/proc/{pid}/task")
    for task in tasks.glob("*/children") if tasks.exists() else []:
        try:
            found.extend(int(child) for child in task.read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def _tree(roots: Iterable[int]) -> set[int]:
    seen: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo.extend(_children(pid))
    return seen


def process_cpu_seconds(pid: int) -> float:
    """utime + stime + reaped children's cutime + cstime of one process, in seconds."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # After the command: state is index 0, so utime/stime/cutime/cstime are 11..14.
    return sum(int(value) for value in fields[11:15]) / TICKS


def cpu_seconds(groups: Mapping[str, Iterable[int]]) -> dict[str, float]:
    return {name: sum(map(process_cpu_seconds, _tree(roots))) for name, roots in groups.items()}


def cpu_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    return {name: max(0.0, after.get(name, 0.0) - before.get(name, 0.0)) for name in after}


def rss_mib(groups: Mapping[str, Iterable[int]]) -> dict[str, float]:
    """Resident memory per group (sum of VmRSS; shared pages are counted in each process)."""
    result: dict[str, float] = {}
    for name, roots in groups.items():
        total_kib = 0
        for pid in _tree(roots):
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total_kib += int(line.split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
        result[name] = total_kib / 1024
    return result


def postgres_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def cluster_groups(
    cluster: Any, extra: Mapping[str, Iterable[int]] | None = None
) -> dict[str, list[int]]:
    """Process groups of a running `crm_cli.cluster.Cluster`: one per service (all its
    regions together), the gateway, PostgreSQL and NATS, plus `extra` (e.g. the load
    generator, a baseline app)."""
    groups: dict[str, list[int]] = {}
    for process in cluster.processes:
        if process.process is None:
            continue
        group = process.name.rsplit("-", 1)[0] if process.name != "gateway" else "gateway"
        groups.setdefault(group, []).append(process.process.pid)
    pg = postgres_pid(cluster.postgres.data_dir)
    if pg is not None:
        groups["postgres"] = [pg]
    if cluster.nats.process is not None:
        groups["nats"] = [cluster.nats.process.pid]
    for name, pids in (extra or {}).items():
        groups[name] = list(pids)
    return groups


def per_operation_ms(used: Mapping[str, float], operations: int) -> dict[str, float]:
    if operations <= 0:
        return {name: 0.0 for name in used}
    return {name: 1000 * seconds / operations for name, seconds in used.items()}


def format_cpu_per_op(used: Mapping[str, float], operations: int, label: str = "") -> str:
    """One line per group, largest first, and the total of the stack (load generator aside)."""
    per_op = per_operation_ms(used, operations)
    lines = [f"CPU ms per operation{f' ({label})' if label else ''}, {operations} operations:"]
    for name, ms in sorted(per_op.items(), key=lambda item: -item[1]):
        lines.append(f"  {name:<16} {ms:8.3f}")
    stack = sum(ms for name, ms in per_op.items() if name not in {"wrk", "client", "bench"})
    lines.append(f"  {'stack total':<16} {stack:8.3f}")
    return "\n".join(lines)


def own_cpu_seconds() -> float:
    """CPU of this process (the bench: its in-process clients, servers and clocks)."""
    times = os.times()
    return times.user + times.system


def start(groups: Mapping[str, Iterable[int]]) -> dict[str, float]:
    """A reading of every group and of the bench itself (as group "bench")."""
    return {**cpu_seconds(groups), "bench": own_cpu_seconds()}


def since(groups: Mapping[str, Iterable[int]], before: Mapping[str, float]) -> dict[str, float]:
    """CPU seconds per group (and "bench") spent since `start` gave `before`."""
    return cpu_delta(before, start(groups))
