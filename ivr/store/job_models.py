"""Who is transcribing a recording now: one claim per recording (``ivr.transcription_claims``).

An ``ivr worker`` claims a recording before it transcribes it and holds the claim for
``[jobs] claim_seconds``, renewing it while the speech engine runs; when the job ends
(stored, failed, waiting for a model) the claim is let go (``expires_at`` None). A worker
that dies (SIGKILL, a power cut) stops renewing: once its claim has expired, a running
worker's sweep queues the recording again, and another worker can claim it. Two workers
never transcribe the same recording at once: the claim is taken by one guarded upsert.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ivr.store.models import Base


class TranscriptionClaim(Base):
    __tablename__ = "transcription_claims"
    __table_args__ = (sa.Index("ix_transcription_claims_expires_at", "expires_at"),)

    recording_id: Mapped[int] = mapped_column(
        sa.ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )
    worker: Mapped[str] = mapped_column(sa.String(255))  # host:pid of the `ivr worker`
    claimed_at: Mapped[datetime]
    # Held until then (renewed while the transcription runs); None: let go (the job ended).
    expires_at: Mapped[datetime | None]
