"""Why a call failed or was cut: ``calls.end_reason``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 00:00:00

Written by hand. A call that a fault ended (an ARI request that Asterisk refused or left
unanswered, a database write that failed, Asterisk gone) keeps the reason for staff and
for the attempt's retry; NULL for calls that ended normally.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("end_reason", sa.String(300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("end_reason")
