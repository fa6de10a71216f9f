"""Smoke tests of the built images: each starts and answers its health check.

`docker compose up --build --wait` (pytest-docker) builds the images from their
Dockerfiles, starts PostgreSQL and NATS, runs the contacts migrations, and waits for
every container's HEALTHCHECK. The tests then check from the host what Kubernetes
checks: the gRPC health service of contacts, the gateway's /healthz and /readyz, the
metrics endpoints, and that the containers really run as uid 10001 on a read-only
root filesystem. Skipped where there is no Docker engine (see conftest.py).
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Every gRPC service image in tests/docker-compose.yml.
SERVICES = ["contacts", "tasks", "integrations"]
TIMEOUT = 180.0


def grpc_serving(address: str) -> bool:
    try:
        with grpc.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=3)
    except grpc.RpcError:
        return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 (local test URL)
            return int(response.status)
    except OSError:
        return 0


def test_service_images_answer_grpc_health(compose: Any, docker_ip: str) -> None:
    for service in SERVICES:
        address = f"{docker_ip}:{compose.port_for(service, 50051)}"
        compose.wait_until_responsive(lambda a=address: grpc_serving(a), TIMEOUT, 1.0)
        assert grpc_serving(address), service


def test_service_images_serve_metrics(compose: Any, docker_ip: str) -> None:
    for service in SERVICES:
        url = f"http://{docker_ip}:{compose.port_for(service, 9090)}/metrics"
        compose.wait_until_responsive(lambda u=url: http_status(u) == 200, TIMEOUT, 1.0)


def test_gateway_answers_health_and_readiness(compose: Any, docker_ip: str) -> None:
    base = f"http://{docker_ip}:{compose.port_for('gateway', 8000)}"
    compose.wait_until_responsive(lambda: http_status(f"{base}/healthz") == 200, TIMEOUT, 1.0)
    compose.wait_until_responsive(lambda: http_status(f"{base}/readyz") == 200, TIMEOUT, 1.0)
    assert http_status(f"{base}/metrics") == 200


def test_docker_reports_every_container_healthy(compose: Any, compose_command: list[str]) -> None:
    output = subprocess.run(
        [*compose_command, "ps", "--format", "json"], capture_output=True, text=True, check=True
    ).stdout
    rows = [json.loads(line) for line in output.splitlines() if line.strip()]
    if len(rows) == 1 and isinstance(rows[0], list):  # older compose prints one JSON array
        rows = rows[0]
    health = {row["Service"]: row.get("Health") for row in rows}
    for service in [*SERVICES, "gateway", "postgres", "nats"]:
        assert health.get(service) == "healthy", health


def test_containers_run_unprivileged_on_a_read_only_root(
    compose: Any, compose_command: list[str]
) -> None:
    """The image's own USER (compose sets none) and the read-only root that compose sets."""
    probe = (
        "import os\n"
        "print(os.getuid(), os.getgid())\n"
        "root = [line.split() for line in open('/proc/mounts') if line.split()[1] == '/'][-1]\n"
        "print('ro' in root[3].split(','))\n"
        "open('/tmp/probe', 'w').write('x')\n"
    )
    for service in [*SERVICES, "gateway"]:
        result = subprocess.run(
            [*compose_command, "exec", "-T", service, "python", "-c", probe],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["10001", "10001", "True"], (service, result.stdout)
