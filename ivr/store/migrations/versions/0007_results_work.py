"""The staff's work on results: calls, transcripts and callback requests know their
organisation and campaign; the review queue (review states, tags, a change log, a random
sample key); the callback worklist (assignment, notes, outcome); campaign prices and the
public page.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-14 00:00:00

Written by hand. Existing rows get their organisation and campaign from their call's
attempt (outbound) or inbound line; reviewed transcripts become ``reviewed``; callback
requests that were ``closed`` become ``resolved``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("org_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("campaign_id", sa.String(36), nullable=True))
        batch.create_index("ix_calls_org_id_started_at", ["org_id", "started_at"])
        batch.create_index("ix_calls_campaign_id", ["campaign_id"])
    op.execute(
        "UPDATE calls SET campaign_id = (SELECT a.campaign_id FROM attempts a "
        "WHERE a.id = calls.attempt_id) WHERE attempt_id IS NOT NULL"
    )
    op.execute(
        "UPDATE calls SET org_id = (SELECT c.org_id FROM campaigns c "
        "WHERE c.id = calls.campaign_id) WHERE campaign_id IS NOT NULL"
    )
    op.execute(
        "UPDATE calls SET org_id = (SELECT l.org_id FROM inbound_lines l "
        "WHERE l.number = calls.line_number) WHERE campaign_id IS NULL AND line_number IS NOT NULL"
    )

    with op.batch_alter_table("transcripts") as batch:
        batch.add_column(sa.Column("org_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("campaign_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("node_id", sa.String(100), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("review_state", sa.String(16), nullable=False, server_default="new")
        )
        batch.add_column(sa.Column("reviewed_by", sa.String(36), nullable=True))
        batch.add_column(_timestamp("reviewed_at", nullable=True))
        batch.add_column(sa.Column("sample_key", sa.Float(), nullable=False, server_default="0"))
        batch.create_check_constraint(
            op.f("ck_transcripts_review_state"),
            "review_state IN ('new', 'reviewed', 'second_look')",
        )
    op.execute("UPDATE transcripts SET review_state = 'reviewed' WHERE reviewed")
    op.execute(
        "UPDATE transcripts SET org_id = (SELECT c.org_id FROM calls c WHERE c.id = "
        "transcripts.call_id), campaign_id = (SELECT c.campaign_id FROM calls c WHERE "
        "c.id = transcripts.call_id), node_id = COALESCE((SELECT r.node_id FROM recordings r "
        "WHERE r.id = transcripts.recording_id), '')"
    )
    # A spread of sample keys for existing rows (new rows get random.random()).
    op.execute("UPDATE transcripts SET sample_key = ((id * 2654435761) % 1000003) / 1000003.0")
    with op.batch_alter_table("transcripts") as batch:
        batch.drop_column("reviewed")
        batch.alter_column("node_id", server_default=None)
        batch.alter_column("review_state", server_default=None)
        batch.alter_column("sample_key", server_default=None)
        batch.create_index(
            "ix_transcripts_org_id_review_state_created_at",
            ["org_id", "review_state", "created_at", "id"],
        )
        batch.create_index(
            "ix_transcripts_org_id_review_state_confidence",
            ["org_id", "review_state", "confidence", "id"],
        )
        batch.create_index("ix_transcripts_org_id_sample_key", ["org_id", "sample_key", "id"])
        batch.create_index("ix_transcripts_campaign_id_node_id", ["campaign_id", "node_id"])
        batch.create_index(
            "ix_transcripts_queue_counts",
            ["org_id", "review_state", "campaign_id", "node_id", "language", "confidence"],
        )

    with op.batch_alter_table("callback_requests") as batch:
        batch.drop_constraint(op.f("ck_callback_requests_status"), type_="check")
    op.execute("UPDATE callback_requests SET status = 'resolved' WHERE status = 'closed'")
    with op.batch_alter_table("callback_requests") as batch:
        batch.create_check_constraint(
            op.f("ck_callback_requests_status"),
            "status IN ('new', 'assigned', 'contacted', 'resolved', 'unreachable')",
        )
        batch.add_column(sa.Column("org_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("campaign_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("assigned_to", sa.String(36), nullable=True))
        batch.add_column(sa.Column("resolution", sa.Text(), nullable=True))
        batch.add_column(_timestamp("resolved_at", nullable=True))
        batch.add_column(_timestamp("updated_at", nullable=True))
        batch.create_foreign_key(
            "fk_callback_requests_assigned_to_users",
            "users",
            ["assigned_to"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index(
            "ix_callback_requests_org_id_status_created_at", ["org_id", "status", "created_at"]
        )
    op.execute(
        "UPDATE callback_requests SET org_id = (SELECT c.org_id FROM calls c WHERE c.id = "
        "callback_requests.call_id), campaign_id = (SELECT c.campaign_id FROM calls c "
        "WHERE c.id = callback_requests.call_id)"
    )

    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(
            sa.Column("price_per_minute", sa.Numeric(10, 4, asdecimal=False), nullable=True)
        )
        batch.add_column(
            sa.Column("billing_rule", sa.String(16), nullable=False, server_default="60/60")
        )
        batch.add_column(sa.Column("public_slug", sa.String(32), nullable=True))
        batch.add_column(sa.Column("public_info", sa.Text(), nullable=False, server_default="{}"))
        batch.create_unique_constraint("uq_campaigns_public_slug", ["public_slug"])
    with op.batch_alter_table("campaigns") as batch:
        batch.alter_column("billing_rule", server_default=None)
        batch.alter_column("public_info", server_default=None)

    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("key", sa.Integer(), nullable=True),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_tags"),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name="fk_tags_org_id_organisations",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("org_id", "name", name="uq_tags_org_id_name"),
        sa.UniqueConstraint("org_id", "key", name="uq_tags_org_id_key"),
        sa.CheckConstraint("key IS NULL OR key BETWEEN 1 AND 9", name=op.f("ck_tags_key")),
        sa.CheckConstraint("length(name) BETWEEN 1 AND 60", name=op.f("ck_tags_name_length")),
    )  # fmt: skip
    op.create_table(
        "transcript_tags",
        sa.Column("transcript_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("transcript_id", "tag_id", name="pk_transcript_tags"),
        sa.ForeignKeyConstraint(
            ["transcript_id"], ["transcripts.id"],
            name="fk_transcript_tags_transcript_id_transcripts", ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"], name="fk_transcript_tags_tag_id_tags", ondelete="CASCADE"
        ),
    )  # fmt: skip
    op.create_index(
        "ix_transcript_tags_tag_id_transcript_id", "transcript_tags", ["tag_id", "transcript_id"]
    )
    op.create_table(
        "transcript_edits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transcript_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=True),
        sa.Column("actor", sa.String(254), nullable=False),
        _timestamp("at"),
        sa.Column("field", sa.String(32), nullable=False),
        sa.Column("old", sa.Text(), nullable=True),
        sa.Column("new", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_transcript_edits"),
        sa.ForeignKeyConstraint(
            ["transcript_id"], ["transcripts.id"],
            name="fk_transcript_edits_transcript_id_transcripts", ondelete="CASCADE",
        ),
    )  # fmt: skip
    op.create_index("ix_transcript_edits_transcript_id", "transcript_edits", ["transcript_id"])
    op.create_table(
        "callback_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=True),
        sa.Column("actor", sa.String(254), nullable=False),
        _timestamp("at"),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_callback_notes"),
        sa.CheckConstraint(
            "status IN ('new', 'assigned', 'contacted', 'resolved', 'unreachable')",
            name=op.f("ck_callback_notes_status"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["callback_requests.id"],
            name="fk_callback_notes_request_id_callback_requests", ondelete="CASCADE",
        ),
    )  # fmt: skip
    op.create_index("ix_callback_notes_request_id", "callback_notes", ["request_id"])
    # The report's aggregates, cached per campaign (ivr/reports/cache.py).
    op.create_table(
        "report_aggregates",
        sa.Column("campaign_id", sa.String(36), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        _timestamp("computed_at"),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", name="pk_report_aggregates"),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"],
            name="fk_report_aggregates_campaign_id_campaigns", ondelete="CASCADE",
        ),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("report_aggregates")
    for table in ("callback_notes", "transcript_edits", "transcript_tags", "tags"):
        op.drop_table(table)
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_constraint("uq_campaigns_public_slug", type_="unique")
        for column in ("public_info", "public_slug", "billing_rule", "price_per_minute"):
            batch.drop_column(column)
    with op.batch_alter_table("callback_requests") as batch:
        batch.drop_index("ix_callback_requests_org_id_status_created_at")
        batch.drop_constraint("fk_callback_requests_assigned_to_users", type_="foreignkey")
        for column in ("updated_at", "resolved_at", "resolution", "assigned_to", "campaign_id"):
            batch.drop_column(column)
        batch.drop_column("org_id")
        batch.drop_constraint(op.f("ck_callback_requests_status"), type_="check")
    op.execute(
        "UPDATE callback_requests SET status = 'closed' WHERE status IN ('resolved', 'unreachable')"
    )
    op.execute("UPDATE callback_requests SET status = 'new' WHERE status = 'assigned'")
    with op.batch_alter_table("callback_requests") as batch:
        batch.create_check_constraint(
            op.f("ck_callback_requests_status"), "status IN ('new', 'contacted', 'closed')"
        )
    with op.batch_alter_table("transcripts") as batch:
        for index in (
            "ix_transcripts_queue_counts",
            "ix_transcripts_campaign_id_node_id",
            "ix_transcripts_org_id_sample_key",
            "ix_transcripts_org_id_review_state_confidence",
            "ix_transcripts_org_id_review_state_created_at",
        ):
            batch.drop_index(index)
        batch.add_column(sa.Column("reviewed", sa.Boolean(), nullable=False, server_default="0"))
    op.execute("UPDATE transcripts SET reviewed = (review_state = 'reviewed')")
    with op.batch_alter_table("transcripts") as batch:
        batch.drop_constraint(op.f("ck_transcripts_review_state"), type_="check")
        for column in (
            "sample_key",
            "reviewed_at",
            "reviewed_by",
            "review_state",
            "node_id",
            "campaign_id",
        ):
            batch.drop_column(column)
        batch.drop_column("org_id")
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_campaign_id")
        batch.drop_index("ix_calls_org_id_started_at")
        batch.drop_column("campaign_id")
        batch.drop_column("org_id")
