"""Report schedules and the record of every e-mail they sent (``ivr.schedules``).

A schedule belongs to an organisation (the "unit" whose supervisor gets its own report) and
covers one campaign of it, or all of its campaigns and inbound lines (``campaign_id`` None).
``next_run_at`` is the instant the due-runner next sends it; the runner claims a run by
moving ``next_run_at`` on with ``UPDATE ... WHERE next_run_at = <the value it read>``, so two
runners at once send once. Each run is a ``ScheduleSend``: tried, retried after a failure
(``retry_at``), and ``sent`` or finally ``failed``.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ivr.store.models import Base, _enum, new_id, utcnow


class ScheduleFrequency(enum.StrEnum):
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class SendStatus(enum.StrEnum):
    SENDING = "sending"  # claimed by a runner, being sent now
    RETRYING = "retrying"  # a try failed; tried again at retry_at
    SENT = "sent"
    FAILED = "failed"  # every try failed


class ReportSchedule(Base):
    __tablename__ = "report_schedules"
    __table_args__ = (
        sa.CheckConstraint("length(name) BETWEEN 1 AND 100", name="name_length"),
        sa.CheckConstraint("day BETWEEN 0 AND 31", name="day"),
        sa.CheckConstraint("hour BETWEEN 0 AND 23 AND minute BETWEEN 0 AND 59", name="time"),
        sa.CheckConstraint("language IN ('fi', 'sv', 'en')", name="language"),
        sa.Index("ix_report_schedules_enabled_next_run_at", "enabled", "next_run_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(100))
    frequency: Mapped[ScheduleFrequency] = mapped_column(_enum(ScheduleFrequency, "frequency"))
    day: Mapped[int]  # weekly: 0 (Monday) - 6; monthly: 1 - 31 (31: the month's last day)
    hour: Mapped[int]
    minute: Mapped[int]
    # One campaign of the organisation; None: all its campaigns and inbound lines.
    campaign_id: Mapped[str | None] = mapped_column(
        sa.String(36), sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    recipients: Mapped[str] = mapped_column(sa.Text)  # JSON list of lower-case addresses
    language: Mapped[str] = mapped_column(sa.String(2))
    enabled: Mapped[bool] = mapped_column(default=True)
    next_run_at: Mapped[datetime | None]  # None while disabled
    last_run_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScheduleSend(Base):
    __tablename__ = "schedule_sends"
    __table_args__ = (
        sa.Index("ix_schedule_sends_schedule_id_at", "schedule_id", "at"),
        sa.Index("ix_schedule_sends_status_retry_at", "status", "retry_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("report_schedules.id", ondelete="CASCADE")
    )
    org_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    run_at: Mapped[datetime]  # the scheduled instant (or the moment "send now" was pressed)
    manual: Mapped[bool] = mapped_column(default=False)  # "send now"
    at: Mapped[datetime]  # the latest try
    status: Mapped[SendStatus] = mapped_column(_enum(SendStatus, "status"))
    attempts: Mapped[int] = mapped_column(default=0)
    retry_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(sa.Text)  # the latest failure, log-safe
    recipients: Mapped[str] = mapped_column(sa.Text)  # JSON list, as sent
    message_id: Mapped[str | None] = mapped_column(sa.String(255))
