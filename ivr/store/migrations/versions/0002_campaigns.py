"""Outbound campaigns: campaigns, their contacts, and every attempt at calling one.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01 00:00:00

Written by hand, in the style of 0001: enumerations are VARCHAR(16) with a named CHECK
constraint, their values spelled out here; timestamps are ``timestamptz`` on PostgreSQL,
UTC text on SQLite.

``calls.attempt_id`` (from 0001) is deliberately left without a foreign key to
``attempts.id``. On SQLite adding one means rebuilding ``calls`` (batch mode: copy, DROP,
rename), and ``PRAGMA foreign_keys`` cannot be switched off inside the one transaction
``ivr.store.migrate`` runs the upgrade in, so the DROP would fire the ON DELETE CASCADE
of answers, recordings and callback requests and empty them. The link that the store
relies on is ``attempts.call_id`` (a real foreign key, SET NULL when a call is purged);
``calls.attempt_id`` stays an indexed back-reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LANGUAGES = ["fi", "sv", "en"]


def _one_of(column: str, values: Sequence[str], table: str) -> sa.CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=op.f(f"ck_{table}_{column}"))


def _check(sql: str, name: str, table: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(sql, name=op.f(f"ck_{table}_{name}"))


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("flow_path", sa.Text(), nullable=False),
        sa.Column("flow_id", sa.String(100), nullable=True),
        sa.Column("flow_version", sa.String(64), nullable=True),
        sa.Column("flow_snapshot", sa.Text(), nullable=True),
        sa.Column("caller_id", sa.String(32), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("windows", sa.Text(), nullable=False),
        sa.Column("allow_holidays", sa.Boolean(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("retry_busy_minutes", sa.Integer(), nullable=False),
        sa.Column("retry_no_answer_minutes", sa.Integer(), nullable=False),
        sa.Column("retry_failed_minutes", sa.Integer(), nullable=False),
        sa.Column("calls_per_second", sa.Float(), nullable=False),
        sa.Column("max_concurrent", sa.Integer(), nullable=False),
        sa.Column("default_language", sa.String(16), nullable=False),
        sa.Column("cross_campaign_daily_cap", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("started_at", nullable=True),
        _timestamp("stopped_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_campaigns_name")),
        _check("length(name) BETWEEN 1 AND 100", "name_length", "campaigns"),
        _check("max_attempts >= 1", "max_attempts", "campaigns"),
        _check(
            "retry_busy_minutes >= 0 AND retry_no_answer_minutes >= 0 "
            "AND retry_failed_minutes >= 0",
            "retry_minutes",
            "campaigns",
        ),
        _check("calls_per_second > 0", "calls_per_second", "campaigns"),
        _check("max_concurrent >= 1", "max_concurrent", "campaigns"),
        _one_of("default_language", LANGUAGES, "campaigns"),
        _one_of("status", ["draft", "running", "paused", "stopped", "completed"], "campaigns"),
    )

    op.create_table(
        "contacts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("campaign_id", sa.String(36), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("age_group", sa.String(32), nullable=True),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("area", sa.Text(), nullable=True),
        sa.Column("postcode", sa.String(16), nullable=True),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_contacts_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("campaign_id", "phone", name=op.f("uq_contacts_campaign_id_phone")),
        _check("source_line >= 1", "source_line", "contacts"),
        _one_of("language", LANGUAGES, "contacts"),
    )

    op.create_table(
        "attempts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("campaign_id", sa.String(36), nullable=False),
        sa.Column("contact_id", sa.String(36), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _timestamp("due_at"),
        sa.Column("claimed_by", sa.String(100), nullable=True),
        _timestamp("claimed_at", nullable=True),
        sa.Column("call_id", sa.String(36), nullable=True),
        sa.Column("channel_id", sa.String(128), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("outcome_detail", sa.Text(), nullable=True),
        sa.Column("cause", sa.Integer(), nullable=True),
        sa.Column("sip_code", sa.Integer(), nullable=True),
        _timestamp("started_at", nullable=True),
        _timestamp("answered_at", nullable=True),
        _timestamp("ended_at", nullable=True),
        sa.Column("ring_seconds", sa.Float(), nullable=True),
        sa.Column("talk_seconds", sa.Float(), nullable=True),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempts")),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_attempts_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_attempts_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_attempts_call_id_calls"), ondelete="SET NULL"
        ),
        sa.UniqueConstraint(
            "contact_id", "attempt_no", name=op.f("uq_attempts_contact_id_attempt_no")
        ),
        sa.UniqueConstraint("channel_id", name=op.f("uq_attempts_channel_id")),
        _check("attempt_no >= 1", "attempt_no", "attempts"),
        _one_of("state", ["due", "dialing", "done", "cancelled"], "attempts"),
        _one_of(
            "outcome",
            [
                "completed",
                "partial",
                "no_answer",
                "busy",
                "declined",
                "unallocated",
                "failed",
                "opted_out",
                "interrupted",
                "skipped",
            ],
            "attempts",
        ),
    )
    op.create_index(op.f("ix_attempts_state_due_at"), "attempts", ["state", "due_at"])
    op.create_index(op.f("ix_attempts_campaign_id_state"), "attempts", ["campaign_id", "state"])
    op.create_index(op.f("ix_attempts_phone_started_at"), "attempts", ["phone", "started_at"])
    op.create_index(op.f("ix_attempts_call_id"), "attempts", ["call_id"])


def downgrade() -> None:
    for table in ("attempts", "contacts", "campaigns"):
        op.drop_table(table)
