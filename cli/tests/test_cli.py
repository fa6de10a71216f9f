"""The `crm` command line: tokens, the demo tenant, and `crm up` finding its data again."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from typer.testing import CliRunner

from crm_cli.cluster import free_port
from crm_cli.main import app
from crm_cli.seed import load_demo_tenant
from crm_kit.auth import AUDIENCE


def test_token_is_signed_with_the_local_key(tmp_path: Path) -> None:
    (tmp_path / "dev-jwt-secret").write_text("local-secret-" + "x" * 32)
    result = CliRunner().invoke(
        app,
        [
            "token",
            "--state-dir",
            str(tmp_path),
            "--tenant",
            "t1",
            "--user",
            "u1",
            "--role",
            "manager",
            "--role",
            "sales_rep",
            "--region",
            "br",
            "--team",
            "south",
        ],
    )
    assert result.exit_code == 0, result.output
    claims = jwt.decode(
        result.output.strip(), "local-secret-" + "x" * 32, algorithms=["HS256"], audience=AUDIENCE
    )
    assert (claims["tenant"], claims["sub"], claims["roles"], claims["region"], claims["team"]) == (
        "t1",
        "u1",
        ["manager", "sales_rep"],
        "br",
        "south",
    )
    bad = CliRunner().invoke(app, ["token", "--state-dir", str(tmp_path), "--role", "superuser"])
    assert bad.exit_code == 2 and "unknown role" in bad.output
    missing = CliRunner().invoke(app, ["token", "--state-dir", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "crm up" in missing.output


@pytest.mark.asyncio(loop_scope="session")
async def test_seed_spreads_the_demo_tenant_over_the_regions(system: Any, db: Any) -> None:
    counts = await load_demo_tenant(
        system.gateway_url, system.jwt_secret, "seeded", people=60, companies=12
    )
    assert sum(p for p, _ in counts.values()) == 60 and sum(c for _, c in counts.values()) == 12
    scripts = {
        "Devanagari": "\u0900-\u097f",
        "Gujarati": "\u0a80-\u0aff",
        "Persian": "\u0600-\u06ff",
    }
    for region in ("eu", "br", "us"):
        rows = await db(
            "contacts", region, "SELECT country FROM contacts WHERE tenant_id = 'seeded'"
        )
        assert len(rows) == counts[region][0]
        expected = {
            "eu": lambda c: c in {"DE", "FR", "ES", "PT"},
            "br": lambda c: c == "BR",
            "us": lambda c: c in {"US", "IN", "IR"},
        }[region]
        assert all(expected(r["country"]) for r in rows), region
    found = set()
    for name, ranges in scripts.items():
        rows = await db(
            "contacts",
            "us",
            "SELECT 1 FROM contacts WHERE tenant_id = 'seeded' AND first_name ~ $1",
            f"[{ranges}]",
        )
        if rows:
            found.add(name)
    assert found, "no names in Indian or Persian scripts were seeded"


def _start_up(state: Path, port: int, nats_port: int) -> subprocess.Popen[str]:
    crm = Path(sys.executable).parent / "crm"
    process = subprocess.Popen(
        [
            str(crm),
            "up",
            "--state-dir",
            str(state),
            "--port",
            str(port),
            "--nats-port",
            str(nats_port),
            "--regions",
            "us",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "CRM_REGIONS": "us"},
    )
    # One region is enough to show a restart keeps the data: every service starts (and
    # migrates) once. Generous on a loaded machine.
    deadline = time.monotonic() + 240
    lines = []
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if "Stop with Ctrl-C" in line:
            return process
        if not line and process.poll() is not None:
            break
    # SIGTERM, not SIGKILL: crm up then stops its children, which hold fixed local ports.
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(60)
    raise AssertionError("crm up did not come up:\n" + "".join(lines))


def _stop_up(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    return output


def test_crm_up_stops_cleanly_and_finds_its_data_again(tmp_path: Path) -> None:
    state = tmp_path / "state"
    port, nats_port = free_port(), free_port()
    process = _start_up(state, port, nats_port)
    try:
        secret = (state / "dev-jwt-secret").read_text().strip()
        from crm_kit.auth import mint_token

        headers = {
            "Authorization": "Bearer "
            + mint_token(secret, tenant="t", user="u", roles=["admin"], home_region="us")
        }
        reply = httpx.post(
            f"http://127.0.0.1:{port}/v1/contacts",
            json={"first_name": "Persistent", "address": {"country": "US"}},
            headers=headers,
            timeout=30,
        )
        assert reply.status_code == 201, reply.text
        contact_id = reply.json()["id"]
    finally:
        output = _stop_up(process)
    assert "stopped" in output
    process = _start_up(state, port, nats_port)
    try:
        again = httpx.get(
            f"http://127.0.0.1:{port}/v1/contacts/{contact_id}", headers=headers, timeout=30
        )
        assert again.status_code == 200 and again.json()["first_name"] == "Persistent"
    finally:
        _stop_up(process)
