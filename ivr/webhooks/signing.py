"""Standard Webhooks signing: ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, one per secret,
separated by spaces (two while a rotated secret's overlap lasts). Secrets are ``whsec_``
and base64 of 32 random bytes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime

PREFIX = "whsec_"
TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """The headers are missing, too old or new, or no signature matches."""


def generate_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(PREFIX)
    try:
        key = base64.b64decode(raw + "==")
    except ValueError:
        raise ValueError("a webhook secret must be whsec_ and base64") from None
    if not key:
        raise ValueError("a webhook secret must not be empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode("ascii")


def headers(msg_id: str, at: datetime, body: bytes, secrets_: Iterable[str]) -> dict[str, str]:
    """The three headers of one try, signed with every secret given."""
    timestamp = int(at.timestamp())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in secrets_),
    }


def verify(secret: str, headers_: Mapping[str, str], body: bytes, now: datetime) -> None:
    """Raise SignatureError unless one of the v1 signatures is ``secret``'s and the
    timestamp is within five minutes of ``now``."""
    lower = {k.lower(): v for k, v in headers_.items()}
    msg_id = lower.get("webhook-id", "")
    stamp = lower.get("webhook-timestamp", "")
    given = lower.get("webhook-signature", "")
    if not (msg_id and stamp and given):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not a number") from None
    if abs(now.timestamp() - timestamp) > TOLERANCE_SECONDS:
        raise SignatureError("webhook-timestamp is more than five minutes from now")
    expected = sign(secret, msg_id, timestamp, body)
    for candidate in given.split(" "):
        if candidate.startswith("v1,") and hmac.compare_digest(candidate, expected):
            return
    raise SignatureError("no matching signature")
