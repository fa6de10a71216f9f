"""How a rendered message leaves: email over SMTP (aiosmtplib) and SMS/chat through
pluggable HTTP providers. The in-app channel is a row in the inbox (dispatcher).

Every message carries a stable id per delivery (Message-ID for email, Idempotency-Key
and the payload's `id` for HTTP providers), so a resend after a crash between "sent"
and "recorded as sent" is recognisable as the same message by the receiver.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Any, Protocol

import aiosmtplib
import httpx

from crm_kit import clock
from crm_notifications.settings import HttpProvider, NotificationsSettings
from crm_notifications.templates import Rendered

CHANNELS = ("in_app", "email", "sms", "chat")


class SendError(Exception):
    """The channel refused or could not take the message; the delivery is retried."""


class PermanentError(SendError):
    """Retrying cannot help (no address, no provider configured): skipped at once."""


@dataclass(frozen=True)
class Outgoing:
    delivery_id: str
    message_id: str
    channel: str
    address: str
    recipient_name: str
    kind: str
    tenant_id: str
    rendered: Rendered
    list_unsubscribe: str = ""
    # (filename, media type, content): email only, e.g. the invoice's PDF.
    attachments: tuple[tuple[str, str, bytes], ...] = ()


class Sender(Protocol):
    async def send(self, message: Outgoing) -> str: ...


class EmailSender:
    def __init__(self, settings: NotificationsSettings) -> None:
        self.settings = settings

    def build(self, message: Outgoing) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.settings.mail_from
        mail["To"] = formataddr((message.recipient_name, message.address))
        mail["Subject"] = message.rendered.subject
        mail["Message-ID"] = message.message_id
        # The system's time (crm_kit.clock): a message held for the morning is dated then.
        mail["Date"] = formatdate(clock.now().timestamp(), localtime=False)
        mail["X-Crm-Delivery"] = message.delivery_id
        mail["X-Crm-Kind"] = message.kind
        if message.list_unsubscribe:
            mail["List-Unsubscribe"] = f"<{message.list_unsubscribe}>"
        mail.set_content(message.rendered.text)
        mail.add_alternative(message.rendered.html, subtype="html")
        for filename, media_type, content in message.attachments:
            maintype, _, subtype = media_type.partition("/")
            mail.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
        # After the body: setting content clears every Content-* header.
        mail["Content-Language"] = message.rendered.locale
        return mail

    async def send(self, message: Outgoing) -> str:
        if not message.address:
            raise PermanentError("the recipient has no email address")
        settings = self.settings
        try:
            await aiosmtplib.send(
                self.build(message),
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username or None,
                password=settings.smtp_password or None,
                start_tls=settings.smtp_starttls,
                timeout=settings.smtp_timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SendError(f"smtp: {exc}") from exc
        return f"smtp {settings.smtp_host}:{settings.smtp_port}"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", hex: what X-Crm-Signature carries."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class GenericHttpSender:
    """POSTs the message as JSON, signed with the provider's secret."""

    def __init__(self, provider: HttpProvider, client: httpx.AsyncClient) -> None:
        self.provider = provider
        self.client = client

    def payload(self, message: Outgoing) -> dict[str, Any]:
        return {
            "id": message.message_id,
            "delivery_id": message.delivery_id,
            "channel": message.channel,
            "to": message.address,
            "kind": message.kind,
            "tenant_id": message.tenant_id,
            "locale": message.rendered.locale,
            "subject": message.rendered.subject,
            "text": message.rendered.text,
        }

    async def send(self, message: Outgoing) -> str:
        if not message.address:
            raise PermanentError(f"the recipient has no {message.channel} address")
        body = json.dumps(self.payload(message), ensure_ascii=False).encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": message.message_id,
            "X-Crm-Timestamp": stamp,
        }
        if self.provider.secret:
            headers["X-Crm-Signature"] = sign(self.provider.secret, stamp, body)
        try:
            reply = await self.client.post(
                self.provider.url, content=body, headers=headers, timeout=self.provider.timeout
            )
        except httpx.HTTPError as exc:
            raise SendError(f"{message.channel}: {exc.__class__.__name__}: {exc}") from exc
        if reply.status_code >= 300:
            raise SendError(f"{message.channel}: provider answered {reply.status_code}")
        return f"{message.channel} provider {reply.status_code}"


PROVIDER_KINDS = {"generic": GenericHttpSender}


class Channels:
    """The senders of this process, from settings."""

    def __init__(self, settings: NotificationsSettings) -> None:
        self.client = httpx.AsyncClient()
        self.senders: dict[str, Sender] = {"email": EmailSender(settings)}
        for channel, provider in settings.notify_providers.items():
            kind = PROVIDER_KINDS.get(provider.kind)
            if kind is None:
                raise ValueError(f"unknown provider kind {provider.kind!r} for {channel}")
            self.senders[channel] = kind(provider, self.client)

    async def send(self, message: Outgoing) -> str:
        sender = self.senders.get(message.channel)
        if sender is None:
            raise PermanentError(f"no provider is configured for {message.channel}")
        return await sender.send(message)

    async def close(self) -> None:
        await self.client.aclose()
