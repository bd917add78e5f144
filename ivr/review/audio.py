"""Short-lived signed links to a recording: the item page signs (transcript id, user id,
expiry) with the app's secret key; the audio route serves the file only to that user,
before the expiry, on top of the login and organisation checks.

A link that leaks (a shared screen, a browser history, a proxy log) is of no use to anyone
else, nor to its own user for long. The expiry is read from the injected clock.
"""

from __future__ import annotations

import enum
from datetime import datetime

from itsdangerous import BadSignature, URLSafeSerializer

SALT = "ivr.review.audio"


class LinkProblem(enum.StrEnum):
    FORGED = "forged"  # not signed with this key (or altered)
    OTHER_ITEM = "other_item"  # signed for another recording
    OTHER_USER = "other_user"  # signed for another user
    EXPIRED = "expired"


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=SALT)


def sign(secret: str, transcript_id: int, user_id: str, expires: datetime) -> str:
    """A token for ``user_id`` to fetch transcript ``transcript_id``'s audio until
    ``expires``."""
    token: str = _serializer(secret).dumps(
        {"t": transcript_id, "u": user_id, "e": int(expires.timestamp())}
    )
    return token


def check(
    secret: str, token: str, transcript_id: int, user_id: str, now: datetime
) -> LinkProblem | None:
    """None when ``token`` lets ``user_id`` fetch this audio now; else what is wrong."""
    try:
        data = _serializer(secret).loads(token)
    except BadSignature:
        return LinkProblem.FORGED
    if not isinstance(data, dict):
        return LinkProblem.FORGED
    if data.get("t") != transcript_id:
        return LinkProblem.OTHER_ITEM
    if data.get("u") != user_id:
        return LinkProblem.OTHER_USER
    expires = data.get("e")
    if not isinstance(expires, int) or now.timestamp() > expires:
        return LinkProblem.EXPIRED
    return None


def first_chunk(range_header: str | None) -> bool:
    """Whether a request starts a playback (no Range, or a range from byte 0): a listen
    is logged once, not for each range the player asks for while it plays or seeks."""
    if not range_header:
        return True
    unit, _, spec = range_header.partition("=")
    if unit.strip().lower() != "bytes":
        return True
    first = spec.split(",")[0].strip()
    return first.split("-")[0].strip() == "0"
