"""``Idempotency-Key`` on POST: a retried request gets the first one's response.

The key is stored per organisation with a fingerprint of the request (SHA-256 of the
method, the path and the body) before the request runs; its response (below 500) is
stored after. The same key again:

- with the same request, once answered: the stored response (``Idempotent-Replayed: true``);
- while the first is still running: 409 (try again shortly);
- with another request: 422 naming ``Idempotency-Key`` (a key is for one request).

A request that fails with a server error forgets its key, so that it can be retried.
Keys are kept for ``KEEP`` (as Stripe does, a day).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ivr.api.problems import FieldError, Problem, bad_request
from ivr.store.api_models import IdempotentRequest

KEEP: Final = timedelta(hours=24)
MAX_KEY: Final = 255
HEADER: Final = "Idempotency-Key"


@dataclass(frozen=True)
class Stored:
    status: int
    body: str
    headers: dict[str, str]


def fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise bad_request(HEADER, f"1 to {MAX_KEY} printable characters")
    return key


def begin(
    factory: sessionmaker[Session], org_id: str, key: str, print_: str, now: datetime
) -> Stored | None:
    """Claim ``key`` for this request (None: go ahead), or the stored response to replay."""
    with factory.begin() as s:
        s.execute(
            sa.delete(IdempotentRequest).where(
                IdempotentRequest.org_id == org_id,
                IdempotentRequest.key == key,
                IdempotentRequest.created_at < now - KEEP,
            )
        )
    try:
        with factory.begin() as s:
            s.add(IdempotentRequest(org_id=org_id, key=key, fingerprint=print_, created_at=now))
        return None
    except IntegrityError:
        pass
    with factory() as s:
        found = s.scalars(
            sa.select(IdempotentRequest).where(
                IdempotentRequest.org_id == org_id, IdempotentRequest.key == key
            )
        ).first()
    if found is None:  # forgotten meanwhile (the first failed): a retry may go ahead
        raise Problem(409, "idempotency_in_progress", "the first request with this key "
                      "just failed: retry")  # fmt: skip
    if found.fingerprint != print_:
        raise Problem(
            422, "idempotency_key_reused",
            "this Idempotency-Key was used with another request (method, path or body)",
            [FieldError(HEADER, "used with another request: use a new key for a new request")],
        )  # fmt: skip
    if found.status is None:
        raise Problem(
            409, "idempotency_in_progress", "a request with this Idempotency-Key is running",
            headers={"Retry-After": "1"},
        )  # fmt: skip
    return Stored(found.status, found.body or "", json.loads(found.headers or "{}"))


def finish(
    factory: sessionmaker[Session], org_id: str, key: str, status: int, body: str,
    headers: dict[str, str],
) -> None:  # fmt: skip
    """Store the response (below 500), or forget the key (a server error)."""
    where = (IdempotentRequest.org_id == org_id, IdempotentRequest.key == key)
    with factory.begin() as s:
        if status >= 500:
            s.execute(sa.delete(IdempotentRequest).where(*where))
            return
        s.execute(
            sa.update(IdempotentRequest)
            .where(*where)
            .values(status=status, body=body, headers=json.dumps(headers))
        )
