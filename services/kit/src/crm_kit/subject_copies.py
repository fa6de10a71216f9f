"""Copies of a data subject's identifiers anywhere in a service's database.

An erasure deletes or anonymises the rows linked to the subject by id, but personal
data travels: a web form puts the name into a deal title, the deal's inbox item quotes
the title, a webhook body or an import error report quotes an email. So, generically
for every service: every text, JSON, text-array and binary column of every table of the
service's own database (read from `information_schema`) is searched for the subject's
identifiers; `redact` replaces each match with `[erased]`, and `find` is the
verification behind the signed erasure receipt.

Which identifiers (`subject_terms`), and why:
- emails and phones are specific to one person, so they are matched anywhere (phones
  as E.164 and national digits, also written with the usual separators);
- the full name ("Lena Vogel", also "Vogel Lena" and "Vogel, Lena") is matched whole
  word, in any case, and only when it has a first and a last name and at least
  `MIN_FULL_NAME` letters. A row linked to *another* contact (its `contact_id`, or a
  contact's own row) is about that person, so a name match there is a namesake, not a
  copy: it is neither reported nor redacted (emails and phones still are);
- a first or last name alone ("Ana") is not searched outside the subject's own rows:
  it would find and destroy other people's data. Rows linked to the subject are deleted
  or anonymised by each service's EraseSubject, and the linked-record check of
  ExportSubject verifies them.

Rows of the tenant only (tables with a `tenant_id`, or a declared scope); tables
without either are searched across tenants and never changed. Some tables are searched
but never changed (`CopyRules.keep`: the hash-chained audit trail, the outbox): a copy
there stays, and the receipt says so. Binary copies that cannot be edited in place
(stored gRPC responses, rendered PDFs) are deleted with their row (`CopyRules.delete`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.compliance.v1 import compliance_pb2 as pb

REDACTED = "[erased]"
MIN_FULL_NAME = 5
KINDS = ("full_name", "email", "phone")
_TEXT_TYPES = ("text", "character varying", "character")
_JSON_TYPES = ("json", "jsonb")
# The row a scan found, in the same transaction (asyncpg wants a tuple for a tid).
BY_CTID = "CAST(CAST(:ctid AS text) AS tid)"
PHONE_SEPARATORS = "[ ./()-]{0,2}"  # the same in Python's and PostgreSQL's regexes


@dataclass(frozen=True)
class CopyRules:
    """What a service declares about its tables beyond the generic rule."""

    # Searched, never changed: a copy there is reported as remaining.
    keep: frozenset[str] = frozenset({"audit_log", "outbox", "inbox", "alembic_version"})
    # A matching row is deleted: its copy cannot be edited in place.
    delete: frozenset[str] = frozenset({"idempotency_keys"})
    # SQL conditions (with :tenant) scoping tables that have no tenant_id column.
    scopes: dict[str, str] = field(default_factory=dict)
    # SQL naming the contact a row is about, where it is not the `contact_id` column
    # (a contact's own id, or a parent's contact): a namesake's row keeps its name.
    contact_columns: dict[str, str] = field(default_factory=dict)

    def extend(
        self,
        *,
        keep: Iterable[str] = (),
        delete: Iterable[str] = (),
        scopes: dict[str, str] | None = None,
        contact_columns: dict[str, str] | None = None,
    ) -> CopyRules:
        return CopyRules(
            keep=self.keep | frozenset(keep),
            delete=self.delete | frozenset(delete),
            scopes={**self.scopes, **(scopes or {})},
            contact_columns={**self.contact_columns, **(contact_columns or {})},
        )


def subject_terms(
    first_name: str, last_name: str, emails: Iterable[str], phones: Iterable[str]
) -> list[pb.SubjectTerm]:
    """The identifiers searched for (see the module docstring for the rule). Phones are
    given as digits: the E.164 number and, when known, the national number."""
    terms: dict[tuple[str, str], None] = {}
    first, last = " ".join(first_name.split()), " ".join(last_name.split())
    if first and last and len(first) + len(last) >= MIN_FULL_NAME:
        for full in (f"{first} {last}", f"{last} {first}", f"{last}, {first}"):
            terms[("full_name", full)] = None
    for email in emails:
        if email.strip():
            terms[("email", email.strip().lower())] = None
    for phone in phones:
        digits = re.sub(r"\D", "", phone)
        if len(digits) >= 6:
            terms[("phone", digits)] = None
    return [pb.SubjectTerm(kind=kind, value=value) for kind, value in terms]


@dataclass(frozen=True)
class _Matcher:
    kind: str
    needles: tuple[str, ...]  # LIKE patterns (without the outer %) for the coarse filter
    regexes: tuple[str, ...]  # or PostgreSQL regular expressions for it
    raw: tuple[str, ...]  # literal forms, for binary columns
    pattern: re.Pattern[str]  # the exact rule, applied here


def _escaped(text: str) -> str:
    """The form a JSON document written with ensure_ascii holds (\\u00fc for ü)."""
    return json.dumps(text)[1:-1]


def _matchers(terms: Sequence[pb.SubjectTerm]) -> list[_Matcher]:
    matchers = []
    for term in terms:
        value = term.value.strip()
        if not value or term.kind not in KINDS:
            continue
        if term.kind == "phone":
            digits = re.sub(r"\D", "", value)
            # Written with the usual separators too: "+49 151 2233-4455".
            spaced = PHONE_SEPARATORS.join(digits)
            # With its international or trunk prefix, so that no "+" or "0" is left over.
            pattern = re.compile(rf"(?<![1-9])(?:\+|0{{1,2}})?{spaced}(?!\d)")
            matchers.append(_Matcher("phone", (), (spaced,), (digits,), pattern))
            continue
        forms = list(dict.fromkeys((value, _escaped(value))))
        # Binary columns are compared byte for byte: the usual spellings of the case.
        raw = tuple(dict.fromkeys(v for form in forms for v in (form, form.lower(), form.title())))
        if term.kind == "full_name":
            body = "|".join(r"\s+".join(re.escape(w) for w in form.split()) for form in forms)
            needles = tuple(f"{form.split()[0]}%{form.split()[-1]}" for form in forms)
        else:
            body = "|".join(re.escape(form) for form in forms)
            needles = tuple(forms)
        pattern = re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)
        matchers.append(_Matcher(term.kind, needles, (), raw, pattern))
    return matchers


@dataclass
class _Table:
    name: str
    columns: list[tuple[str, str, str]]  # (name, data_type, udt_name)
    has_tenant: bool
    owner: str  # SQL expression: the contact the row is about, or ''


async def _tables(session: AsyncSession, rules: CopyRules) -> list[_Table]:
    rows = (
        await session.execute(
            sa.text(
                "SELECT c.table_name, c.column_name, c.data_type, c.udt_name "
                "FROM information_schema.columns c JOIN information_schema.tables t "
                "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
                "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' "
                "ORDER BY c.table_name, c.ordinal_position"
            )
        )
    ).all()
    tables: dict[str, _Table] = {}
    for table, column, data_type, udt in rows:
        entry = tables.setdefault(
            table, _Table(table, [], False, rules.contact_columns.get(table, ""))
        )
        if column == "tenant_id":
            entry.has_tenant = True
        if column == "contact_id" and not entry.owner:
            entry.owner = '"contact_id"'
        searchable = (
            data_type in _TEXT_TYPES
            or data_type in _JSON_TYPES
            or data_type == "bytea"
            or (data_type == "ARRAY" and udt in ("_text", "_varchar"))
        )
        if searchable:
            entry.columns.append((column, data_type, udt))
    return [t for t in tables.values() if t.columns]


def _like(needle: str) -> str:
    # A % in a needle stays a wildcard: the filter is coarse, the pattern decides.
    return "%" + needle.replace("\\", "\\\\").replace("_", "\\_") + "%"


@dataclass
class _Hit:
    ctid: str
    owner: str
    values: dict[str, Any]


async def _scan(
    session: AsyncSession,
    tenant_id: str,
    table: _Table,
    matchers: list[_Matcher],
    rules: CopyRules,
    *,
    lock: bool,
) -> list[_Hit]:
    """Rows of `table` whose searchable columns may hold a needle (a coarse filter)."""
    likes = sorted({_like(n) for m in matchers for n in m.needles})
    raw = sorted({n.encode() for m in matchers for n in m.raw})
    regexes = sorted({r for m in matchers for r in m.regexes})
    params: dict[str, Any] = {"likes": likes, "regexes": regexes}
    conditions, selected = [], []
    for index, (column, data_type, _) in enumerate(table.columns):
        quoted = f'"{column}"'
        if data_type == "bytea":
            ors = []
            for n, needle in enumerate(raw):
                params[f"b{index}_{n}"] = needle
                ors.append(f"position(:b{index}_{n} in {quoted}) > 0")
            conditions.append("(" + " OR ".join(ors) + ")")
            selected.append(quoted)
        elif data_type in _TEXT_TYPES:
            conditions.append(f"({quoted} ILIKE ANY(:likes) OR {quoted} ~ ANY(:regexes))")
            selected.append(quoted)
        else:  # json, jsonb, text[]: compared (and read back) as their text form
            conditions.append(
                f"({quoted}::text ILIKE ANY(:likes) OR {quoted}::text ~ ANY(:regexes))"
            )
            selected.append(f"{quoted}::text" if data_type in _JSON_TYPES else quoted)
    where = "(" + " OR ".join(conditions) + ")"
    if table.has_tenant:
        where += " AND tenant_id = :tenant"
        params["tenant"] = tenant_id
    elif table.name in rules.scopes:
        where += f" AND ({rules.scopes[table.name]})"
        params["tenant"] = tenant_id
    owner = f"({table.owner})::text" if table.owner else "''"
    sql = (
        f'SELECT ctid::text, {owner}, {", ".join(selected)} FROM "{table.name}" '  # noqa: S608 - catalogue names
        f"WHERE {where}" + (" FOR UPDATE" if lock else "")
    )
    statement = sa.text(sql).bindparams(
        sa.bindparam("likes", type_=ARRAY(sa.Text)),
        sa.bindparam("regexes", type_=ARRAY(sa.Text)),
        *(sa.bindparam(k, type_=sa.LargeBinary) for k in params if k.startswith("b")),
    )
    hits = []
    for row in (await session.execute(statement, params)).all():
        values = {column: row[2 + i] for i, (column, _, _) in enumerate(table.columns)}
        hits.append(_Hit(str(row[0]), str(row[1] or ""), values))
    return hits


def _applicable(matchers: list[_Matcher], owner: str, contact_id: str) -> list[_Matcher]:
    """A row about another contact keeps its namesake's name (see the module docstring)."""
    if owner and owner != contact_id:
        return [m for m in matchers if m.kind != "full_name"]
    return matchers


def _text_of(value: Any, data_type: str) -> str:
    if data_type == "bytea":
        return bytes(value).decode("utf-8", "surrogateescape")
    if isinstance(value, list):
        return "\n".join(str(v) for v in value if v is not None)
    return str(value)


def _holds(value: Any, data_type: str, matchers: list[_Matcher]) -> bool:
    if value is None:
        return False
    text = _text_of(value, data_type)
    return any(m.pattern.search(text) for m in matchers)


def _redact_text(text: str, matchers: list[_Matcher]) -> str:
    for matcher in matchers:
        text = matcher.pattern.sub(REDACTED, text)
    return text


def _redact_json(value: Any, matchers: list[_Matcher]) -> Any:
    if isinstance(value, str):
        return _redact_text(value, matchers)
    if isinstance(value, list):
        return [_redact_json(v, matchers) for v in value]
    if isinstance(value, dict):
        return {_redact_text(k, matchers): _redact_json(v, matchers) for k, v in value.items()}
    return value


def _redacted(value: Any, data_type: str, matchers: list[_Matcher]) -> Any:
    if data_type == "bytea":
        text = bytes(value).decode("utf-8", "surrogateescape")
        return _redact_text(text, matchers).encode("utf-8", "surrogateescape")
    if data_type in _JSON_TYPES:
        return json.dumps(_redact_json(json.loads(value), matchers), ensure_ascii=False)
    if isinstance(value, list):
        return [None if v is None else _redact_text(str(v), matchers) for v in value]
    return _redact_text(str(value), matchers)


def _bind_type(data_type: str) -> Any:
    if data_type == "bytea":
        return sa.LargeBinary
    if data_type == "ARRAY":
        return ARRAY(sa.Text)
    return sa.Text


async def find(
    session: AsyncSession,
    tenant_id: str,
    contact_id: str,
    terms: Sequence[pb.SubjectTerm],
    rules: CopyRules,
) -> list[pb.SubjectCopy]:
    """Per table and column, the rows holding a copy of one of the subject's identifiers."""
    matchers = _matchers(terms)
    if not matchers:
        return []
    copies: list[pb.SubjectCopy] = []
    for table in await _tables(session, rules):
        counts: dict[str, int] = {}
        for hit in await _scan(session, tenant_id, table, matchers, rules, lock=False):
            applicable = _applicable(matchers, hit.owner, contact_id)
            for column, data_type, _ in table.columns:
                if _holds(hit.values[column], data_type, applicable):
                    counts[column] = counts.get(column, 0) + 1
        copies.extend(
            pb.SubjectCopy(table=table.name, column=column, rows=rows, action="found")
            for column, rows in counts.items()
        )
    return copies


async def redact(
    session: AsyncSession,
    tenant_id: str,
    contact_id: str,
    terms: Sequence[pb.SubjectTerm],
    rules: CopyRules,
) -> list[pb.SubjectCopy]:
    """Replaces every copy with `[erased]` (or deletes the row, or keeps it: `rules`)."""
    matchers = _matchers(terms)
    if not matchers:
        return []
    changes: list[pb.SubjectCopy] = []
    for table in await _tables(session, rules):
        editable = table.has_tenant or table.name in rules.scopes
        action = (
            "kept"
            if table.name in rules.keep or not editable
            else "deleted"
            if table.name in rules.delete
            else "redacted"
        )
        counts: dict[str, int] = {}
        hits = await _scan(session, tenant_id, table, matchers, rules, lock=action != "kept")
        for hit in hits:
            applicable = _applicable(matchers, hit.owner, contact_id)
            updates = {
                column: _redacted(hit.values[column], data_type, applicable)
                for column, data_type, _ in table.columns
                if _holds(hit.values[column], data_type, applicable)
            }
            if not updates:
                continue
            for column in updates:
                counts[column] = counts.get(column, 0) + 1
            if action == "deleted":
                delete = f'DELETE FROM "{table.name}" WHERE ctid = {BY_CTID}'  # noqa: S608
                await session.execute(sa.text(delete), {"ctid": hit.ctid})
            elif action == "redacted":
                types = {column: data_type for column, data_type, _ in table.columns}
                assignments = ", ".join(
                    f'"{c}" = CAST(:v{i} AS {"jsonb" if types[c] == "jsonb" else "json"})'
                    if types[c] in _JSON_TYPES
                    else f'"{c}" = :v{i}'
                    for i, c in enumerate(updates)
                )
                statement = sa.text(
                    f'UPDATE "{table.name}" SET {assignments} WHERE ctid = {BY_CTID}'  # noqa: S608
                ).bindparams(
                    *(
                        sa.bindparam(f"v{i}", type_=_bind_type(types[c]))
                        for i, c in enumerate(updates)
                    )
                )
                values = {f"v{i}": v for i, v in enumerate(updates.values())}
                await session.execute(statement, {"ctid": hit.ctid, **values})
        changes.extend(
            pb.SubjectCopy(table=table.name, column=column, rows=rows, action=action)
            for column, rows in counts.items()
        )
    return changes
