"""The seeded random workload of the residency run: people created, changed, merged,
imported, submitted through a public form, relocated and erased, through the gateway.

Every person the workload makes carries a token of its own (`zq` and eight letters)
inside their last name, their emails, their notes and the titles of their deals and
tasks, and a phone number nobody else has, so the scan can tell whose data any stored
string is. The workload keeps, for every person, where their data must live now.

Reproducible: each worker has its own random generator (seed, worker) and its own
people, and never touches another worker's people, so what a worker does depends only on
the seed and on the answers it gets, not on how the workers interleave.
"""

from __future__ import annotations

import asyncio
import csv
import io
import random
import string
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import phonenumbers

from crm_kit.auth import mint_token

REGIONS = ("eu", "br", "us")
# Countries people live in, by the region the tenant's policy (below) places them in:
# EU/EEA -> eu, BR -> br, everything else -> the default (us); CH by an override.
COUNTRIES = {
    "eu": ("DE", "FR", "PT", "AT", "NL", "IT", "ES", "PL", "NO", "CH"),
    "br": ("BR",),
    "us": ("US", "CA", "MX", "JP", "AU", "GB", "IN"),
}
EEA = frozenset(
    {
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
        "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
        "IS", "LI", "NO",
    }
)  # fmt: skip
OVERRIDES = {"CH": "eu"}
DEFAULT_REGION = "us"
FIRST_NAMES = ("Lena", "Ana", "Joao", "Mary", "Kenji", "Priya", "Luca", "Marta", "Olu", "Sam")
STAGES = ("New", "Qualified", "Won", "Lost")
# Operation kinds and their weights in the mix.
MIX = {
    "contact": 20,
    "form": 9,
    "note": 12,
    "deal": 10,
    "move": 6,
    "task": 6,
    "consent": 6,
    "country": 6,
    "merge": 5,
    "relocate": 5,
    "erase": 3,
    "import": 1,
}
RETRY_BUDGET = 120.0


def required_region(country: str) -> str:
    """Where the tenant's policy (set up below) requires a person of `country` to live:
    computed here from ARCHITECTURE.md's rule, independently of the product's code."""
    if country in OVERRIDES:
        return OVERRIDES[country]
    if country in EEA:
        return "eu"
    if country == "BR":
        return "br"
    return DEFAULT_REGION


@dataclass(eq=False)
class Person:
    """One data subject the workload made, and where their data must be now."""

    token: str
    first: str
    last: str
    email: str
    phone: str  # E.164 ("" when none)
    national: str  # the phone's national significant number (digits)
    country: str
    worker: int
    how: str  # api, form, import
    contact_id: str = ""  # current id ("" while unknown)
    owner_region: str = ""  # the region of the rep who owns the contact ("" for none)
    state: str = "pending"  # pending (not acknowledged), alive, merged, erased
    merged_into: Person | None = None
    relocations: int = 0
    # What the erasure receipt says stayed: (service, table, column) per region.
    kept: set[tuple[str, str, str]] = field(default_factory=set)

    @property
    def root(self) -> Person:
        """The contact this person is now part of (a merge folds a duplicate into one)."""
        person = self
        while person.merged_into is not None:
            person = person.merged_into
        return person

    @property
    def region(self) -> str:
        return required_region(self.root.country)

    @property
    def erased(self) -> bool:
        return self.root.state == "erased"


@dataclass
class Stats:
    operations: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    answers: Counter[int] = field(default_factory=Counter)
    # Anything the workload did not expect: (operation, status, body); zero expected.
    unexpected: list[str] = field(default_factory=list)


class Gateway:
    """The gateway as clients use it; retries a connection error or a 503 with the same
    Idempotency-Key (no faults are injected here, so retries should be rare)."""

    def __init__(self, http: httpx.AsyncClient, stats: Stats) -> None:
        self.http = http
        self.stats = stats

    async def send(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        deadline = time.monotonic() + RETRY_BUDGET
        while True:
            self.stats.requests += 1
            try:
                response = await self.http.request(
                    method, path, headers=headers, timeout=60, **kwargs
                )
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
                continue
            self.stats.answers[response.status_code] += 1
            retry = response.status_code == 429 or (
                response.status_code == 503 and "Retry-After" in response.headers
            )
            if not retry or time.monotonic() > deadline:
                return response
            await asyncio.sleep(min(float(response.headers.get("Retry-After", 1)), 2.0))


@dataclass
class Setup:
    tenant: str
    admins: dict[str, dict[str, str]]
    managers: dict[str, dict[str, str]]
    reps: dict[str, dict[str, str]]
    officer: dict[str, str]
    pipeline_id: str
    stage: dict[str, str]
    form_key: str


async def _ok(gateway: Gateway, method: str, path: str, headers: dict[str, str], **kw: Any) -> Any:
    response = await gateway.send(method, path, headers, **kw)
    if response.status_code >= 300:
        raise RuntimeError(f"setup: {method} {path}: {response.status_code} {response.text}")
    return response.json() if response.content else {}


async def set_up(gateway: Gateway, jwt_secret: str, tenant: str) -> Setup:
    """The tenant: a policy (default us, CH in eu, every region may reach every other),
    an admin, a manager and a sales rep per region, an officer, a pipeline whose Won
    stage notifies the owner and whose Qualified stage gives the owner a task, a form."""

    def token(user: str, role: str, region: str, team: str = "") -> dict[str, str]:
        value = mint_token(
            jwt_secret, tenant=tenant, user=user, roles=[role], home_region=region, team=team
        )
        return {"Authorization": f"Bearer {value}"}

    admins = {r: token(f"admin-{r}", "admin", r) for r in REGIONS}
    managers = {r: token(f"manager-{r}", "manager", r, team=f"sales-{r}") for r in REGIONS}
    reps = {r: token(f"rep-{r}", "sales_rep", r, team=f"sales-{r}") for r in REGIONS}
    officer = token("dpo", "compliance_officer", "eu")
    eu = admins["eu"]
    await _ok(
        gateway,
        "PUT",
        "/v1/compliance/policies",
        eu,
        json={
            "default_region": DEFAULT_REGION,
            "residency_overrides": OVERRIDES,
            "access_grants": [
                {"from_region": a, "to_region": b, "legal_basis": "residency run"}
                for a in REGIONS
                for b in REGIONS
                if a != b
            ],
        },
    )
    for region in REGIONS:
        for user in (f"rep-{region}", f"manager-{region}"):
            await _ok(
                gateway,
                "PUT",
                f"/v1/users/{user}",
                admins[region],
                json={
                    "display_name": user,
                    "email": f"{user}@staff.example.com",
                    "team": f"sales-{region}",
                    "home_region": region,
                },
            )
    pipeline = await _ok(
        gateway,
        "POST",
        "/v1/pipelines",
        eu,
        json={
            "name": "Residency",
            "stages": [
                {"name": "New", "win_probability": 10},
                {"name": "Qualified", "win_probability": 40},
                {"name": "Won", "win_probability": 100, "kind": "won"},
                {"name": "Lost", "win_probability": 0, "kind": "lost"},
            ],
        },
    )
    stage = {s["name"]: s["id"] for s in pipeline["stages"]}
    await _ok(
        gateway,
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
                {"type": "create_task", "title": "Qualify", "assignee": "owner", "due": "+1d"}
            ],
        },
    )
    await _ok(
        gateway,
        "POST",
        "/v1/automations",
        eu,
        json={
            "name": "Won",
            "trigger": {
                "event_type": "deals.deal.stage_changed",
                "conditions": {"to_stage_id": stage["Won"]},
            },
            "actions": [{"type": "notify", "recipients": ["owner"], "message": "Deal won"}],
        },
    )
    form = await _ok(
        gateway,
        "POST",
        "/v1/forms",
        eu,
        json={
            "name": "Residency form",
            "pipeline_id": pipeline["id"],
            "stage_id": stage["New"],
            "field_mapping": {
                "name": "name",
                "email": "email",
                "phone": "phone",
                "country": "country",
                "message": "note",
            },
            "owner": "team:sales-eu",
            "default_country": "DE",
            "rate_limit_per_key": 100_000,
            "rate_limit_per_ip": 100_000,
        },
    )
    return Setup(
        tenant=tenant,
        admins=admins,
        managers=managers,
        reps=reps,
        officer=officer,
        pipeline_id=pipeline["id"],
        stage=stage,
        form_key=form["key"],
    )


class Worker:
    """One lane of the workload: its own generator and its own people."""

    def __init__(
        self, index: int, seed: int, gateway: Gateway, setup: Setup, run: Workload
    ) -> None:
        self.index = index
        self.rng = random.Random(f"{seed}-{index}")
        self.gateway = gateway
        self.setup = setup
        self.run = run
        self.people: list[Person] = []
        self.deals: list[tuple[Person, str, str]] = []  # (person, deal id, stage name)

    # -------------------------------------------------------------- helpers

    def key(self) -> str:
        # Idempotency keys carry no personal data (they are stored).
        return f"k{self.index}-{self.rng.getrandbits(64):016x}"

    def new_person(self, region: str, how: str) -> Person:
        token = "zq" + "".join(self.rng.choice(string.ascii_lowercase) for _ in range(8))
        country = self.rng.choice(COUNTRIES[region])
        phone, national = self.run.new_phone(country, self.rng)
        first = self.rng.choice(FIRST_NAMES)
        person = Person(
            token=token,
            first=first,
            last=token.capitalize(),
            email=f"{first.lower()}.{token}@example.com",
            phone=phone,
            national=national,
            country=country,
            worker=self.index,
            how=how,
        )
        self.run.people.append(person)
        return person

    def alive(self, *, with_id: bool = True) -> list[Person]:
        return [
            p
            for p in self.people
            if p.state == "alive" and p.merged_into is None and (p.contact_id or not with_id)
        ]

    def actor(self, person: Person) -> dict[str, str]:
        """Someone allowed to act on the person: their region's admin, manager or rep
        (rep-<region> owns what the workload creates), or the eu admin through a grant."""
        region = person.region
        pick = self.rng.random()
        if pick < 0.3:
            return self.setup.admins[region]
        if pick < 0.5 and person.owner_region == region:
            return self.setup.reps[region]
        if pick < 0.7 and person.owner_region == region:
            return self.setup.managers[region]
        return self.setup.admins["eu"]

    def unexpected(self, what: str, response: httpx.Response) -> None:
        self.run.stats.unexpected.append(f"{what}: {response.status_code} {response.text[:300]}")

    # -------------------------------------------------------------- operations

    async def one(self) -> None:
        kind = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        needs_one = ("note", "deal", "task", "consent", "country", "relocate", "erase")
        if kind in needs_one and not self.alive():
            kind = "contact"
        if kind == "merge" and len(self.alive()) < 2:
            kind = "contact"
        if kind == "move" and not self.deals:
            kind = "deal" if self.alive() else "contact"
        self.run.stats.operations[kind] += 1
        await getattr(self, f"op_{kind}")()

    async def op_contact(self) -> None:
        region = self.rng.choice(REGIONS)
        person = self.new_person(region, "api")
        # Created by the region's admin, manager or rep, or by the eu admin (a transfer).
        who = self.rng.choice(("admin", "manager", "rep", "eu"))
        headers = {
            "admin": self.setup.admins[region],
            "manager": self.setup.managers[region],
            "rep": self.setup.reps[region],
            "eu": self.setup.admins["eu"],
        }[who]
        body: dict[str, Any] = {
            "first_name": person.first,
            "last_name": person.last,
            "emails": [person.email],
            "address": {"city": "Town", "country": person.country},
            "owner_id": f"rep-{region}",
        }
        if person.phone:
            body["phones"] = [person.phone]
        response = await self.gateway.send(
            "POST",
            "/v1/contacts",
            {**headers, "Idempotency-Key": self.key()},
            json=body,
        )
        if response.status_code != 201:
            self.unexpected("create contact", response)
            return
        person.contact_id = response.json()["id"]
        person.state = "alive"
        person.owner_region = region
        self.people.append(person)
        self.run.placed(person)

    async def op_form(self) -> None:
        existing = self.alive(with_id=False)
        if existing and self.rng.random() < 0.25:
            # The same person again: found by email, no new contact.
            person = self.rng.choice(existing)
            fresh = False
        else:
            person = self.new_person(self.rng.choice(REGIONS), "form")
            fresh = True
        body = {
            "name": f"{person.first} {person.last}",
            "email": person.email,
            "country": person.root.country,
            "message": f"Please call {person.token} back",
        }
        if person.phone and fresh:
            body["phone"] = person.phone
        response = await self.gateway.send(
            "POST",
            f"/public/forms/{self.setup.form_key}",
            {"X-Forwarded-For": f"198.51.100.{self.rng.randint(1, 250)}"},
            json=body,
        )
        if response.status_code not in (201, 202):
            self.unexpected("form submission", response)
            return
        if fresh:
            person.state = "alive"
            self.people.append(person)
            self.run.form_people.append(person)
            if response.status_code == 201:
                await self.resolve(person)

    async def resolve(self, person: Person) -> None:
        """The id of a contact made by a form or an import, found by its email."""
        response = await self.gateway.send(
            "GET",
            "/v1/contacts",
            self.setup.admins["eu"],
            params={"q": person.email, "region": person.region},
        )
        if response.status_code != 200:
            self.unexpected("search", response)
            return
        found = [c["id"] for c in response.json()["data"] if person.email in c.get("emails", [])]
        if len(found) == 1:
            person.contact_id = found[0]
            self.run.placed(person)
        else:
            self.run.stats.operations["not found by email"] += 1

    async def op_note(self) -> None:
        person = self.rng.choice(self.alive())
        kind = self.rng.choice(("note", "call", "email", "meeting"))
        response = await self.gateway.send(
            "POST",
            f"/v1/contacts/{person.root.contact_id}/notes",
            {**self.actor(person), "Idempotency-Key": self.key()},
            json={"kind": kind, "body": f"Talked to {person.token} about {person.email}"}
            | ({"direction": "outbound"} if kind == "call" else {}),
        )
        if response.status_code != 201:
            self.unexpected("note", response)

    async def op_deal(self) -> None:
        person = self.rng.choice(self.alive())
        region = person.region
        response = await self.gateway.send(
            "POST",
            "/v1/deals",
            {**self.setup.admins[region], "Idempotency-Key": self.key()},
            json={
                "title": f"Windows for {person.first} {person.last}",
                "contact_id": person.root.contact_id,
                "owner_id": f"rep-{region}",
                "pipeline_id": self.setup.pipeline_id,
                "stage_id": self.setup.stage["New"],
                "amount": {"amount": f"{self.rng.randint(100, 9_999)}.00", "currency": "EUR"},
            },
        )
        if response.status_code != 201:
            self.unexpected("deal", response)
            return
        self.deals.append((person, response.json()["id"], "New"))

    async def op_move(self) -> None:
        i = self.rng.randrange(len(self.deals))
        person, deal_id, at = self.deals.pop(i)
        if person.state != "alive" or person.merged_into is not None:
            return  # its contact moved, merged or was erased: the deal id is stale
        to = "Qualified" if at == "New" else self.rng.choice(("Won", "Lost"))
        response = await self.gateway.send(
            "POST",
            f"/v1/deals/{deal_id}/stage",
            {**self.setup.admins[person.region], "Idempotency-Key": self.key()},
            json={"stage_id": self.setup.stage[to]}
            | ({"lost_reason": "price"} if to == "Lost" else {}),
        )
        if response.status_code != 200:
            self.unexpected("stage move", response)
            return
        if to == "Qualified":
            self.deals.append((person, deal_id, to))

    async def op_task(self) -> None:
        person = self.rng.choice(self.alive())
        region = person.region
        response = await self.gateway.send(
            "POST",
            "/v1/tasks",
            {**self.setup.admins[region], "Idempotency-Key": self.key()},
            json={
                "title": f"Call {person.first} {person.last} on {person.phone or person.email}",
                "assignee_id": f"rep-{region}",
                "contact_id": person.root.contact_id,
                "due_at": "2030-01-01T09:00:00+00:00",
            },
        )
        if response.status_code != 201:
            self.unexpected("task", response)

    async def op_consent(self) -> None:
        person = self.rng.choice(self.alive())
        response = await self.gateway.send(
            "POST",
            f"/v1/contacts/{person.root.contact_id}/consents",
            {**self.actor(person), "Idempotency-Key": self.key()},
            json={
                "purpose": self.rng.choice(("marketing_email", "newsletter", "sms")),
                "lawful_basis": "consent",
                "status": self.rng.choice(("granted", "withdrawn")),
                "source": f"asked {person.token} by phone",
            },
        )
        if response.status_code not in (200, 201):
            self.unexpected("consent", response)

    async def op_country(self) -> None:
        """A country change: within the region it is a plain change; to a country of
        another region the change is refused (nothing written) and a relocation follows."""
        person = self.rng.choice(self.alive())
        root = person.root
        region = root.region
        if self.rng.random() < 0.5:
            country = self.rng.choice(COUNTRIES[region])
            response = await self.gateway.send(
                "PATCH",
                f"/v1/contacts/{root.contact_id}",
                self.actor(root),
                json={"address": {"city": "Town", "country": country}},
            )
            if response.status_code != 200:
                self.unexpected("country change", response)
                return
            root.country = country
            return
        target = self.rng.choice([r for r in REGIONS if r != region])
        country = self.rng.choice(COUNTRIES[target])
        response = await self.gateway.send(
            "PATCH",
            f"/v1/contacts/{root.contact_id}",
            self.setup.admins[region],
            json={"address": {"country": country}},
        )
        if response.status_code != 422:
            self.unexpected("country change across regions (422 expected)", response)
            return
        await self.relocate(root, country)

    async def op_relocate(self) -> None:
        root = self.rng.choice(self.alive()).root
        target = self.rng.choice([r for r in REGIONS if r != root.region])
        await self.relocate(root, self.rng.choice(COUNTRIES[target]))

    async def relocate(self, root: Person, country: str) -> None:
        who = self.setup.officer if self.rng.random() < 0.7 else self.setup.admins["eu"]
        response = await self.gateway.send(
            "POST",
            "/v1/compliance/relocations",
            who,
            json={"contact_id": root.contact_id, "country": country},
        )
        if response.status_code != 200:
            self.unexpected("relocation", response)
            return
        moved = response.json()
        # Its deals have new ids in the new region.
        self.deals = [d for d in self.deals if d[0].root is not root]
        root.contact_id = moved["new_contact_id"]
        root.country = country
        root.relocations += 1
        self.run.stats.operations["relocated"] += 1
        if moved["to_region"] != required_region(country):
            self.run.misplaced.append(f"relocated {root.token} to {moved['to_region']}")

    async def op_merge(self) -> None:
        candidates = self.alive()
        by_region: dict[str, list[Person]] = {}
        for p in candidates:
            by_region.setdefault(p.region, []).append(p)
        pairs = [ps for ps in by_region.values() if len(ps) >= 2]
        if not pairs:
            await self.op_contact()
            return
        survivor, merged = self.rng.sample(self.rng.choice(pairs), 2)
        response = await self.gateway.send(
            "POST",
            f"/v1/contacts/{survivor.contact_id}/merge",
            {**self.setup.admins[survivor.region], "Idempotency-Key": self.key()},
            json={"merged_id": merged.contact_id},
        )
        if response.status_code != 200:
            self.unexpected("merge", response)
            return
        merged.merged_into = survivor
        merged.state = "merged"
        # The deals of the merged contact now belong to the survivor.
        self.deals = [(survivor if p is merged else p, d, s) for p, d, s in self.deals]

    async def op_erase(self) -> None:
        root = self.rng.choice(self.alive()).root
        response = await self.gateway.send(
            "POST",
            "/v1/privacy/requests",
            {**self.setup.officer, "Idempotency-Key": self.key()},
            json={"kind": "erasure", "contact_id": root.contact_id},
        )
        for _ in range(10):
            if response.status_code not in (200, 201) or response.json().get("status") != "failed":
                break
            self.run.stats.operations["erasure retried"] += 1
            await asyncio.sleep(1)
            response = await self.gateway.send(
                "POST",
                f"/v1/privacy/requests/{response.json()['id']}/retry",
                self.setup.officer,
            )
        if response.status_code not in (200, 201) or response.json().get("status") != "completed":
            self.unexpected("erasure", response)
            # A failed verification still erased what it could: the person must be gone.
        root.state = "erased"
        body = response.json() if response.status_code in (200, 201) else {}
        region = root.region
        for receipt in _receipts(body):
            for kept in receipt.get("copies_remaining", []):
                root.kept.add((region, str(receipt.get("service", "")), str(kept.get("table"))))

    async def op_import(self) -> None:
        """A CSV of new people from every region, uploaded by an admin of one region: the
        rows of other regions are forwarded there; the file stays in the importer's region
        until the job ends."""
        region = self.rng.choice(REGIONS)
        people = [
            self.new_person(self.rng.choice(REGIONS), "import")
            for _ in range(self.rng.randint(3, 12))
        ]
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["Name", "Email", "Phone", "Country"])
        for p in people:
            writer.writerow([f"{p.first} {p.last}", p.email, p.phone, p.country])
        admin = self.setup.admins[region]
        upload = await self.gateway.send(
            "POST",
            f"/v1/imports?file_name=people-{self.index}.csv",
            {**admin, "content-type": "text/csv"},
            content=buffer.getvalue().encode(),
        )
        if upload.status_code != 201:
            self.unexpected("import upload", upload)
            return
        job = upload.json()["id"]
        settings = {
            "duplicate_policy": "skip",
            "default_country": "DE",
            "mapping": {"Name": "name", "Email": "email", "Phone": "phone", "Country": "country"},
        }
        started = await self.gateway.send("POST", f"/v1/imports/{job}/start", admin, json=settings)
        if started.status_code not in (200, 202):
            self.unexpected("import start", started)
            return
        deadline = time.monotonic() + 120
        status = ""
        while time.monotonic() < deadline:
            answer = await self.gateway.send("GET", f"/v1/imports/{job}", admin)
            status = answer.json().get("status", "") if answer.status_code == 200 else ""
            if status not in ("running", "queued", "pending", ""):
                break
            await asyncio.sleep(0.5)
        if status != "completed":
            self.run.stats.unexpected.append(f"import {job}: {status}")
            return
        for p in people:
            p.state = "alive"
            self.people.append(p)
            await self.resolve(p)
        self.run.imported.extend(people)


def _receipts(body: dict[str, Any]) -> list[dict[str, Any]]:
    receipt = body.get("receipt")
    if isinstance(receipt, str):
        import json

        try:
            receipt = json.loads(receipt)
        except ValueError:
            return []
    if not isinstance(receipt, dict):
        return []
    services = receipt.get("services")
    if isinstance(services, list):
        return [s for s in services if isinstance(s, dict)]
    return [receipt]


class Workload:
    """Every worker, the people they made and what went unexpectedly."""

    def __init__(self, seed: int, operations: int, workers: int) -> None:
        self.seed = seed
        self.operations = operations
        self.workers = workers
        self.people: list[Person] = []
        self.form_people: list[Person] = []
        self.imported: list[Person] = []
        self.misplaced: list[str] = []
        self.stats = Stats()
        self.done = 0
        self._phones: set[str] = set()
        self._serial = 0

    def new_phone(self, country: str, rng: random.Random) -> tuple[str, str]:
        """A valid phone number of `country` nobody else in the run has (E.164, and its
        national significant number)."""
        example = phonenumbers.example_number_for_type(
            country, phonenumbers.PhoneNumberType.MOBILE
        ) or phonenumbers.example_number(country)
        if example is None:
            return "", ""
        base = phonenumbers.national_significant_number(example)
        for _ in range(50):
            tail = f"{rng.randrange(10**6):06d}"
            nsn = base[: len(base) - len(tail)] + tail
            number = phonenumbers.parse(f"+{example.country_code}{nsn}")
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            if phonenumbers.is_valid_number(number) and e164 not in self._phones:
                self._phones.add(e164)
                return e164, nsn
        return "", ""

    def placed(self, person: Person) -> None:
        stored = person.contact_id.split("_", 1)[0]
        if stored != required_region(person.country):
            self.misplaced.append(f"{person.token} ({person.country}) created in {stored}")

    async def run(self, gateway: Gateway, setup: Setup) -> None:
        workers = [Worker(i, self.seed, gateway, setup, self) for i in range(self.workers)]
        share = [self.operations // self.workers] * self.workers
        for i in range(self.operations % self.workers):
            share[i] += 1

        async def lane(worker: Worker, count: int) -> None:
            for _ in range(count):
                await worker.one()
                self.done += 1

        await asyncio.gather(*(lane(w, n) for w, n in zip(workers, share, strict=True)))
