"""Outbound webhooks: subscriptions by event type, signed deliveries with retries, the
delivery log and replay.

Every event of the region (the JetStream stream crm.<region>.>) is matched against the
tenant's subscriptions by a durable consumer, which writes one delivery row per
subscription in the same transaction as its inbox row (exactly once). A deliverer in
each replica claims due rows with SKIP LOCKED and POSTs the event envelope as JSON,
signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature
"v1,<base64 HMAC-SHA256>"). Failures are retried with exponential backoff; a delivery
that exhausts its attempts counts as a failure of its endpoint, and an endpoint that
fails that way several times in a row is disabled and its owner gets a task.

Targets must be http(s). Private, loopback, link-local and other non-public addresses
are refused (every address the host resolves to is checked, when subscribing and again
before each delivery, against DNS rebinding) unless the tenant setting allows them.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import logging
import secrets
import socket
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from google.protobuf import json_format
from nats.aio.msg import Msg
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook as Signer

# Imported so that every event payload type is known to the JSON printer.
from crm_api.crm.events.v1 import (  # noqa: F401
    contacts_pb2,
    deals_pb2,
    envelope_pb2,
    integrations_pb2,
    tasks_pb2,
)
from crm_api.crm.integrations.v1 import integrations_pb2 as pb
from crm_api.crm.tasks.v1 import tasks_pb2 as tpb
from crm_integrations import models
from crm_integrations.common import Downstream, acting, backoff
from crm_integrations.forms import _ts, require_admin
from crm_integrations.settings import IntegrationsSettings
from crm_kit import clock, tenant_cache
from crm_kit.context import Principal
from crm_kit.db import transaction
from crm_kit.errors import FieldViolation, InvalidArgument, NotFound, Unavailable
from crm_kit.ids import is_valid_id, new_id
from crm_kit.tenant_cache import MISSING, TenantCache

log = logging.getLogger(__name__)
DURABLE = "integrations-webhooks"


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv6 address that carries an IPv4 one reaches that address: IPv4-mapped
        # (::ffff:127.0.0.1) and 6to4 (2002:7f00:1::, whose relay is 127.0.0.1), which
        # Python counts as global whatever IPv4 address it embeds.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            return is_public(str(embedded))
    return bool(ip.is_global) and not (ip.is_multicast or ip.is_reserved)


async def check_target(url: str, allow_private: bool, field: str = "url") -> None:
    """Refuses non-http(s) URLs and, unless allowed, hosts with any non-public address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument.single(field, "must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise InvalidArgument.single(field, "must not carry credentials")
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname,
            parts.port or (443 if parts.scheme == "https" else 80),
            type=socket.SOCK_STREAM,
        )
    except socket.gaierror as exc:
        raise InvalidArgument.single(field, f"the host does not resolve: {exc}") from exc
    addresses = {str(info[4][0]) for info in infos}
    refused = sorted(a for a in addresses if not is_public(a))
    if refused or not addresses:
        raise InvalidArgument.single(
            field,
            f"the host resolves to a private, loopback or link-local address ({', '.join(refused)})"
            "; only public addresses are allowed unless the tenant allows private targets",
        )


def signed_headers(secret: str, message_id: str, sent_at: datetime, payload: str) -> dict[str, str]:
    """The Standard Webhooks headers of one message: its id, when it was sent and
    "v1,<base64 HMAC-SHA256 of id.timestamp.payload>" with the endpoint's whsec_ secret,
    so a receiver verifies it with any of that specification's libraries."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Signer(secret).sign(message_id, sent_at, payload),
    }


def webhook_to_pb(row: models.Webhook, with_secret: bool = False) -> pb.Webhook:
    return pb.Webhook(
        id=row.id,
        url=row.url,
        event_types=row.event_types,
        secret=row.secret if with_secret else "",
        active=row.active,
        disabled_reason=row.disabled_reason,
        owner_id=row.owner_id,
        consecutive_failures=row.consecutive_failures,
        created_at=_ts(row.created_at),
        description=row.description,
    )


def delivery_to_pb(row: models.Delivery) -> pb.Delivery:
    return pb.Delivery(
        id=row.id,
        webhook_id=row.webhook_id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        next_attempt_at=_ts(row.next_attempt_at),
        delivered_at=_ts(row.delivered_at),
        created_at=_ts(row.created_at),
    )


def matches(patterns: list[str], event_type: str) -> bool:
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def envelope_json(envelope: envelope_pb2.Envelope) -> str:
    """The envelope as JSON; events carry ids, enums and amounts only (no personal data)."""
    try:
        data = json_format.MessageToDict(envelope, preserving_proto_field_name=True)
    except (TypeError, KeyError):  # a payload type this build does not know
        stripped = envelope_pb2.Envelope()
        stripped.CopyFrom(envelope)
        stripped.ClearField("payload")
        data = json_format.MessageToDict(stripped, preserving_proto_field_name=True)
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


# The event type patterns of each tenant's active webhooks, kept per process and dropped
# by the NOTIFY every change of a webhook sends (crm_kit.tenant_cache): the dispatcher
# acks the events no webhook of that tenant wants without a transaction.
HOOKS = TenantCache()


class Webhooks:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        downstream: Downstream,
        region: str,
        settings: IntegrationsSettings,
    ) -> None:
        self.sessions = sessions
        self.downstream = downstream
        self.region = region
        self.settings = settings

    async def _allow_private(self, session: AsyncSession, tenant_id: str) -> bool:
        row = await session.get(models.TenantSettings, tenant_id)
        return bool(row and row.allow_private_webhook_targets)

    async def put(self, principal: Principal, msg: pb.Webhook) -> pb.Webhook:
        """Creates or replaces a subscription (same id and secret in every region)."""
        require_admin(principal)
        violations: list[FieldViolation] = []
        if not is_valid_id(msg.id):
            violations.append(FieldViolation("id", "expected '<region>_<ULID>'"))
        if not msg.event_types:
            violations.append(FieldViolation("event_types", "subscribe to at least one type"))
        for i, pattern in enumerate(msg.event_types):
            parts = pattern.split(".")
            if pattern != "*" and not (2 <= len(parts) <= 3 and all(parts)):
                violations.append(
                    FieldViolation(
                        f"event_types[{i}]", "'<service>.<entity>.<verb>', '<service>.*' or '*'"
                    )
                )
        if msg.secret and not msg.secret.startswith("whsec_"):
            violations.append(FieldViolation("secret", "must start with whsec_"))
        if violations:
            raise InvalidArgument(violations)
        async with transaction(self.sessions) as session:
            allow = await self._allow_private(session, principal.tenant_id)
        await check_target(msg.url, allow)
        async with transaction(self.sessions) as session:
            row = await session.get(models.Webhook, msg.id, with_for_update=True)
            if row is not None and row.tenant_id != principal.tenant_id:
                raise NotFound("no such webhook")
            if row is None:
                row = models.Webhook(
                    id=msg.id,
                    tenant_id=principal.tenant_id,
                    secret=msg.secret or new_webhook_secret(),
                    owner_id=principal.user_id,
                )
                session.add(row)
            elif msg.secret:
                row.secret = msg.secret
            row.url = msg.url
            row.event_types = sorted(set(msg.event_types))
            row.description = msg.description[:500]
            row.active = msg.active
            if msg.active:  # re-enabling forgets the failures that disabled it
                row.disabled_reason = ""
                row.consecutive_failures = 0
            await session.flush()
            await tenant_cache.changed(session, principal.tenant_id)
            await session.refresh(row)
            return webhook_to_pb(row, with_secret=True)

    async def delete(self, principal: Principal, webhook_id: str) -> pb.Webhook:
        """The subscription and its delivery log go at once: a delivery already taken by
        the sender finds neither and is dropped (`_deliver`), so nothing more is sent."""
        require_admin(principal)
        async with transaction(self.sessions) as session:
            row = await session.get(models.Webhook, webhook_id, with_for_update=True)
            if row is None or row.tenant_id != principal.tenant_id:
                raise NotFound("no such webhook")
            deleted = webhook_to_pb(row)
            await session.execute(
                sa.delete(models.Delivery).where(
                    models.Delivery.tenant_id == principal.tenant_id,
                    models.Delivery.webhook_id == webhook_id,
                )
            )
            await session.delete(row)
            await tenant_cache.changed(session, principal.tenant_id)
            return deleted

    async def list(self, principal: Principal) -> pb.ListWebhooksResponse:
        require_admin(principal)
        async with transaction(self.sessions) as session:
            rows = await session.scalars(
                sa.select(models.Webhook)
                .where(models.Webhook.tenant_id == principal.tenant_id)
                .order_by(models.Webhook.id)
            )
            return pb.ListWebhooksResponse(webhooks=[webhook_to_pb(r) for r in rows])

    async def deliveries(
        self, principal: Principal, request: pb.ListDeliveriesRequest
    ) -> pb.ListDeliveriesResponse:
        require_admin(principal)
        async with transaction(self.sessions) as session:
            # Another tenant's webhook (or none) is 404, as for every record one may not see.
            hook = await session.get(models.Webhook, request.webhook_id)
            if hook is None or hook.tenant_id != principal.tenant_id:
                raise NotFound("no such webhook")
            rows = await session.scalars(
                sa.select(models.Delivery)
                .where(
                    models.Delivery.tenant_id == principal.tenant_id,
                    models.Delivery.webhook_id == request.webhook_id,
                )
                .order_by(models.Delivery.created_at.desc(), models.Delivery.id.desc())
                .limit(min(request.page_size or 100, 500))
            )
            return pb.ListDeliveriesResponse(deliveries=[delivery_to_pb(r) for r in rows])

    async def replay(self, principal: Principal, delivery_id: str) -> pb.Delivery:
        require_admin(principal)
        async with transaction(self.sessions) as session:
            row = await session.get(models.Delivery, delivery_id, with_for_update=True)
            if row is None or row.tenant_id != principal.tenant_id:
                raise NotFound("no such delivery")
            row.status = "pending"
            row.attempts = 0
            row.last_error = ""
            row.next_attempt_at = clock.now()
            return delivery_to_pb(row)

    async def put_settings(
        self, principal: Principal, msg: pb.IntegrationSettings
    ) -> pb.IntegrationSettings:
        require_admin(principal)
        async with transaction(self.sessions) as session:
            await session.execute(
                pg_insert(models.TenantSettings)
                .values(
                    tenant_id=principal.tenant_id,
                    allow_private_webhook_targets=msg.allow_private_webhook_targets,
                    forbid_sales_rep_exports=msg.forbid_sales_rep_exports,
                )
                .on_conflict_do_update(
                    index_elements=[models.TenantSettings.tenant_id],
                    set_={
                        "allow_private_webhook_targets": msg.allow_private_webhook_targets,
                        "forbid_sales_rep_exports": msg.forbid_sales_rep_exports,
                    },
                )
            )
        return msg

    async def get_settings(self, principal: Principal) -> pb.IntegrationSettings:
        async with transaction(self.sessions) as session:
            row = await session.get(models.TenantSettings, principal.tenant_id)
        return pb.IntegrationSettings(
            allow_private_webhook_targets=bool(row and row.allow_private_webhook_targets),
            forbid_sales_rep_exports=bool(row and row.forbid_sales_rep_exports),
        )

    # ---------------------------------------------------------------- dispatch

    async def wants(self, envelope: envelope_pb2.Envelope) -> bool:
        """False when no active webhook of the tenant matches the event's type; True when
        one does, or when it cannot be told (the cache is not listening)."""
        if not envelope.tenant_id:
            return False
        if not HOOKS.listening:
            return True
        found = HOOKS.get(envelope.tenant_id, "patterns")
        if found is MISSING:
            generation = HOOKS.generation(envelope.tenant_id)
            async with self.sessions() as session:
                rows = await session.scalars(
                    sa.select(models.Webhook.event_types).where(
                        models.Webhook.tenant_id == envelope.tenant_id,
                        models.Webhook.active.is_(True),
                    )
                )
                found = tuple(sorted({pattern for types in rows for pattern in types}))
            HOOKS.put(envelope.tenant_id, "patterns", found, generation)
        return matches(list(found), envelope.event_type)

    async def on_event(
        self, session: AsyncSession, envelope: envelope_pb2.Envelope, _: Msg
    ) -> None:
        """Consumer handler: one pending delivery per matching active subscription."""
        if not envelope.tenant_id:
            return
        hooks = await session.scalars(
            sa.select(models.Webhook).where(
                models.Webhook.tenant_id == envelope.tenant_id, models.Webhook.active.is_(True)
            )
        )
        wanted = [h for h in hooks if matches(h.event_types, envelope.event_type)]
        if not wanted:
            return
        payload = envelope_json(envelope)
        now = clock.now()
        for hook in wanted:
            await session.execute(
                pg_insert(models.Delivery)
                .values(
                    id=new_id(self.region),
                    tenant_id=envelope.tenant_id,
                    webhook_id=hook.id,
                    event_id=envelope.event_id,
                    event_type=envelope.event_type,
                    payload=payload,
                    status="pending",
                    next_attempt_at=now,
                )
                .on_conflict_do_nothing()
            )

    async def run(self) -> None:
        async with httpx.AsyncClient(
            timeout=self.settings.webhook_timeout, follow_redirects=False
        ) as client:
            while True:
                try:
                    handled = await self.pass_once(client)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("webhook delivery pass failed")
                    handled = 0
                if not handled:
                    await asyncio.sleep(self.settings.worker_interval)

    async def pass_once(self, client: httpx.AsyncClient) -> int:
        now = clock.now()
        async with transaction(self.sessions) as session:
            rows = list(
                await session.scalars(
                    sa.select(models.Delivery)
                    .where(
                        models.Delivery.status == "pending",
                        models.Delivery.next_attempt_at <= now,
                    )
                    .order_by(models.Delivery.next_attempt_at)
                    .limit(20)
                    .with_for_update(skip_locked=True)
                )
            )
            for row in rows:  # a lease against other replicas
                row.next_attempt_at = now + timedelta(seconds=60)
        await asyncio.gather(*(self._deliver(client, row.id) for row in rows))
        return len(rows)

    async def _deliver(self, client: httpx.AsyncClient, delivery_id: str) -> None:
        async with transaction(self.sessions) as session:
            delivery = await session.get(models.Delivery, delivery_id)
            if delivery is None:
                return
            hook = await session.get(models.Webhook, delivery.webhook_id)
            allow = await self._allow_private(session, delivery.tenant_id)
        if hook is None or not hook.active:
            async with transaction(self.sessions) as session:
                await session.execute(
                    sa.update(models.Delivery)
                    .where(models.Delivery.id == delivery_id)
                    .values(status="failed", last_error="the endpoint is disabled")
                )
            return
        status_code, error = 0, ""
        try:
            await check_target(hook.url, allow)
            signed = signed_headers(hook.secret, delivery.id, datetime.now(UTC), delivery.payload)
            response = await client.post(
                hook.url,
                content=delivery.payload.encode(),
                headers={
                    "content-type": "application/json",
                    **signed,
                    "user-agent": "AtlasCRM-Webhooks/1.0",
                },
            )
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except InvalidArgument as exc:
            error = str(exc)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        await self._record(delivery_id, status_code, error)

    async def _record(self, delivery_id: str, status_code: int, error: str) -> None:
        notify: models.Webhook | None = None
        async with transaction(self.sessions) as session:
            delivery = await session.get(models.Delivery, delivery_id, with_for_update=True)
            if delivery is None:
                return
            hook = await session.get(models.Webhook, delivery.webhook_id, with_for_update=True)
            delivery.attempts += 1
            delivery.last_status_code = status_code
            delivery.last_error = error
            if not error:
                delivery.status = "delivered"
                delivery.delivered_at = clock.now()
                delivery.next_attempt_at = None
                if hook is not None:
                    hook.consecutive_failures = 0
                return
            if delivery.attempts < self.settings.delivery_max_attempts:
                delivery.next_attempt_at = clock.now() + backoff(
                    delivery.attempts,
                    self.settings.retry_base_seconds,
                    self.settings.retry_max_seconds,
                )
                return
            delivery.status = "failed"
            delivery.next_attempt_at = None
            if hook is None or not hook.active:
                return
            hook.consecutive_failures += 1
            if hook.consecutive_failures >= self.settings.disable_after_failures:
                hook.active = False
                hook.disabled_reason = (
                    f"{hook.consecutive_failures} deliveries in a row failed after "
                    f"{self.settings.delivery_max_attempts} attempts each; last: {error}"
                )[:1000]
                await tenant_cache.changed(session, hook.tenant_id)
                notify = hook
        if notify is not None:
            await self._notify_owner(notify)

    async def _notify_owner(self, hook: models.Webhook) -> None:
        """The owner gets a task (and so the tasks notifications): fix and re-enable."""
        task = tpb.Task(
            title="Webhook endpoint disabled",
            description=f"{hook.url}: {hook.disabled_reason}. Fix the receiver, then "
            "re-enable the webhook and replay the failed deliveries.",
            assignee_id=hook.owner_id,
            priority="high",
        )
        try:
            await self.downstream.call(
                "tasks",
                self.downstream.tasks.CreateTask,
                tpb.CreateTaskRequest(task=task),
                acting(
                    hook.tenant_id,
                    self.region,
                    key=f"webhook-disabled:{hook.id}:{int(datetime.now(UTC).timestamp())}",
                ),
            )
        except (Unavailable, InvalidArgument, NotFound) as exc:
            log.warning("could not notify the owner of webhook %s: %s", hook.id, exc)
