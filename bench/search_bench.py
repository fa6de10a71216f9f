"""Contact search at N contacts per region: latency, concurrency, relevance, and whether
searches starve writes.

    python bench/search_bench.py [--contacts-per-region 1000000] [--rounds 5]
                                 [--duration 15] [--connections 32] [--writers 4]

1. starts the whole system (embedded PostgreSQL and NATS, contacts in eu, br and us,
   the gateway) in a temporary folder, as `crm up` does;
2. plants the bench's *targets* through the API (`POST /v1/contacts`): people the bench
   queries are meant to find first — a rare German name typed with a typo, Devanagari,
   Gujarati and Persian names, an email fragment, a phone fragment. They are written
   before the bulk load, so every loaded contact is newer and wins any tie;
3. loads N contacts per region with COPY (`contacts_bench.load_contacts`, rows built by
   the service's own code in `dataset.py`), then runs whatever the migrations set up for
   search over the loaded rows (`SEARCH_BACKFILL`, when the schema has it);
4. one at a time, `--rounds` times over every query: p50/p95/p99 through the gateway,
   hit@1 (the target first), errors, CPU ms per search per process group;
5. `--connections` concurrent clients (wrk) for `--duration` s: p95, errors, CPU;
6. creates (`--writers` concurrent clients, Python) alone, then while wrk searches with
   `--connections` clients: p99 of each and the ratio.

Figures are only comparable within a run and between runs on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import contacts_bench  # bench/contacts_bench.py: loading, wrk (this folder is on sys.path)
import dataset
import httpx
import procstat

from crm_cli.cluster import Cluster, ClusterConfig
from crm_kit.auth import mint_token

BENCH = Path(__file__).resolve().parent
RESULTS_DIR = BENCH / "results"
REGIONS = contacts_bench.REGIONS
say = contacts_bench.say

# The people the bench must find first, per region, and how a user types them.
TARGETS: dict[str, list[tuple[dict[str, Any], list[str]]]] = {
    "eu": [
        (
            {"first_name": "Jürgen", "last_name": "Mühlenkamp", "address": {"country": "DE"}},
            ["Mühlenkamp", "muhlenkmp", "jurgen muhlenkamp", "jürgen mühlenkamp"],
        ),
        (
            {"first_name": "अनिरुद्ध", "last_name": "त्रिवेदी", "address": {"country": "DE"}},
            ["त्रिवेदी", "अनिरुद्ध त्रिवेदी"],
        ),
        (
            {
                "first_name": "Sabine",
                "last_name": "Krüger",
                "emails": ["skr.1977@posteo.de"],
                "address": {"country": "DE"},
            },
            ["skr.1977", "skr.1977@posteo.de"],
        ),
        (
            {
                "first_name": "Klaus",
                "last_name": "Schmidt",
                "phones": ["030 9182 7364"],
                "address": {"country": "DE"},
            },
            ["9182 7364", "030 91827364"],
        ),
    ],
    "br": [
        (
            {"first_name": "Iracema", "last_name": "Tabajara", "address": {"country": "BR"}},
            ["tabajra", "iracema tabajara", "Tabajara"],
        ),
        (
            {"first_name": "હેમંત", "last_name": "પંડ્યા", "address": {"country": "BR"}},
            ["પંડ્યા", "હેમંત પંડ્યા"],
        ),
        (
            {
                "first_name": "Ana",
                "last_name": "Gonçalves Conceição",
                "emails": ["anagc.rio84@uol.com.br"],
                "address": {"country": "BR"},
            },
            ["anagc.rio84"],
        ),
    ],
    "us": [
        (
            {"first_name": "شیرین", "last_name": "نوروزی", "address": {"country": "US"}},
            ["نوروزی", "شیرین نوروزی"],
        ),
        (
            {
                "first_name": "Siobhan",
                "last_name": "Featherstonhaugh",
                "address": {"country": "US"},
            },
            ["featherstonhagh", "siobhan featherstonhaugh"],
        ),
        (
            {
                "first_name": "Dorota",
                "last_name": "Kowalczyk",
                "emails": ["dkowalczyk.nyc@outlook.com"],
                "phones": ["(646) 731-2298"],
                "address": {"country": "US"},
            },
            ["dkowalczyk.nyc", "731 2298"],
        ),
    ],
}

# Search as the migrated schema defines it, run over the COPYed rows (a schema without
# it has nothing to build).
SEARCH_BACKFILL = "SELECT contact_terms_rebuild()"


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def latency_summary(values: list[float]) -> dict[str, float]:
    return {f"p{p}": round(percentile(values, p), 1) for p in (50, 95, 99)} | {
        "max": round(max(values, default=0.0), 1)
    }


# ---------------------------------------------------------------------- setup


async def existing_targets(cluster: Cluster) -> dict[tuple[str, str, str], str]:
    """Targets already in the database (a reused state), by (region, first, last)."""
    found = {}
    for region, targets in TARGETS.items():
        connection = await asyncpg.connect(
            cluster.postgres.dsn(cluster.database("contacts", region))
        )
        try:
            for body, _queries in targets:
                contact_id = await connection.fetchval(
                    "SELECT id FROM contacts WHERE tenant_id = $1 AND first_name = $2 "
                    "AND last_name = $3 ORDER BY id LIMIT 1",
                    dataset.TENANT,
                    body["first_name"],
                    body["last_name"],
                )
                if contact_id:
                    found[(region, body["first_name"], body["last_name"])] = contact_id
        finally:
            await connection.close()
    return found


def plant_targets(
    gateway: str, tokens: dict[str, str], existing: dict[tuple[str, str, str], str]
) -> list[dict[str, Any]]:
    """Writes every target through the API (unless there already); returns one entry per
    (query, target id)."""
    cases = []
    with httpx.Client(base_url=gateway, timeout=60) as client:
        for region, targets in TARGETS.items():
            for body, queries in targets:
                name = f"{body['first_name']} {body['last_name']}"
                target_id = existing.get((region, body["first_name"], body["last_name"]))
                if target_id is None:
                    reply = client.post(
                        "/v1/contacts",
                        json=body,
                        headers={"Authorization": f"Bearer {tokens[region]}"},
                    )
                    if reply.status_code != 201:
                        raise contacts_bench.BenchError(
                            f"planting {body} in {region}: {reply.status_code} {reply.text}"
                        )
                    target_id = reply.json()["id"]
                cases += [
                    {"region": region, "q": q, "target": target_id, "name": name} for q in queries
                ]
    return cases


async def search_schema(cluster: Cluster) -> bool:
    connection = await asyncpg.connect(cluster.postgres.dsn(cluster.database("contacts", "eu")))
    try:
        return bool(
            await connection.fetchval(
                "SELECT count(*) FROM pg_proc WHERE proname = 'contact_terms_rebuild'"
            )
        )
    finally:
        await connection.close()


async def set_search_triggers(cluster: Cluster, enabled: bool) -> None:
    """Per-row trigger work during a 3-million-row COPY would dominate the load; the
    set-based rebuild afterwards gives the same tables."""
    for region in REGIONS:
        connection = await asyncpg.connect(
            cluster.postgres.dsn(cluster.database("contacts", region))
        )
        try:
            verb = "ENABLE" if enabled else "DISABLE"
            await connection.execute(f"ALTER TABLE contacts {verb} TRIGGER USER")
        finally:
            await connection.close()


async def rebuild_search(cluster: Cluster) -> float:
    started = time.perf_counter()

    async def one(region: str) -> None:
        connection = await asyncpg.connect(
            cluster.postgres.dsn(cluster.database("contacts", region))
        )
        try:
            await connection.execute("SET maintenance_work_mem = '256MB'")
            await connection.execute(SEARCH_BACKFILL)
            await connection.execute("VACUUM (ANALYZE) contact_terms")
            await connection.execute("VACUUM (ANALYZE) search_terms")
        finally:
            await connection.close()

    await asyncio.gather(*(one(r) for r in REGIONS))
    return time.perf_counter() - started


def premigrate(cluster: Cluster) -> float:
    """Migrates a reused, already loaded database before the system starts: a new
    migration's backfill over millions of rows can take longer than `crm up` waits for
    a migration. Returns the seconds it took (the backfill's cost at this size)."""
    cluster.postgres.start()
    started = time.perf_counter()
    try:
        say("migrating the reused databases (a new migration backfills their rows)")
        # One process per database, as `crm up` does (alembic's context is per process).
        running = [
            subprocess.Popen(
                [sys.executable, "-m", "crm_contacts", "migrate"],
                env={
                    **os.environ,
                    "CRM_DATABASE_URL": cluster.postgres.url(cluster.database("contacts", r)),
                },
            )
            for r in REGIONS
        ]
        failed = [process.args for process in running if process.wait() != 0]
        if failed:
            raise contacts_bench.BenchError(f"migrating the reused databases failed: {failed}")
    finally:
        cluster.postgres.stop()
    seconds = time.perf_counter() - started
    say(f"  migrated in {seconds:.1f}s")
    return round(seconds, 1)


# ---------------------------------------------------------------------- measuring


def group_cpu(cluster: Cluster) -> tuple[dict[str, list[int]], dict[str, float]]:
    groups = procstat.cluster_groups(cluster, {"bench": [os.getpid()]})
    return groups, procstat.cpu_seconds(groups)


def cpu_per_op(
    groups: dict[str, list[int]], before: dict[str, float], operations: int
) -> dict[str, float]:
    used = procstat.cpu_delta(before, procstat.cpu_seconds(groups))
    per_op = procstat.per_operation_ms(used, operations)
    per_op["stack total"] = sum(v for k, v in per_op.items() if k not in {"bench", "wrk"})
    return {k: round(v, 3) for k, v in per_op.items()}


def one_at_a_time(
    gateway: str, tokens: dict[str, str], cases: list[dict[str, Any]], rounds: int
) -> dict[str, Any]:
    """Every query `rounds` times, one request at a time; hit@1 from the first round."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    first_error = ""
    results = []
    with httpx.Client(base_url=gateway, timeout=60) as client:
        for round_number in range(rounds):
            for case in cases:
                started = time.perf_counter()
                reply = client.get(
                    "/v1/contacts",
                    params={"q": case["q"], "limit": 20},
                    headers={"Authorization": f"Bearer {tokens[case['region']]}"},
                )
                elapsed = (time.perf_counter() - started) * 1000
                latencies.append(elapsed)
                if reply.status_code != 200:
                    errors[str(reply.status_code)] = errors.get(str(reply.status_code), 0) + 1
                    first_error = first_error or reply.text[:300]
                    data = []
                else:
                    data = reply.json()["data"]
                if round_number == 0:
                    top = data[0] if data else None
                    results.append(
                        {
                            **case,
                            "hits": len(data),
                            "top": f"{top['first_name']} {top['last_name']}" if top else "",
                            "hit_at_1": bool(top and top["id"] == case.get("target")),
                            "ms": round(elapsed, 1),
                        }
                    )
    targeted = [r for r in results if r.get("target")]
    return {
        "requests": len(latencies),
        "latency_ms": latency_summary(latencies),
        "errors": errors,
        "first_error": first_error,
        "queries": results,
        "hit_at_1": sum(r["hit_at_1"] for r in targeted),
        "targeted_queries": len(targeted),
    }


def write_requests(path: Path, tokens: dict[str, str], cases: list[dict[str, Any]]) -> None:
    lines = [
        f"/v1/contacts?{urllib.parse.urlencode({'q': c['q'], 'limit': 20})}\t{tokens[c['region']]}"
        for c in cases
    ]
    path.write_text("\n".join(lines) + "\n")


async def creates(
    gateway: str, tokens: dict[str, str], writers: int, duration: float, run_id: str
) -> dict[str, Any]:
    """`writers` clients creating contacts for `duration` seconds, round-robin regions."""
    bodies = contacts_bench.SAMPLE_BODIES
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    deadline = time.monotonic() + duration

    async def writer(number: int, client: httpx.AsyncClient) -> None:
        count = 0
        while time.monotonic() < deadline:
            region = REGIONS[(number + count) % len(REGIONS)]
            body = dict(bodies[region])
            body["emails"] = [f"w{run_id}.{number}.{count}@example.com"]
            count += 1
            started = time.perf_counter()
            reply = await client.post(
                "/v1/contacts", json=body, headers={"Authorization": f"Bearer {tokens[region]}"}
            )
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[str(reply.status_code)] = statuses.get(str(reply.status_code), 0) + 1

    async with httpx.AsyncClient(base_url=gateway, timeout=60) as client:
        await asyncio.gather(*(writer(n, client) for n in range(writers)))
    return {
        "requests": len(latencies),
        "requests_per_second": round(len(latencies) / duration, 1),
        "latency_ms": latency_summary(latencies),
        "statuses": statuses,
    }


def wrk_search(
    gateway: str, requests_file: Path, settings: argparse.Namespace, name: str
) -> dict[str, Any]:
    return contacts_bench.run_wrk(
        name,
        gateway,
        contacts_bench.WRK_DIR / "search.lua",
        [str(requests_file)],
        duration=settings.duration,
        connections=settings.connections,
        threads=2,
    )


# ---------------------------------------------------------------------- the run


def run(settings: argparse.Namespace, state: Path) -> dict[str, Any]:
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {k: str(v) for k, v in vars(settings).items() if k != "output"},
        "load_average_before": os.getloadavg(),
    }
    commit = subprocess.run(
        ["git", "-C", str(BENCH.parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    results["git_commit"] = commit.stdout.strip()
    # Contacts alone (with the gateway): search and creation need nothing else, and the
    # other services' idle work would only blur the CPU figures.
    cluster = Cluster(
        ClusterConfig(
            state_dir=state,
            regions=REGIONS,
            gateway_port=0,
            nats_port=0,
            grpc_base=0,
            services=("contacts",),
        )
    )
    pool = ProcessPoolExecutor(
        max_workers=max(1, min(2, os.cpu_count() or 1)),
        mp_context=multiprocessing.get_context("fork"),
        initializer=contacts_bench._quiet_worker,
    )
    try:
        if (state / "postgres").exists():
            results["migrate_seconds"] = premigrate(cluster)
        say(f"starting the system in {state}")
        started = time.perf_counter()
        cluster.start()
        results["start_seconds"] = round(time.perf_counter() - started, 1)
        say(f"  up in {results['start_seconds']}s (migrations included)")
        gateway = cluster.gateway_url
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
        cases = plant_targets(gateway, tokens, asyncio.run(existing_targets(cluster)))
        say(f"{sum(len(t) for t in TARGETS.values())} targets planted")

        n = settings.contacts_per_region
        term_tables = asyncio.run(search_schema(cluster))
        results["design"] = "term table" if term_tables else "trigram over contacts"
        have = asyncio.run(contacts_bench.count_contacts(cluster))
        load = min(have.values()) < n
        results["load_seconds"] = 0.0
        if load:
            say(f"search design: {results['design']}; loading {n:,} contacts per region")
            if term_tables:
                asyncio.run(set_search_triggers(cluster, enabled=False))
            load_seconds = asyncio.run(contacts_bench.load_contacts(cluster, n, pool))
            results["load_seconds"] = round(load_seconds, 1)
            say(f"  loaded, indexed and analyzed in {load_seconds:.1f}s")
        else:
            say(f"search design: {results['design']}; the reused state holds {have}")
        pool.shutdown()
        if term_tables and load:
            asyncio.run(set_search_triggers(cluster, enabled=True))
            rebuild = asyncio.run(rebuild_search(cluster))
            results["search_rebuild_seconds"] = round(rebuild, 1)
            say(f"  term tables rebuilt in {rebuild:.1f}s")
        results["contacts_per_region"] = asyncio.run(contacts_bench.count_contacts(cluster))

        # The untargeted queries of contacts_bench too: common names, a phone fragment.
        general = [
            {"region": region, "q": q}
            for region, texts in contacts_bench.QUERIES.items()
            for q in texts
        ]
        general += [
            {"region": region, "q": fragment}
            for region, fragment in asyncio.run(contacts_bench.phone_fragments(cluster)).items()
        ]
        every = cases + general

        say("warming up: every query once")
        one_at_a_time(gateway, tokens, every, 1)
        say(f"one at a time: {settings.rounds} rounds of {len(every)} queries")
        groups, before = group_cpu(cluster)
        single = one_at_a_time(gateway, tokens, every, settings.rounds)
        single["cpu_ms_per_search"] = cpu_per_op(groups, before, single["requests"])
        results["one_at_a_time"] = single
        say(
            f"  p50 {single['latency_ms']['p50']} ms, p95 {single['latency_ms']['p95']} ms, "
            f"hit@1 {single['hit_at_1']}/{single['targeted_queries']}"
        )

        requests_file = state / "search-requests.tsv"
        write_requests(requests_file, tokens, every)
        say(f"{settings.connections} concurrent searches for {settings.duration}s (wrk)")
        groups, before = group_cpu(cluster)
        concurrent = wrk_search(gateway, requests_file, settings, "search-concurrent")
        concurrent["cpu_ms_per_search"] = cpu_per_op(groups, before, concurrent["requests"])
        results["concurrent"] = concurrent
        say(
            f"  {concurrent['requests_per_second']} req/s, p95 "
            f"{concurrent['latency_ms']['p95']:.1f} ms, non-2xx {concurrent['non_2xx']}"
        )

        run_id = secrets.token_hex(3)
        say(f"creates alone: {settings.writers} writers for {settings.duration}s")
        groups, before = group_cpu(cluster)
        alone = asyncio.run(creates(gateway, tokens, settings.writers, settings.duration, run_id))
        alone["cpu_ms_per_create"] = cpu_per_op(groups, before, alone["requests"])
        say(f"  p99 {alone['latency_ms']['p99']} ms, {alone['requests_per_second']} req/s")
        say("creates while searching")
        searching: dict[str, Any] = {}

        def background() -> None:
            searching.update(wrk_search(gateway, requests_file, settings, "search-during-create"))

        thread = threading.Thread(target=background)
        thread.start()
        time.sleep(1)  # wrk has connected and is searching
        during = asyncio.run(
            creates(gateway, tokens, settings.writers, settings.duration - 2, run_id + "s")
        )
        thread.join()
        say(f"  p99 {during['latency_ms']['p99']} ms, {during['requests_per_second']} req/s")
        results["creates_alone"] = alone
        results["creates_while_searching"] = during
        results["search_during_creates"] = searching
        results["create_p99_ratio"] = round(
            during["latency_ms"]["p99"] / max(alone["latency_ms"]["p99"], 0.001), 2
        )
        results["logs"] = {
            "gateway": contacts_bench.log_problems(cluster.log_dir / "gateway.log"),
            **{
                f"contacts-{r}": contacts_bench.log_problems(cluster.log_dir / f"contacts-{r}.log")
                for r in REGIONS
            },
        }
        results["load_average_after"] = os.getloadavg()
        return results
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, contacts_bench.Interrupts.note)
        pool.shutdown(wait=True, cancel_futures=True)
        say("stopping the system")
        cluster.stop()


def render(results: dict[str, Any]) -> str:
    single, concurrent = results["one_at_a_time"], results["concurrent"]
    alone, during = results["creates_alone"], results["creates_while_searching"]
    counts = results["contacts_per_region"]
    out = [
        "",
        f"Atlas CRM search benchmark  {results['started_at']}  commit {results['git_commit']}  "
        f"design: {results['design']}",
        "contacts per region: "
        + ", ".join(f"{r} {c:,}" for r, c in counts.items())
        + (
            f"  (migrations over the reused rows {results['migrate_seconds']}s; "
            if "migrate_seconds" in results
            else "  ("
        )
        + f"system started in {results['start_seconds']}s; "
        + f"loaded in {results['load_seconds']}s"
        + (
            f", term tables rebuilt in {results['search_rebuild_seconds']}s)"
            if "search_rebuild_seconds" in results
            else ")"
        ),
        f"load average {results['load_average_before'][0]:.2f} before, "
        f"{results['load_average_after'][0]:.2f} after",
        "",
        f"one at a time ({single['requests']} searches): p50 {single['latency_ms']['p50']} ms  "
        f"p95 {single['latency_ms']['p95']} ms  p99 {single['latency_ms']['p99']} ms  "
        f"errors {single['errors'] or 0}",
        f"{results['settings']['connections']} concurrent ({concurrent['requests']} searches, "
        f"{concurrent['requests_per_second']} req/s): p50 {concurrent['latency_ms']['p50']:.1f} ms"
        f"  p95 {concurrent['latency_ms']['p95']:.1f} ms  p99 {concurrent['latency_ms']['p99']:.1f}"
        f" ms  non-2xx {concurrent['non_2xx']} {concurrent['statuses']}  socket errors "
        f"{sum(concurrent['socket_errors'].values())}",
        f"hit@1: {single['hit_at_1']} of {single['targeted_queries']} targeted queries",
        f"creates alone: p50 {alone['latency_ms']['p50']} ms  p99 {alone['latency_ms']['p99']} ms"
        f"  {alone['requests_per_second']} req/s  {alone['statuses']}",
        f"creates while {results['settings']['connections']} clients search: p50 "
        f"{during['latency_ms']['p50']} ms  p99 {during['latency_ms']['p99']} ms  "
        f"{during['requests_per_second']} req/s  {during['statuses']}  "
        f"-> p99 ratio {results['create_p99_ratio']}x",
        "CPU ms per create (alone): "
        + ", ".join(f"{k} {v:.2f}" for k, v in alone["cpu_ms_per_create"].items()),
        "",
        "CPU ms per search (one at a time | concurrent):",
    ]
    a, b = single["cpu_ms_per_search"], concurrent["cpu_ms_per_search"]
    for name in sorted(a, key=lambda k: -a[k]):
        out.append(f"  {name:<16}{a[name]:>9.2f} |{b.get(name, 0.0):>9.2f}")
    out += ["", "queries (first round):"]
    for item in single["queries"]:
        mark = ("HIT " if item["hit_at_1"] else "miss") if item.get("target") else "    "
        out.append(
            f"  {mark} {item['region']}  {item['q']!r:<30} {item['hits']:>3} hits "
            f"{item['ms']:>8.1f} ms  {item['top']}"
            + (f"  (wanted {item['name']})" if item.get("target") and not item["hit_at_1"] else "")
        )
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Contact search at N contacts per region.")
    parser.add_argument("--contacts-per-region", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5, help="one-at-a-time rounds")
    parser.add_argument("--duration", type=int, default=15, help="seconds per concurrent run")
    parser.add_argument("--connections", type=int, default=32, help="concurrent searchers")
    parser.add_argument("--writers", type=int, default=4, help="concurrent creators")
    parser.add_argument("--keep-state", action="store_true")
    parser.add_argument(
        "--state",
        type=Path,
        help="reuse this state folder (kept afterwards): a database already loaded is "
        "not loaded again, and starting it runs any new migration over the loaded rows",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "search.json")
    args = parser.parse_args(argv)
    if args.contacts_per_region < 0 or args.duration < 4 or args.rounds < 1:
        parser.error("need contacts >= 0, duration >= 4 and rounds >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: run `make bench` (apt-get install -y wrk).", file=sys.stderr)
        return 2
    os.environ.setdefault("CRM_START_TIMEOUT", "600")  # a loaded machine starts slowly
    if settings.state:
        state = settings.state.resolve()
        settings.keep_state = True
    else:
        state = Path(tempfile.mkdtemp(prefix="atlas-search-bench-"))
    state.chmod(0o755)  # PostgreSQL runs as its own system user when we are root
    try:
        with contacts_bench.Interrupts.handled():
            results = run(settings, state)
    except KeyboardInterrupt:
        print("\ninterrupted; everything was stopped", file=sys.stderr)
        return 130
    except contacts_bench.BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if settings.keep_state:
            print(f"state kept in {state}", file=sys.stderr)
        else:
            shutil.rmtree(state, ignore_errors=True)
    print(render(results))
    problems = contacts_bench.report_problems({"measurements": {}, "logs": results["logs"]})
    if problems:
        print("\nPROBLEMS:")
        print("\n".join(f"  {line}" for line in problems))
    settings.output.parent.mkdir(parents=True, exist_ok=True)
    settings.output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten to {settings.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
