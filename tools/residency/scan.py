"""The scan: every table of every database and every message retained in every stream,
searched for the personal data of the people the workload made.

Nothing is hard-coded about the schema: the databases come from `pg_database`, their
tables and text-like columns from `pg_catalog` (strings, JSON, arrays of either, binary,
full-text vectors; anything whose type category is string or user-defined), and the
streams from JetStream's stream list. A database belongs to the region its name ends in
(`<service>_<region>`); one that names no region is global and may hold no personal
data at all.

What counts as a person's data: their token (inside their last name, emails, notes, deal
and task titles, consent sources) or their phone number (E.164, or the national number
with or without a trunk prefix and separators). Where it may be:
- a living person's data only in the databases of the region their country requires now
  (after country changes, merges, relocations): anywhere else is a violation, whatever the
  table. ARCHITECTURE.md lets global data (the directory, policies) and every region's
  audit trail, outbox and aliases hold ids, never personal data, so no table is exempt;
- an erased person's data nowhere, except a copy the erasure's signed receipt lists as
  remaining (by table);
- no person's data in any event, payload or header.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import asyncpg
import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from tools.residency.workload import Person

TOKEN = re.compile(r"zq[a-z]{8}")
# A phone as people write it: digits with at most two separators between any two.
PHONE = re.compile(r"\+?\d(?:[ ./()\-]{0,2}\d){6,}")
NOT_DIGIT = re.compile(r"\D")


class Index:
    """Finds whose data a string holds."""

    def __init__(self, people: Iterable[Person]) -> None:
        self.tokens: dict[str, Person] = {}
        self.phones: dict[str, Person] = {}
        for person in people:
            self.tokens[person.token] = person
            if len(person.national) >= 8:
                self.phones[person.national] = person
        self.lengths = sorted({len(n) for n in self.phones})

    def people_in(self, text: str) -> set[Person]:
        found: set[Person] = set()
        lowered = text.lower()
        if "zq" in lowered:
            for token in TOKEN.findall(lowered):
                person = self.tokens.get(token)
                if person is not None:
                    found.add(person)
        for match in PHONE.findall(text):
            digits = NOT_DIGIT.sub("", match)
            for length in self.lengths:
                if len(digits) < length:
                    break
                person = self.phones.get(digits[-length:])
                if person is not None:
                    found.add(person)
        return found


@dataclass
class Counts:
    databases: int = 0
    tables: int = 0
    columns: int = 0
    rows: int = 0
    values: int = 0
    streams: int = 0
    messages: int = 0
    headers: int = 0


@dataclass
class Violation:
    kind: str
    where: str
    person: Person

    def describe(self) -> str:
        p = self.person
        return (
            f"{self.kind}: {self.where}: {p.token} ({p.how}, {p.root.state}, "
            f"country {p.root.country} -> {p.region}, id {p.root.contact_id or '?'})"
        )


@dataclass
class Scan:
    counts: Counts = field(default_factory=Counts)
    violations: list[Violation] = field(default_factory=list)
    # Where each person's data was seen: person -> regions.
    seen: dict[Person, set[str]] = field(default_factory=lambda: defaultdict(set))

    def by_kind(self) -> Counter[str]:
        return Counter(v.kind for v in self.violations)


# Every column whose values can hold text: string types, user-defined and JSON types
# (json, jsonb, bytea, tsvector, uuid, …; category U) and arrays of either.
COLUMNS = """
SELECT n.nspname AS schema, c.relname AS table, a.attname AS column,
       t.typname AS type, t.typcategory::text AS category, e.typcategory::text AS element
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
WHERE c.relkind IN ('r', 'p', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%'
ORDER BY n.nspname, c.relname, a.attnum
"""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def region_of_database(name: str, regions: Sequence[str]) -> str:
    suffix = name.rsplit("_", 1)[-1]
    return suffix if suffix in regions and "_" in name else ""


def judge(scan: Scan, person: Person, region: str, where: str, table: str) -> None:
    """Records a violation when the person's data may not be in `region` ("" = global)."""
    scan.seen[person].add(region)
    root = person.root
    if root.state == "pending":
        scan.violations.append(Violation("data of a refused or unanswered write", where, person))
    elif root.erased:
        if not any(k[0] == region and k[2] == table for k in root.kept):
            scan.violations.append(Violation("erased person's data remains", where, person))
    elif not region:
        scan.violations.append(Violation("personal data in a global database", where, person))
    elif region != person.region:
        scan.violations.append(Violation("personal data outside its region", where, person))


async def scan_databases(
    dsn: str, dsn_for: object, regions: Sequence[str], index: Index, scan: Scan
) -> None:
    """`dsn` reaches the server's maintenance database; `dsn_for(name)` any database."""
    server = await asyncpg.connect(dsn)
    try:
        names = [
            r["datname"]
            for r in await server.fetch(
                "SELECT datname FROM pg_database WHERE NOT datistemplate "
                "AND datname <> 'postgres' ORDER BY datname"
            )
        ]
    finally:
        await server.close()
    for name in names:
        scan.counts.databases += 1
        region = region_of_database(name, regions)
        connection = await asyncpg.connect(dsn_for(name))  # type: ignore[operator]
        try:
            await scan_database(connection, name, region, index, scan)
        finally:
            await connection.close()


async def scan_database(
    connection: asyncpg.Connection, name: str, region: str, index: Index, scan: Scan
) -> None:
    tables: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for r in await connection.fetch(COLUMNS):
        columns = tables.setdefault((r["schema"], r["table"]), [])
        texty = r["category"] in ("S", "U") or (r["category"] == "A" and r["element"] in ("S", "U"))
        if texty:
            columns.append((r["column"], r["type"]))
    for (schema, table), columns in tables.items():
        scan.counts.tables += 1
        scan.counts.columns += len(columns)
        relation = f"{_ident(schema)}.{_ident(table)}"
        if not columns:
            scan.counts.rows += await connection.fetchval(f"SELECT count(*) FROM {relation}")  # noqa: S608 - catalogue names
            continue
        select = ", ".join(_ident(c) if t == "bytea" else f"{_ident(c)}::text" for c, t in columns)
        async with connection.transaction(readonly=True):
            async for row in connection.cursor(
                f"SELECT {select} FROM {relation}",  # noqa: S608 - catalogue names
                prefetch=2000,
            ):
                scan.counts.rows += 1
                for (column, _), value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    scan.counts.values += 1
                    text = value.decode("latin-1") if isinstance(value, bytes) else value
                    for person in index.people_in(text):
                        judge(scan, person, region, f"{name}.{table}.{column}", table)


async def scan_streams(url: str, index: Index, scan: Scan) -> None:
    """Every message retained in every stream, its payload and its headers."""
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        for info in await js.streams_info():
            stream = info.config.name
            assert stream is not None
            scan.counts.streams += 1
            total = info.state.messages
            if not total:
                continue
            consumer = await js.add_consumer(
                stream,
                ConsumerConfig(
                    deliver_policy=DeliverPolicy.ALL,
                    ack_policy=AckPolicy.NONE,
                    inactive_threshold=120,
                ),
            )
            subscription = await js.pull_subscribe_bind(consumer=consumer.name, stream=stream)
            read = 0
            try:
                while read < total:
                    try:
                        batch = await subscription.fetch(1000, timeout=5)
                    except (nats.errors.TimeoutError, TimeoutError):
                        break
                    for message in batch:
                        read += 1
                        scan.counts.messages += 1
                        where = f"stream {stream} {message.subject}"
                        texts = [message.data.decode("latin-1")]
                        for key, value in (message.headers or {}).items():
                            scan.counts.headers += 1
                            texts.append(f"{key}: {value}")
                        for text in texts:
                            for person in index.people_in(text):
                                scan.seen[person].add("events")
                                scan.violations.append(
                                    Violation("personal data in an event", where, person)
                                )
            finally:
                await subscription.unsubscribe()
                await js.delete_consumer(stream, consumer.name)
    finally:
        await client.close()
