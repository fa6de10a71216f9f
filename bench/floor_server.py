"""The architecture floor: a gRPC contacts service that does nothing.

    python bench/floor_server.py --port 50999

It serves `ContactsService.CreateContact` (answers the contact it was sent, with a fixed
id and timestamps, touching no database and publishing no event) and
`PolicyService.GetTenantPolicy` (the default policy, which the gateway asks to place a
new contact), on the kit's own gRPC server (`crm_kit.grpc_server.serve`: the same
OpenTelemetry and CRM interceptors, health and reflection as every real service) with
the kit's telemetry set up as a service has it. A real gateway pointed at it for the
contacts endpoints of every region measures what the architecture costs by itself:
HTTP, JWT, validation, placement, the gRPC hop, the interceptors and the JSON answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import httpx
from google.protobuf import timestamp_pb2

from crm_api.crm.contacts.v1 import contacts_pb2 as pb
from crm_api.crm.contacts.v1 import contacts_pb2_grpc as pb_grpc
from crm_api.crm.policy.v1 import policy_pb2, policy_pb2_grpc
from crm_kit import telemetry
from crm_kit.grpc_server import serve
from crm_kit.servicer import caller

CREATED = timestamp_pb2.Timestamp(seconds=1_700_000_000)


class FloorContacts(pb_grpc.ContactsServiceServicer):  # type: ignore[misc]
    async def CreateContact(
        self, request: pb.CreateContactRequest, context: grpc.aio.ServicerContext
    ) -> pb.Contact:
        principal = caller()  # what every real servicer does first
        contact = pb.Contact()
        contact.CopyFrom(request.contact)
        contact.id = f"{principal.home_region}_01FLOOR000000000000000000"
        contact.region = principal.home_region
        contact.version = 1
        contact.created_at.CopyFrom(CREATED)
        contact.updated_at.CopyFrom(CREATED)
        return contact


class FloorPolicy(policy_pb2_grpc.PolicyServiceServicer):  # type: ignore[misc]
    async def GetTenantPolicy(
        self, request: policy_pb2.GetTenantPolicyRequest, context: grpc.aio.ServicerContext
    ) -> policy_pb2.TenantPolicy:
        return policy_pb2.TenantPolicy(tenant_id=caller().tenant_id, default_region="us")


def register(server: grpc.aio.Server) -> Sequence[str]:
    # Only the two RPCs the create path calls: the others answer UNIMPLEMENTED.
    pb_grpc.add_ContactsServiceServicer_to_server(FloorContacts(), server)  # type: ignore[abstract]
    policy_pb2_grpc.add_PolicyServiceServicer_to_server(FloorPolicy(), server)  # type: ignore[abstract]
    return [
        pb.DESCRIPTOR.services_by_name["ContactsService"].full_name,
        policy_pb2.DESCRIPTOR.services_by_name["PolicyService"].full_name,
    ]


def start_floor(cluster: Any) -> tuple[list[subprocess.Popen[bytes]], str]:
    """Starts the floor beside a running `crm_cli.cluster.Cluster`: this servicer and a
    second, real gateway whose contacts endpoint in every region is it (the other
    services' endpoints are the cluster's). Returns the two processes and the gateway's URL."""
    from crm_cli.cluster import free_port

    log_dir: Path = cluster.log_dir
    floor_port, gateway_port = free_port(), free_port()
    floor = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--port", str(floor_port)],
        stdout=(log_dir / "floor.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    endpoints = {
        **cluster.endpoints,
        "contacts": {region: f"127.0.0.1:{floor_port}" for region in cluster.config.regions},
    }
    env = {
        **os.environ,
        **cluster.gateway_env(gateway_port),
        "CRM_SERVICE_ENDPOINTS": json.dumps(endpoints),
    }
    gateway = subprocess.Popen(
        [sys.executable, "-m", "crm_gateway"],
        env=env,
        stdout=(log_dir / "floor-gateway.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    processes = [floor, gateway]
    url = f"http://127.0.0.1:{gateway_port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            break
        with contextlib.suppress(httpx.HTTPError, OSError):
            socket.create_connection(("127.0.0.1", floor_port), timeout=1).close()
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return processes, url
        time.sleep(0.2)
    stop(processes)
    raise RuntimeError(f"the architecture floor did not start; see {log_dir}/floor*.log")


def stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    telemetry.setup("floor", region="", log_level="WARNING")
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is in the lock
        pass
    asyncio.run(serve(port=args.port, register=register, host="127.0.0.1"))


if __name__ == "__main__":
    main()
