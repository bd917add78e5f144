"""``emit``: write an event to the outbox in the caller's transaction (one INSERT, no
query): it is committed with the change it reports, or rolled back with it."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ivr.store.webhook_models import WebhookEvent
from ivr.webhooks.events import DATA_KEYS

_EVENTS = cast(sa.Table, WebhookEvent.__table__)


def new_msg_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def body(msg_id: str, event_type: str, data: dict[str, Any], at: datetime) -> str:
    """The JSON body every endpoint gets (Standard Webhooks' type/timestamp/data)."""
    return json.dumps(
        {
            "id": msg_id,
            "type": event_type,
            "timestamp": at.isoformat().replace("+00:00", "Z"),
            "data": data,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def emit(
    session: Session, org_id: str | None, event_type: str, data: dict[str, Any], *, at: datetime
) -> str | None:
    """Add the event to the outbox; its ``webhook-id``, or None for a row without an
    organisation (nothing is written: nobody could subscribe to it)."""
    if org_id is None:
        return None
    keys = DATA_KEYS.get(event_type)
    if keys is None:
        raise ValueError(f"unknown webhook event {event_type!r}")
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(f"{event_type}: data lacks {', '.join(missing)}")
    msg_id = new_msg_id()
    session.execute(
        _EVENTS.insert().values(
            msg_id=msg_id,
            org_id=org_id,
            event_type=event_type,
            payload=body(msg_id, event_type, data, at),
            created_at=at,
        )
    )
    return msg_id
