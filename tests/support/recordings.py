"""A recording row (with its call) for the transcription tests, without a real call."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from ivr.store import repo
from ivr.store.models import Direction


def store_recording(
    sessions: sessionmaker[Session], path: Path, language: str = "en", flow_id: str = "open-answer"
) -> int:
    """Store an outbound call with one 5-s open answer at ``path``; returns its id."""
    with sessions.begin() as s:
        call = repo.create_call(
            s,
            direction=Direction.OUTBOUND,
            flow_id=flow_id,
            flow_version="1",
            channel_id=f"chan-{path.name}-{time.monotonic_ns()}",
            node_name="node-a",
            language=language,
            started_at=datetime.now(UTC),
        )
        rec = repo.save_recording(
            s, call.id, node_id="q", path=str(path), duration_seconds=5.0, language=language
        )
        return rec.id
