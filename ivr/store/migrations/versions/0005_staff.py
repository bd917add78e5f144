"""The staff side: organisations, users, memberships, the audit log, failed logins, flows
and inbound lines kept in the database; campaigns belong to an organisation.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 00:00:00

Written by hand. Campaign names become unique per organisation (two municipalities may
both run "Kysely 2027"); campaigns made on the command line before this keep no
organisation (``org_id`` NULL), which no staff user sees until an admin assigns them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _fk(table: str, column: str, target: str, ondelete: str | None = "CASCADE") -> sa.Constraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete=ondelete,
    )


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("name", name=op.f("uq_organisations_name")),
        sa.CheckConstraint(
            "length(name) BETWEEN 1 AND 100", name=op.f("ck_organisations_name_length")
        ),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("language", sa.String(2), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        _timestamp("created_at"),
        _timestamp("last_login_at", nullable=True),
        sa.Column("session_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "memberships",
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("user_id", "org_id", name=op.f("pk_memberships")),
        _fk("memberships", "user_id", "users"),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_memberships_org_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "role IN ('admin', 'manager', 'reviewer')", name=op.f("ck_memberships_role")
        ),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _timestamp("at"),
        sa.Column("org_id", sa.String(36), nullable=True),
        sa.Column("user_id", sa.String(36), nullable=True),
        sa.Column("actor", sa.String(254), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(32), nullable=False),
        sa.Column("target_id", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_org_id_at", "audit_log", ["org_id", "at"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account", sa.String(254), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        _timestamp("at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index("ix_login_failures_account_at", "login_failures", ["account", "at"])
    op.create_index("ix_login_failures_address_at", "login_failures", ["address", "at"])
    op.create_table(
        "flows",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("yaml", sa.Text(), nullable=False),
        _timestamp("updated_at"),
        sa.Column("updated_by", sa.String(254), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flows")),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_flows_org_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_flows_org_id_name")),
    )
    op.create_index(op.f("ix_flows_org_id"), "flows", ["org_id"])
    op.create_table(
        "inbound_lines",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("flow_id", sa.String(36), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_lines")),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_inbound_lines_org_id_organisations"),
            ondelete="CASCADE",
        ),
        _fk("inbound_lines", "flow_id", "flows", ondelete=None),
        sa.UniqueConstraint("number", name=op.f("uq_inbound_lines_number")),
    )
    op.create_index(op.f("ix_inbound_lines_org_id"), "inbound_lines", ["org_id"])
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("org_id", sa.String(36), nullable=True))
        batch.drop_constraint("uq_campaigns_name", type_="unique")
        batch.create_unique_constraint("uq_campaigns_org_id_name", ["org_id", "name"])
        batch.create_foreign_key(
            "fk_campaigns_org_id_organisations",
            "organisations",
            ["org_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index("ix_campaigns_org_id", ["org_id"])


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_index("ix_campaigns_org_id")
        batch.drop_constraint("fk_campaigns_org_id_organisations", type_="foreignkey")
        batch.drop_constraint("uq_campaigns_org_id_name", type_="unique")
        batch.create_unique_constraint("uq_campaigns_name", ["name"])
        batch.drop_column("org_id")
    for table in ("inbound_lines", "flows", "login_failures", "audit_log", "memberships"):
        op.drop_table(table)
    op.drop_table("users")
    op.drop_table("organisations")
