"""Tables of the staff side: organisations, users and their roles, the audit log, failed
logins (for the rate limit), flows edited in the browser and inbound lines.

Several municipalities can share one installation; every row a staff user can see belongs
to one organisation (``org_id``), and the service layer scopes every query by it.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ivr.store.models import Base, _enum, new_id, utcnow


class Role(enum.StrEnum):
    """A user's role in one organisation; each includes what the ones below may do."""

    ADMIN = "admin"  # users, lines, everything a manager may do
    MANAGER = "manager"  # campaigns, flows, prompts, reports
    REVIEWER = "reviewer"  # the review queue and callbacks; reads campaigns

    @property
    def rank(self) -> int:
        return {"reviewer": 1, "manager": 2, "admin": 3}[self.value]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


class Organisation(Base):
    """A municipality (or a unit) using the installation."""

    __tablename__ = "organisations"
    __table_args__ = (sa.CheckConstraint("length(name) BETWEEN 1 AND 100", name="name_length"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    timezone: Mapped[str] = mapped_column(sa.String(64), default="Europe/Helsinki")
    language: Mapped[str] = mapped_column(sa.String(2), default="fi")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """A staff member; the e-mail address (lower case) is the login name."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100), default="")
    password_hash: Mapped[str] = mapped_column(sa.Text)
    language: Mapped[str | None] = mapped_column(sa.String(2))  # None: the browser's
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # Raised by a logout or a password change: every session cookie issued before is void
    # (the session is a signed cookie; this is what the server keeps of it).
    session_version: Mapped[int] = mapped_column(default=0)


class Membership(Base):
    """A user's role in an organisation."""

    __tablename__ = "memberships"

    user_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    org_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """Who changed what, and who opened which recording. Written by the service layer."""

    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_org_id_at", "org_id", "at"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    org_id: Mapped[str | None] = mapped_column(sa.String(36))
    user_id: Mapped[str | None] = mapped_column(sa.String(36))
    actor: Mapped[str] = mapped_column(sa.String(254))  # the user's e-mail, or "cli:<login>"
    action: Mapped[str] = mapped_column(sa.String(64))  # e.g. "campaign.start"
    target_type: Mapped[str] = mapped_column(sa.String(32), default="")
    target_id: Mapped[str] = mapped_column(sa.String(64), default="")
    detail: Mapped[str] = mapped_column(sa.Text, default="{}")  # JSON
    address: Mapped[str] = mapped_column(sa.String(64), default="")  # the client's IP


class LoginFailure(Base):
    """A failed login, kept for the per-account and per-address rate limit."""

    __tablename__ = "login_failures"
    __table_args__ = (
        sa.Index("ix_login_failures_account_at", "account", "at"),
        sa.Index("ix_login_failures_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(sa.String(254))
    address: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[datetime]


class FlowDoc(Base):
    """A call flow kept in the database (edited or uploaded in the browser): its YAML."""

    __tablename__ = "flows"
    __table_args__ = (sa.UniqueConstraint("org_id", "name"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(100))
    yaml: Mapped[str] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(sa.String(254), default="")


class InboundLine(Base):
    """An inbound number of an organisation and the flow that answers it. The telephony
    worker reads these beside the ``[lines]`` of the config file, without a restart."""

    __tablename__ = "inbound_lines"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[str] = mapped_column(sa.String(32), unique=True)
    flow_id: Mapped[str] = mapped_column(sa.String(36), sa.ForeignKey("flows.id"))
    language: Mapped[str] = mapped_column(sa.String(2), default="")  # "": the flow's default
    # Stores no caller number (also when the flow itself says ``anonymous: true``).
    anonymous: Mapped[bool] = mapped_column(default=False)
    enabled: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
