"""Integrations benchmark: contact import throughput (rows/s) for a large CSV, and public
form submissions per second, each next to a baseline measured in the same run.

    python bench/integrations_bench.py [--rows 100000] [--duration 15] [--concurrency 16]

Starts the whole system (crm_cli.cluster) in a temporary folder, then:
1. builds a --rows CSV of contacts (German phones typed the national way, emails,
   countries, birthdays; every 20th row has a bad email), uploads it through
   POST /v1/imports, starts it and polls until it completes: rows/s from start to
   completion. Baselines, same run: the same kind of contacts created one by one with
   POST /v1/contacts by --concurrency clients (what a script against the API gets), and
   Python's csv module reading the same file (how fast the bytes become rows at all).
2. posts form submissions (new person each time, JSON) to /public/forms/{key} with
   --concurrency clients for --duration seconds: submissions/s and latency; each one
   stores the submission, creates the contact and the deal (and the automation's task).
   Baseline: a trivial FastAPI endpoint (uvicorn, one worker, uvloop, httptools, the
   gateway's settings) that accepts the same JSON and answers 201, driven by the same
   client code.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import procstat  # bench/procstat.py: this folder is on sys.path when run

from crm_cli.cluster import Cluster, ClusterConfig, free_port
from crm_kit.auth import mint_token


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def build_csv(path: Path, rows: int) -> int:
    bad = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["First name", "Last name", "Phone", "Email", "Country", "Birthday"])
        for i in range(rows):
            email = f"person{i}@bench.example" if i % 20 else f"person{i}@@bad"
            bad += i % 20 == 0
            writer.writerow(
                ["Anna", f"Muster{i}", f"0151 2{i:07d}", email, "DE", f"{1 + i % 28}.3.1985"]
            )
    return bad


def parse_rate(path: Path) -> float:
    started = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as handle:
        count = sum(1 for _ in csv.reader(handle)) - 1
    return count / (time.perf_counter() - started)


async def ok(response: httpx.Response, status: int = 200) -> Any:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
    return response.json()


async def bench_import(
    client: httpx.AsyncClient, headers: dict[str, str], path: Path
) -> dict[str, Any]:
    job = await ok(
        await client.post(
            "/v1/imports?file_name=bench.csv",
            content=await asyncio.to_thread(path.read_bytes),
            headers={**headers, "content-type": "text/csv"},
            timeout=300,
        ),
        201,
    )
    started = time.perf_counter()
    await ok(
        await client.post(
            f"/v1/imports/{job['id']}/start", json={"duplicate_policy": "skip"}, headers=headers
        ),
        202,
    )
    while True:
        current = await ok(await client.get(f"/v1/imports/{job['id']}", headers=headers))
        if current["status"] not in ("running", "ready"):
            break
        await asyncio.sleep(0.5)
    elapsed = time.perf_counter() - started
    counts = current["counts"]
    return {
        "status": current["status"],
        "seconds": elapsed,
        "counts": counts,
        "rows_per_s": counts["processed"] / elapsed,
    }


async def bench_api_creates(
    client: httpx.AsyncClient, headers: dict[str, str], rows: int, concurrency: int
) -> dict[str, Any]:
    """Contacts like the file's, created one request each through the gateway."""
    counter = iter(range(rows))

    async def worker() -> None:
        for i in counter:
            await ok(
                await client.post(
                    "/v1/contacts",
                    json={
                        "first_name": "Berta",
                        "last_name": f"Einzeln{i}",
                        "emails": [f"single{i}@bench.example"],
                        "phones": [f"0151 3{i:07d}"],
                        "address": {"country": "DE"},
                        "important_dates": [{"kind": "birthday", "date": "1985-03-01"}],
                        "source": "import",
                    },
                    headers=headers,
                ),
                201,
            )

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"rows": rows, "seconds": elapsed, "rows_per_s": rows / elapsed}


async def drive(
    client: httpx.AsyncClient, url: str, duration: float, concurrency: int, expect: set[int]
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    counter = iter(range(10**9))
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        while time.perf_counter() < deadline:
            n = next(counter)
            body = {
                "name": f"Lead {n}",
                "email": f"lead{n}-{id(client)}@bench.example",
                "country": "DE",
                "utm_source": "bench",
            }
            started = time.perf_counter()
            reply = await client.post(url, json=body)
            if reply.status_code in expect:
                latencies.append(time.perf_counter() - started)
            else:
                errors[str(reply.status_code)] = errors.get(str(reply.status_code), 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000 if latencies else 0.0,
        "p99_ms": percentile(latencies, 99) * 1000 if latencies else 0.0,
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else 0.0,
        "count": len(latencies),
        "errors": errors,
    }


async def trivial_endpoint() -> tuple[Any, str]:
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/public/forms/{key}", status_code=201)
    async def accept(key: str, body: dict[str, str]) -> dict[str, str]:
        return {"id": key, "status": "completed"}

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            loop="uvloop",
            http="httptools",
            log_config=None,
            access_log=False,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes only this flag
        await asyncio.sleep(0.05)
    server_task: Any = (server, task)
    return server_task, f"http://127.0.0.1:{port}"


async def bench_forms(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    duration: float,
    concurrency: int,
    groups: dict[str, list[int]],
) -> dict[str, Any]:
    pipeline = await ok(
        await client.post(
            "/v1/pipelines",
            json={
                "name": "Bench",
                "stages": [
                    {"name": "New"},
                    {"name": "Won", "kind": "won"},
                    {"name": "Lost", "kind": "lost"},
                ],
            },
            headers=headers,
        ),
        201,
    )
    form = await ok(
        await client.post(
            "/v1/forms",
            json={
                "name": "Bench form",
                "field_mapping": {"name": "name", "email": "email", "country": "country"},
                "pipeline_id": pipeline["id"],
                "stage_id": pipeline["stages"][0]["id"],
                "owner": "user:bench-admin",
                "rate_limit_per_key": 100_000,
                "rate_limit_per_ip": 100_000,
            },
            headers=headers,
        ),
        201,
    )
    await drive(client, form["submit_url"], 2, concurrency, {201})  # warm-up
    before = procstat.start(groups)
    system = await drive(client, form["submit_url"], duration, concurrency, {201})
    system["cpu_seconds"] = procstat.since(groups, before)
    (server, task), base_url = await trivial_endpoint()
    try:
        limits = httpx.Limits(max_connections=concurrency + 4)
        async with httpx.AsyncClient(base_url=base_url, limits=limits) as plain:
            await drive(plain, "/public/forms/x", 2, concurrency, {201})
            baseline = await drive(plain, "/public/forms/x", duration, concurrency, {201})
    finally:
        server.should_exit = True
        await task
    return {"system": system, "baseline": baseline}


async def run(args: argparse.Namespace, cluster: Cluster, path: Path) -> dict[str, Any]:
    token = mint_token(
        cluster.jwt_secret, tenant="bench", user="bench-admin", roles=["admin"], home_region="eu"
    )
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=args.concurrency + 4)
    async with httpx.AsyncClient(base_url=cluster.gateway_url, timeout=60, limits=limits) as client:
        groups = procstat.cluster_groups(cluster)
        forms = await bench_forms(client, headers, args.duration, args.concurrency, groups)
        before = procstat.start(groups)
        imported = await bench_import(client, headers, path)
        imported["cpu_seconds"] = procstat.since(groups, before)
        before = procstat.start(groups)
        one_by_one = await bench_api_creates(
            client, headers, min(args.rows, args.api_rows), args.concurrency
        )
        one_by_one["cpu_seconds"] = procstat.since(groups, before)
    return {"forms": forms, "import": imported, "api_creates": one_by_one}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--api-rows", type=int, default=2000, help="contacts of the one-by-one API baseline"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as state:
        path = Path(state) / "contacts.csv"
        bad = build_csv(path, args.rows)
        parsed = parse_rate(path)
        cluster = Cluster(
            ClusterConfig(
                state_dir=Path(state) / "cluster",
                regions=["eu", "br", "us"],
                gateway_port=0,
                nats_port=0,
                grpc_base=0,
            )
        )
        try:
            cluster.start()
            results = asyncio.run(run(args, cluster, path))
        finally:
            cluster.stop()
    results["import"]["expected_failed"] = bad
    results["csv_parse_rows_per_s"] = parsed
    imported, forms = results["import"], results["forms"]
    print(
        f"Atlas CRM integrations benchmark ({args.rows} rows; forms: "
        f"concurrency {args.concurrency}, {args.duration:.0f}s)"
    )
    print(
        f"import: {imported['status']} in {imported['seconds']:.1f}s, "
        f"{imported['rows_per_s']:.0f} rows/s, counts {json.dumps(imported['counts'])}"
    )
    api = results["api_creates"]
    print(
        f"baseline POST /v1/contacts one by one ({api['rows']} contacts, "
        f"{args.concurrency} clients): {api['rows_per_s']:.0f} rows/s; "
        f"import / one by one: {imported['rows_per_s'] / api['rows_per_s']:.2f}x"
    )
    print(
        f"baseline csv.reader over the same file: {parsed:.0f} rows/s; "
        f"import / raw parse: {imported['rows_per_s'] / parsed:.4f}x"
    )
    system, baseline = forms["system"], forms["baseline"]
    print(
        f"form submissions: {system['per_s']:.1f}/s, p50 {system['p50_ms']:.0f} ms, "
        f"p99 {system['p99_ms']:.0f} ms, errors {system['errors'] or 'none'}"
    )
    print(
        f"baseline trivial FastAPI endpoint: {baseline['per_s']:.0f}/s, "
        f"p50 {baseline['p50_ms']:.1f} ms; submissions / baseline: "
        f"{system['per_s'] / baseline['per_s']:.4f}x"
    )
    print()
    print(procstat.format_cpu_per_op(system["cpu_seconds"], system["count"], "form submissions"))
    print(
        procstat.format_cpu_per_op(
            imported["cpu_seconds"], imported["counts"]["processed"], "import, per row"
        )
    )
    print(procstat.format_cpu_per_op(api["cpu_seconds"], api["rows"], "POST /v1/contacts"))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "integrations.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
