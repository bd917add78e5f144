"""Tables of the staff's daily work on results: the organisation's tags (themes) for open
answers, the tags given to each transcript, the change log of every review, and the notes
on callback requests.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ivr.store.models import Base, CallbackStatus, _enum, utcnow


class Tag(Base):
    """A theme the organisation tags open answers with; ``key`` (1–9) is its keyboard key
    in the review queue (None: no key)."""

    __tablename__ = "tags"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "name"),
        sa.UniqueConstraint("org_id", "key"),
        sa.CheckConstraint("key IS NULL OR key BETWEEN 1 AND 9", name="key"),
        sa.CheckConstraint("length(name) BETWEEN 1 AND 60", name="name_length"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("organisations.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(sa.String(60))
    key: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TranscriptTag(Base):
    """A tag given to one transcript (an open answer)."""

    __tablename__ = "transcript_tags"
    __table_args__ = (
        sa.Index("ix_transcript_tags_tag_id_transcript_id", "tag_id", "transcript_id"),
    )

    transcript_id: Mapped[int] = mapped_column(
        sa.ForeignKey("transcripts.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(
        sa.ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True
    )


class TranscriptEdit(Base):
    """One change a reviewer made to a transcript: which field (corrected_text,
    review_state, tags), from what, to what, by whom and when. Never edited."""

    __tablename__ = "transcript_edits"

    id: Mapped[int] = mapped_column(primary_key=True)
    transcript_id: Mapped[int] = mapped_column(
        sa.ForeignKey("transcripts.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str | None] = mapped_column(sa.String(36))
    actor: Mapped[str] = mapped_column(sa.String(254))
    at: Mapped[datetime]
    field: Mapped[str] = mapped_column(sa.String(32))
    old: Mapped[str | None] = mapped_column(sa.Text)
    new: Mapped[str | None] = mapped_column(sa.Text)


class CallbackNote(Base):
    """A note on a callback request, with the status it moved the request to (if any)."""

    __tablename__ = "callback_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        sa.ForeignKey("callback_requests.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str | None] = mapped_column(sa.String(36))
    actor: Mapped[str] = mapped_column(sa.String(254))
    at: Mapped[datetime]
    text: Mapped[str] = mapped_column(sa.Text, default="")
    status: Mapped[CallbackStatus | None] = mapped_column(
        _enum(CallbackStatus, "status")
    )  # the status it set, if it set one


class ReportAggregate(Base):
    """A campaign's report aggregates as counted at ``computed_at`` (JSON,
    ``ivr.reports.aggregates``), valid while the campaign's ``fingerprint`` (its counters,
    status and billing rule: ``ivr.reports.cache``) is unchanged. A cache: deleting a row
    only costs the next report a recount."""

    __tablename__ = "report_aggregates"

    campaign_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    computed_at: Mapped[datetime]
    data: Mapped[str] = mapped_column(sa.Text)
