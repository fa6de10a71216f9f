"""Fixtures of the integrations tests: the shared whole system (root conftest.py), a fresh
tenant with an admin, and helpers to wait for background work and move the clock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from crm_cli.cluster import Cluster


@pytest.fixture(scope="session")
def cluster(system: Cluster) -> Cluster:
    return system


@pytest.fixture
def tenant() -> str:
    return f"integ-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def admin(token_for: Any, tenant: str) -> dict[str, str]:
    return dict(token_for("boss", "admin", "eu", tenant=tenant))


async def eventually(
    check: Callable[[], Awaitable[Any]],
    what: str,
    within: float = 30,
    between: Callable[[], None] | None = None,
) -> Any:
    """Polls `check` until it returns something truthy (no timed assertions)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if between is not None:
            between()
        await asyncio.sleep(0.3)


async def ok(reply: Awaitable[httpx.Response], status: int = 200) -> Any:
    response = await reply
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


async def pipeline_with_rule(api: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, str]:
    """A pipeline and the rule "a new deal in 'New lead' -> call back task for the owner"."""
    pipeline = await ok(
        api.post(
            "/v1/pipelines",
            json={
                "name": "Web leads",
                "stages": [
                    {"name": "New lead", "win_probability": 10},
                    {"name": "Qualified", "win_probability": 40},
                    {"name": "Won", "win_probability": 100, "kind": "won"},
                    {"name": "Lost", "win_probability": 0, "kind": "lost"},
                ],
            },
            headers=admin,
        ),
        201,
    )
    stage = pipeline["stages"][0]["id"]
    await ok(
        api.post(
            "/v1/automations",
            json={
                "name": "Call back web leads",
                "trigger": {"event_type": "deals.deal.created", "conditions": {"stage_id": stage}},
                "actions": [
                    {
                        "type": "create_task",
                        "title": "Call the web lead back",
                        "assignee": "owner",
                        "due": "+15m",
                    }
                ],
            },
            headers=admin,
        ),
        201,
    )
    return {"pipeline_id": pipeline["id"], "stage_id": stage}


class Helpers:
    """Test helpers as one fixture (test modules cannot import conftest in importlib mode)."""

    eventually = staticmethod(eventually)
    ok = staticmethod(ok)
    pipeline_with_rule = staticmethod(pipeline_with_rule)


@pytest.fixture(scope="session")
def h() -> type[Helpers]:
    return Helpers
