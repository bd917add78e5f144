"""A campaign's public page: what a manager writes on it (audited), and what an anonymous
visitor of its address is shown.

The address is ``/p/<slug>``, an unguessable token made the first time a manager publishes
the page; it stays the campaign's for good (turning the page off and on again keeps it, so
that links on the municipality's website and in pre-announcements keep working), and it
answers only while the page is published. What a visitor is shown comes from the campaign
(the organisation, the caller number, the calling windows, the questions and the opt-out
key of its flow) and from its ``public_info``: never anything about a resident.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr.accounts import audit
from ivr.accounts.audit import Actor, NotFound
from ivr.campaigns import admin_flows
from ivr.campaigns.admin import _find, _scope
from ivr.campaigns.numbers import NumberError, normalise
from ivr.campaigns.public_info import PublicInfo, Question, dumps, loads, questions
from ivr.clock import Clock
from ivr.store.db import reader_for
from ivr.store.models import Campaign
from ivr.store.org_models import InboundLine, Organisation, Role

AUDIT_ACTION = "campaign.public_page"
SLUG_BYTES = 16  # secrets.token_urlsafe(16): 22 characters, 128 random bits


@dataclass(frozen=True)
class Editing:
    """The edit page's view of a campaign's public page."""

    campaign_id: str
    campaign_name: str
    slug: str | None  # None: never published
    info: PublicInfo
    default_language: str


@dataclass(frozen=True)
class Saved:
    slug: str | None
    changed: list[str]  # the fields that changed
    inbound_not_a_line: bool  # the call-in number is none of the organisation's lines


@dataclass(frozen=True)
class PublicView:
    """What the public page shows: the organisation's and the campaign's public facts."""

    slug: str
    org_name: str
    info: PublicInfo
    caller_id: str | None  # E.164
    windows: str
    allow_holidays: bool
    timezone: str
    default_language: str
    questions: list[Question]
    flow_languages: tuple[str, ...]
    opt_out_key: str  # "" when the flow has no opt-out key


def _numbers(values: list[str]) -> set[str]:
    found = set()
    for value in values:
        try:
            found.add(normalise(value))
        except NumberError:
            found.add(value)
    return found


class PublicPages:
    def __init__(self, factory: sessionmaker[Session], clock: Clock) -> None:
        self.factory = factory
        self.reader = reader_for(factory)
        self.clock = clock

    def editing(self, actor: Actor, campaign_id: str) -> Editing:
        """The page as its editor shows it (the manager role; another organisation's
        campaign is NotFound)."""
        org_id = _scope(actor, Role.MANAGER)
        with self.reader() as s:
            campaign = _find(s, org_id, campaign_id)
            return Editing(
                campaign.id,
                campaign.name,
                campaign.public_slug,
                loads(campaign.public_info),
                campaign.default_language.value,
            )

    def save(self, actor: Actor, campaign_id: str, info: PublicInfo) -> Saved:
        """Keep ``info`` (checked by ``public_info.check``); publishing for the first time
        gives the page its address. The audit entry ``campaign.public_page`` lists each
        field that changed, before and after."""
        org_id = _scope(actor, Role.MANAGER)
        now = self.clock()
        with self.factory.begin() as s:
            campaign = _find(s, org_id, campaign_id, lock=True)
            before = loads(campaign.public_info).as_dict()
            after = info.as_dict()
            changed = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
            slug_before = campaign.public_slug
            if info.enabled and campaign.public_slug is None:
                campaign.public_slug = secrets.token_urlsafe(SLUG_BYTES)
            campaign.public_info = dumps(info)
            if changed or campaign.public_slug != slug_before:
                s.flush()
                detail: dict[str, Any] = {"changed": changed, "slug": campaign.public_slug}
                audit.record(
                    s, actor, AUDIT_ACTION, at=now, org_id=campaign.org_id,
                    target_type="campaign", target_id=campaign.id, name=campaign.name,
                    **detail,
                )  # fmt: skip
            lines_unknown = False
            if info.inbound_number and campaign.org_id is not None:
                numbers = s.scalars(
                    sa.select(InboundLine.number).where(
                        InboundLine.org_id == campaign.org_id, InboundLine.enabled.is_(True)
                    )
                ).all()
                lines_unknown = info.inbound_number not in _numbers(list(numbers))
            return Saved(campaign.public_slug, sorted(changed), lines_unknown)

    def view(self, slug: str) -> PublicView:
        """The published page at ``slug`` (anyone may read it); NotFound when there is no
        such page or it is not published."""
        with self.reader() as s:
            row = s.execute(
                sa.select(Campaign, Organisation.name)
                .join(Organisation, Organisation.id == Campaign.org_id)
                .where(Campaign.public_slug == slug)
            ).first()
            if row is None:
                raise NotFound("no such public page")
            campaign, org_name = row
            info = loads(campaign.public_info)
            if not info.enabled:
                raise NotFound("the public page is not published")
            flow = admin_flows.heard(s, campaign)
            return PublicView(
                slug=slug,
                org_name=org_name,
                info=info,
                caller_id=campaign.caller_id,
                windows=campaign.windows,
                allow_holidays=campaign.allow_holidays,
                timezone=campaign.timezone,
                default_language=campaign.default_language.value,
                questions=questions(flow) if flow is not None else [],
                flow_languages=flow.languages if flow is not None else (),
                opt_out_key=flow.keys.opt_out if flow is not None else "",
            )
