"""Campaign counters: the numbers of a campaign's live progress, kept by the writers of
contacts and attempts in the same transaction (``ivr.store.counters``), so the staff UI's
progress (polled every 2.5 s) no longer recounts a campaign's contacts and attempts.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 00:00:00

Written by hand. The counters of existing campaigns are counted from their rows, with the
funnel's definitions as they are now. Two indexes serve what the progress still asks of
the attempts: calls placed in the last minutes (campaign, started_at) and the queue
(campaign, state, due_at, which replaces the index on campaign and state).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The attempt outcomes and the answered ones, as they are at this revision.
OUTCOMES = ("completed", "partial", "no_answer", "busy", "declined", "unallocated", "failed",
            "opted_out", "interrupted", "skipped")  # fmt: skip
ANSWERED = ("completed", "partial", "opted_out")

_DONE = "a.state = 'done'"
_PLACED = (
    f"(({_DONE} AND a.outcome <> 'skipped') OR (a.state = 'dialing' AND a.started_at IS NOT NULL))"
)
_ANSWERED = (
    f"({_DONE} AND (a.answered_at IS NOT NULL OR a.outcome IN "
    f"({', '.join(repr(o) for o in ANSWERED)})))"
)
_STARTED = f"({_ANSWERED} AND EXISTS (SELECT 1 FROM answers WHERE answers.call_id = a.call_id))"


def _sum(condition: str) -> str:
    return f"COALESCE(SUM(CASE WHEN {condition} THEN 1 ELSE 0 END), 0)"


def _contacts(condition: str) -> str:
    return f"COUNT(DISTINCT CASE WHEN {condition} THEN a.contact_id END)"


COUNTS = {
    "numbers_attempted": _contacts(_PLACED),
    "calls_placed": _sum(_PLACED),
    "answered": _sum(_ANSWERED),
    "survey_started": _sum(_STARTED),
    "completed": _contacts("a.outcome = 'completed'"),
    "opted_out": _contacts("a.outcome = 'opted_out'"),
    **{f"outcome:{o}": _sum(f"{_DONE} AND a.outcome = '{o}'") for o in OUTCOMES},
}


def upgrade() -> None:
    op.create_table(
        "campaign_counters",
        sa.Column("campaign_id", sa.String(36), nullable=False),
        sa.Column("key", sa.String(32), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "key", name=op.f("pk_campaign_counters")),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_counters_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
    )
    bind = op.get_bind()
    counters = sa.table(
        "campaign_counters",
        sa.column("campaign_id", sa.String),
        sa.column("key", sa.String),
        sa.column("n", sa.BigInteger),
    )
    rows = [
        {"campaign_id": campaign_id, "key": "contacts", "n": int(n)}
        for campaign_id, n in bind.execute(
            sa.text("SELECT campaign_id, COUNT(*) FROM contacts GROUP BY campaign_id")
        )
    ]
    keys = list(COUNTS)
    select = ", ".join(COUNTS[k] for k in keys)
    for row in bind.execute(
        sa.text(f"SELECT a.campaign_id, {select} FROM attempts a GROUP BY a.campaign_id")
    ):
        rows += [
            {"campaign_id": row[0], "key": key, "n": int(n)}
            for key, n in zip(keys, row[1:], strict=True)
            if n
        ]
    if rows:
        op.bulk_insert(counters, rows)
    op.create_index(
        op.f("ix_attempts_campaign_id_started_at"), "attempts", ["campaign_id", "started_at"]
    )
    op.create_index(
        op.f("ix_attempts_campaign_id_state_due_at"),
        "attempts",
        ["campaign_id", "state", "due_at"],
    )
    op.drop_index(op.f("ix_attempts_campaign_id_state"), table_name="attempts")


def downgrade() -> None:
    op.create_index(op.f("ix_attempts_campaign_id_state"), "attempts", ["campaign_id", "state"])
    op.drop_index(op.f("ix_attempts_campaign_id_state_due_at"), table_name="attempts")
    op.drop_index(op.f("ix_attempts_campaign_id_started_at"), table_name="attempts")
    op.drop_table("campaign_counters")
