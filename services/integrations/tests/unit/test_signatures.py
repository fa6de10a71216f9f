"""Our webhook signatures are Standard Webhooks signatures: the specification's published
test vector comes out exactly, and the official library verifies what we send."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from crm_integrations.webhooks import new_webhook_secret, signed_headers

# The test vector of the Standard Webhooks specification (and of every official library).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MESSAGE_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
PAYLOAD = '{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_specifications_test_vector_comes_out_exactly() -> None:
    headers = signed_headers(SECRET, MESSAGE_ID, datetime.fromtimestamp(TIMESTAMP, UTC), PAYLOAD)
    assert headers == {
        "webhook-id": MESSAGE_ID,
        "webhook-timestamp": str(TIMESTAMP),
        "webhook-signature": SIGNATURE,
    }


def test_the_official_library_verifies_a_delivery_and_refuses_a_changed_one() -> None:
    secret = new_webhook_secret()
    # The specification asks for 24 to 64 random bytes after the whsec_ prefix.
    assert 24 <= len(base64.b64decode(secret.removeprefix("whsec_"))) <= 64
    body = '{"event_type": "contacts.contact.created", "payload": {"contact_id": "eu_01"}}'
    headers = signed_headers(secret, "eu_01JDELIVERY", datetime.now(UTC), body)
    assert Webhook(secret).verify(body, headers) == {
        "event_type": "contacts.contact.created",
        "payload": {"contact_id": "eu_01"},
    }
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("eu_01", "eu_02"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_webhook_secret()).verify(body, headers)
