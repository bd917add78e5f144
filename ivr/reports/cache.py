"""The campaign report's heavy aggregates, kept per campaign (``report_aggregates``) and
used while the campaign's data have not changed.

Counting a campaign's contact groups, answers and talk time (``ivr.reports.queries``)
takes seconds at hundreds of thousands of contacts; reading them back takes a millisecond.
A stored count is used when its *fingerprint* matches the campaign's now, made of what a
report's counts can depend on, each read with one indexed query:

- the campaign's counters (``ivr.store.counters``: kept in the same transaction as every
  contact import, every call placed or released, every attempt finished — the writers
  that change the contacts' groups, which calls count as respondents, and talk time);
- its status and billing rule (the talk time is counted under the rule);
- while any of its attempts is in flight, the newest answer's id (of any call): answers
  are saved during a call, before its attempt finishes and the counters move;
- ``VERSION`` of what is counted (a change of the queries counts everything anew).

Otherwise the report is counted now and stored (an upsert in its own short write
transaction, after the reading one: concurrent counters of one campaign both succeed, the
last one's row stays). The themes (transcripts and tags: cheap, and changed by reviewers
without touching the counters) and the pure parts of the report are always made now.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from ivr.accounts.audit import NotFound
from ivr.clock import Clock
from ivr.reports import build
from ivr.reports.aggregates import Aggregates, dumps, loads
from ivr.reports.model import CampaignReport
from ivr.store.counters import CampaignCounter
from ivr.store.db import reader_for
from ivr.store.models import Answer, Attempt, AttemptState, Base, Campaign
from ivr.store.work_models import ReportAggregate

log = logging.getLogger(__name__)

VERSION = 1  # of the counted aggregates (``build.count_aggregates``)


@dataclass(frozen=True, slots=True)
class Counted:
    """Aggregates counted now, to be stored (``save``)."""

    campaign_id: str
    fingerprint: str
    aggregates: Aggregates
    at: datetime


def fingerprint(s: Session, campaign: Campaign) -> str:
    """What the campaign's aggregates depend on, hashed (see the module's doc)."""
    counts = s.execute(
        sa.select(CampaignCounter.key, CampaignCounter.n)
        .where(CampaignCounter.campaign_id == campaign.id)
        .order_by(CampaignCounter.key)
    ).all()
    # min(), not LIMIT 1: with one campaign's statistics SQLite would scan the table for
    # a LIMIT; the aggregate takes the (campaign_id, state, due_at) index's first entry.
    in_flight = s.scalar(
        sa.select(sa.func.min(Attempt.due_at)).where(
            Attempt.campaign_id == campaign.id, Attempt.state == AttemptState.DIALING
        )
    )
    newest_answer = s.scalar(sa.select(sa.func.max(Answer.id))) if in_flight else None
    parts = {
        "version": VERSION,
        "status": str(campaign.status),
        "billing_rule": campaign.billing_rule,
        "counters": [[key, int(n)] for key, n in counts],
        "newest_answer": newest_answer,
    }
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def load(s: Session, campaign_id: str, wanted: str) -> tuple[Aggregates, datetime] | None:
    """The stored aggregates and when they were counted, if stored under ``wanted``."""
    row = s.execute(
        sa.select(ReportAggregate.fingerprint, ReportAggregate.computed_at, ReportAggregate.data)
        .where(ReportAggregate.campaign_id == campaign_id)
    ).one_or_none()  # fmt: skip
    if row is None or row[0] != wanted:
        return None
    try:
        return loads(row[2]), row[1]
    except ValueError as exc:
        log.warning("campaign %s: stored report aggregates unreadable (%s)", campaign_id, exc)
        return None


def save(factory: sessionmaker[Session], counted: Counted | None) -> None:
    """Store ``counted`` (None: nothing to store) in a transaction of its own. A failure
    (the campaign deleted meanwhile, a database too busy) is logged, not raised: the
    report was made; the next one counts again."""
    if counted is None:
        return
    table = Base.metadata.tables[ReportAggregate.__tablename__]
    values = {
        "campaign_id": counted.campaign_id,
        "fingerprint": counted.fingerprint,
        "computed_at": counted.at,
        "data": dumps(counted.aggregates),
    }
    try:
        with factory.begin() as s:
            dialect = s.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            stmt = insert(table).values(values)
            s.execute(
                stmt.on_conflict_do_update(
                    index_elements=[table.c.campaign_id],
                    set_={
                        "fingerprint": stmt.excluded.fingerprint,
                        "computed_at": stmt.excluded.computed_at,
                        "data": stmt.excluded.data,
                    },
                )
            )
    except (sa.exc.OperationalError, sa.exc.IntegrityError) as exc:
        log.warning("campaign %s: report aggregates not stored (%s)", counted.campaign_id, exc)


def report(
    s: Session,
    campaign_id: str,
    *,
    clock: Clock,
    language: str | None = None,
    per_contact_weights: bool = False,
) -> tuple[CampaignReport, Counted | None]:
    """The campaign's report from the stored aggregates when they are current, else
    counted now; and what to ``save`` (None when nothing new was counted). ``s``: a
    reading session (the caller has scoped ``campaign_id`` to the actor)."""
    campaign = s.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("campaign")
    current = fingerprint(s, campaign)  # before counting: a later change must not hide
    found = load(s, campaign.id, current)
    counted = None
    if found is None:
        at = clock()
        counted = Counted(campaign.id, current, build.count_aggregates(s, campaign), at)
        found = (counted.aggregates, at)
    made = build.campaign_report(
        s, campaign.id, language=language, per_contact_weights=per_contact_weights,
        aggregates=found[0], as_of=found[1],
    )  # fmt: skip
    return made, counted


def cached_report(
    factory: sessionmaker[Session],
    campaign_id: str,
    *,
    clock: Clock,
    language: str | None = None,
    per_contact_weights: bool = False,
) -> CampaignReport:
    """``report`` in a reading session of ``factory``'s database, then ``save``: the
    report of an id already scoped (the CLI's JSON; it warms the page's cache)."""
    with reader_for(factory)() as s:
        made, counted = report(
            s, campaign_id, clock=clock, language=language,
            per_contact_weights=per_contact_weights,
        )  # fmt: skip
    save(factory, counted)
    return made
