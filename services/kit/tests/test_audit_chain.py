"""The audit hash chain: concurrent writers keep one chain per tenant, and verification
finds an altered and a deleted record (real PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_kit.audit import append_audit, kind_of, verify_chain
from crm_kit.db import audit_table, transaction

pytestmark = pytest.mark.asyncio(loop_scope="session")
REGION = "auditchain"


async def _write(sessions: async_sessionmaker[AsyncSession], tenant: str, n: int) -> None:
    async with transaction(sessions) as session:
        await append_audit(
            session,
            tenant_id=tenant,
            actor_id=f"user-{n}",
            region="eu",
            action="export.contacts",
            record_id=f"rec-{n}",
        )


async def test_concurrent_writers_keep_a_single_chain_and_tampering_is_found(
    sessions: async_sessionmaker[AsyncSession], clean_db: None
) -> None:
    await asyncio.gather(*(_write(sessions, "t1", n) for n in range(20)))
    await asyncio.gather(*(_write(sessions, "t2", n) for n in range(3)))
    async with transaction(sessions) as session:
        report = await verify_chain(session, "t1")
        rows = (
            await session.execute(
                sa.select(
                    audit_table.c.id,
                    audit_table.c.prev_hash,
                    audit_table.c.hash,
                    audit_table.c.kind,
                )
                .where(audit_table.c.tenant_id == "t1")
                .order_by(audit_table.c.id)
            )
        ).all()
    assert report.checked == 20 and report.problems == []
    # One chain: every record points at the one before it, none is forked.
    assert [r.prev_hash for r in rows] == ["", *[r.hash for r in rows[:-1]]]
    assert {r.kind for r in rows} == {"export"} and kind_of("export.deals") == "export"

    async with transaction(sessions) as session:
        await session.execute(
            sa.update(audit_table).where(audit_table.c.id == rows[5].id).values(record_id="x")
        )
        await session.execute(sa.delete(audit_table).where(audit_table.c.id == rows[10].id))
        report = await verify_chain(session, "t1")
        other = await verify_chain(session, "t2")
    assert (rows[5].id, "altered") in {(seq, p) for seq, p, _ in report.problems}
    assert (rows[11].id, "broken_link") in {(seq, p) for seq, p, _ in report.problems}
    assert len(report.problems) == 2
    assert other.problems == [] and other.checked == 3
