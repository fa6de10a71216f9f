"""The baseline: a bare FastAPI + asyncpg endpoint that inserts one contact row.

    python bench/baseline_app.py --dsn postgresql://postgres@/bench_baseline?host=... --port 8100

No gateway, no gRPC, no authentication, no validation beyond pydantic's types, no
outbox, no search document: an HTTP request parsed by FastAPI and one INSERT over an
asyncpg pool, served by uvicorn with one worker, uvloop and httptools (as the gateway
is). It accepts the body the gateway accepts (the same wrk script drives both) and
writes it into its own table, `baseline_contacts`, in its own database on the same
PostgreSQL server. What it costs is the floor any HTTP insert endpoint in Python pays
on this machine; contacts_bench.py divides the gateway's figures by it.
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, Field

DDL = """
CREATE TABLE IF NOT EXISTS baseline_contacts (
    id text PRIMARY KEY,
    first_name text NOT NULL DEFAULT '',
    last_name text NOT NULL DEFAULT '',
    emails text[] NOT NULL DEFAULT '{}',
    phones text[] NOT NULL DEFAULT '{}',
    address jsonb NOT NULL DEFAULT '{}',
    country text NOT NULL DEFAULT '',
    tags text[] NOT NULL DEFAULT '{}',
    source text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
)
"""

INSERT = """
INSERT INTO baseline_contacts
    (id, first_name, last_name, emails, phones, address, country, tags, source)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9)
RETURNING created_at
"""


class Address(BaseModel):
    street: str = ""
    city: str = ""
    postal_code: str = ""
    state: str = ""
    country: str = ""


class ContactIn(BaseModel):
    first_name: str = ""
    last_name: str = ""
    emails: list[str] = Field(default_factory=list)
    phones: list[str] = Field(default_factory=list)
    address: Address = Field(default_factory=Address)
    tags: list[str] = Field(default_factory=list)
    source: str = ""


def create_app(dsn: str, pool_size: int) -> FastAPI:
    pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
        await pool.execute(DDL)
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/contacts", status_code=201)
    async def create_contact(body: ContactIn) -> dict[str, Any]:
        assert pool is not None
        contact_id = uuid.uuid4().hex
        address = {k: v for k, v in body.address.model_dump().items() if v}
        created_at = await pool.fetchval(
            INSERT,
            contact_id,
            body.first_name,
            body.last_name,
            body.emails,
            body.phones,
            json.dumps(address),
            body.address.country,
            body.tags,
            body.source,
        )
        return {**body.model_dump(), "id": contact_id, "created_at": created_at.isoformat()}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dsn", default=os.environ.get("BASELINE_DSN", ""), required=False)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--pool-size", type=int, default=10)
    args = parser.parse_args()
    if not args.dsn:
        parser.error("give --dsn (or BASELINE_DSN): a libpq URL of an existing database")
    uvicorn.run(
        create_app(args.dsn, args.pool_size),
        host=args.host,
        port=args.port,
        workers=1,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
