"""Reporting benchmark: report latency with 10k and with 1M deals in a region (and the
ratio), and the lag from a deal event to the report reflecting it (p50, p99).

    python bench/reporting_bench.py [--small 10000] [--large 1000000] [--rounds 20]
                                    [--samples 50] [--days 1095]

Starts contacts, deals and reporting in one region (`eu`) plus the gateway
(crm_cli.cluster) in a temporary folder, then:
1. Seeds two tenants' read models directly with SQL (COPY): --small and --large deals,
   created over --days days, 20 owners in 4 teams, 2 pipelines, 3 currencies, random
   stages, closes and amounts. Each synthetic deal goes through the service's own
   `crm_reporting.projector.contributions` (what the consumer would add for it), so the
   tables hold exactly what consuming those deals' events would have built. Going
   through the API for a million deals would take hours on this machine; the point is
   the size of the read model a report reads.
2. Report latency through the gateway (GET /v1/reports/{name}?region=eu), --rounds
   times per report and tenant after one warm-up: all time, and the last 90 days.
3. Lag: --samples times, creates a deal through the API and polls the funnel report
   every 10 ms until its count includes the deal (outbox relay, JetStream, the
   reporting consumer, the report through the gateway).
Prints a table with p50/p99 ms and the ratio large/small for every report.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import procstat  # bench/procstat.py: this folder is on sys.path when run

from crm_cli import cluster as cluster_module
from crm_cli.cluster import Cluster, ClusterConfig
from crm_kit.auth import mint_token
from crm_reporting import projector

REPORTS = ("funnel", "win_rate", "revenue", "activity", "lead_sources", "forecast")
OWNERS = [f"user-{i:02d}" for i in range(20)]
CURRENCIES = ["EUR", "USD", "BRL"]
SOURCES = ["manual", "web_form", "referral", "call", "event"]


_wait = cluster_module._wait


def _patient_wait(check: Any, what: str, timeout: float, log: Any = None) -> None:
    # On a busy 2-core machine the processes can take more than a minute to answer.
    _wait(check, what, timeout * 5, log)


cluster_module._wait = _patient_wait


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


CHUNK = 100_000
DEAL_COLUMNS = [
    "tenant_id", "deal_id", "pipeline_id", "stage_id", "status", "owner_id", "owner_team",
    "source", "amount", "currency", "expected_close_date", "win_probability", "created_at",
    "closed_at", "reached",
]  # fmt: skip


def synthetic(
    rng: random.Random, count: int, days: int, pipelines: dict[str, list[dict[str, Any]]]
) -> list[projector.Deal]:
    now = datetime.now(UTC)
    deals = []
    for _ in range(count):
        pipeline_id = rng.choice(list(pipelines))
        stages = pipelines[pipeline_id]
        stage = rng.choice(stages)
        owner = rng.choice(OWNERS)
        created = now - timedelta(days=rng.uniform(0, days))
        closed = None
        if stage["kind"] != "open":
            closed = min(now, created + timedelta(days=rng.uniform(0, 60)))
        reached = tuple(
            s["id"] for s in stages if s["kind"] == "open" and s["position"] <= stage["position"]
        )
        deals.append(
            projector.Deal(
                pipeline_id=pipeline_id,
                stage_id=stage["id"],
                status=stage["kind"],
                owner_id=owner,
                owner_team=f"team-{OWNERS.index(owner) % 4}",
                source=rng.choice(SOURCES),
                amount=Decimal(rng.randint(100, 10_000_000)) / 100,
                currency=rng.choice(CURRENCIES),
                expected_close_date=(created + timedelta(days=rng.randint(10, 120)))
                .date()
                .isoformat(),
                win_probability=stage["win_probability"],
                created_at=created,
                closed_at=closed,
                reached=reached or (stage["id"],),
            )
        )
    return deals


async def seed(
    dsn: str, tenant: str, count: int, days: int, pipelines: dict[str, list[dict[str, Any]]]
) -> int:
    """COPYs `count` synthetic deals' state and their summed contributions; returns the
    number of aggregate rows. Deals are made in chunks, so memory stays flat."""
    rng = random.Random(count)
    changes: projector.Changes = {}
    connection = await asyncpg.connect(dsn)
    try:
        for offset in range(0, count, CHUNK):
            deals = synthetic(rng, min(CHUNK, count - offset), days, pipelines)
            records = []
            for i, d in enumerate(deals):
                records.append(
                    (
                        tenant, f"eu_bench{offset + i:012d}", d.pipeline_id, d.stage_id,
                        d.status, d.owner_id, d.owner_team, d.source, d.amount, d.currency,
                        d.expected_close_date, d.win_probability, d.created_at, d.closed_at,
                        list(d.reached),
                    )
                )  # fmt: skip
                for table, rows in projector.contributions(d).items():
                    target = changes.setdefault(table, {})
                    for key, values in rows.items():
                        target.setdefault(key, Counter()).update(values)
            await connection.copy_records_to_table(
                "rm_deals", records=records, columns=DEAL_COLUMNS
            )
        total = 0
        for table, keyed in changes.items():
            names = [c.name for c in table.primary_key.columns if c.name != "tenant_id"]
            measures = [
                c.name for c in table.columns if c.name not in names and c.name != "tenant_id"
            ]
            aggregate_rows = [
                (tenant, *key, *(values.get(m, 0) for m in measures))
                for key, values in keyed.items()
            ]
            total += len(aggregate_rows)
            await connection.copy_records_to_table(
                table.name, records=aggregate_rows, columns=["tenant_id", *names, *measures]
            )
        await connection.execute("VACUUM (ANALYZE)")
    finally:
        await connection.close()
    return total


async def run(args: argparse.Namespace) -> None:
    state = Path(tempfile.mkdtemp(prefix="crm-rbench-"))
    cluster = Cluster(
        ClusterConfig(
            state_dir=state,
            regions=["eu"],
            gateway_port=0,
            nats_port=0,
            grpc_base=0,
            services=("contacts", "deals", "reporting"),
        )
    )
    cluster.start_engines()
    try:
        cluster.migrate()
        cluster.start_services()
        await measure(cluster, args)
    finally:
        cluster.stop()


async def measure(cluster: Cluster, args: argparse.Namespace) -> None:
    def headers(tenant: str) -> dict[str, str]:
        token = mint_token(
            cluster.jwt_secret, tenant=tenant, user="boss", roles=["admin"], home_region="eu"
        )
        return {"Authorization": f"Bearer {token}"}

    groups = procstat.cluster_groups(cluster)
    cpu_reports: dict[str, tuple[dict[str, float], int]] = {}
    async with httpx.AsyncClient(base_url=cluster.gateway_url, timeout=120) as client:
        tenants = {"small": ("bench-small", args.small), "large": ("bench-large", args.large)}
        figures: dict[tuple[str, str, str], list[float]] = {}
        dsn = cluster.postgres.dsn(cluster.database("reporting", "eu"))
        for label, (tenant, count) in tenants.items():
            pipelines: dict[str, list[dict[str, Any]]] = {}
            for name in ("Inbound", "Outbound"):
                response = await client.post(
                    "/v1/pipelines",
                    json={
                        "name": name,
                        "stages": [
                            {"name": "Lead", "win_probability": 10},
                            {"name": "Qualified", "win_probability": 30},
                            {"name": "Proposal", "win_probability": 60},
                            {"name": "Won", "win_probability": 100, "kind": "won"},
                            {"name": "Lost", "win_probability": 0, "kind": "lost"},
                        ],
                    },
                    headers=headers(tenant),
                )
                response.raise_for_status()
                pipeline = response.json()
                pipelines[pipeline["id"]] = pipeline["stages"]
            started = time.perf_counter()
            rows = await seed(dsn, tenant, count, args.days, pipelines)
            print(
                f"{label}: {count:,} deals -> {rows:,} aggregate rows "
                f"(seeded in {time.perf_counter() - started:.0f} s)",
                flush=True,
            )
            since = (datetime.now(UTC) - timedelta(days=90)).date().isoformat()
            cpu_before = procstat.start(groups)
            for report in REPORTS:
                for window, params in (("all", {}), ("90d", {"from": since})):
                    url = f"/v1/reports/{report}"
                    query = {"region": "eu", **params}
                    (
                        await client.get(url, params=query, headers=headers(tenant))
                    ).raise_for_status()
                    timings = []
                    for _ in range(args.rounds):
                        t0 = time.perf_counter()
                        response = await client.get(url, params=query, headers=headers(tenant))
                        timings.append((time.perf_counter() - t0) * 1000)
                        response.raise_for_status()
                    figures[(report, window, label)] = timings
            cpu_reports[label] = (
                procstat.since(groups, cpu_before),
                sum(len(figures[(r, w, label)]) + 1 for r in REPORTS for w in ("all", "90d")),
            )
        # Lag: a deal created through the API until the funnel counts it.
        lag_tenant = "bench-lag"
        auth = headers(lag_tenant)
        pipeline = (await client.get("/v1/pipelines", headers=auth)).json()["data"][0]
        contact = (
            await client.post(
                "/v1/contacts",
                json={"first_name": "Lag", "address": {"country": "DE"}},
                headers=auth,
            )
        ).json()
        lags = []
        lag_cpu_before = procstat.start(groups)
        for i in range(args.samples):
            created = await client.post(
                "/v1/deals",
                json={
                    "title": "Lag",
                    "contact_id": contact["id"],
                    "pipeline_id": pipeline["id"],
                    "amount": {"amount": "10.00", "currency": "EUR"},
                },
                headers=auth,
            )
            created.raise_for_status()
            t0 = time.perf_counter()
            while True:
                report = (
                    await client.get("/v1/reports/funnel", params={"region": "eu"}, headers=auth)
                ).json()
                if sum(row["deals"] for row in report["data"]) >= i + 1:
                    break
                await asyncio.sleep(0.01)
            lags.append((time.perf_counter() - t0) * 1000)
        lag_cpu = procstat.since(groups, lag_cpu_before)

    print()
    print(
        f"{'report':<14}{'window':<8}{'10k p50':>10}{'10k p99':>10}{'1M p50':>10}"
        f"{'1M p99':>10}{'ratio p50':>11}"
    )
    for report in REPORTS:
        for window in ("all", "90d"):
            small = figures[(report, window, "small")]
            large = figures[(report, window, "large")]
            s50, l50 = statistics.median(small), statistics.median(large)
            print(
                f"{report:<14}{window:<8}{s50:>10.1f}{percentile(small, 99):>10.1f}"
                f"{l50:>10.1f}{percentile(large, 99):>10.1f}{l50 / s50:>11.2f}"
            )
    print()
    print(
        f"deal event -> report lag over {len(lags)} deals: p50 {percentile(lags, 50):.0f} ms, "
        f"p99 {percentile(lags, 99):.0f} ms (includes the gateway round trip; polled every 10 ms)"
    )
    print()
    for label, (used, calls) in cpu_reports.items():
        print(procstat.format_cpu_per_op(used, calls, f"report requests, {label} tenant"))
    print(
        procstat.format_cpu_per_op(
            lag_cpu, len(lags), "per deal in the lag run: create, events, polling the funnel"
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--days", type=int, default=1095)
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
