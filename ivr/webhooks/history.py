"""What the admin's webhook pages list beyond ``Webhooks``: each endpoint's latest delivery,
and an endpoint's deliveries on keyset pages (newest first) with their latest tries.

Admins only, through ``Webhooks.get`` (another organisation's endpoint is NotFound)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from ivr.accounts.audit import Actor
from ivr.store.org_models import Role
from ivr.store.webhook_models import WebhookAttempt, WebhookDelivery, WebhookEvent
from ivr.webhooks.service import AttemptView, DeliveryView, Webhooks

PAGE_SIZE = 25
ATTEMPTS_SHOWN = 5  # the newest tries of each delivery on the list; all on its own page


@dataclass(frozen=True)
class DeliveryRow:
    delivery: DeliveryView
    attempts: list[AttemptView]  # the newest first, at most ATTEMPTS_SHOWN
    attempt_count: int


@dataclass(frozen=True)
class DeliveryPage:
    rows: list[DeliveryRow]
    next_before: int | None  # the cursor of the next (older) page; None: this is the last


def _delivery_view(d: WebhookDelivery, msg_id: str, kind: str, url: str) -> DeliveryView:
    return DeliveryView(
        d.id, d.endpoint_id, url, msg_id, kind, d.state.value, d.tries, d.last_status,
        d.next_at, d.created_at, d.finished_at,
    )  # fmt: skip


def latest_deliveries(hooks: Webhooks, actor: Actor) -> dict[str, DeliveryView]:
    """Each endpoint of the actor's organisation that has deliveries -> its newest one."""
    org_id = actor.require(Role.ADMIN)
    newest = (
        sa.select(sa.func.max(WebhookDelivery.id).label("id"))
        .where(WebhookDelivery.org_id == org_id)
        .group_by(WebhookDelivery.endpoint_id)
        .subquery()
    )
    query = (
        sa.select(WebhookDelivery, WebhookEvent.msg_id, WebhookEvent.event_type)
        .join(newest, newest.c.id == WebhookDelivery.id)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
    )
    with hooks.factory() as s:
        return {
            d.endpoint_id: _delivery_view(d, msg_id, kind, "")
            for d, msg_id, kind in s.execute(query).all()
        }


def delivery_page(
    hooks: Webhooks,
    actor: Actor,
    endpoint_id: str,
    before: int | None = None,
    size: int = PAGE_SIZE,
) -> DeliveryPage:
    """The endpoint's deliveries older than the delivery ``before`` (None: the newest),
    ordered by (created_at, id) descending."""
    endpoint = hooks.get(actor, endpoint_id)  # NotFound for another organisation's
    query = (
        sa.select(WebhookDelivery, WebhookEvent.msg_id, WebhookEvent.event_type)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        .limit(size + 1)
    )
    if before is not None:
        cursor = (
            sa.select(WebhookDelivery.created_at)
            .where(WebhookDelivery.id == before, WebhookDelivery.endpoint_id == endpoint.id)
            .scalar_subquery()
        )
        query = query.where(
            sa.or_(
                WebhookDelivery.created_at < cursor,
                sa.and_(WebhookDelivery.created_at == cursor, WebhookDelivery.id < before),
            )
        )
    with hooks.factory() as s:
        found = s.execute(query).all()
        more = len(found) > size
        found = found[:size]
        ids = [d.id for d, _, _ in found]
        tries: dict[int, list[AttemptView]] = {i: [] for i in ids}
        counts: dict[int, int] = dict.fromkeys(ids, 0)
        if ids:
            for a in s.scalars(
                sa.select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id.in_(ids))
                .order_by(WebhookAttempt.id.desc())
            ):
                counts[a.delivery_id] += 1
                if len(tries[a.delivery_id]) < ATTEMPTS_SHOWN:
                    tries[a.delivery_id].append(
                        AttemptView(
                            a.at, a.status_code, a.ok, a.error, a.response_snippet, a.duration_ms
                        )
                    )
        rows = [
            DeliveryRow(_delivery_view(d, msg_id, kind, endpoint.url), tries[d.id], counts[d.id])
            for d, msg_id, kind in found
        ]
    return DeliveryPage(rows, rows[-1].delivery.id if more and rows else None)
