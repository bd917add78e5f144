"""The organisation's webhook endpoints and their deliveries, for the admin UI and the CLI.
Admins only; another organisation's endpoint or delivery is NotFound. Every change is in
the audit log (the secret never is)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr.accounts import audit
from ivr.accounts.audit import Actor, NotFound
from ivr.clock import Clock
from ivr.config import WebhookSettings
from ivr.store.org_models import Role
from ivr.store.webhook_models import (
    DeliveryState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from ivr.webhooks import guard, signing
from ivr.webhooks.events import EVENT_TYPES


class WebhookInvalid(ValueError):
    """Bad input: ``errors`` maps each field (url, events, description) to its problem."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class EndpointView:
    id: str
    url: str
    description: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    rotating_until: datetime | None  # the previous secret still signs until then
    created_at: datetime


@dataclass(frozen=True)
class DeliveryView:
    id: int
    endpoint_id: str
    url: str
    msg_id: str
    event_type: str
    state: str
    tries: int
    last_status: int | None
    next_at: datetime
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class AttemptView:
    at: datetime
    status_code: int | None
    ok: bool
    error: str | None
    response_snippet: str
    duration_ms: int


def _view(e: WebhookEndpoint, now: datetime) -> EndpointView:
    rotating = (
        e.previous_expires_at if e.previous_expires_at and e.previous_expires_at > now else None
    )
    return EndpointView(
        e.id, e.url, e.description, json.loads(e.events), e.enabled, e.disabled_reason,
        e.failing_since, rotating, e.created_at,
    )  # fmt: skip


class Webhooks:
    def __init__(
        self, factory: sessionmaker[Session], clock: Clock, settings: WebhookSettings
    ) -> None:
        self.factory = factory
        self.clock = clock
        self.settings = settings

    # ------------------------------------------------------------------ checks
    def _check(self, url: str, events: list[str], description: str) -> str:
        errors: dict[str, str] = {}
        url = url.strip()
        try:
            target = guard.parse_url(url)
            if not self.settings.allow_private:
                guard.resolve(target, allow_private=False)
        except guard.AddressRefused as exc:
            errors["url"] = str(exc)
        if not events:
            errors["events"] = "choose at least one event"
        elif any(e not in EVENT_TYPES for e in events):
            errors["events"] = f"unknown event (known: {', '.join(EVENT_TYPES)})"
        if len(description) > 200:
            errors["description"] = "at most 200 characters"
        if errors:
            raise WebhookInvalid(errors)
        return url

    def _endpoint(self, s: Session, org_id: str, endpoint_id: str) -> WebhookEndpoint:
        e = s.get(WebhookEndpoint, endpoint_id)
        if e is None or e.org_id != org_id:
            raise NotFound("no such webhook endpoint")
        return e

    # ------------------------------------------------------------------ endpoints
    def endpoints(self, actor: Actor) -> list[EndpointView]:
        org_id = actor.require(Role.ADMIN)
        now = self.clock()
        with self.factory() as s:
            rows = s.scalars(
                sa.select(WebhookEndpoint)
                .where(WebhookEndpoint.org_id == org_id)
                .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
            )
            return [_view(e, now) for e in rows]

    def get(self, actor: Actor, endpoint_id: str) -> EndpointView:
        org_id = actor.require(Role.ADMIN)
        with self.factory() as s:
            return _view(self._endpoint(s, org_id, endpoint_id), self.clock())

    def create(
        self, actor: Actor, url: str, events: list[str], description: str = ""
    ) -> tuple[EndpointView, str]:
        """A new endpoint and its secret (shown once)."""
        org_id = actor.require(Role.ADMIN)
        url = self._check(url, events, description)
        now = self.clock()
        secret = signing.generate_secret()
        with self.factory.begin() as s:
            e = WebhookEndpoint(
                org_id=org_id, url=url, description=description.strip(),
                events=json.dumps([x for x in EVENT_TYPES if x in events]), secret=secret,
                enabled=True, created_at=now, updated_at=now,
            )  # fmt: skip
            s.add(e)
            s.flush()
            audit.record(
                s, actor, "webhook.create", at=now, target_type="webhook_endpoint",
                target_id=e.id, url=url, events=events,
            )  # fmt: skip
            return _view(e, now), secret

    def update(
        self,
        actor: Actor,
        endpoint_id: str,
        *,
        url: str,
        events: list[str],
        description: str = "",
        enabled: bool = True,
    ) -> EndpointView:
        org_id = actor.require(Role.ADMIN)
        url = self._check(url, events, description)
        now = self.clock()
        with self.factory.begin() as s:
            e = self._endpoint(s, org_id, endpoint_id)
            e.url = url
            e.events = json.dumps([x for x in EVENT_TYPES if x in events])
            e.description = description.strip()
            if enabled and not e.enabled:
                e.disabled_reason = None
                e.failing_since = None
            elif not enabled and e.enabled:
                e.disabled_reason = "disabled by an admin"
            e.enabled = enabled
            e.updated_at = now
            audit.record(
                s, actor, "webhook.update", at=now, target_type="webhook_endpoint",
                target_id=e.id, url=url, events=events, enabled=enabled,
            )  # fmt: skip
            return _view(e, now)

    def set_enabled(self, actor: Actor, endpoint_id: str, enabled: bool) -> EndpointView:
        current = self.get(actor, endpoint_id)
        return self.update(
            actor, endpoint_id, url=current.url, events=current.events,
            description=current.description, enabled=enabled,
        )  # fmt: skip

    def rotate(self, actor: Actor, endpoint_id: str) -> str:
        """A new secret (returned, shown once); the old one still signs, as a second
        signature, for ``rotation_overlap_hours``."""
        org_id = actor.require(Role.ADMIN)
        now = self.clock()
        secret = signing.generate_secret()
        with self.factory.begin() as s:
            e = self._endpoint(s, org_id, endpoint_id)
            e.previous_secret = e.secret
            e.previous_expires_at = now + timedelta(hours=self.settings.rotation_overlap_hours)
            e.secret = secret
            e.updated_at = now
            audit.record(
                s, actor, "webhook.rotate_secret", at=now, target_type="webhook_endpoint",
                target_id=e.id, overlap_hours=self.settings.rotation_overlap_hours,
            )  # fmt: skip
        return secret

    # ------------------------------------------------------------------ deliveries
    def deliveries(
        self, actor: Actor, endpoint_id: str | None = None, limit: int = 100
    ) -> list[DeliveryView]:
        org_id = actor.require(Role.ADMIN)
        query = (
            sa.select(
                WebhookDelivery, WebhookEvent.msg_id, WebhookEvent.event_type, WebhookEndpoint.url
            )
            .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.org_id == org_id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(limit)
        )
        if endpoint_id is not None:
            query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
        with self.factory() as s:
            if endpoint_id is not None:
                self._endpoint(s, org_id, endpoint_id)
            return [
                DeliveryView(
                    d.id,
                    d.endpoint_id,
                    url,
                    msg_id,
                    kind,
                    d.state.value,
                    d.tries,
                    d.last_status,
                    d.next_at,
                    d.created_at,
                    d.finished_at,
                )  # fmt: skip
                for d, msg_id, kind, url in s.execute(query).all()
            ]

    def delivery(
        self, actor: Actor, delivery_id: int
    ) -> tuple[DeliveryView, str, list[AttemptView]]:
        """The delivery, its body and its tries (newest first)."""
        org_id = actor.require(Role.ADMIN)
        with self.factory() as s:
            row = s.execute(
                sa.select(WebhookDelivery, WebhookEvent, WebhookEndpoint.url)
                .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(WebhookDelivery.id == delivery_id, WebhookDelivery.org_id == org_id)
            ).first()
            if row is None:
                raise NotFound("no such delivery")
            d, ev, url = row
            attempts = [
                AttemptView(a.at, a.status_code, a.ok, a.error, a.response_snippet, a.duration_ms)
                for a in s.scalars(
                    sa.select(WebhookAttempt)
                    .where(WebhookAttempt.delivery_id == d.id)
                    .order_by(WebhookAttempt.id.desc())
                )
            ]
            view = DeliveryView(
                d.id, d.endpoint_id, url, ev.msg_id, ev.event_type, d.state.value, d.tries,
                d.last_status, d.next_at, d.created_at, d.finished_at,
            )  # fmt: skip
            return view, ev.payload, attempts

    def resend(self, actor: Actor, delivery_id: int) -> None:
        """Send the delivery again now (same webhook-id), with a fresh retry schedule."""
        org_id = actor.require(Role.ADMIN)
        now = self.clock()
        with self.factory.begin() as s:
            d = s.get(WebhookDelivery, delivery_id)
            if d is None or d.org_id != org_id:
                raise NotFound("no such delivery")
            d.state = DeliveryState.PENDING
            d.tries = 0
            d.next_at = now
            d.finished_at = None
            d.claimed_by = None
            d.claim_expires_at = None
            audit.record(
                s, actor, "webhook.resend", at=now, target_type="webhook_delivery",
                target_id=str(d.id),
            )  # fmt: skip
