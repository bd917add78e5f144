"""What the campaign pages read: the list (keyset pagination, counts in one grouped query),
a campaign's settings, and its live progress. Called by ``CampaignAdmin`` after its
organisation check; nothing here checks who asks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ivr.campaigns import admin_flows, rules
from ivr.campaigns.admin_checks import CampaignSettings
from ivr.campaigns.dialer import policy_of
from ivr.campaigns.numbers import caller_id_warnings
from ivr.store import campaigns as cstore
from ivr.store.models import Attempt, AttemptState, Campaign, CampaignStatus, Contact

RATE_WINDOW: Final = timedelta(minutes=5)  # calls per minute: over the last 5 minutes
_CURSOR_TIME: Final = "%Y%m%dT%H%M%S%f"


# --------------------------------------------------------------------------- the list
@dataclass(frozen=True)
class Row:
    id: str
    name: str
    status: CampaignStatus
    status_reason: str | None
    created_at: datetime
    started_at: datetime | None
    contacts: int = 0
    done: int = 0  # contacts with nothing left to try (or cancelled by a stop)
    in_progress: int = 0  # attempts being dialled

    @property
    def percent(self) -> int:
        return int(self.done * 100 / self.contacts) if self.contacts else 0


@dataclass(frozen=True)
class Page:
    rows: list[Row] = field(default_factory=list)
    newer: str | None = None  # cursor of the page before (newer campaigns), if any
    older: str | None = None  # cursor of the page after (older campaigns), if any


def cursor_of(created_at: datetime, campaign_id: str) -> str:
    return f"{created_at.astimezone(UTC).strftime(_CURSOR_TIME)}.{campaign_id}"


def _parse_cursor(text: str) -> tuple[datetime, str] | None:
    stamp, _, campaign_id = text.partition(".")
    try:
        when = datetime.strptime(stamp, _CURSOR_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None
    return (when, campaign_id) if campaign_id else None


def page(
    s: Session,
    scope: sa.ColumnElement[bool],
    *,
    before: str | None = None,
    after: str | None = None,
    limit: int = 25,
) -> Page:
    """Campaigns newest first: those older than cursor ``before``, or newer than ``after``
    (a bad cursor: the first page). Two statements whatever the page size: the page, then
    its contacts and attempts counted in one grouped query (index-only on both tables)."""
    limit = max(1, min(limit, 100))
    query = sa.select(
        Campaign.id,
        Campaign.name,
        Campaign.status,
        Campaign.status_reason,
        Campaign.created_at,
        Campaign.started_at,
    ).where(scope)
    key_before = _parse_cursor(before) if before else None
    key_after = _parse_cursor(after) if after and not key_before else None
    if key_after is not None:
        when, cid = key_after
        query = query.where(
            sa.or_(
                Campaign.created_at > when,
                sa.and_(Campaign.created_at == when, Campaign.id > cid),
            )
        ).order_by(Campaign.created_at, Campaign.id)
    else:
        if key_before is not None:
            when, cid = key_before
            query = query.where(
                sa.or_(
                    Campaign.created_at < when,
                    sa.and_(Campaign.created_at == when, Campaign.id < cid),
                )
            )
        query = query.order_by(Campaign.created_at.desc(), Campaign.id.desc())
    found = list(s.execute(query.limit(limit + 1)))
    more = len(found) > limit
    found = found[:limit]
    if key_after is not None:
        found.reverse()
    counts = _counts(s, [r.id for r in found])
    rows = []
    for r in found:
        c = counts.get(r.id, {})
        contacts = c.get("contacts", 0)
        unfinished = sum(c.get(state.value, 0) for state in _OPEN)
        done = max(0, contacts - unfinished) if r.started_at is not None else 0
        rows.append(
            Row(r.id, r.name, r.status, r.status_reason, r.created_at, r.started_at,
                contacts, done, c.get(AttemptState.DIALING.value, 0))
        )  # fmt: skip
    if not rows:
        return Page()
    first, last = rows[0], rows[-1]
    newer_exists = more if key_after is not None else key_before is not None
    older_exists = key_after is not None or more
    return Page(
        rows,
        newer=cursor_of(first.created_at, first.id) if newer_exists else None,
        older=cursor_of(last.created_at, last.id) if older_exists else None,
    )


# Attempts that leave their contact unfinished: waiting, being dialled, or cancelled by a
# stop (a contact has at most one of these: a retry is made when its attempt is done).
_OPEN: Final = (AttemptState.DUE, AttemptState.DIALING, AttemptState.CANCELLED)


def _counts(s: Session, ids: list[str]) -> dict[str, dict[str, int]]:
    """campaign id -> {"contacts": n, "<attempt state>": n}: one grouped statement."""
    if not ids:
        return {}
    contacts = (
        sa.select(
            Contact.campaign_id.label("cid"),
            sa.literal("contacts", sa.String(16)).label("kind"),
            sa.func.count().label("n"),
        )
        .where(Contact.campaign_id.in_(ids))
        .group_by(Contact.campaign_id)
    )
    attempts = (
        sa.select(
            Attempt.campaign_id.label("cid"),
            sa.cast(Attempt.state, sa.String(16)).label("kind"),
            sa.func.count().label("n"),
        )
        .where(Attempt.campaign_id.in_(ids))
        .group_by(Attempt.campaign_id, Attempt.state)
    )
    found: dict[str, dict[str, int]] = {}
    for cid, kind, number in s.execute(sa.union_all(contacts, attempts)):
        key = kind.value if isinstance(kind, AttemptState) else str(kind)
        found.setdefault(cid, {})[key] = int(number)
    return found


# --------------------------------------------------------------------------- one campaign
@dataclass(frozen=True)
class Detail:
    id: str
    org_id: str | None
    name: str
    status: CampaignStatus
    status_reason: str | None
    flow_path: str
    flow_label: str
    flow_value: str  # the flow as the form's select names it
    flow_version: str | None
    settings: CampaignSettings
    caller_id_warnings: list[str]
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    editable: bool  # its settings may change now (see admin.EDITABLE_STATES)
    flow_editable: bool  # a draft: the flow may change too
    contacts: int


def detail(s: Session, campaign: Campaign, settings: CampaignSettings, editable: bool) -> Detail:
    contacts = cstore.live_counts(s, campaign.id)["contacts"]
    return Detail(
        id=campaign.id,
        org_id=campaign.org_id,
        name=campaign.name,
        status=campaign.status,
        status_reason=campaign.status_reason,
        flow_path=campaign.flow_path,
        flow_label=admin_flows.label(s, campaign.flow_path),
        flow_value=admin_flows.form_value(campaign.flow_path),
        flow_version=campaign.flow_version,
        settings=settings,
        caller_id_warnings=caller_id_warnings(campaign.caller_id or ""),
        created_at=campaign.created_at,
        started_at=campaign.started_at,
        stopped_at=campaign.stopped_at,
        editable=editable,
        flow_editable=editable and campaign.started_at is None,
        contacts=int(contacts or 0),
    )


def window_now(campaign: Campaign, now: datetime) -> dict[str, Any]:
    """Whether the campaign's calling windows are open at ``now``; if not, why (the rules'
    words), the public holiday if it is one, and when the next window opens (UTC)."""
    policy = policy_of(campaign)
    reason = rules.window_reason(policy, now)
    holiday = None
    if not policy.allow_holidays:
        holiday = rules.holiday_name(now.astimezone(policy.zone).date())
    return {
        "open": reason is None,
        "reason": reason,
        "holiday": holiday if reason else None,
        "next_start": rules.next_window_start(policy, now) if reason else None,
    }


def progress(s: Session, campaign: Campaign, now: datetime) -> dict[str, Any]:
    """The live progress of a campaign at ``now``:

    - ``funnel``: the totals of ``ivr.store.campaigns.funnel`` (contacts, numbers
      attempted, calls placed, answered, survey started, completed, opted out, response
      rate, outcomes), read from the campaign's counters (``ivr.store.counters``: one
      indexed query, not a recount: this is polled every 2.5 s by each viewer);
    - ``in_progress``: calls on the line now (placed, not yet finished); ``placing``:
      claimed by a dialer, not yet placed;
    - ``calls_per_minute``: calls placed in the last 5 minutes, per minute;
    - ``window``: see ``window_now``; ``queue``: attempts due now, the next due time,
      attempts left (due or being dialled).
    """
    funnel = cstore.live_counts(s, campaign.id)
    # Each of these reads an index range: the calls being dialled, the last 5 minutes.
    in_progress, placing = s.execute(
        sa.select(
            sa.func.count().filter(Attempt.started_at.is_not(None)),
            sa.func.count().filter(Attempt.started_at.is_(None)),
        ).where(Attempt.campaign_id == campaign.id, Attempt.state == AttemptState.DIALING)
    ).one()
    since = now - RATE_WINDOW
    recent = s.scalar(
        sa.select(sa.func.count()).where(
            Attempt.campaign_id == campaign.id,
            Attempt.started_at >= since,
            Attempt.started_at <= now,
        )
    )
    due_now, next_due, left = cstore.due_summary(s, campaign.id, now)
    return {
        "id": campaign.id,
        "name": campaign.name,
        "status": campaign.status.value,
        "status_reason": campaign.status_reason,
        "at": now,
        "funnel": funnel,
        "in_progress": int(in_progress),
        "placing": int(placing),
        "calls_per_minute": round(int(recent or 0) / (RATE_WINDOW.total_seconds() / 60), 1),
        "window": window_now(campaign, now),
        "queue": {"due_now": due_now, "next_due": next_due, "left": left},
    }
