"""Rows as the API's JSON objects (the OpenAPI document's schemas describe each)."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

from ivr.callbacks.service import Detail
from ivr.campaigns.admin_checks import CampaignSettings
from ivr.campaigns.admin_flows import DB_PREFIX, EXAMPLE_PREFIX, example_flows
from ivr.store.models import (
    Answer,
    AnswerKind,
    Call,
    CallbackRequest,
    Campaign,
    Contact,
    TranscriptRow,
)


def when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _flow(stored: str) -> str:
    """``flow:<id>``, or ``example:<file>`` for a shipped example (not the server's path);
    a file the command line named is given by its file name only."""
    if stored.startswith(DB_PREFIX):
        return stored
    name = Path(stored).name
    return f"{EXAMPLE_PREFIX}{name}" if example_flows().get(name) == Path(stored) else name


def campaign_json(c: Campaign) -> dict[str, Any]:
    out: dict[str, Any] = {
        "object": "campaign",
        "id": c.id,
        "name": c.name,
        "status": c.status.value,
        "status_reason": c.status_reason,
        "flow": _flow(c.flow_path),
        "created_at": when(c.created_at),
        "started_at": when(c.started_at),
        "stopped_at": when(c.stopped_at),
    }
    for f in fields(CampaignSettings):
        value = getattr(c, f.name)
        out[f.name] = value.value if f.name == "default_language" else value
    return out


def contact_json(c: Contact) -> dict[str, Any]:
    try:
        attributes = json.loads(c.attributes or "{}")
    except ValueError:
        attributes = {}
    return {
        "object": "contact",
        "id": c.id,
        "campaign_id": c.campaign_id,
        "phone": c.phone,
        "language": c.language.value,
        "age_group": c.age_group,
        "birth_year": c.birth_year,
        "area": c.area,
        "postcode": c.postcode,
        "attributes": {str(k): str(v) for k, v in attributes.items()},
        "created_at": when(c.created_at),
    }


def call_json(c: Call) -> dict[str, Any]:
    return {
        "object": "call",
        "id": c.id,
        "campaign_id": c.campaign_id,
        "direction": c.direction.value,
        "status": c.status.value,
        "language": c.language,
        "remote_number": c.remote_number,
        "line_number": c.line_number,
        "started_at": when(c.started_at),
        "answered_at": when(c.answered_at),
        "ended_at": when(c.ended_at),
        "end_reason": c.end_reason,
    }


def answer_json(a: Answer, campaign_id: str | None) -> dict[str, Any]:
    # An open answer's value is where its recording lies on the server: not for clients
    # (its words are the transcript's).
    return {
        "object": "answer",
        "id": a.id,
        "call_id": a.call_id,
        "campaign_id": campaign_id,
        "seq": a.seq,
        "node_id": a.node_id,
        "kind": a.kind.value,
        "value": None if a.kind is AnswerKind.OPEN else a.value,
        "language": a.language,
        "created_at": when(a.created_at),
    }


def transcript_json(t: TranscriptRow) -> dict[str, Any]:
    return {
        "object": "transcript",
        "id": t.id,
        "call_id": t.call_id,
        "campaign_id": t.campaign_id,
        "node_id": t.node_id,
        "language": t.language,
        "machine_text": t.machine_text,
        "corrected_text": t.corrected_text,
        "text": t.corrected_text if t.corrected_text is not None else t.machine_text,
        "confidence": t.confidence,
        "review_state": t.review_state.value,
        "reviewed_at": when(t.reviewed_at),
        "created_at": when(t.created_at),
        "updated_at": when(t.updated_at),
    }


def callback_json(r: CallbackRequest) -> dict[str, Any]:
    return {
        "object": "callback_request",
        "id": r.id,
        "call_id": r.call_id,
        "campaign_id": r.campaign_id,
        "status": r.status.value,
        "channel": r.channel.value,
        "phone_number": r.phone_number,
        "time_window": r.time_window,
        "interpreter_language": r.interpreter_language,
        "language": r.language,
        "consent_version": r.consent_version,
        "assigned_to": r.assigned_to,
        "resolution": r.resolution,
        "resolved_at": when(r.resolved_at),
        "created_at": when(r.created_at),
        "updated_at": when(r.updated_at),
    }


def callback_detail_json(r: CallbackRequest, d: Detail) -> dict[str, Any]:
    out = callback_json(r)
    out["version"] = d.version
    out["actions"] = [a.value for a in d.actions]
    out["notes"] = [
        {"at": when(n.at), "actor": n.actor, "text": n.text,
         "status": None if n.status is None else n.status.value}
        for n in d.notes
    ]  # fmt: skip
    return out
