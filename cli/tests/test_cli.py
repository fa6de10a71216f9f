"""The `crm` command line: tokens, the demo tenant, and `crm up` finding its data again."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import psutil
import pytest
from typer.testing import CliRunner

from crm_cli.cluster import CannotStayUp, Cluster, ClusterConfig, Process, free_port
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


class Up:
    """A `crm up` of one region, its output collected as it comes."""

    def __init__(self, state: Path, port: int, nats_port: int) -> None:
        crm = Path(sys.executable).parent / "crm"
        self.state, self.port = state, port
        self.process = subprocess.Popen(
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
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, within: float = 600) -> None:
        """Until `text` is printed (generous: two instances starting at once on a loaded
        two-core machine); fails if crm up ends."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.process.poll() is not None:
                self.reader.join(5)
                break
            time.sleep(0.2)
        # SIGTERM, not SIGKILL: crm up then stops its children.
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(60)
        raise AssertionError(f"crm up did not print {text!r}:\n" + "".join(self.lines))

    def headers(self) -> dict[str, str]:
        from crm_kit.auth import mint_token

        secret = (self.state / "dev-jwt-secret").read_text().strip()
        token = mint_token(secret, tenant="t", user="u", roles=["admin"], home_region="us")
        return {"Authorization": f"Bearer {token}"}

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def child(self, module: str) -> psutil.Process:
        return next(
            p
            for p in psutil.Process(self.process.pid).children()
            if module in p.cmdline() and "serve" in p.cmdline()
        )

    def stop(self) -> str:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(60)
        self.reader.join(10)
        output = "".join(self.lines)
        assert self.process.returncode == 0, output
        return output


def _start_up(state: Path, port: int, nats_port: int) -> Up:
    up = Up(state, port, nats_port)
    up.wait_for("Stop with Ctrl-C")
    return up


def _create_contact(up: Up, name: str) -> str:
    reply = httpx.post(
        up.url("/v1/contacts"),
        json={"first_name": name, "address": {"country": "US"}},
        headers=up.headers(),
        timeout=30,
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


@pytest.mark.timeout(1500)
def test_two_crm_up_side_by_side_each_restarting_what_dies_and_finding_its_data(
    tmp_path: Path,
) -> None:
    """Two instances on one machine (their own gateway, NATS and state; services on free
    ports), each with its own data; a killed service is restarted, not the end of
    everything; and a stopped instance finds its data again."""
    first_port, first_nats = free_port(), free_port()
    first = Up(tmp_path / "first", first_port, first_nats)
    second = Up(tmp_path / "second", free_port(), free_port())
    try:
        first.wait_for("Stop with Ctrl-C")
        second.wait_for("Stop with Ctrl-C")
        contact_id = _create_contact(first, "Persistent")
        other_id = _create_contact(second, "Elsewhere")
        # Each gateway reaches its own services: neither sees the other's contact.
        mine = httpx.get(first.url(f"/v1/contacts/{contact_id}"), headers=first.headers())
        assert mine.status_code == 200, mine.text
        theirs = httpx.get(first.url(f"/v1/contacts/{other_id}"), headers=first.headers())
        assert theirs.status_code == 404, theirs.text
        theirs = httpx.get(second.url(f"/v1/contacts/{contact_id}"), headers=second.headers())
        assert theirs.status_code == 404, theirs.text

        # A service that dies is restarted (as Kubernetes would); the rest keeps running.
        first.child("crm_contacts").kill()
        first.wait_for("contacts-us exited with code -9, restarting in 1 s")
        first.wait_for("contacts-us restarted")
        deadline = time.monotonic() + 120
        while True:  # contacts answers again once the restarted process is up
            again = httpx.get(
                first.url(f"/v1/contacts/{contact_id}"), headers=first.headers(), timeout=30
            )
            if again.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert again.status_code == 200, again.text
        assert second.process.poll() is None
    finally:
        output = first.stop()
        second.stop()
    assert "stopped" in output
    first = _start_up(tmp_path / "first", first_port, first_nats)
    try:
        again = httpx.get(
            first.url(f"/v1/contacts/{contact_id}"), headers=first.headers(), timeout=30
        )
        assert again.status_code == 200 and again.json()["first_name"] == "Persistent"
    finally:
        first.stop()


def _cluster(tmp_path: Path, *processes: Process) -> Cluster:
    cluster = Cluster(ClusterConfig(state_dir=tmp_path, smtp_port=0))
    cluster.log_dir.mkdir(parents=True)
    cluster.processes.extend(processes)
    for process in processes:
        process.start(cluster.log_dir)
    return cluster


def _python(code: str, name: str = "worker", port: int = 0) -> Process:
    return Process(
        name=name,
        command=[sys.executable, "-c", code],
        env={},
        port=port or free_port(),
        kind="tcp",
    )


def test_a_process_that_dies_is_restarted_with_back_off_until_it_cannot_stay_up(
    tmp_path: Path,
) -> None:
    steady = _python("import time; time.sleep(600)", "steady")
    crashing = _python("import sys; sys.exit(3)", "crashing")
    cluster = _cluster(tmp_path, steady, crashing)
    cluster.restart_policy.first_delay = 0.05
    cluster.restart_policy.max_crashes = 4
    try:
        assert steady.process is not None
        first_pid = steady.process.pid
        steady.process.kill()
        steady.process.wait()
        lines: list[str] = []
        with pytest.raises(CannotStayUp) as stopped:
            for _ in range(2000):  # bounded: the back-off here is 0.05 s, doubling
                lines += cluster.supervise()
                time.sleep(0.01)
        assert "steady exited with code -9, restarting in 0.05 s" in lines
        assert [line for line in lines if line.startswith("crashing exited")] == [
            "crashing exited with code 3, restarting in 0.05 s",
            "crashing exited with code 3, restarting in 0.1 s",
            "crashing exited with code 3, restarting in 0.2 s",
        ]
        assert "crashing cannot stay up: it exited 4 times within 120 s (last with code 3)" in str(
            stopped.value
        )
        # The one that died once is running again, as a new process.
        assert "steady restarted" in lines
        assert steady.process.poll() is None and steady.process.pid != first_pid
    finally:
        cluster.stop()


def test_a_port_held_by_another_process_is_neither_ready_nor_restarted(tmp_path: Path) -> None:
    with socket.socket() as other:  # another instance's process holds the port
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        # A child that runs but has not bound its port is not ready, though the port answers.
        idle = _python("import time; time.sleep(600)", "idle", port)
        binder = _python(
            f"import socket; socket.socket().bind(('127.0.0.1', {port}))", "contacts-eu", port
        )
        cluster = _cluster(tmp_path, idle, binder)
        try:
            assert not idle.healthy()
            assert binder.process is not None
            binder.process.wait(30)
            with pytest.raises(CannotStayUp) as stopped:
                cluster.supervise()
            assert f"contacts-eu exited with code 1: port {port} is in use" in str(stopped.value)
        finally:
            cluster.stop()
