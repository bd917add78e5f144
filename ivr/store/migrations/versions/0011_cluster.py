"""The cluster's nodes: each telephony worker's heartbeat, load, last error and draining.

Revision ID: 0011
Revises: 0010
Create Date: 2027-01-25 00:00:00

Written by hand (ivr/store/cluster_models.py describes the same table).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "cluster_nodes",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("asterisk_version", sa.String(64), nullable=True),
        _timestamp("started_at"),
        _timestamp("heartbeat_at"),
        _timestamp("stopped_at", nullable=True),
        sa.Column("calls_in_progress", sa.Integer(), nullable=False),
        sa.Column("pacing", sa.Float(), nullable=True),
        sa.Column("campaigns_running", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _timestamp("last_error_at", nullable=True),
        sa.Column("draining", sa.Boolean(), nullable=False),
        _timestamp("draining_since", nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_cluster_nodes"),
        sa.CheckConstraint(
            "calls_in_progress >= 0 AND campaigns_running >= 0",
            name=op.f("ck_cluster_nodes_counts"),
        ),
        sa.CheckConstraint("pacing IS NULL OR pacing >= 0", name=op.f("ck_cluster_nodes_pacing")),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("cluster_nodes")
