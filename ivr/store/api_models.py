"""Tables of the REST API (issue 12): the organisations' API tokens (only a hash is kept)
and the stored responses of POST requests made with an ``Idempotency-Key``."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ivr.store.models import Base, _enum, new_id, utcnow


class TokenScope(enum.StrEnum):
    READ = "read"  # GET only
    WRITE = "write"  # GET and POST


class ApiToken(Base):
    """An organisation's API token. The secret is shown once when made; ``token_hash`` is its
    SHA-256 (a 256-bit random secret needs no slow hash), ``prefix`` its first characters
    (to recognise it in a list)."""

    __tablename__ = "api_tokens"
    __table_args__ = (sa.Index("ix_api_tokens_org_id_created_at", "org_id", "created_at"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("organisations.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(sa.String(100))
    scope: Mapped[TokenScope] = mapped_column(_enum(TokenScope, "scope"))
    prefix: Mapped[str] = mapped_column(sa.String(16))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(sa.String(254))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(sa.String(254))


class IdempotentRequest(Base):
    """A POST made with an ``Idempotency-Key``: what was asked (``fingerprint``: SHA-256 of
    the method, path and body) and the response given (``status`` None: still running)."""

    __tablename__ = "api_idempotency"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "key"),
        sa.Index("ix_api_idempotency_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("organisations.id", ondelete="CASCADE")
    )
    key: Mapped[str] = mapped_column(sa.String(255))
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[int | None]
    body: Mapped[str | None] = mapped_column(sa.Text)
    headers: Mapped[str] = mapped_column(sa.Text, default="{}")  # a JSON object
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
