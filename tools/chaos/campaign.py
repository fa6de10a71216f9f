"""A bounded, seeded fault campaign against the whole system (issue 17 §1).

It starts the system in a temporary folder exactly as the test session does (embedded
PostgreSQL and NATS, every service in every region, the gateway; loopback only), runs a
mixed workload through the gateway across the three regions while it SIGKILLs and
restarts NATS, SIGKILLs service processes (restarted by the supervisor, as Kubernetes
would) and restarts PostgreSQL, and then checks from the databases and the streams that
nothing acknowledged was lost or duplicated. Clients retry as a real client would: on a
connection error, a timeout or a 5xx, with the same `Idempotency-Key`.

    python -m tools.chaos --seed 17                 # the full campaign (`make chaos`)
    python -m tools.chaos --seed 17 --short         # the short one (`make test`)

The table it prints has one line per check; the exit status is non-zero when any
line's "bad" column is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
from nats.js.api import ConsumerConfig, DeliverPolicy

from crm_cli.cluster import Cluster, ClusterConfig, RestartPolicy
from crm_kit.auth import mint_token
from crm_kit.messaging import stream_name, unpack_envelope

REGIONS = ("eu", "br", "us")
COUNTRY = {"eu": "DE", "br": "BR", "us": "US"}
SERVICES = ("contacts", "deals", "tasks", "notifications", "reporting", "integrations")
# Stages of the campaign's pipeline; a rule watches QUALIFIED (a task per move) and WON
# (a notification to the owner per move).
STAGES = ("New", "Qualified", "Proposal", "Won", "Lost")
# How long a client keeps retrying one operation before it gives up (then the operation
# is "not acknowledged": it may or may not have happened, and either is correct).
RETRY_BUDGET = 180.0
# Operation kinds and their weights in the mix.
MIX = {
    "contact": 22,
    "company": 8,
    "deal": 14,
    "move": 22,
    "task": 10,
    "note": 10,
    "consent": 7,
    "form": 7,
}


@dataclass
class Profile:
    operations: int
    nats_kills: int
    service_kills: int
    postgres_restarts: int
    workers: int
    import_rows: int


FULL = Profile(
    operations=10_000,
    nats_kills=20,
    service_kills=24,
    postgres_restarts=2,
    workers=12,
    import_rows=200,
)
SHORT = Profile(
    operations=1_000, nats_kills=3, service_kills=6, postgres_restarts=1, workers=8, import_rows=30
)


@dataclass
class Op:
    """One logical write and what the gateway answered."""

    kind: str
    region: str
    marker: str
    acked: bool = False
    status: int = 0
    id: str = ""
    attempts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Stats:
    requests: int = 0
    retries: int = 0
    connection_errors: int = 0
    answers: Counter[int] = field(default_factory=Counter)
    # 5xx other than 503 with Retry-After: (method, path, status, body)
    bad_5xx: list[tuple[str, str, int, str]] = field(default_factory=list)
    # 4xx on a well-formed request: (method, path, status, body)
    refused: list[tuple[str, str, int, str]] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    fault_log: list[str] = field(default_factory=list)


class Faults:
    """NATS kills, service SIGKILLs and PostgreSQL restarts on a running cluster."""

    def __init__(self, cluster: Cluster, rng: random.Random, stats: Stats) -> None:
        self.cluster = cluster
        self.rng = rng
        self.stats = stats
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        # Kill every service in every region in turn, in a seeded order.
        pairs = [(s, r) for s in SERVICES for r in REGIONS]
        rng.shuffle(pairs)
        self._victims = pairs

    def start(self) -> None:
        self._supervisor.start()

    def stop(self) -> None:
        self._stop.set()
        self._supervisor.join(10)

    def _supervise(self) -> None:
        # What `crm up` does: restart a process that died, after its back-off.
        while not self._stop.is_set():
            with self.lock:
                for line in self.cluster.supervise():
                    self.log(line)
            time.sleep(0.2)

    def log(self, line: str) -> None:
        self.stats.fault_log.append(f"{time.strftime('%H:%M:%S')} {line}")

    def kill_service(self, index: int, during: str = "", wait: float = 60) -> None:
        """SIGKILL one service process (the supervisor restarts it). `during` an outage,
        waits (at most `wait` s) until the restarted process serves again."""
        service, region = self._victims[index % len(self._victims)]
        name = f"{service}-{region}"
        process = next(p for p in self.cluster.processes if p.name == name)
        with self.lock:
            if process.process is None or process.process.poll() is not None:
                return
            killed = process.process
            killed.kill()
            self.stats.faults["service SIGKILL"] += 1
            self.stats.faults[f"killed {service}"] += 1
            self.stats.faults[f"killed in {region}"] += 1
            self.log(f"SIGKILL {name}" + (f" during the {during}" if during else ""))
        if not during:
            return
        self.stats.faults[f"service restarted during a {during}"] += 1
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with self.lock:
                again = process.process is not killed and process.healthy()
            if again:
                return
            time.sleep(0.2)

    def kill_nats(self, victim: int | None) -> None:
        """SIGKILL NATS; with a victim, that service is also killed and comes back while
        NATS is still down (a pod rescheduled during a NATS outage)."""
        nats_server = self.cluster.nats
        assert nats_server.process is not None
        nats_server.process.kill()
        nats_server.process.wait()
        self.stats.faults["NATS SIGKILL"] += 1
        self.log("SIGKILL nats")
        time.sleep(self.rng.uniform(0.5, 3.0))
        if victim is not None:
            self.kill_service(victim, during="NATS outage")
        nats_server.start(self.cluster.log_dir / "nats.log")
        self.log("nats restarted")

    def restart_postgres(self, victim: int | None) -> None:
        self.cluster.postgres.stop()
        self.stats.faults["PostgreSQL restart"] += 1
        self.log("postgres stopped")
        time.sleep(self.rng.uniform(0.5, 2.0))
        if victim is not None:
            self.kill_service(victim, during="PostgreSQL outage", wait=10)
        self.cluster.postgres.start()
        self.log("postgres started")

    def wait_healthy(self, within: float = 240) -> None:
        deadline = time.monotonic() + within
        while True:
            waiting = [p.name for p in self.cluster.processes if not p.healthy()]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"not healthy after the faults: {waiting}")
            time.sleep(0.5)


class Client:
    """A client of the gateway that retries like a real one, with the same key."""

    def __init__(self, http: httpx.AsyncClient, stats: Stats, rng: random.Random) -> None:
        self.http = http
        self.stats = stats
        self.rng = rng

    async def send(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        key: str = "",
        op: Op | None = None,
        **kwargs: Any,
    ) -> httpx.Response | None:
        headers = dict(headers or {})
        if key:
            headers["Idempotency-Key"] = key
        deadline = time.monotonic() + RETRY_BUDGET
        delay = 0.2
        while True:
            self.stats.requests += 1
            if op is not None:
                op.attempts += 1
            wait = delay
            try:
                response = await self.http.request(
                    method, path, headers=headers, timeout=30, **kwargs
                )
            except httpx.TransportError:
                self.stats.connection_errors += 1
            else:
                self.stats.answers[response.status_code] += 1
                if response.status_code < 500:
                    if response.status_code >= 400 and response.status_code not in (404, 429):
                        self.stats.refused.append(
                            (method, path, response.status_code, response.text[:300])
                        )
                    if response.status_code != 429:
                        return response
                    wait = 1.0
                elif response.status_code == 503 and response.headers.get("Retry-After"):
                    wait = min(float(response.headers["Retry-After"]), 2.0)
                else:
                    self.stats.bad_5xx.append(
                        (method, path, response.status_code, response.text[:300])
                    )
            if time.monotonic() + wait > deadline:
                return None
            self.stats.retries += 1
            await asyncio.sleep(wait * self.rng.uniform(0.5, 1.5))
            delay = min(delay * 2, 2.0)


@dataclass
class Setup:
    tenant: str
    admins: dict[str, dict[str, str]]
    officer: dict[str, str]
    pipeline_id: str
    stage: dict[str, str]
    qualify_rule: str
    won_rule: str
    form_key: str


class Workload:
    def __init__(
        self, client: Client, setup: Setup, rng: random.Random, profile: Profile, seed: int
    ) -> None:
        self.client = client
        self.setup = setup
        self.rng = rng
        self.profile = profile
        self.seed = seed
        self.ops: list[Op] = []
        self.done = 0
        self.contacts: dict[str, list[str]] = defaultdict(list)
        # Deals ready for their next move: id -> index of the stage they are in.
        self.ready: dict[str, list[tuple[str, int]]] = defaultdict(list)
        self.imports: list[Op] = []
        self.erasures: list[Op] = []
        self._serial = 0

    def marker(self, kind: str) -> str:
        self._serial += 1
        return f"cx{self.seed}-{kind}-{self._serial:06d}"

    async def run(self) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(self.profile.operations):
            queue.put_nowait(i)
        imports_at = {self.profile.operations // 4, self.profile.operations // 2}
        erasure_at = (self.profile.operations * 3) // 4

        async def worker() -> None:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                if i in imports_at:
                    await self.start_import(self.rng.choice(REGIONS))
                if i == erasure_at:
                    await self.erase(self.rng.choice(REGIONS))
                await self.one()
                self.done += 1

        await asyncio.gather(*(worker() for _ in range(self.profile.workers)))

    async def one(self) -> None:
        region = self.rng.choice(REGIONS)
        kind = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        if kind in ("deal", "task", "note", "consent") and not self.contacts[region]:
            kind = "contact"
        if kind == "move" and not self.ready[region]:
            kind = "deal" if self.contacts[region] else "contact"
        await getattr(self, f"op_{kind}")(region)

    def _record(self, op: Op, response: httpx.Response | None, expected: tuple[int, ...]) -> bool:
        self.ops.append(op)
        if response is None:
            return False
        op.status = response.status_code
        if response.status_code in expected:
            op.acked = True
            body = response.json() if response.content else {}
            op.id = str(body.get("id", "")) if isinstance(body, dict) else ""
            return True
        return False

    async def op_contact(self, region: str) -> None:
        op = Op("contact", region, self.marker("contact"))
        body = {
            "first_name": "Chaos",
            "last_name": op.marker,
            "emails": [f"{op.marker}@example.com"],
            "address": {"country": COUNTRY[region]},
            "owner_id": f"rep-{region}",
        }
        response = await self.client.send(
            "POST",
            "/v1/contacts",
            headers=self.setup.admins[region],
            key=op.marker,
            op=op,
            json=body,
        )
        if self._record(op, response, (201,)):
            self.contacts[region].append(op.id)

    async def op_company(self, region: str) -> None:
        op = Op("company", region, self.marker("company"))
        body = {"name": op.marker, "address": {"country": COUNTRY[region]}}
        response = await self.client.send(
            "POST",
            "/v1/companies",
            headers=self.setup.admins[region],
            key=op.marker,
            op=op,
            json=body,
        )
        self._record(op, response, (201,))

    async def op_deal(self, region: str) -> None:
        op = Op("deal", region, self.marker("deal"))
        body = {
            "title": op.marker,
            "contact_id": self.rng.choice(self.contacts[region]),
            "owner_id": f"rep-{region}",
            "pipeline_id": self.setup.pipeline_id,
            "stage_id": self.setup.stage["New"],
            "amount": {"amount": f"{self.rng.randint(100, 99_999)}.00", "currency": "EUR"},
        }
        response = await self.client.send(
            "POST", "/v1/deals", headers=self.setup.admins[region], key=op.marker, op=op, json=body
        )
        if self._record(op, response, (201,)):
            self.ready[region].append((op.id, 0))

    async def op_move(self, region: str) -> None:
        deals = self.ready[region]
        deal_id, at = deals.pop(self.rng.randrange(len(deals)))
        if at == 0:
            to = "Qualified"
        elif at == 1:
            to = "Proposal"
        else:
            to = self.rng.choice(("Won", "Lost"))
        op = Op("move", region, self.marker("move"), extra={"deal": deal_id, "to": to})
        response = await self.client.send(
            "POST",
            f"/v1/deals/{deal_id}/stage",
            headers=self.setup.admins[region],
            key=op.marker,
            op=op,
            json={"stage_id": self.setup.stage[to]}
            | ({"lost_reason": "chaos"} if to == "Lost" else {}),
        )
        self._record(op, response, (200,))
        if op.acked and to not in ("Won", "Lost"):
            deals.append((deal_id, STAGES.index(to)))

    async def op_task(self, region: str) -> None:
        op = Op("task", region, self.marker("task"))
        body = {
            "title": op.marker,
            "assignee_id": f"rep-{region}",
            "contact_id": self.rng.choice(self.contacts[region]),
            "due_at": "2030-01-01T09:00:00+00:00",
        }
        response = await self.client.send(
            "POST", "/v1/tasks", headers=self.setup.admins[region], key=op.marker, op=op, json=body
        )
        self._record(op, response, (201,))

    async def op_note(self, region: str) -> None:
        op = Op("note", region, self.marker("note"))
        contact = self.rng.choice(self.contacts[region])
        response = await self.client.send(
            "POST",
            f"/v1/contacts/{contact}/notes",
            headers=self.setup.admins[region],
            key=op.marker,
            op=op,
            json={"kind": "call", "direction": "outbound", "body": op.marker},
        )
        self._record(op, response, (201,))

    async def op_consent(self, region: str) -> None:
        op = Op("consent", region, self.marker("consent"))
        contact = self.rng.choice(self.contacts[region])
        body = {
            "purpose": "marketing_email",
            "lawful_basis": "consent",
            "status": self.rng.choice(("granted", "withdrawn")),
            "source": op.marker,
        }
        response = await self.client.send(
            "POST",
            f"/v1/contacts/{contact}/consents",
            headers=self.setup.admins[region],
            key=op.marker,
            op=op,
            json=body,
        )
        self._record(op, response, (200, 201))

    async def op_form(self, region: str) -> None:
        # A public form has no key: a browser posts once; a retry after a lost answer may
        # store a second submission, so only what was acknowledged is checked.
        op = Op("form", region, self.marker("form"))
        body = {
            "name": f"Form {op.marker}",
            "email": f"{op.marker}@example.com",
            "country": COUNTRY[region],
        }
        response = await self.client.send(
            "POST",
            f"/public/forms/{self.setup.form_key}",
            op=op,
            json=body,
            headers={"X-Forwarded-For": f"203.0.113.{self.rng.randint(1, 250)}"},
        )
        self._record(op, response, (201, 202))

    async def start_import(self, region: str) -> None:
        op = Op("import", region, self.marker("import"))
        rows = [
            {"Email": f"{op.marker}-{i:04d}@example.com", "Name": f"Import {i}", "Country": ""}
            for i in range(self.profile.import_rows)
        ]
        for row in rows:
            row["Country"] = COUNTRY[region]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["Email", "Name", "Country"])
        writer.writeheader()
        writer.writerows(rows)
        admin = self.setup.admins[region]
        response = await self.client.send(
            "POST",
            f"/v1/imports?file_name={op.marker}.csv",
            headers={**admin, "content-type": "text/csv"},
            op=op,
            content=buffer.getvalue().encode(),
        )
        if not self._record(op, response, (201,)):
            return
        op.extra["rows"] = self.profile.import_rows
        settings = {
            "duplicate_policy": "skip",
            "default_country": COUNTRY[region],
            "mapping": {"Email": "email", "Name": "name", "Country": "country"},
        }
        started = await self.client.send(
            "POST", f"/v1/imports/{op.id}/start", headers=admin, json=settings
        )
        op.extra["start"] = started.status_code if started is not None else 0
        self.imports.append(op)

    async def erase(self, region: str) -> None:
        """A subject with a note is created, then erased by the compliance officer."""
        contact = Op("erasure-subject", region, self.marker("erase"))
        response = await self.client.send(
            "POST",
            "/v1/contacts",
            headers=self.setup.admins[region],
            key=contact.marker,
            op=contact,
            json={
                "first_name": "Erase",
                "last_name": contact.marker,
                "emails": [f"{contact.marker}@example.com"],
                "address": {"country": COUNTRY[region]},
            },
        )
        if not self._record(contact, response, (201,)):
            return
        await self.client.send(
            "POST",
            f"/v1/contacts/{contact.id}/notes",
            headers=self.setup.admins[region],
            key=f"{contact.marker}-note",
            json={"body": f"about {contact.marker}"},
        )
        op = Op("erasure", region, self.marker("erasure"), extra={"contact": contact.id})
        answer = await self.client.send(
            "POST",
            "/v1/privacy/requests",
            headers=self.setup.officer,
            key=op.marker,
            op=op,
            json={"kind": "erasure", "contact_id": contact.id},
        )
        self._record(op, answer, (200, 201, 202))
        self.erasures.append(op)
        # A service that failed mid-way leaves the request "failed"; the officer retries it.
        for _ in range(20):
            if not op.acked or answer is None or answer.json().get("status") != "failed":
                return
            op.extra["retries"] = op.extra.get("retries", 0) + 1
            await asyncio.sleep(2)
            answer = await self.client.send(
                "POST", f"/v1/privacy/requests/{op.id}/retry", headers=self.setup.officer
            )


# ------------------------------------------------------------------ checks


@dataclass
class Line:
    check: str
    checked: int
    bad: int
    note: str = ""


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, `>` the rest."""
    want, have = pattern.split("."), subject.split(".")
    for i, part in enumerate(want):
        if part == ">":
            return len(have) > i
        if i >= len(have) or (part != "*" and part != have[i]):
            return False
    return len(want) == len(have)


class Checks:
    def __init__(self, cluster: Cluster, setup: Setup, workload: Workload, stats: Stats) -> None:
        self.cluster = cluster
        self.setup = setup
        self.workload = workload
        self.stats = stats
        self.lines: list[Line] = []
        self.details: list[str] = []

    async def fetch(self, service: str, region: str, sql: str, *args: Any) -> list[Any]:
        dsn = self.cluster.postgres.dsn(self.cluster.database(service, region))
        connection = await asyncpg.connect(dsn)
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()

    def add(self, check: str, checked: int, bad: list[str], note: str = "") -> None:
        self.lines.append(Line(check, checked, len(bad), note))
        self.details.extend(f"{check}: {b}" for b in bad[:20])

    async def settle(self, within: float) -> None:
        """Waits until outboxes are drained, consumers caught up and deferred work done."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            backlog = await self.outbox_backlog()
            pending = await self.consumer_backlog()
            forms = await self.pending_submissions()
            imports = await self.running_imports()
            if not backlog and not pending and not forms and not imports:
                return
            await asyncio.sleep(1)

    async def outbox_backlog(self) -> dict[str, int]:
        found = {}
        for service in SERVICES:
            for region in REGIONS:
                [row] = await self.fetch(
                    service, region, "SELECT count(*) FROM outbox WHERE published_at IS NULL"
                )
                if row[0]:
                    found[f"{service}-{region}"] = int(row[0])
        return found

    async def consumers(self) -> list[Any]:
        client = await nats.connect(self.cluster.nats.url)
        try:
            js = client.jetstream()
            infos = []
            for region in REGIONS:
                infos.extend(await js.consumers_info(stream_name(region)))
            return infos
        finally:
            await client.close()

    async def consumer_backlog(self) -> dict[str, int]:
        return {
            f"{info.stream_name}/{info.name}": int(info.num_pending + info.num_ack_pending)
            for info in await self.consumers()
            if info.config.durable_name and (info.num_pending or info.num_ack_pending)
        }

    async def pending_submissions(self) -> int:
        total = 0
        for region in REGIONS:
            [row] = await self.fetch(
                "integrations",
                region,
                "SELECT count(*) FROM submissions WHERE tenant_id = $1 AND status = 'pending'",
                self.setup.tenant,
            )
            total += int(row[0])
        return total

    async def running_imports(self) -> int:
        total = 0
        for region in REGIONS:
            [row] = await self.fetch(
                "integrations",
                region,
                "SELECT count(*) FROM imports WHERE tenant_id = $1 AND status IN "
                "('queued', 'running', 'pending')",
                self.setup.tenant,
            )
            total += int(row[0])
        return total

    async def run(self) -> None:
        await self.acknowledged_writes()
        await self.watched_moves()
        await self.reporting()
        await self.notifications()
        await self.imports_and_erasures()
        await self.drained()
        await self.events_handled()
        bad = [f"{m} {p} -> {s}: {b}" for m, p, s, b in self.stats.bad_5xx]
        self.add("5xx other than 503 with Retry-After", self.stats.requests, bad)
        refused = [f"{m} {p} -> {s}: {b}" for m, p, s, b in self.stats.refused]
        self.add("4xx refusals of well-formed requests", self.stats.requests, refused)

    async def count_markers(self, service: str, table: str, column: str) -> Counter[str]:
        counts: Counter[str] = Counter()
        for region in REGIONS:
            # Table and column names are this module's constants.
            rows = await self.fetch(
                service,
                region,
                f"SELECT {column} AS m, count(*) AS n FROM {table} "  # noqa: S608
                f"WHERE tenant_id = $1 AND {column} LIKE $2 GROUP BY 1",
                self.setup.tenant,
                f"cx{self.workload.seed}-%",
            )
            counts.update({str(r["m"]): int(r["n"]) for r in rows})
        return counts

    async def acknowledged_writes(self) -> None:
        where = {
            "contact": ("contacts", "contacts", "last_name"),
            "company": ("contacts", "companies", "name"),
            "deal": ("deals", "deals", "title"),
            "task": ("tasks", "tasks", "title"),
            "note": ("contacts", "timeline_entries", "body"),
            "consent": ("contacts", "consents", "source"),
        }
        for kind, (service, table, column) in where.items():
            counts = await self.count_markers(service, table, column)
            ops = [op for op in self.workload.ops if op.kind == kind]
            missing = [f"{op.marker} ({op.id})" for op in ops if op.acked and not counts[op.marker]]
            doubled = [f"{op.marker} x{counts[op.marker]}" for op in ops if counts[op.marker] > 1]
            acked = sum(op.acked for op in ops)
            self.add(f"{kind}s acknowledged, missing", acked, missing)
            self.add(f"{kind}s written more than once", len(ops), doubled)
        forms = [op for op in self.workload.ops if op.kind == "form" and op.acked]
        stored: set[str] = set()
        for region in REGIONS:
            rows = await self.fetch(
                "integrations",
                region,
                "SELECT id FROM submissions WHERE tenant_id = $1",
                self.setup.tenant,
            )
            stored |= {r["id"] for r in rows}
        self.add(
            "form submissions acknowledged, missing",
            len(forms),
            [op.id for op in forms if op.id not in stored],
        )

    async def stage_changes(self) -> list[Any]:
        rows = []
        for region in REGIONS:
            rows += await self.fetch(
                "deals",
                region,
                "SELECT deal_id, to_stage_id FROM stage_changes WHERE tenant_id = $1",
                self.setup.tenant,
            )
        return rows

    async def watched_moves(self) -> None:
        changes = await self.stage_changes()
        per_move = Counter((r["deal_id"], r["to_stage_id"]) for r in changes)
        moves = [op for op in self.workload.ops if op.kind == "move"]
        stage = self.setup.stage
        missing = [
            op.marker
            for op in moves
            if op.acked and not per_move[(op.extra["deal"], stage[op.extra["to"]])]
        ]
        doubled = [f"{k} x{n}" for k, n in per_move.items() if n > 1]
        self.add("stage moves acknowledged, missing", sum(op.acked for op in moves), missing)
        self.add("stage moves recorded more than once", len(per_move), doubled)
        tasks: Counter[str] = Counter()
        for region in REGIONS:
            rows = await self.fetch(
                "tasks",
                region,
                "SELECT deal_id FROM tasks WHERE tenant_id = $1 AND rule_id = $2",
                self.setup.tenant,
                self.setup.qualify_rule,
            )
            tasks.update(r["deal_id"] for r in rows)
        watched = [r["deal_id"] for r in changes if r["to_stage_id"] == stage["Qualified"]]
        bad = [f"{d}: {tasks[d]} tasks" for d in watched if tasks[d] != 1]
        bad += [f"{d}: a task without a move" for d in tasks if d not in set(watched)]
        self.add("watched moves without exactly one task", len(watched), bad)

    async def reporting(self) -> None:
        bad: list[str] = []
        checked = 0
        for region in REGIONS:
            deals = {
                r["id"]: (r["stage_id"], r["status"])
                for r in await self.fetch(
                    "deals",
                    region,
                    "SELECT id, stage_id, status FROM deals WHERE tenant_id = $1",
                    self.setup.tenant,
                )
            }
            reached: dict[str, set[str]] = defaultdict(set)
            for r in await self.fetch(
                "deals",
                region,
                "SELECT deal_id, to_stage_id FROM stage_changes WHERE tenant_id = $1",
                self.setup.tenant,
            ):
                reached[r["deal_id"]].add(r["to_stage_id"])
            report = {
                r["deal_id"]: (r["stage_id"], r["status"], set(r["reached"]))
                for r in await self.fetch(
                    "reporting",
                    region,
                    "SELECT deal_id, stage_id, status, reached FROM rm_deals WHERE tenant_id = $1",
                    self.setup.tenant,
                )
            }
            checked += len(deals)
            for deal_id, (stage_id, status) in deals.items():
                seen = report.get(deal_id)
                if seen is None:
                    bad.append(f"{deal_id}: not in reporting")
                elif seen[:2] != (stage_id, status) or not reached[deal_id] <= seen[2]:
                    bad.append(f"{deal_id}: deals {stage_id}/{status}, reporting {seen}")
            bad += [f"{d}: only in reporting" for d in report if d not in deals]
            [total] = await self.fetch(
                "reporting",
                region,
                "SELECT coalesce(sum(deals), 0) FROM agg_stage_now WHERE tenant_id = $1",
                self.setup.tenant,
            )
            if int(total[0]) != len(deals):
                bad.append(f"{region}: agg_stage_now counts {total[0]}, deals has {len(deals)}")
        self.add("deals whose report differs from the deals database", checked, bad)

    async def notifications(self) -> None:
        per: Counter[tuple[str, str, str, str]] = Counter()
        for region in REGIONS:
            for r in await self.fetch(
                "notifications",
                region,
                # One cause (a rule firing for a deal, a task created) is one context.
                "SELECT kind, recipient_id, channel, context::text AS cause FROM deliveries "
                "WHERE tenant_id = $1 AND status = 'sent'",
                self.setup.tenant,
            ):
                per[(r["kind"], r["recipient_id"], r["channel"], r["cause"])] += 1
        doubled = [f"{k} x{n}" for k, n in per.items() if n > 1]
        self.add("notifications sent more than once per recipient and channel", len(per), doubled)
        ids: Counter[str] = Counter()
        for path in self.cluster.mail_dir.glob("*"):
            if path.is_file():
                mail = message_from_bytes(path.read_bytes())
                ids[str(mail.get("Message-ID", path.name))] += 1
        self.add(
            "emails delivered more than once (same Message-ID)",
            len(ids),
            [f"{k} x{n}" for k, n in ids.items() if n > 1],
        )

    async def imports_and_erasures(self) -> None:
        bad: list[str] = []
        for op in self.workload.imports:
            [row] = await self.fetch(
                "integrations", op.region, "SELECT status FROM imports WHERE id = $1", op.id
            )
            emails: Counter[str] = Counter()
            for region in REGIONS:
                for r in await self.fetch(
                    "contacts",
                    region,
                    "SELECT e AS email FROM contacts, unnest(emails) AS e "
                    "WHERE tenant_id = $1 AND e LIKE $2",
                    self.setup.tenant,
                    f"{op.marker}-%",
                ):
                    emails[r["email"]] += 1
            if row["status"] != "completed":
                bad.append(f"{op.id}: {row['status']} (start answered {op.extra.get('start')})")
            if len(emails) != op.extra["rows"] or any(n > 1 for n in emails.values()):
                top = emails.most_common(1)
                bad.append(f"{op.id}: {len(emails)} of {op.extra['rows']} rows, most {top}")
        self.add("imports not completed exactly once per row", len(self.workload.imports), bad)
        bad = []
        for op in self.workload.erasures:
            contact = op.extra["contact"]
            if not op.acked:
                bad.append(f"{op.marker}: not acknowledged")
                continue
            [row] = await self.fetch(
                "contacts", op.region, "SELECT status FROM privacy_requests WHERE id = $1", op.id
            )
            left = await self.fetch(
                "contacts", op.region, "SELECT id FROM contacts WHERE id = $1", contact
            )
            if row["status"] != "completed" or left:
                bad.append(f"{op.id}: {row['status']}, contact left: {bool(left)}")
        self.add("erasures not completed", len(self.workload.erasures), bad)

    async def drained(self) -> None:
        backlog = await self.outbox_backlog()
        self.add(
            "outboxes not drained",
            len(SERVICES) * len(REGIONS),
            [f"{k}: {n} unpublished" for k, n in backlog.items()],
        )
        infos = await self.consumers()
        stuck = [
            f"{i.stream_name}/{i.name}: pending {i.num_pending}, unacked {i.num_ack_pending}, "
            f"redelivered {i.num_redelivered}"
            for i in infos
            if i.num_pending or i.num_ack_pending or i.num_redelivered
        ]
        self.add("consumers stuck (pending, unacked or redelivering)", len(infos), stuck)

    async def stream_events(self, region: str) -> list[tuple[str, str, str]]:
        client = await nats.connect(self.cluster.nats.url)
        try:
            js = client.jetstream()
            total = (await js.stream_info(stream_name(region))).state.messages
            subscription = await js.pull_subscribe(
                f"crm.{region}.>",
                stream=stream_name(region),
                config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
            )
            found: list[tuple[str, str, str]] = []
            while len(found) < total:
                try:
                    batch = await subscription.fetch(1000, timeout=2)
                except (nats.errors.TimeoutError, TimeoutError):
                    break
                for message in batch:
                    envelope = unpack_envelope(message.data)
                    found.append((message.subject, envelope.event_id, envelope.tenant_id))
                    await message.ack()
            await subscription.unsubscribe()
            return found
        finally:
            await client.close()

    async def wanted(self, region: str) -> dict[str, Any]:
        """Consumers that ack, without an inbox row, the events no rule or webhook of the
        tenant wants (crm_kit.messaging.Consumer `wants`): which events they do take, as
        (tenant, event type) -> bool, from the region's rules and webhooks."""
        rules = {
            (r["tenant_id"], r["event_type"])
            for r in await self.fetch(
                "tasks",
                region,
                "SELECT DISTINCT tenant_id, event_type FROM automation_rules WHERE enabled",
            )
        }
        hooks: dict[str, set[str]] = defaultdict(set)
        for r in await self.fetch(
            "integrations", region, "SELECT tenant_id, event_types FROM webhooks WHERE active"
        ):
            hooks[r["tenant_id"]].update(r["event_types"])

        def hooked(tenant: str, event_type: str) -> bool:
            # crm_integrations.webhooks.matches: "*", the type, or "<prefix>.*".
            return any(
                p == "*" or p == event_type or (p.endswith(".*") and event_type.startswith(p[:-1]))
                for p in hooks.get(tenant, ())
            )

        return {
            "tasks-automation": lambda tenant, event_type: (tenant, event_type) in rules,
            "integrations-webhooks": hooked,
        }

    async def events_handled(self) -> None:
        """Every event in a stream that a durable consumer's filter takes (and, for a
        consumer that skips what nothing wants, that a rule or webhook wants) is in that
        consumer's inbox: nothing was dropped (max deliveries, a dead consumer task)."""
        infos = await self.consumers()
        bad: list[str] = []
        checked = 0
        in_stream = 0
        not_in_stream: list[str] = []
        twice: list[str] = []
        for region in REGIONS:
            events = await self.stream_events(region)
            stored = Counter(e for _, e, _ in events)
            wanted = await self.wanted(region)
            twice += [f"{region}: {e} x{n}" for e, n in stored.items() if n > 1]
            for service in SERVICES:
                published = await self.fetch(
                    service,
                    region,
                    "SELECT event_id, subject FROM outbox WHERE published_at IS NOT NULL",
                )
                in_stream += len(published)
                not_in_stream += [
                    f"{service}-{region}: {r['subject']} {r['event_id']}"
                    for r in published
                    if r["event_id"] not in stored
                ]
            handled: dict[str, set[str]] = defaultdict(set)
            for service in SERVICES:
                for r in await self.fetch(service, region, "SELECT consumer, event_id FROM inbox"):
                    handled[r["consumer"]].add(r["event_id"])
            for info in infos:
                if info.stream_name != stream_name(region) or not info.config.durable_name:
                    continue
                filters = list(info.config.filter_subjects or []) or [
                    info.config.filter_subject or ">"
                ]
                wants = wanted.get(info.name, lambda tenant, event_type: True)
                expected = {
                    e
                    for s, e, tenant in events
                    if any(subject_matches(f, s) for f in filters)
                    and wants(tenant, s.split(".", 2)[2])
                }
                checked += len(expected)
                lost = expected - handled[info.name]
                if lost:
                    bad.append(f"{region}/{info.name}: {len(lost)} of {len(expected)} not handled")
        self.add("events published from an outbox, not in the stream", in_stream, not_in_stream)
        self.add("events stored in a stream more than once", in_stream, twice)
        self.add("events a consumer never handled", checked, bad)


# ------------------------------------------------------------------ the run


async def _ok(
    client: Client, method: str, path: str, headers: dict[str, str], **kwargs: Any
) -> Any:
    response = await client.send(method, path, headers=headers, **kwargs)
    if response is None or response.status_code >= 300:
        text = response.text if response is not None else "no answer"
        raise RuntimeError(f"setup: {method} {path}: {text}")
    return response.json() if response.content else {}


async def set_up(cluster: Cluster, client: Client, seed: int) -> Setup:
    tenant = f"chaos-{seed}"

    def token(user: str, role: str, region: str) -> dict[str, str]:
        value = mint_token(
            cluster.jwt_secret, tenant=tenant, user=user, roles=[role], home_region=region
        )
        return {"Authorization": f"Bearer {value}"}

    admins = {r: token(f"admin-{r}", "admin", r) for r in REGIONS}
    officer = token("dpo", "compliance_officer", "eu")
    eu = admins["eu"]
    await _ok(
        client,
        "PUT",
        "/v1/compliance/policies",
        eu,
        json={
            "default_region": "us",
            "access_grants": [
                {"from_region": "eu", "to_region": r, "legal_basis": "chaos campaign"}
                for r in ("br", "us")
            ],
        },
    )
    for region in REGIONS:
        await _ok(
            client,
            "PUT",
            f"/v1/users/rep-{region}",
            admins[region],
            json={
                "display_name": f"Rep {region}",
                "email": f"rep-{region}@example.com",
                "team": "sales",
                "home_region": region,
                "working_hours_start": "00:00",
                "working_hours_end": "23:59",
                "working_days": [1, 2, 3, 4, 5, 6, 7],
            },
        )
    pipeline = await _ok(
        client,
        "POST",
        "/v1/pipelines",
        eu,
        json={
            "name": "Chaos",
            "stages": [
                {"name": "New", "win_probability": 10},
                {"name": "Qualified", "win_probability": 30},
                {"name": "Proposal", "win_probability": 60},
                {"name": "Won", "win_probability": 100, "kind": "won"},
                {"name": "Lost", "win_probability": 0, "kind": "lost"},
            ],
        },
    )
    stage = {s["name"]: s["id"] for s in pipeline["stages"]}
    qualify = await _ok(
        client,
        "POST",
        "/v1/automations",
        eu,
        json={
            "name": "Qualify",
            "trigger": {
                "event_type": "deals.deal.stage_changed",
                "conditions": {"to_stage_id": stage["Qualified"]},
            },
            "actions": [
                {
                    "type": "create_task",
                    "title": "Qualify the deal",
                    "assignee": "owner",
                    "due": "+1d",
                }
            ],
        },
    )
    won = await _ok(
        client,
        "POST",
        "/v1/automations",
        eu,
        json={
            "name": "Tell the owner",
            "trigger": {
                "event_type": "deals.deal.stage_changed",
                "conditions": {"to_stage_id": stage["Won"]},
            },
            "actions": [{"type": "notify", "recipients": ["owner"], "message": "Deal won"}],
        },
    )
    form = await _ok(
        client,
        "POST",
        "/v1/forms",
        eu,
        json={
            "name": "Chaos form",
            "pipeline_id": pipeline["id"],
            "stage_id": stage["New"],
            "field_mapping": {"name": "name", "email": "email", "country": "country"},
            "owner": "team:sales",
            "default_country": "DE",
            "rate_limit_per_key": 100_000,
            "rate_limit_per_ip": 100_000,
        },
    )
    return Setup(
        tenant=tenant,
        admins=admins,
        officer=officer,
        pipeline_id=pipeline["id"],
        stage=stage,
        qualify_rule=qualify["id"],
        won_rule=won["id"],
        form_key=form["key"],
    )


def fault_plan(profile: Profile, rng: random.Random) -> list[tuple[int, str]]:
    """(after how many operations, which fault), spread evenly with seeded jitter."""
    kinds = (
        ["nats"] * profile.nats_kills
        + ["service"] * profile.service_kills
        + ["postgres"] * profile.postgres_restarts
    )
    rng.shuffle(kinds)
    # Faults land in the first 90%, so the end of the run sees the system recover.
    span = profile.operations * 0.9
    step = span / (len(kinds) + 1)
    return [
        (int(step * (i + 1) + rng.uniform(-step / 3, step / 3)), kind)
        for i, kind in enumerate(kinds)
    ]


async def inject(faults: Faults, workload: Workload, plan: list[tuple[int, str]]) -> None:
    service_kills = 0
    outages = 0
    for at, kind in plan:
        # Polled: the workers only count, they do not signal.
        while workload.done < at:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        if kind == "service":
            await asyncio.to_thread(faults.kill_service, service_kills)
            service_kills += 1
            continue
        # Every other outage also has a service come back while it lasts.
        victim = service_kills if outages % 2 == 0 else None
        if victim is not None:
            service_kills += 1
        outages += 1
        if kind == "nats":
            await asyncio.to_thread(faults.kill_nats, victim)
        else:
            await asyncio.to_thread(faults.restart_postgres, victim)


async def show_progress(workload: Workload, stats: Stats, started: float) -> None:
    while True:
        await asyncio.sleep(30)
        faults = ", ".join(
            f"{k} {n}"
            for k, n in sorted(stats.faults.items())
            if k in ("NATS SIGKILL", "service SIGKILL", "PostgreSQL restart")
        )
        print(
            f"{time.monotonic() - started:5.0f} s: {workload.done} of "
            f"{workload.profile.operations} operations; {faults}",
            flush=True,
        )


async def campaign(cluster: Cluster, profile: Profile, seed: int) -> tuple[Checks, Stats, float]:
    rng = random.Random(seed)
    stats = Stats()
    faults = Faults(cluster, rng, stats)
    # Deliberate kills are not crashes to give up on.
    cluster.restart_policy = RestartPolicy(
        first_delay=0.5, max_delay=4, max_crashes=10_000, window=1
    )
    faults.start()
    try:
        limits = httpx.Limits(max_connections=profile.workers * 2)
        async with httpx.AsyncClient(base_url=cluster.gateway_url, limits=limits) as http:
            client = Client(http, stats, random.Random(seed + 1))
            setup = await set_up(cluster, client, seed)
            stats.bad_5xx.clear()
            stats.refused.clear()
            workload = Workload(client, setup, random.Random(seed + 2), profile, seed)
            plan = fault_plan(profile, random.Random(seed + 3))
            started = time.monotonic()
            injector = asyncio.create_task(inject(faults, workload, plan))
            progress = asyncio.create_task(show_progress(workload, stats, started))
            try:
                await workload.run()
                await injector
            finally:
                progress.cancel()
            elapsed = time.monotonic() - started
        await asyncio.to_thread(faults.wait_healthy)
    finally:
        faults.stop()
    checks = Checks(cluster, setup, workload, stats)
    settling = time.monotonic()
    await checks.settle(within=180)
    print(f"settled in {time.monotonic() - settling:.0f} s", flush=True)
    await checks.run()
    return checks, stats, elapsed


def report(checks: Checks, stats: Stats, profile: Profile, seed: int, elapsed: float) -> str:
    ops = checks.workload.ops
    acked = sum(op.acked for op in ops)
    out = io.StringIO()
    w = out.write
    w(f"\nFault campaign, seed {seed}: {len(ops)} operations ({acked} acknowledged) ")
    w(f"in {elapsed:.0f} s through the gateway across {', '.join(REGIONS)}\n")
    kinds = Counter(op.kind for op in ops)
    w("  operations: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) + "\n")
    w(
        f"  requests: {stats.requests} ({stats.retries} retries, "
        f"{stats.connection_errors} connection errors); answers: "
        + ", ".join(f"{s}: {n}" for s, n in sorted(stats.answers.items()))
        + "\n"
    )
    w("  faults: " + ", ".join(f"{k} {n}" for k, n in sorted(stats.faults.items())) + "\n\n")
    width = max(len(line.check) for line in checks.lines)
    w(f"  {'check'.ljust(width)}  {'checked':>8}  {'bad':>5}\n")
    w(f"  {'-' * width}  {'-' * 8}  {'-' * 5}\n")
    for line in checks.lines:
        w(f"  {line.check.ljust(width)}  {line.checked:>8}  {line.bad:>5}\n")
    if checks.details:
        w("\nWhat was bad (at most 20 per line):\n")
        for detail in checks.details:
            w(f"  {detail}\n")
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
        prog="python -m tools.chaos", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--short", action="store_true", help="the short version (make test)")
    parser.add_argument("--operations", type=int)
    parser.add_argument("--keep", action="store_true", help="keep the state folder (logs)")
    parser.add_argument(
        "--state",
        type=Path,
        help="an empty folder for the system's state and logs (default: a new one in /tmp); "
        "kept afterwards, its owner removes it",
    )
    args = parser.parse_args(argv)
    profile = SHORT if args.short else FULL
    if args.operations:
        profile = Profile(**{**profile.__dict__, "operations": args.operations})
    # A short path: PostgreSQL's socket lives in its data folder (107-byte limit).
    state = args.state or Path(tempfile.mkdtemp(prefix="chaos-", dir="/tmp"))
    state.mkdir(parents=True, exist_ok=True)
    os.environ["CRM_SCHEDULER_INTERVAL"] = "0.5"
    # Twenty processes importing at once on a busy two-core machine start slowly.
    os.environ.setdefault("CRM_START_TIMEOUT", "600")
    os.environ["CRM_CLOCK_FILE"] = str(state / "clock-offset")
    print(f"state and logs in {state}", flush=True)
    # Stopped from outside (a test's timeout), the system is still stopped (`finally`).
    signal.signal(signal.SIGTERM, _interrupt)
    began = time.monotonic()
    with system(state) as cluster:
        print(f"system up in {time.monotonic() - began:.0f} s", flush=True)
        checks, stats, elapsed = asyncio.run(campaign(cluster, profile, args.seed))
    failed = any(line.bad for line in checks.lines)
    # The logs of a failed run stay for the investigation.
    if not args.keep and not args.state and not failed:
        shutil.rmtree(state, ignore_errors=True)
    print(report(checks, stats, profile, args.seed, elapsed), flush=True)
    print(f"whole run (start, workload, settle, checks, stop): {time.monotonic() - began:.0f} s")
    if failed:
        print(f"logs kept in {state / 'logs'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
