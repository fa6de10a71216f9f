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
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from crm_cli.cluster import Cluster, ClusterConfig
from crm_kit.auth import mint_token


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

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "requests": len(latencies),
        "errors": errors,
    }


async def measure_healthz(
    client: httpx.AsyncClient, duration: float, concurrency: int
) -> dict[str, Any]:
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await client.get("/healthz")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"requests_per_s": len(latencies) / elapsed, "p50_ms": percentile(latencies, 50) * 1000}


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


async def run(args: argparse.Namespace, cluster: Cluster) -> dict[str, Any]:
    token = mint_token(
        cluster.jwt_secret, tenant="bench", user="bench-admin", roles=["admin"], home_region="eu"
    )
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=args.concurrency + 4)
    async with httpx.AsyncClient(base_url=cluster.gateway_url, timeout=30, limits=limits) as client:
        stage, ids = await setup(client, headers, max(args.deals, args.samples))
        moves_ids = ids[args.samples :] or ids
        floor = await measure_healthz(client, 3, args.concurrency)
        moves = await measure_moves(
            client, headers, stage, moves_ids, args.duration, args.concurrency
        )
        lag = await measure_lag(client, headers, stage, ids, args.samples)
    return {"stage_moves": moves, "healthz": floor, "move_to_task_lag": lag}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deals", type=int, default=200)
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--samples", type=int, default=100)
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
    moves, floor, lag = results["stage_moves"], results["healthz"], results["move_to_task_lag"]
    print(
        f"Atlas CRM sales workflow benchmark (concurrency {args.concurrency}, {args.duration:.0f}s)"
    )
    print(f"{'measurement':<44}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    rate, p50, p95, p99 = (moves[k] for k in ("requests_per_s", "p50_ms", "p95_ms", "p99_ms"))
    print(f"{'gateway POST /v1/deals/{id}/stage':<44}{rate:>8.0f}{p50:>9.1f}{p95:>9.1f}{p99:>9.1f}")
    floor_rate, floor_p50 = floor["requests_per_s"], floor["p50_ms"]
    print(f"{'gateway GET /healthz (floor)':<44}{floor_rate:>8.0f}{floor_p50:>9.1f}")
    print(f"stage moves / healthz floor: {moves['requests_per_s'] / floor['requests_per_s']:.3f}x")
    print(f"errors during moves: {moves['errors'] or 'none'}")
    print(
        f"stage move -> automated task readable ({lag['samples']} samples): "
        f"p50 {lag['p50_ms']:.0f} ms, p99 {lag['p99_ms']:.0f} ms"
    )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "workflow.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
