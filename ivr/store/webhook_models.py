"""Webhooks: the organisation's endpoints (subscriptions), the outbox of events written in
the same transaction as the change each reports, and the deliveries of each event to each
subscribed endpoint with every attempt made (ivr/webhooks/)."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ivr.store.models import Base, _enum, new_id, utcnow


class DeliveryState(enum.StrEnum):
    PENDING = "pending"  # due at next_at (first try or a retry)
    DELIVERED = "delivered"  # the endpoint answered 2xx
    DEAD = "dead"  # every try of the schedule failed: dead-lettered (re-send in the UI)


class WebhookEndpoint(Base):
    """A URL of an organisation's that receives the events it subscribes to, signed with
    ``secret`` (whsec_…) and, until ``previous_expires_at``, also with ``previous_secret``."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (sa.Index("ix_webhook_endpoints_org_id_created_at", "org_id", "created_at"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("organisations.id", ondelete="CASCADE")
    )
    url: Mapped[str] = mapped_column(sa.String(2000))
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    events: Mapped[str] = mapped_column(sa.Text, default="[]")  # a JSON list of event types
    secret: Mapped[str] = mapped_column(sa.String(100))
    previous_secret: Mapped[str | None] = mapped_column(sa.String(100))
    previous_expires_at: Mapped[datetime | None]
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(300))
    # The first failed try since the last success (None: not failing).
    failing_since: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookEvent(Base):
    """The outbox: one row per event, written with the change it reports. ``msg_id`` is
    the ``webhook-id`` every delivery of it carries; ``fanned_out_at`` is set when the
    worker has made its deliveries."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        sa.Index("ix_webhook_events_fanned_out_at_id", "fanned_out_at", "id"),
        sa.Index("ix_webhook_events_org_id_created_at", "org_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    msg_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    org_id: Mapped[str] = mapped_column(sa.String(36))
    event_type: Mapped[str] = mapped_column(sa.String(40))
    payload: Mapped[str] = mapped_column(sa.Text)  # the JSON body sent
    created_at: Mapped[datetime]
    fanned_out_at: Mapped[datetime | None]


class WebhookDelivery(Base):
    """One event to one endpoint: pending until delivered or dead-lettered. A worker claims
    it (``claimed_by``, until ``claim_expires_at``) for the time of one try."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "endpoint_id"),
        sa.Index("ix_webhook_deliveries_state_next_at", "state", "next_at"),
        sa.Index("ix_webhook_deliveries_endpoint_id_created_at", "endpoint_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(
        sa.ForeignKey("webhook_events.id", ondelete="CASCADE"),
    )
    endpoint_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    org_id: Mapped[str] = mapped_column(sa.String(36))
    state: Mapped[DeliveryState] = mapped_column(
        _enum(DeliveryState, "state"), default=DeliveryState.PENDING
    )
    tries: Mapped[int] = mapped_column(default=0)
    next_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(sa.String(120))
    claim_expires_at: Mapped[datetime | None]
    last_status: Mapped[int | None]
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class WebhookAttempt(Base):
    """One try of a delivery: the response code (None: no response), what went wrong, the
    start of the response body, and how long it took."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        index=True,
    )
    at: Mapped[datetime]
    status_code: Mapped[int | None]
    ok: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(sa.String(300))
    response_snippet: Mapped[str] = mapped_column(sa.String(500), default="")
    duration_ms: Mapped[int] = mapped_column(default=0)
