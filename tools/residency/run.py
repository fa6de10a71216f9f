"""Residency and privacy at random (issue 17 §3): a seeded random workload across the
three regions through the gateway, then a scan of every table of every database and of
every message retained in every stream for personal data where it may not be.

    python -m tools.residency --seed 17            # 10,000 operations (`make residency`)
    python -m tools.residency --seed 17 --short    # 800 operations
    (tests/test_residency_random.py runs the short one inside `make test`)

It prints a table of what was scanned and of the violations; the exit status is non-zero
when there is any violation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats

from crm_cli.cluster import Cluster, ClusterConfig
from tools.residency.scan import Index, Scan, scan_databases, scan_streams
from tools.residency.workload import REGIONS, Gateway, Workload, set_up

FULL_OPERATIONS = 10_000
SHORT_OPERATIONS = 500
WORKERS = 8


@dataclass
class Result:
    seed: int
    tenant: str
    workload: Workload
    scan: Scan
    elapsed: float
    scanned_in: float

    @property
    def failures(self) -> list[str]:
        """Every violation and everything unexpected, one line each (none expected)."""
        lines = [v.describe() for v in self.scan.violations]
        lines += [f"placed in the wrong region: {m}" for m in self.workload.misplaced]
        lines += [f"unexpected answer: {u}" for u in self.workload.stats.unexpected]
        lines += [f"not found in its own region: {u}" for u in self.missing]
        return lines

    @property
    def missing(self) -> list[str]:
        """Living people whose data the scan did not see in their region: either data was
        lost or the scan is blind (a form answered 202 is completed later)."""
        return [
            f"{p.token} ({p.how}, {p.region}, id {p.contact_id or '?'})"
            for p in self.workload.people
            if p.state == "alive"
            and p.merged_into is None
            and p.region not in self.scan.seen.get(p, set())
        ]


async def settle(cluster: Cluster, within: float = 180) -> None:
    """Waits until every outbox is published and every durable consumer has caught up
    (read models and rules have done their work)."""
    deadline = time.monotonic() + within
    for region in REGIONS:
        # An outbox another test left stuck is no reason to stop: unpublished events are
        # scanned where they wait (the outbox table is one of the tables scanned).
        with contextlib.suppress(TimeoutError):
            await cluster.events_published(region, within=max(1.0, deadline - time.monotonic()))
    client = await nats.connect(cluster.nats.url)
    try:
        js = client.jetstream()
        while time.monotonic() < deadline:
            busy = 0
            for stream in await js.streams_info():
                assert stream.config.name is not None
                for info in await js.consumers_info(stream.config.name):
                    if info.config.durable_name:
                        busy += (info.num_pending or 0) + (info.num_ack_pending or 0)
            if not busy:
                return
            await asyncio.sleep(0.5)
    finally:
        await client.close()


async def run(
    cluster: Cluster, seed: int, operations: int, *, tenant: str = "", progress: bool = False
) -> Result:
    tenant = tenant or f"residency-{seed}"
    workload = Workload(seed, operations, WORKERS)
    started = time.monotonic()
    limits = httpx.Limits(max_connections=WORKERS * 2)
    async with httpx.AsyncClient(base_url=cluster.gateway_url, limits=limits) as http:
        gateway = Gateway(http, workload.stats)
        setup = await set_up(gateway, cluster.jwt_secret, tenant)
        reporter = asyncio.create_task(_progress(workload)) if progress else None
        try:
            await workload.run(gateway, setup)
        finally:
            if reporter is not None:
                reporter.cancel()
    elapsed = time.monotonic() - started
    await settle(cluster)
    scanning = time.monotonic()
    scan = Scan()
    index = Index(workload.people)
    await scan_databases(
        cluster.postgres.dsn("postgres"), cluster.postgres.dsn, REGIONS, index, scan
    )
    await scan_streams(cluster.nats.url, index, scan)
    return Result(seed, tenant, workload, scan, elapsed, time.monotonic() - scanning)


async def _progress(workload: Workload) -> None:
    while True:
        await asyncio.sleep(30)
        print(f"{workload.done} of {workload.operations} operations", flush=True)


def report(result: Result) -> str:
    w = result.workload
    people = w.people
    states = Counter(p.root.state if p.state != "pending" else "pending" for p in people)
    c = result.scan.counts
    out = io.StringIO()
    write = out.write
    write(
        f"\nResidency run, seed {result.seed}, tenant {result.tenant}: {w.done} operations "
        f"in {result.elapsed:.0f} s ({w.stats.requests} requests), scanned in "
        f"{result.scanned_in:.0f} s\n"
    )
    write(
        "  operations: "
        + ", ".join(f"{k} {n}" for k, n in sorted(w.stats.operations.items()))
        + "\n"
    )
    write("  answers: " + ", ".join(f"{s}: {n}" for s, n in sorted(w.stats.answers.items())) + "\n")
    by_region = Counter(p.region for p in people if p.state != "pending")
    write(
        f"  people: {len(people)} ("
        + ", ".join(f"{k} {n}" for k, n in sorted(states.items()))
        + "; by how: "
        + ", ".join(f"{k} {n}" for k, n in sorted(Counter(p.how for p in people).items()))
        + "; required region now: "
        + ", ".join(f"{k} {n}" for k, n in sorted(by_region.items()))
        + f"; relocated {sum(p.relocations > 0 for p in people)})\n\n"
    )
    rows: list[tuple[str, int]] = [
        ("databases", c.databases),
        ("tables", c.tables),
        ("text-like columns", c.columns),
        ("rows", c.rows),
        ("values", c.values),
        ("streams", c.streams),
        ("messages", c.messages),
        ("message headers", c.headers),
        ("people", len(people)),
        ("operations", w.done),
    ]
    kinds = result.scan.by_kind()
    checks: list[tuple[str, int]] = [
        ("personal data outside its region", kinds["personal data outside its region"]),
        ("personal data in a global database", kinds["personal data in a global database"]),
        ("personal data in an event", kinds["personal data in an event"]),
        ("erased person's data remains", kinds["erased person's data remains"]),
        (
            "data of a refused or unanswered write",
            kinds["data of a refused or unanswered write"],
        ),
        ("people placed in the wrong region", len(w.misplaced)),
        ("living people not found in their region", len(result.missing)),
        ("unexpected answers", len(w.stats.unexpected)),
    ]
    width = max(len(name) for name, _ in rows + checks)
    write(f"  {'scanned'.ljust(width)}  {'count':>10}\n  {'-' * width}  {'-' * 10}\n")
    for name, n in rows:
        write(f"  {name.ljust(width)}  {n:>10}\n")
    write(f"\n  {'violation'.ljust(width)}  {'count':>10}\n  {'-' * width}  {'-' * 10}\n")
    for name, n in checks:
        write(f"  {name.ljust(width)}  {n:>10}\n")
    failures = result.failures
    if failures:
        write(f"\nThe first 40 of {len(failures)}:\n")
        for line in failures[:40]:
            write(f"  {line}\n")
    return out.getvalue()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def system(state: Path) -> Iterator[Cluster]:
    cluster = Cluster(
        ClusterConfig(
            state_dir=state, regions=list(REGIONS), gateway_port=0, nats_port=0, smtp_port=0
        )
    )
    try:
        cluster.start_engines()
        cluster.migrate()
        cluster.start_services()
        yield cluster
    finally:
        cluster.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.residency", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--short", action="store_true", help=f"{SHORT_OPERATIONS} operations")
    parser.add_argument("--operations", type=int)
    parser.add_argument("--keep", action="store_true", help="keep the state folder (logs)")
    args = parser.parse_args(argv)
    operations = args.operations or (SHORT_OPERATIONS if args.short else FULL_OPERATIONS)
    # A short path: PostgreSQL's socket lives in its data folder (107-byte limit).
    state = Path(tempfile.mkdtemp(prefix="residency-", dir="/tmp"))
    os.environ.setdefault("CRM_START_TIMEOUT", "600")
    os.environ["CRM_CLOCK_FILE"] = str(state / "clock-offset")
    print(f"state and logs in {state}", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    with system(state) as cluster:
        result = asyncio.run(run(cluster, args.seed, operations, progress=True))
    failed = bool(result.failures)
    if not args.keep and not failed:
        shutil.rmtree(state, ignore_errors=True)
    print(report(result), flush=True)
    if failed:
        print(f"logs kept in {state / 'logs'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
