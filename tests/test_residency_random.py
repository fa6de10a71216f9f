"""Residency and privacy at random, the short run (issue 17 §3; `make residency` runs the
full 10,000 operations): people created in every region's countries, country changes,
merges, CSV imports, public form submissions, notes, deals, consents, relocations and
erasures through the gateway as the various roles, then a scan of every table of every
database and every message of every stream. Any personal data outside the region its
person's policy requires, in an event, or left after an erasure fails the test.

Its own tenant; the scan looks at everything in the session's system, but only the
run's own people (unique tokens and phones) can match.
"""

from __future__ import annotations

import uuid

import pytest

from crm_cli.cluster import Cluster
from tools.residency.run import SHORT_OPERATIONS, report, run

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.mark.timeout(900)
async def test_random_operations_leave_no_personal_data_outside_its_region(
    system: Cluster,
) -> None:
    result = await run(system, 17, SHORT_OPERATIONS, tenant=f"residency-{uuid.uuid4().hex[:8]}")
    print(report(result))
    assert result.scan.counts.messages and result.scan.counts.rows
    # What this run proves is residency: a request the product answered wrongly (a
    # relocation racing a merge gets 500, issue 17's open list) is printed above and has
    # its own tests, but only personal data where it must not be fails this test.
    residency = [f for f in result.failures if not f.startswith("unexpected answer")]
    assert residency == [], report(result)
