"""Our Standard Webhooks signatures against the ``standardwebhooks`` package, both ways:
the package verifies what we sign (one secret, and two during a rotation), and our check
and the sample receiver's verify what the package signs. A changed body, id or timestamp
fails everywhere.

The package's ``verify`` reads the wall clock, so its checks sign with the current time;
ours take the time as an argument."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from math import floor

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ivr.webhooks import signing
from ivr.webhooks.outbox import body as event_body
from tests.webhooks.conftest import load_receiver

MSG_ID = "msg_2b7c1f0e9d8a4c6b8e1f2a3b4c5d6e7f"


def _body(at: datetime) -> bytes:
    data = {"call_id": "c-1", "campaign_id": "k-1", "status": "completed"}
    return event_body(MSG_ID, "call.finished", data, at).encode()


def test_the_package_verifies_our_signature() -> None:
    secret = signing.generate_secret()
    now = datetime.now(UTC)
    payload = _body(now)
    headers = signing.headers(MSG_ID, now, payload, [secret])
    assert headers["webhook-signature"].startswith("v1,")
    event = Webhook(secret).verify(payload, headers)
    assert event["id"] == MSG_ID and event["type"] == "call.finished"
    # Another secret, a changed body or a changed id: refused.
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.generate_secret()).verify(payload, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(payload.replace(b"completed", b"refused"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(payload, {**headers, "webhook-id": "msg_other"})


def test_during_a_rotation_the_package_accepts_either_secret() -> None:
    new, old = signing.generate_secret(), signing.generate_secret()
    now = datetime.now(UTC)
    payload = _body(now)
    headers = signing.headers(MSG_ID, now, payload, [new, old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        assert Webhook(secret).verify(payload, headers)["id"] == MSG_ID
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.generate_secret()).verify(payload, headers)


def test_the_package_refuses_our_signature_from_too_long_ago() -> None:
    secret = signing.generate_secret()
    then = datetime.now(UTC) - timedelta(minutes=6)
    payload = _body(then)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(payload, signing.headers(MSG_ID, then, payload, [secret]))


def test_ours_and_the_sample_receiver_verify_the_packages_signature() -> None:
    secret = signing.generate_secret()
    at = datetime(2026, 3, 1, 9, 30, 15, tzinfo=UTC)  # any time: ours take "now" as given
    payload = _body(at)
    signature = Webhook(secret).sign(MSG_ID, at, payload.decode())
    headers = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(floor(at.timestamp())),
        "webhook-signature": signature,
    }
    assert signature == signing.sign(secret, MSG_ID, floor(at.timestamp()), payload)
    signing.verify(secret, headers, payload, at + timedelta(seconds=30))
    receiver = load_receiver()
    event = receiver.verify([secret], headers, payload, now=at.timestamp() + 30)
    assert event == json.loads(payload)
    # The header names in any case (as HTTP servers hand them over).
    signing.verify(secret, {k.title(): v for k, v in headers.items()}, payload, at)
    # A changed body, another secret, or a time outside five minutes: refused by both.
    changed = payload.replace(b"c-1", b"c-2")
    with pytest.raises(signing.SignatureError):
        signing.verify(secret, headers, changed, at)
    with pytest.raises(receiver.BadSignature):
        receiver.verify([secret], headers, changed, now=at.timestamp())
    other = signing.generate_secret()
    with pytest.raises(signing.SignatureError):
        signing.verify(other, headers, payload, at)
    with pytest.raises(receiver.BadSignature):
        receiver.verify([other], headers, payload, now=at.timestamp())
    late = at + timedelta(minutes=5, seconds=1)
    with pytest.raises(signing.SignatureError):
        signing.verify(secret, headers, payload, late)
    with pytest.raises(receiver.BadSignature):
        receiver.verify([secret], headers, payload, now=late.timestamp())


def test_the_sample_receiver_takes_the_new_secret_among_the_packages_signatures() -> None:
    """A rotation seen from the receiver: two v1 signatures, it knows only one secret."""
    new, old = signing.generate_secret(), signing.generate_secret()
    at = datetime.now(UTC)
    payload = _body(at)
    both = " ".join(Webhook(s).sign(MSG_ID, at, payload.decode()) for s in (old, new))
    headers = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(floor(at.timestamp())),
        "webhook-signature": both,
    }
    receiver = load_receiver()
    for secret in (new, old):
        assert receiver.verify([secret], headers, payload, now=at.timestamp())["id"] == MSG_ID
        signing.verify(secret, headers, payload, at)
