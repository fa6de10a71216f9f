"""Notifications benchmark: emails delivered per second to a local SMTP server, and the
latency from a task.overdue event to the email's arrival, against raw aiosmtplib sends
to the same server measured in the same run.

    python bench/notifications_bench.py [--messages 300] [--samples 50] [--concurrency 16]

Starts the system (crm_cli.cluster, region eu only: one cell is what a message crosses)
with the notifications service pointed at an aiosmtpd server in this process, creates
users (working hours all day, so nothing waits for quiet hours) and tasks, then:
1. throughput: publishes --messages task.created events for existing tasks at once
   (as the tasks service's outbox would) and times until every email has arrived: each
   message is planned in the consumer's transaction, claimed by the dispatcher, rendered
   after gRPC reads of the task and the recipient, sent over SMTP and recorded;
2. latency: --samples task.overdue events one at a time, from publish to arrival at the
   SMTP server (p50, p99);
3. baseline: the same number of raw aiosmtplib sends of a similar message to the same
   server with --concurrency senders (messages/s), and single raw sends (p50, p99).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import grpc
import nats
import procstat  # bench/procstat.py: this folder is on sys.path when run
from aiosmtpd.controller import Controller
from google.protobuf import any_pb2, timestamp_pb2
from ulid import ULID

from crm_api.crm.directory.v1 import directory_pb2, directory_pb2_grpc
from crm_api.crm.events.v1 import envelope_pb2
from crm_api.crm.events.v1 import tasks_pb2 as task_events
from crm_api.crm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from crm_cli.cluster import Cluster, ClusterConfig, free_port
from crm_kit.context import Principal

TENANT = "bench"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


TITLE = re.compile(r"Bench-\d{4}")


class Arrivals:
    """aiosmtpd handler: the arrival time of every message, by (kind, task title); the
    subject itself is localized (users have six locales)."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        self.count = 0
        self.lock = threading.Lock()
        self.changed = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.perf_counter()
        mail = message_from_bytes(
            envelope.original_content or envelope.content, policy=policy.default
        )
        with self.lock:
            found = TITLE.search(str(mail["Subject"]))
            key = f"{mail['X-Crm-Kind']}:{found.group(0) if found else ''}"
            self.times.setdefault(key, []).append(now)
            self.count += 1
        return "250 OK"

    async def wait_for(self, count: int, within: float = 300) -> None:
        deadline = time.monotonic() + within
        while self.count < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.count} of {count} messages arrived")
            await asyncio.sleep(0.005)


def envelope(event_type: str, payload: Any) -> envelope_pb2.Envelope:
    packed = any_pb2.Any()
    packed.Pack(payload)
    occurred = timestamp_pb2.Timestamp()
    occurred.FromDatetime(datetime.now(UTC))
    return envelope_pb2.Envelope(
        event_id=str(ULID()),
        event_type=event_type,
        tenant_id=TENANT,
        region="eu",
        occurred_at=occurred,
        actor_id="bench",
        schema_version=1,
        payload=packed,
    )


async def run(args: argparse.Namespace, cluster: Cluster, arrivals: Arrivals, port: int) -> None:
    meta = Principal(tenant_id=TENANT, user_id="admin", roles=("admin",), home_region="eu")
    metadata = meta.to_metadata()
    async with grpc.aio.insecure_channel(cluster.endpoints["tasks"]["eu"]) as channel:
        directory = directory_pb2_grpc.DirectoryServiceStub(channel)
        tasks = tasks_pb2_grpc.TasksServiceStub(channel)
        users = [f"user{i}" for i in range(20)]
        for user in users:
            await directory.PutUser(
                directory_pb2.PutUserRequest(
                    user=directory_pb2.User(
                        id=user,
                        display_name=user.title(),
                        email=f"{user}@bench.example",
                        locale=["en", "de", "pt-BR", "hi", "gu", "fa"][len(user) % 6],
                        working_hours_start="00:00",
                        working_hours_end="23:59",
                        working_days=[1, 2, 3, 4, 5, 6, 7],
                    )
                ),
                metadata=metadata,
                timeout=30,
            )
        made: list[tuple[str, str]] = []
        for i in range(args.messages):
            task = await tasks.CreateTask(
                tasks_pb2.CreateTaskRequest(
                    task=tasks_pb2.Task(title=f"Bench-{i:04d}", assignee_id=users[i % len(users)])
                ),
                metadata=metadata,
                timeout=30,
            )
            made.append((task.id, task.assignee_id))
    # Warm-up: the tasks' own task.created events.
    await arrivals.wait_for(args.messages)
    print(f"warm-up: {args.messages} task.created emails delivered")

    client = await nats.connect(cluster.nats.url)
    js = client.jetstream(timeout=30)

    async def publish(event: envelope_pb2.Envelope) -> None:
        await js.publish(
            f"crm.eu.{event.event_type}",
            event.SerializeToString(),
            headers={"Nats-Msg-Id": event.event_id},
        )

    # 1. throughput
    before = arrivals.count
    events = [
        envelope(
            "tasks.task.created", task_events.TaskCreated(task_id=task_id, assignee_id=assignee)
        )
        for task_id, assignee in made
    ]
    groups = procstat.cluster_groups(cluster)
    cpu_before = procstat.start(groups)
    started = time.perf_counter()
    await asyncio.gather(*(publish(e) for e in events))
    await arrivals.wait_for(before + len(events))
    elapsed = time.perf_counter() - started
    rate = len(events) / elapsed
    cpu_used = procstat.since(groups, cpu_before)

    # 2. latency task.overdue -> arrival
    latencies: list[float] = []
    for i in range(args.samples):
        task_id, assignee = made[i % len(made)]
        subject = f"task.overdue:Bench-{i % len(made):04d}"
        seen = len(arrivals.times.get(subject, []))
        total = arrivals.count
        sent_at = time.perf_counter()
        await publish(
            envelope(
                "tasks.task.overdue",
                task_events.TaskOverdue(task_id=task_id, assignee_id=assignee),
            )
        )
        while len(arrivals.times.get(subject, [])) <= seen:
            total += 1
            await arrivals.wait_for(total)
        latencies.append(arrivals.times[subject][seen] - sent_at)
    await client.close()

    # 3. baseline: raw aiosmtplib sends to the same server
    def raw_message(i: int) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = "bench@atlas-crm.local"
        mail["To"] = "user@bench.example"
        mail["Subject"] = f"Raw {i}"
        mail.set_content("You have a new task: Bench task.\nDue: 1 Jan 2027, 10:00:00")
        mail.add_alternative("<p>You have a new task: Bench task.</p>", subtype="html")
        return mail

    queue = list(range(args.messages))

    async def sender() -> None:
        while queue:
            i = queue.pop()
            await aiosmtplib.send(raw_message(i), hostname="127.0.0.1", port=port)

    raw_before = procstat.own_cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(args.concurrency)))
    raw_cpu = procstat.own_cpu_seconds() - raw_before
    raw_rate = args.messages / (time.perf_counter() - started)
    raw_latencies = []
    for i in range(args.samples):
        begun = time.perf_counter()
        await aiosmtplib.send(raw_message(i), hostname="127.0.0.1", port=port)
        raw_latencies.append(time.perf_counter() - begun)

    ms = 1000.0
    print()
    print(f"{'':44} {'notifications':>14} {'raw aiosmtplib':>15} {'ratio':>7}")
    print(
        f"{'emails delivered per second':44} {rate:14.1f} {raw_rate:15.1f} {rate / raw_rate:7.3f}"
    )
    p50, p99 = percentile(latencies, 50) * ms, percentile(latencies, 99) * ms
    r50, r99 = percentile(raw_latencies, 50) * ms, percentile(raw_latencies, 99) * ms
    print(
        f"{'latency p50, ms (task.overdue -> arrival)':44} {p50:14.1f} {r50:15.1f} {p50 / r50:7.1f}"
    )
    print(f"{'latency p99, ms':44} {p99:14.1f} {r99:15.1f} {p99 / r99:7.1f}")
    print(f"{'latency mean, ms':44} {statistics.mean(latencies) * ms:14.1f}")
    print(
        f"\n{len(events)} events -> {len(events)} emails in {elapsed:.2f} s; "
        f"{args.samples} overdue samples; raw baseline: {args.concurrency} concurrent senders"
    )
    print()
    print(
        procstat.format_cpu_per_op(
            cpu_used,
            len(events),
            "per email in the throughput run; bench = publisher + SMTP server",
        )
    )
    print(
        f"raw aiosmtplib: {1000 * raw_cpu / args.messages:.3f} CPU ms per email "
        "(sender and SMTP server, both in the bench process)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--dispatch-interval", type=float, default=0.5)
    args = parser.parse_args()
    import os

    os.environ["CRM_NOTIFY_DISPATCH_INTERVAL"] = str(args.dispatch_interval)
    arrivals = Arrivals()
    port = free_port()
    smtp = Controller(arrivals, hostname="127.0.0.1", port=port)
    smtp.start()
    with tempfile.TemporaryDirectory(prefix="ntfb", dir="/tmp") as state:
        cluster = Cluster(
            ClusterConfig(
                state_dir=Path(state),
                regions=["eu"],
                gateway_port=0,
                nats_port=0,
                grpc_base=0,
                smtp_port=port,
            )
        )
        # The bench's own SMTP server replaces the catcher `crm up` would start (the
        # cluster saw its port taken, by this very server, and picked another).
        cluster.start_mail_catcher = lambda: None  # type: ignore[method-assign]
        cluster.smtp_port = port
        try:
            print("starting the system (region eu) ...")
            cluster.start()
            asyncio.run(run(args, cluster, arrivals, port))
        finally:
            cluster.stop()
            smtp.stop()


if __name__ == "__main__":
    main()
