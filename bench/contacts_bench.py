"""Contact creation and search through the gateway, against a bare FastAPI baseline.

    python bench/contacts_bench.py [--contacts-per-region 100000] [--duration 15]
                                   [--connections 32]

1. starts the whole system (embedded PostgreSQL and NATS, the contacts service in
   eu, br and us, the gateway) in a temporary folder, as `crm up` does;
2. loads N contacts per region straight into each region's `contacts` table with COPY,
   built by the service's own code (`search_document`, `new_id`), then ANALYZE;
3. drives the gateway with wrk: GET /v1/contacts?q=... (search, at N contacts per
   region) and POST /v1/contacts (creation), each for --duration seconds;
4. drives a bare FastAPI + asyncpg insert endpoint (bench/baseline_app.py) on the same
   PostgreSQL server with the same wrk settings and the same requests;
5. prints requests/s and latency percentiles for each, and the gateway/baseline ratio
   for creation, and writes them to bench/results/latest.json;
6. stops everything, also on Ctrl-C.

Figures are only comparable within one run (same machine, same moment): read the
ratio, not the absolute numbers. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import dataset  # bench/dataset.py: run as a script, this folder is on sys.path
import floor_server
import httpx
import procstat  # bench/procstat.py

from crm_cli.cluster import Cluster, ClusterConfig, free_port
from crm_kit.auth import mint_token

BENCH = Path(__file__).resolve().parent
WRK_DIR = BENCH / "wrk"
RESULTS_DIR = BENCH / "results"
REGIONS = ["eu", "br", "us"]
CHUNK = 5000
BASELINE_DATABASE = "bench_baseline"

# Search queries per region: common and rare names, accents, typos, other scripts,
# email fragments. A phone fragment taken from the loaded data is added at run time.
QUERIES: dict[str, list[str]] = {
    "eu": ["muller", "mulller", "Schröder", "garcia", "lukasz nowak", "अनिल", "rezaei", "dvorak"],
    "br": ["joao", "goncalves", "Conceição", "araujo silva", "magalhaes", "goncalvez", "ana paula"],
    "us": ["smith", "smiht", "hernandez", "nguyen", "प्रिया पटेल", "مریم", "james.smith"],
}

# One sample body per region for the pre-flight check (the wrk script makes its own).
SAMPLE_BODIES = {
    "eu": {
        "first_name": "Anna",
        "last_name": "Müller",
        "emails": ["anna.preflight@example.de"],
        "phones": ["030 1234567"],
        "address": {"country": "DE", "city": "Berlin"},
    },
    "br": {
        "first_name": "João",
        "last_name": "Gonçalves",
        "emails": ["joao.preflight@example.com.br"],
        "phones": ["(11) 91234-5678"],
        "address": {"country": "BR", "city": "São Paulo"},
    },
    "us": {
        "first_name": "James",
        "last_name": "Smith",
        "emails": ["james.preflight@example.com"],
        "phones": ["(415) 623-4567"],
        "address": {"country": "US", "city": "San Francisco"},
    },
}


class BenchError(RuntimeError):
    pass


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------- loading


def _quiet_worker() -> None:
    # Ctrl-C goes to the parent, which shuts the pool down in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


SECONDARY_INDEXES = """
SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = 'contacts'::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
ORDER BY c.relname
"""


async def _load_region(
    connection: asyncpg.Connection, region: str, chunks: list[Future[list[tuple[Any, ...]]]]
) -> None:
    for chunk in chunks:
        rows = await asyncio.wrap_future(chunk)
        await connection.copy_records_to_table(
            "contacts", records=rows, columns=list(dataset.COLUMNS)
        )


async def load_contacts(cluster: Cluster, per_region: int, pool: ProcessPoolExecutor) -> float:
    """COPYs `per_region` contacts into every region; returns the seconds it took.

    The table's secondary indexes (GIN trigram, arrays, btrees) are dropped first and
    rebuilt afterwards from their own definitions, which is much faster than updating
    them row by row; the schema afterwards is exactly what the migrations made.
    """
    started = time.perf_counter()
    connections = {
        region: await asyncpg.connect(cluster.postgres.dsn(cluster.database("contacts", region)))
        for region in REGIONS
    }
    try:
        indexes: dict[str, list[asyncpg.Record]] = {}
        for region, connection in connections.items():
            indexes[region] = await connection.fetch(SECONDARY_INDEXES)
            for index in indexes[region]:
                await connection.execute(f'DROP INDEX "{index["name"]}"')
        chunks: dict[str, list[Future[list[tuple[Any, ...]]]]] = {r: [] for r in REGIONS}
        for n in range(0, per_region, CHUNK):
            for r_index, region in enumerate(REGIONS):
                size = min(CHUNK, per_region - n)
                seed = 1_000_003 * r_index + n
                chunks[region].append(pool.submit(dataset.build_chunk, region, size, seed))
        await asyncio.gather(*(_load_region(connections[r], r, chunks[r]) for r in REGIONS))
        say(f"  copied {per_region * len(REGIONS):,} rows in {time.perf_counter() - started:.1f}s")

        async def finish(region: str) -> None:
            connection = connections[region]
            await connection.execute("SET maintenance_work_mem = '256MB'")
            for index in indexes[region]:
                await connection.execute(index["definition"])
            await connection.execute("VACUUM (ANALYZE) contacts")

        await asyncio.gather(*(finish(r) for r in REGIONS))
    finally:
        for connection in connections.values():
            await connection.close()
    return time.perf_counter() - started


async def count_contacts(cluster: Cluster) -> dict[str, int]:
    counts = {}
    for region in REGIONS:
        connection = await asyncpg.connect(
            cluster.postgres.dsn(cluster.database("contacts", region))
        )
        try:
            counts[region] = int(
                await connection.fetchval(
                    "SELECT count(*) FROM contacts WHERE tenant_id = $1", dataset.TENANT
                )
            )
        finally:
            await connection.close()
    return counts


async def phone_fragments(cluster: Cluster) -> dict[str, str]:
    """A phone fragment per region, typed as a user would ("706 6907"), from the data."""
    fragments = {}
    for region in REGIONS:
        connection = await asyncpg.connect(
            cluster.postgres.dsn(cluster.database("contacts", region))
        )
        try:
            phone = await connection.fetchval(
                "SELECT phones[1] FROM contacts WHERE tenant_id = $1 AND phones <> '{}' "
                "ORDER BY id OFFSET 1000 LIMIT 1",
                dataset.TENANT,
            )
        finally:
            await connection.close()
        digits = re.sub(r"\D", "", phone or "+4930123456789")
        fragments[region] = f"{digits[-7:-4]} {digits[-4:]}"
    return fragments


async def outbox_backlog(cluster: Cluster) -> int:
    total = 0
    for region in REGIONS:
        connection = await asyncpg.connect(
            cluster.postgres.dsn(cluster.database("contacts", region))
        )
        try:
            total += int(
                await connection.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            )
        finally:
            await connection.close()
    return total


# ---------------------------------------------------------------------- wrk


def run_wrk(
    name: str,
    url: str,
    script: Path,
    script_args: list[str],
    *,
    duration: int,
    connections: int,
    threads: int,
) -> dict[str, Any]:
    """Runs wrk once; returns its figures (from the script's `done`) plus wrk's own text."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(script),
        url,
        "--",
        *script_args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or "WRK_JSON " not in done.stdout:
        raise BenchError(f"wrk ({name}) failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"wrk-{name}.txt").write_text(done.stdout + done.stderr)
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK_JSON "))
    raw = json.loads(line.removeprefix("WRK_JSON "))
    rps_text = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    return summarize(raw, float(rps_text.group(1)) if rps_text else None)


def summarize(raw: dict[str, Any], wrk_rps: float | None) -> dict[str, Any]:
    seconds = raw["duration_us"] / 1e6
    pct = raw["latency_us"]["percentiles"]
    statuses = {int(k): v for k, v in raw["statuses"].items()}
    errors = raw["errors"]
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 2),
        "requests_per_second": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "wrk_requests_per_second": wrk_rps,
        "latency_ms": {
            "p50": pct["50"] / 1000,
            "p75": pct["75"] / 1000,
            "p90": pct["90"] / 1000,
            "p95": pct["95"] / 1000,
            "p99": pct["99"] / 1000,
            "p99.9": pct["99.9"] / 1000,
            "mean": round(raw["latency_us"]["mean"] / 1000, 3),
            "max": raw["latency_us"]["max"] / 1000,
        },
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "non_2xx": sum(v for k, v in statuses.items() if not 200 <= k <= 299),
        "socket_errors": {k: errors[k] for k in ("connect", "read", "write", "timeout")},
        "first_non_2xx": raw["first_error"],
    }


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def measure(
    name: str,
    url: str,
    script: str,
    args: list[str],
    settings: argparse.Namespace,
    warmup_args: list[str] | None = None,
    groups: dict[str, list[int]] | None = None,
) -> dict[str, Any]:
    """A warm-up run (not recorded), then the measured run, with the same wrk settings;
    with `groups`, the CPU each process group spent per request in the measured run
    (wrk's own CPU too: it is our child, reaped when it ends)."""
    path = WRK_DIR / script
    if settings.warmup > 0:
        say(f"  {name}: warming up for {settings.warmup}s")
        run_wrk(
            f"{name}-warmup",
            url,
            path,
            warmup_args or args,
            duration=settings.warmup,
            connections=settings.connections,
            threads=settings.threads,
        )
    say(f"  {name}: measuring for {settings.duration}s")
    before = procstat.cpu_seconds(groups or {})
    wrk_before = _children_cpu()
    result = run_wrk(
        name,
        url,
        path,
        args,
        duration=settings.duration,
        connections=settings.connections,
        threads=settings.threads,
    )
    used = procstat.cpu_delta(before, procstat.cpu_seconds(groups or {}))
    used["wrk"] = _children_cpu() - wrk_before
    result["cpu_ms_per_request"] = {
        name: round(ms, 3)
        for name, ms in procstat.per_operation_ms(used, result["requests"]).items()
    }
    result["cpu_ms_per_request_stack"] = round(
        sum(ms for group, ms in result["cpu_ms_per_request"].items() if group != "wrk"), 3
    )
    say(
        f"  {name}: {result['requests_per_second']:,.0f} requests/s, "
        f"p50 {result['latency_ms']['p50']:.1f} ms, p99 {result['latency_ms']['p99']:.1f} ms, "
        f"non-2xx {result['non_2xx']}"
    )
    return result


# ---------------------------------------------------------------------- the run


def preflight_create(gateway: str, tokens: dict[str, str]) -> None:
    for region in REGIONS:
        reply = httpx.post(
            f"{gateway}/v1/contacts",
            json=SAMPLE_BODIES[region],
            headers={"Authorization": f"Bearer {tokens[region]}"},
            timeout=30,
        )
        if reply.status_code != 201 or reply.json().get("region") != region:
            raise BenchError(f"POST /v1/contacts in {region}: {reply.status_code} {reply.text}")


def preflight_search(
    gateway: str, tokens: dict[str, str], queries: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """Runs every query once; the hits show the queries find something."""
    report = []
    with httpx.Client(base_url=gateway, timeout=30) as client:
        for region, texts in queries.items():
            for text in texts:
                started = time.perf_counter()
                reply = client.get(
                    "/v1/contacts",
                    params={"q": text, "limit": 20},
                    headers={"Authorization": f"Bearer {tokens[region]}"},
                )
                elapsed = (time.perf_counter() - started) * 1000
                if reply.status_code != 200:
                    raise BenchError(
                        f"search {text!r} in {region}: {reply.status_code} {reply.text}"
                    )
                data = reply.json()["data"]
                report.append(
                    {
                        "region": region,
                        "q": text,
                        "hits": len(data),
                        "top": f"{data[0]['first_name']} {data[0]['last_name']}" if data else "",
                        "single_request_ms": round(elapsed, 1),
                    }
                )
    return report


def write_search_requests(
    path: Path, tokens: dict[str, str], queries: dict[str, list[str]]
) -> None:
    lines = []
    # Interleave regions so every stretch of the run touches all three.
    longest = max(len(texts) for texts in queries.values())
    for i in range(longest):
        for region, texts in queries.items():
            if i < len(texts):
                query = urllib.parse.urlencode({"q": texts[i], "limit": 20})
                lines.append(f"/v1/contacts?{query}\t{tokens[region]}")
    path.write_text("\n".join(lines) + "\n")


def start_baseline(cluster: Cluster, log_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    cluster.postgres.ensure_database(BASELINE_DATABASE)
    port = free_port()
    log = (log_dir / "baseline.log").open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            str(BENCH / "baseline_app.py"),
            "--dsn",
            cluster.postgres.dsn(BASELINE_DATABASE),
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the baseline app exited:\n{(log_dir / 'baseline.log').read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        time.sleep(0.2)
    raise BenchError("the baseline app did not start within 30s")


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def log_problems(log: Path, limit: int = 15) -> dict[str, Any]:
    """Error and warning lines of a service log (JSON lines with a `level`)."""
    if not log.exists():
        return {"errors": 0, "warnings": 0, "last_errors": []}
    lines = log.read_text(errors="replace").splitlines()
    errors = [x for x in lines if re.search(r'"level": "(ERROR|CRITICAL)"|Traceback', x)]
    warnings = [x for x in lines if '"level": "WARNING"' in x]
    return {
        "errors": len(errors),
        "warnings": len(warnings),
        "last_errors": [x[:600] for x in errors[-limit:]],
    }


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def run(settings: argparse.Namespace, state: Path) -> dict[str, Any]:
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {
            "contacts_per_region": settings.contacts_per_region,
            "duration_s": settings.duration,
            "warmup_s": settings.warmup,
            "connections": settings.connections,
            "threads": settings.threads,
            "regions": REGIONS,
        },
        "machine": machine_info(),
    }
    cluster = Cluster(
        ClusterConfig(state_dir=state, regions=REGIONS, gateway_port=0, nats_port=0, grpc_base=0)
    )
    baseline: subprocess.Popen[bytes] | None = None
    pool = ProcessPoolExecutor(
        max_workers=max(1, min(2, os.cpu_count() or 1)),
        mp_context=multiprocessing.get_context("fork"),
        initializer=_quiet_worker,
    )
    try:
        say(f"starting the system in {state}")
        started = time.perf_counter()
        cluster.start()
        say(f"  up in {time.perf_counter() - started:.1f}s; gateway at {cluster.gateway_url}")
        results["machine"]["postgres"] = cluster.postgres.psql("SHOW server_version").strip()
        tokens = {
            region: mint_token(
                cluster.jwt_secret,
                tenant=dataset.TENANT,
                user="u_bench",
                roles=["admin"],
                home_region=region,
            )
            for region in REGIONS
        }
        preflight_create(cluster.gateway_url, tokens)

        n = settings.contacts_per_region
        say(f"loading {n:,} contacts per region ({', '.join(REGIONS)})")
        load_seconds = asyncio.run(load_contacts(cluster, n, pool))
        pool.shutdown()
        say(f"  loaded, indexed and analyzed in {load_seconds:.1f}s")
        results["load"] = {
            "rows": n * len(REGIONS),
            "seconds": round(load_seconds, 1),
            "rows_per_second": round(n * len(REGIONS) / load_seconds),
        }

        queries = {region: list(texts) for region, texts in QUERIES.items()}
        for region, fragment in asyncio.run(phone_fragments(cluster)).items():
            queries[region].append(fragment)
        counts = asyncio.run(count_contacts(cluster))
        results["contacts_per_region_at_search"] = counts
        say("contacts per region: " + ", ".join(f"{r} {c:,}" for r, c in counts.items()))
        results["search_queries"] = preflight_search(cluster.gateway_url, tokens, queries)
        for item in results["search_queries"]:
            if item["hits"] == 0:
                say(f"  note: search {item['q']!r} in {item['region']} finds nothing")
        requests_file = state / "search-requests.tsv"
        write_search_requests(requests_file, tokens, queries)

        measurements: dict[str, Any] = {}
        results["measurements"] = measurements
        say("search through the gateway: GET /v1/contacts?q=...")
        groups = procstat.cluster_groups(cluster)
        measurements["gateway_search"] = measure(
            "gateway-search",
            cluster.gateway_url,
            "search.lua",
            [str(requests_file)],
            settings,
            groups=groups,
        )

        run_id = secrets.token_hex(3)
        token_args = [f"{region}={tokens[region]}" for region in REGIONS]
        say("creation through the gateway: POST /v1/contacts")
        measurements["gateway_create"] = measure(
            "gateway-create",
            cluster.gateway_url,
            "create.lua",
            [run_id, *token_args],
            settings,
            warmup_args=[f"{run_id}w", *token_args],
            groups=groups,
        )
        results["contacts_per_region_after_create"] = asyncio.run(count_contacts(cluster))
        results["outbox_backlog_after_create"] = asyncio.run(outbox_backlog(cluster))
        deadline = time.monotonic() + 60
        while asyncio.run(outbox_backlog(cluster)) and time.monotonic() < deadline:
            time.sleep(1)  # let the relays publish before the baseline shares the CPUs

        say("baseline: bare FastAPI + asyncpg insert (bench/baseline_app.py)")
        baseline, baseline_url = start_baseline(cluster, cluster.log_dir)
        measurements["baseline_create"] = measure(
            "baseline-create",
            baseline_url,
            "create.lua",
            [run_id, *token_args],
            settings,
            warmup_args=[f"{run_id}w", *token_args],
            groups={
                "baseline": [baseline.pid],
                "postgres": groups["postgres"],
                "gateway": groups["gateway"],
            },
        )
        stop_process(baseline)
        baseline = None

        say("architecture floor: the gateway -> gRPC -> a servicer that does nothing")
        floor_processes, floor_url = floor_server.start_floor(cluster)
        try:
            measurements["floor_create"] = measure(
                "floor-create",
                floor_url,
                "create.lua",
                [run_id, *token_args],
                settings,
                warmup_args=[f"{run_id}w", *token_args],
                groups={"gateway": [floor_processes[1].pid], "floor": [floor_processes[0].pid]},
            )
        finally:
            floor_server.stop(floor_processes)

        gateway, floor = measurements["gateway_create"], measurements["baseline_create"]
        arch = measurements["floor_create"]
        results["ratios"] = {
            "create_requests_per_second_over_floor": ratio(
                gateway["requests_per_second"], arch["requests_per_second"]
            ),
            "floor_requests_per_second_over_baseline": ratio(
                arch["requests_per_second"], floor["requests_per_second"]
            ),
            "create_cpu_ms_stack_over_floor": ratio(
                gateway["cpu_ms_per_request_stack"], arch["cpu_ms_per_request_stack"]
            ),
            "create_requests_per_second_gateway_over_baseline": ratio(
                gateway["requests_per_second"], floor["requests_per_second"]
            ),
            **{
                f"create_{p}_latency_gateway_over_baseline": ratio(
                    gateway["latency_ms"][p], floor["latency_ms"][p]
                )
                for p in ("p50", "p95", "p99")
            },
        }
        results["logs"] = {
            "gateway": log_problems(cluster.log_dir / "gateway.log"),
            **{
                f"contacts-{r}": log_problems(cluster.log_dir / f"contacts-{r}.log")
                for r in REGIONS
            },
        }
        results["machine"]["load_average_after"] = os.getloadavg()
        return results
    finally:
        # A second Ctrl-C must not leave PostgreSQL or the services behind.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, Interrupts.note)
        pool.shutdown(wait=True, cancel_futures=True)
        stop_process(baseline)
        say("stopping the system")
        cluster.stop()
        keep_logs(cluster.log_dir)


def keep_logs(log_dir: Path) -> None:
    if log_dir.exists():
        target = RESULTS_DIR / "logs"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(log_dir, target)


def machine_info() -> dict[str, Any]:
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    commit = subprocess.run(
        ["git", "-C", str(BENCH.parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wrk": (wrk.stdout or wrk.stderr).splitlines()[0] if (wrk.stdout or wrk.stderr) else "",
        "git_commit": commit.stdout.strip(),
        "load_average_before": os.getloadavg(),
    }


# ---------------------------------------------------------------------- output


def render(results: dict[str, Any]) -> str:
    s = results["settings"]
    m = results["measurements"]
    machine = results["machine"]
    rows = [
        ("gateway  POST /v1/contacts (create)", m["gateway_create"]),
        ("floor    POST via gateway, no-op gRPC", m["floor_create"]),
        ("baseline POST (FastAPI + asyncpg)", m["baseline_create"]),
        ("gateway  GET /v1/contacts?q= (search)", m["gateway_search"]),
    ]
    counts = results["contacts_per_region_at_search"]
    out = [
        "",
        f"Atlas CRM contacts benchmark  {results['started_at']}  ({machine['cpus']} CPUs, "
        f"load average {machine['load_average_before'][0]:.2f} before, "
        f"{machine['load_average_after'][0]:.2f} after)",
        f"wrk -t{s['threads']} -c{s['connections']} -d{s['duration_s']}s --latency "
        f"(after a {s['warmup_s']}s warm-up each)",
        "contacts per region at search time: "
        + ", ".join(f"{r} {c:,}" for r, c in counts.items())
        + f"  (loaded by COPY in {results['load']['seconds']}s)",
        "",
        f"{'measurement':<40}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p95 ms':>9}"
        f"{'p99 ms':>9}{'non-2xx':>9}{'sock err':>9}{'CPU ms':>9}",
    ]
    for label, r in rows:
        lat = r["latency_ms"]
        out.append(
            f"{label:<40}{r['requests_per_second']:>9,.0f}{lat['p50']:>9.1f}{lat['p90']:>9.1f}"
            f"{lat['p95']:>9.1f}{lat['p99']:>9.1f}{r['non_2xx']:>9}"
            f"{sum(r['socket_errors'].values()):>9}{r['cpu_ms_per_request_stack']:>9.2f}"
        )
    out += ["", "CPU ms per request per process group (wrk apart from the stack total):"]
    for label, r in rows:
        groups = sorted(r["cpu_ms_per_request"].items(), key=lambda item: -item[1])
        out.append(
            f"  {label.split('(')[0].strip():<34} " + "  ".join(f"{g} {ms:.2f}" for g, ms in groups)
        )
    q = results["ratios"]
    out += [
        "",
        "creation / architecture floor:  "
        f"requests/s {q['create_requests_per_second_over_floor']:.3f}x   "
        f"CPU ms per request {q['create_cpu_ms_stack_over_floor']:.2f}x   "
        f"(floor / baseline requests/s {q['floor_requests_per_second_over_baseline']:.3f}x)",
        "creation, gateway / baseline:  "
        f"requests/s {q['create_requests_per_second_gateway_over_baseline']:.3f}x   "
        f"p50 {q['create_p50_latency_gateway_over_baseline']:.2f}x   "
        f"p95 {q['create_p95_latency_gateway_over_baseline']:.2f}x   "
        f"p99 {q['create_p99_latency_gateway_over_baseline']:.2f}x",
        "",
        "search queries (one request each before the run; hits on the first page of 20):",
    ]
    for item in results["search_queries"]:
        out.append(
            f"  {item['region']}  {item['q']!r:<24} {item['hits']:>3} hits  "
            f"{item['single_request_ms']:>7.1f} ms  {item['top']}"
        )
    return "\n".join(out)


def report_problems(results: dict[str, Any]) -> list[str]:
    """Every non-2xx response, socket error and logged error, spelled out."""
    notes = []
    for name, r in results.get("measurements", {}).items():
        errors = sum(r["socket_errors"].values())
        if r["non_2xx"] or errors:
            notes.append(
                f"{name}: {r['non_2xx']} non-2xx of {r['requests']} (statuses {r['statuses']}), "
                f"socket errors {r['socket_errors']}; first non-2xx: {r['first_non_2xx'][:300]}"
            )
    for name, log in results.get("logs", {}).items():
        if log["errors"]:
            notes.append(f"{name}.log has {log['errors']} error lines; the last ones:")
            notes.extend(f"    {line}" for line in log["last_errors"][-5:])
    return notes


# ---------------------------------------------------------------------- main


class Interrupts:
    """Ctrl-C and SIGTERM raise KeyboardInterrupt, and are remembered: on Ctrl-C in a
    terminal the system's processes get SIGINT too and may die first, so the run can
    fail with a connection error before the interrupt reaches us."""

    received = False

    @classmethod
    def note(cls, signum: int, frame: object) -> None:
        cls.received = True

    @classmethod
    @contextlib.contextmanager
    def handled(cls) -> Iterator[None]:
        def interrupt(signum: int, frame: object) -> None:
            cls.received = True
            raise KeyboardInterrupt

        previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Contact creation and search through the gateway vs a bare baseline."
    )
    parser.add_argument("--contacts-per-region", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=15, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per run")
    parser.add_argument("--keep-state", action="store_true", help="keep the temporary folder")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.json")
    args = parser.parse_args(argv)
    if args.contacts_per_region < 0 or args.duration < 1 or args.connections < args.threads:
        parser.error("need contacts >= 0, duration >= 1 and connections >= threads")
    return args


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "wrk is not installed. Run `make bench`, which installs it "
            "(apt-get install -y wrk), or install it yourself and run this again.",
            file=sys.stderr,
        )
        return 2
    state = Path(tempfile.mkdtemp(prefix="atlas-bench-"))
    state.chmod(0o755)  # PostgreSQL runs as its own system user when we are root
    try:
        with Interrupts.handled():
            results = run(settings, state)
    except KeyboardInterrupt:
        print("\ninterrupted; everything was stopped", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        print(f"logs: {RESULTS_DIR / 'logs'}", file=sys.stderr)
        return 1
    except Exception:
        if Interrupts.received:
            print("\ninterrupted; everything was stopped", file=sys.stderr)
            return 130
        raise
    finally:
        if settings.keep_state:
            print(f"state kept in {state}", file=sys.stderr)
        else:
            shutil.rmtree(state, ignore_errors=True)

    print(render(results))
    problems = report_problems(results)
    results["problems"] = problems
    if problems:
        print("\nPROBLEMS (see bench/results/logs/ and bench/results/wrk-*.txt):")
        for line in problems:
            print(f"  {line}")
    settings.output.parent.mkdir(parents=True, exist_ok=True)
    settings.output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten to {settings.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
