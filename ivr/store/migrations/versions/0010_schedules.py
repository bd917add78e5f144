"""Scheduled e-mailed reports: report schedules and the record of every send.

Revision ID: 0010
Revises: 0009
Create Date: 2027-01-11 00:00:00

Written by hand (ivr/store/schedule_models.py describes the same tables).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "report_schedules",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("frequency", sa.String(16), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("minute", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(36), nullable=True),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _timestamp("next_run_at", nullable=True),
        _timestamp("last_run_at", nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_report_schedules"),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name="fk_report_schedules_org_id_organisations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name="fk_report_schedules_campaign_id_campaigns",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "length(name) BETWEEN 1 AND 100", name=op.f("ck_report_schedules_name_length")
        ),
        sa.CheckConstraint("day BETWEEN 0 AND 31", name=op.f("ck_report_schedules_day")),
        sa.CheckConstraint(
            "hour BETWEEN 0 AND 23 AND minute BETWEEN 0 AND 59",
            name=op.f("ck_report_schedules_time"),
        ),
        sa.CheckConstraint(
            "language IN ('fi', 'sv', 'en')", name=op.f("ck_report_schedules_language")
        ),
        sa.CheckConstraint(
            "frequency IN ('weekly', 'monthly')", name=op.f("ck_report_schedules_frequency")
        ),
    )  # fmt: skip
    op.create_index("ix_report_schedules_org_id", "report_schedules", ["org_id"])
    op.create_index("ix_report_schedules_campaign_id", "report_schedules", ["campaign_id"])
    op.create_index(
        "ix_report_schedules_enabled_next_run_at", "report_schedules", ["enabled", "next_run_at"]
    )
    op.create_table(
        "schedule_sends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.String(36), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        _timestamp("run_at"),
        sa.Column("manual", sa.Boolean(), nullable=False),
        _timestamp("at"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _timestamp("retry_at", nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_schedule_sends"),
        sa.ForeignKeyConstraint(
            ["schedule_id"], ["report_schedules.id"],
            name="fk_schedule_sends_schedule_id_report_schedules", ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "status IN ('sending', 'retrying', 'sent', 'failed')",
            name=op.f("ck_schedule_sends_status"),
        ),
    )  # fmt: skip
    op.create_index("ix_schedule_sends_org_id", "schedule_sends", ["org_id"])
    op.create_index("ix_schedule_sends_schedule_id_at", "schedule_sends", ["schedule_id", "at"])
    op.create_index("ix_schedule_sends_status_retry_at", "schedule_sends", ["status", "retry_at"])


def downgrade() -> None:
    op.drop_table("schedule_sends")
    op.drop_table("report_schedules")
