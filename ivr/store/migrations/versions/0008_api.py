"""The REST API: organisations' API tokens (hashed) and idempotent POST responses.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-20 00:00:00

Written by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    # The API's answer lists walk answers oldest first by cursor (created_at, id).
    op.create_index("ix_answers_created_at_id", "answers", ["created_at", "id"])
    op.create_index(
        "ix_contacts_campaign_id_created_at_id", "contacts", ["campaign_id", "created_at", "id"]
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        _timestamp("created_at"),
        sa.Column("created_by", sa.String(254), nullable=False),
        _timestamp("last_used_at", nullable=True),
        _timestamp("revoked_at", nullable=True),
        sa.Column("revoked_by", sa.String(254), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name="fk_api_tokens_org_id_organisations",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
        sa.CheckConstraint("scope IN ('read', 'write')", name=op.f("ck_api_tokens_scope")),
    )  # fmt: skip
    op.create_index("ix_api_tokens_org_id_created_at", "api_tokens", ["org_id", "created_at"])
    op.create_table(
        "api_idempotency",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("headers", sa.Text(), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_api_idempotency"),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name="fk_api_idempotency_org_id_organisations",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("org_id", "key", name="uq_api_idempotency_org_id_key"),
    )  # fmt: skip
    op.create_index("ix_api_idempotency_created_at", "api_idempotency", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_answers_created_at_id", table_name="answers")
    op.drop_index("ix_contacts_campaign_id_created_at_id", table_name="contacts")
    op.drop_index("ix_api_idempotency_created_at", table_name="api_idempotency")
    op.drop_table("api_idempotency")
    op.drop_index("ix_api_tokens_org_id_created_at", table_name="api_tokens")
    op.drop_table("api_tokens")
