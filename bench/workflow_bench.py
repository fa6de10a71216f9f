"""Sales workflow benchmark: stage moves per second through the gateway, and the lag
from a stage move to the task an automation rule creates becoming readable.

    python bench/workflow_bench.py [--deals 200] [--duration 15] [--concurrency 16] [--samples 100]

Starts the whole system (crm_cli.cluster) in a temporary folder, sets up a tenant with
a pipeline and one rule ("entering Measurement creates a task for the owner"), then:
1. moves deals back and forth between two stages with no rule attached, for
   --duration seconds with --concurrency concurrent clients: moves/s and latency;
2. for --samples deals, one at a time, moves the deal into Measurement and polls
   GET /v1/tasks?deal_id=... every 10 ms until the rule's task is there: the lag
   covers the outbox relay, JetStream, the tasks service's consumer, the rule and
   the read through the gateway (p50 and p99; resolution ~10 ms).
In the same run it measures GET /healthz on the same gateway as a floor for one
gateway round trip, and prints the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import floor_server  # bench/floor_server.py: run as a script, this folder is on sys.path
import httpx
import procstat

from crm_cli.cluster import Cluster, ClusterConfig
from crm_kit.auth import mint_token

IDLE_SECONDS = 30


def client_cpu() -> float:
    """This process's own CPU: the load generator (the clients run here)."""
    times = os.times()
    return times.user + times.system


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


async def setup(
    client: httpx.AsyncClient, headers: dict[str, str], deals: int
) -> tuple[dict[str, str], list[str]]:
    async def ok(response: httpx.Response, status: int) -> Any:
        if response.status_code != status:
            request = response.request
            raise RuntimeError(
                f"{request.method} {request.url}: {response.status_code} {response.text}"
            )
        return response.json()

    http = client

    class Retrying:
        """POSTs that a busy machine may answer 503 or drop: retried, done once each
        thanks to the Idempotency-Key (the setup is not what is measured)."""

        async def post(self, path: str, *, json: Any, headers: dict[str, str]) -> httpx.Response:
            keyed = {**headers, "Idempotency-Key": secrets.token_hex(8)}
            for attempt in range(10):
                try:
                    reply = await http.post(path, json=json, headers=keyed)
                except httpx.TransportError:  # a kept-alive connection closed under us
                    if attempt == 9:
                        raise
                    await asyncio.sleep(1)
                    continue
                if reply.status_code != 503:
                    break
                await asyncio.sleep(float(reply.headers.get("Retry-After", "1")))
            return reply

    client = Retrying()  # type: ignore[assignment]

    pipeline = await ok(
        await client.post(
            "/v1/pipelines",
            json={
                "name": "Bench",
                "stages": [
                    {"name": "New", "win_probability": 10},
                    {"name": "Contacted", "win_probability": 20},
                    {"name": "Measurement", "win_probability": 30},
                    {"name": "Won", "win_probability": 100, "kind": "won"},
                    {"name": "Lost", "kind": "lost"},
                ],
            },
            headers=headers,
        ),
        201,
    )
    stage = {s["name"]: s["id"] for s in pipeline["stages"]}
    await ok(
        await client.post(
            "/v1/automations",
            json={
                "name": "Measure",
                "trigger": {
                    "event_type": "deals.deal.stage_changed",
                    "conditions": {"to_stage_id": stage["Measurement"]},
                },
                "actions": [
                    {"type": "create_task", "title": "Measure", "assignee": "owner", "due": "+1d"}
                ],
            },
            headers=headers,
        ),
        201,
    )
    ids: list[str] = []
    limit = asyncio.Semaphore(16)

    async def make(i: int) -> None:
        async with limit:
            contact = await ok(
                await client.post(
                    "/v1/contacts",
                    json={"first_name": f"Bench {i}", "address": {"country": "DE"}},
                    headers=headers,
                ),
                201,
            )
            deal = await ok(
                await client.post(
                    "/v1/deals",
                    json={
                        "title": f"Deal {i}",
                        "contact_id": contact["id"],
                        "pipeline_id": pipeline["id"],
                        "stage_id": stage["New"],
                        "amount": {"amount": "100.00", "currency": "EUR"},
                    },
                    headers=headers,
                ),
                201,
            )
            ids.append(deal["id"])

    await asyncio.gather(*(make(i) for i in range(deals)))
    return stage, ids


async def measure_moves(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    stage: dict[str, str],
    ids: list[str],
    duration: float,
    concurrency: int,
    groups: dict[str, list[int]],
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[int, int] = {}
    deadline = time.perf_counter() + duration
    queue: asyncio.Queue[str] = asyncio.Queue()
    for deal_id in ids:
        queue.put_nowait(deal_id)
    position = dict.fromkeys(ids, "New")

    async def worker() -> None:
        while time.perf_counter() < deadline:
            deal_id = await queue.get()
            target = "Contacted" if position[deal_id] == "New" else "New"
            started = time.perf_counter()
            reply = await client.post(
                f"/v1/deals/{deal_id}/stage", json={"stage_id": stage[target]}, headers=headers
            )
            latencies.append(time.perf_counter() - started)
            if reply.status_code == 200:
                position[deal_id] = target
            else:
                errors[reply.status_code] = errors.get(reply.status_code, 0) + 1
            queue.put_nowait(deal_id)

    return await timed(worker, concurrency, latencies, groups) | {"errors": errors}


async def timed(
    worker: Any,
    concurrency: int,
    latencies: list[float],
    groups: dict[str, list[int]],
) -> dict[str, Any]:
    """Runs `concurrency` workers; requests/s, latency and CPU ms per request per group."""
    before, client_before = procstat.cpu_seconds(groups), client_cpu()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    used = procstat.cpu_delta(before, procstat.cpu_seconds(groups))
    used["client"] = client_cpu() - client_before
    per_request = procstat.per_operation_ms(used, len(latencies))
    return {
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "requests": len(latencies),
        "cpu_ms_per_request": {k: round(v, 3) for k, v in per_request.items()},
        "cpu_ms_stack": round(sum(v for k, v in per_request.items() if k != "client"), 3),
    }


async def measure_healthz(
    client: httpx.AsyncClient, duration: float, concurrency: int, groups: dict[str, list[int]]
) -> dict[str, Any]:
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await client.get("/healthz")
            latencies.append(time.perf_counter() - started)

    return await timed(worker, concurrency, latencies, groups)


async def measure_floor(
    url: str, token: str, duration: float, concurrency: int, groups: dict[str, list[int]]
) -> dict[str, Any]:
    """The architecture floor with the same client: POST /v1/contacts through a real
    gateway to a gRPC servicer that does nothing (bench/floor_server.py)."""
    latencies: list[float] = []
    errors: dict[int, int] = {}
    deadline = time.perf_counter() + duration
    headers = {"Authorization": f"Bearer {token}"}
    body = {"first_name": "Floor", "last_name": "Bench", "address": {"country": "DE"}}
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                reply = await client.post("/v1/contacts", json=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                if reply.status_code != 201:
                    errors[reply.status_code] = errors.get(reply.status_code, 0) + 1

        return await timed(worker, concurrency, latencies, groups) | {"errors": errors}


async def database_transactions(cluster: Cluster) -> int:
    """Transactions committed and rolled back in every database of the server so far."""
    connection = await asyncpg.connect(cluster.postgres.dsn("postgres"))
    try:
        return int(
            await connection.fetchval(
                "SELECT sum(xact_commit + xact_rollback) FROM pg_stat_database"
            )
        )
    finally:
        await connection.close()


async def measure_idle(cluster: Cluster, seconds: float) -> dict[str, Any]:
    """The whole stack at rest: % of one core per group, database transactions/s, RSS."""
    groups = procstat.cluster_groups(cluster)
    await cluster_quiet(cluster)
    before, xacts_before = procstat.cpu_seconds(groups), await database_transactions(cluster)
    await asyncio.sleep(seconds)
    used = procstat.cpu_delta(before, procstat.cpu_seconds(groups))
    # Our own reading of pg_stat_database is one transaction each: not the stack's.
    xacts = await database_transactions(cluster) - xacts_before - 1
    return {
        "seconds": seconds,
        "percent_of_one_core": {k: round(100 * v / seconds, 2) for k, v in used.items()},
        "percent_of_one_core_total": round(100 * sum(used.values()) / seconds, 2),
        "database_transactions_per_s": round(xacts / seconds, 1),
        "rss_mib": {k: round(v, 1) for k, v in procstat.rss_mib(groups).items()},
    }


async def cluster_quiet(cluster: Cluster) -> None:
    """Waits until every outbox is published, then a moment for consumers to finish."""
    for region in cluster.config.regions:
        await cluster.events_published(region, within=60)
    await asyncio.sleep(3)


async def measure_lag(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    stage: dict[str, str],
    ids: list[str],
    samples: int,
) -> dict[str, Any]:
    lags: list[float] = []
    for deal_id in ids[:samples]:
        started = time.perf_counter()
        reply = await client.post(
            f"/v1/deals/{deal_id}/stage", json={"stage_id": stage["Measurement"]}, headers=headers
        )
        if reply.status_code != 200:
            raise RuntimeError(reply.text)
        while True:
            tasks = await client.get("/v1/tasks", params={"deal_id": deal_id}, headers=headers)
            if any(t["title"] == "Measure" for t in tasks.json()["data"]):
                break
            if time.perf_counter() - started > 30:
                raise RuntimeError(f"no task for {deal_id} after 30 s")
            await asyncio.sleep(0.01)
        lags.append(time.perf_counter() - started)
    return {
        "samples": len(lags),
        "p50_ms": percentile(lags, 50) * 1000,
        "p99_ms": percentile(lags, 99) * 1000,
        "mean_ms": statistics.fmean(lags) * 1000,
    }


async def measure_report_lag(
    client: httpx.AsyncClient, cluster: Cluster, samples: int
) -> dict[str, Any]:
    """Deal event -> report: a deal created through the API (a tenant of its own), then
    GET /v1/reports/funnel polled every 10 ms until it counts the deal."""
    token = mint_token(
        cluster.jwt_secret, tenant="bench-report", user="boss", roles=["admin"], home_region="eu"
    )
    auth = {"Authorization": f"Bearer {token}"}
    pipeline = (await client.get("/v1/pipelines", headers=auth)).json()["data"][0]
    contact = await client.post(
        "/v1/contacts", json={"first_name": "Lag", "address": {"country": "DE"}}, headers=auth
    )
    contact.raise_for_status()
    lags: list[float] = []
    for i in range(samples):
        created = await client.post(
            "/v1/deals",
            json={
                "title": f"Lag {i}",
                "contact_id": contact.json()["id"],
                "pipeline_id": pipeline["id"],
                "amount": {"amount": "10.00", "currency": "EUR"},
            },
            headers=auth,
        )
        created.raise_for_status()
        started = time.perf_counter()
        while True:
            report = await client.get("/v1/reports/funnel", params={"region": "eu"}, headers=auth)
            if sum(row["deals"] for row in report.json()["data"]) >= i + 1:
                break
            if time.perf_counter() - started > 30:
                raise RuntimeError(f"deal {i} not in the funnel after 30 s")
            await asyncio.sleep(0.01)
        lags.append(time.perf_counter() - started)
    return {
        "samples": len(lags),
        "p50_ms": percentile(lags, 50) * 1000,
        "p99_ms": percentile(lags, 99) * 1000,
        "mean_ms": statistics.fmean(lags) * 1000,
    }


async def run(args: argparse.Namespace, cluster: Cluster) -> dict[str, Any]:
    token = mint_token(
        cluster.jwt_secret, tenant="bench", user="bench-admin", roles=["admin"], home_region="eu"
    )
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=args.concurrency + 4)
    groups = procstat.cluster_groups(cluster)
    async with httpx.AsyncClient(base_url=cluster.gateway_url, timeout=30, limits=limits) as client:
        stage, ids = await setup(client, headers, max(args.deals, args.samples))
        moves_ids = ids[args.samples :] or ids
        await cluster_quiet(cluster)
        healthz = await measure_healthz(client, 3, args.concurrency, groups)
        moves = await measure_moves(
            client, headers, stage, moves_ids, args.duration, args.concurrency, groups
        )
        lag = await measure_lag(client, headers, stage, ids, args.samples)
        report_lag = await measure_report_lag(client, cluster, args.samples)
    await cluster_quiet(cluster)
    processes, url = floor_server.start_floor(cluster)
    try:
        floor_groups = {"gateway": [processes[1].pid], "floor": [processes[0].pid]}
        await measure_floor(url, token, 2, args.concurrency, floor_groups)  # warm-up
        floor = await measure_floor(url, token, args.duration, args.concurrency, floor_groups)
    finally:
        floor_server.stop(processes)
    idle = await measure_idle(cluster, args.idle_seconds)
    return {
        "stage_moves": moves,
        "healthz": healthz,
        "architecture_floor": floor,
        "move_to_task_lag": lag,
        "deal_event_to_report_lag": report_lag,
        "idle": idle,
    }


def cpu_line(result: dict[str, Any]) -> str:
    groups = sorted(result["cpu_ms_per_request"].items(), key=lambda item: -item[1])
    return f"stack {result['cpu_ms_stack']:.2f}: " + "  ".join(f"{g} {ms:.2f}" for g, ms in groups)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deals", type=int, default=200)
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument(
        "--idle-seconds", type=float, default=IDLE_SECONDS, help="how long the stack rests"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as state:
        cluster = Cluster(
            ClusterConfig(
                state_dir=Path(state),
                regions=["eu", "br", "us"],
                gateway_port=0,
                nats_port=0,
                grpc_base=0,
            )
        )
        try:
            cluster.start()
            results = asyncio.run(run(args, cluster))
        finally:
            cluster.stop()
    moves, healthz, lag = results["stage_moves"], results["healthz"], results["move_to_task_lag"]
    floor, idle = results["architecture_floor"], results["idle"]
    print(
        f"Atlas CRM sales workflow benchmark (concurrency {args.concurrency}, {args.duration:.0f}s)"
    )
    print(f"{'measurement':<44}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'CPU ms':>9}")
    for label, r in (
        ("gateway POST /v1/deals/{id}/stage", moves),
        ("floor POST /v1/contacts, no-op gRPC", floor),
        ("gateway GET /healthz", healthz),
    ):
        rate, p50, p95, p99 = (r[k] for k in ("requests_per_s", "p50_ms", "p95_ms", "p99_ms"))
        print(f"{label:<44}{rate:>8.0f}{p50:>9.1f}{p95:>9.1f}{p99:>9.1f}{r['cpu_ms_stack']:>9.2f}")
    print("CPU ms per request per process group (the client apart from the stack):")
    print(f"  stage move  {cpu_line(moves)}")
    print(f"  floor       {cpu_line(floor)}")
    print(f"  healthz     {cpu_line(healthz)}")
    print(
        f"stage moves / architecture floor: requests/s "
        f"{moves['requests_per_s'] / floor['requests_per_s']:.3f}x, "
        f"CPU ms {moves['cpu_ms_stack'] / floor['cpu_ms_stack']:.2f}x; "
        f"stage moves / healthz: {moves['requests_per_s'] / healthz['requests_per_s']:.3f}x"
    )
    print(f"errors during moves: {moves['errors'] or 'none'}; floor: {floor['errors'] or 'none'}")
    print(
        f"stage move -> automated task readable ({lag['samples']} samples): "
        f"p50 {lag['p50_ms']:.0f} ms, p99 {lag['p99_ms']:.0f} ms"
    )
    report_lag = results["deal_event_to_report_lag"]
    print(
        f"deal event -> report ({report_lag['samples']} samples): "
        f"p50 {report_lag['p50_ms']:.0f} ms, p99 {report_lag['p99_ms']:.0f} ms"
    )
    print(
        f"idle, {idle['seconds']:.0f} s at rest: {idle['percent_of_one_core_total']:.1f} % of one "
        f"core, {idle['database_transactions_per_s']:.1f} database transactions/s"
    )
    for group, percent in sorted(idle["percent_of_one_core"].items(), key=lambda i: -i[1]):
        print(
            f"  {group:<16} {percent:6.2f} % of one core  {idle['rss_mib'].get(group, 0):8.1f} MiB"
        )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "workflow.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
