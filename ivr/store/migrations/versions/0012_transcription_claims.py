"""Transcription claims: which `ivr worker` is transcribing a recording, until when.

Revision ID: 0012
Revises: 0011
Create Date: 2027-01-26 00:00:00

Written by hand (ivr/store/job_models.py describes the same table).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "transcription_claims",
        sa.Column("recording_id", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(255), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("recording_id", name="pk_transcription_claims"),
        sa.ForeignKeyConstraint(
            ["recording_id"], ["recordings.id"],
            name="fk_transcription_claims_recording_id_recordings", ondelete="CASCADE",
        ),
    )  # fmt: skip
    op.create_index("ix_transcription_claims_expires_at", "transcription_claims", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_transcription_claims_expires_at", table_name="transcription_claims")
    op.drop_table("transcription_claims")
