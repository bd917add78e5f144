"""Campaign storage: campaigns, their contacts, and the attempts at calling them.

Plain functions on a ``Session``, as in ``ivr.store.repo``: the caller owns the transaction
and these functions flush, so database errors appear at the call. Bulk work (importing
100,000 contacts, scheduling their first attempts, the funnel) is done in SQL, never by
loading every row.

Attempts are the dialer's queue. ``claim_due_attempts`` hands each due attempt to exactly
one telephony worker: on PostgreSQL with ``SELECT … FOR UPDATE SKIP LOCKED`` (workers skip
what another is claiming), on SQLite inside a ``BEGIN IMMEDIATE`` transaction (one writer at
a time). ``(contact_id, attempt_no)`` is unique, so a retry can never be created twice, and
an attempt is finished by a conditional UPDATE, so it can never be counted twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ivr.outcome import ATTEMPT_OUTCOMES, Outcome
from ivr.store import counters
from ivr.store.counters import ANSWERED_OUTCOMES, FUNNEL_COUNTS
from ivr.store.db import BEGIN_IMMEDIATE
from ivr.store.errors import StoreError
from ivr.store.models import (
    Attempt,
    AttemptState,
    Base,
    Campaign,
    CampaignStatus,
    Contact,
    Language,
    UtcDateTime,
    new_id,
    utcnow,
)
from ivr.store.repo import E164, opted_out_among
from ivr.webhooks import events, outbox

__all__ = [
    "ANSWERED_OUTCOMES",
    "FUNNEL_COUNTS",
    "AttemptNotFound",
    "AttemptStateError",
    "CampaignError",
    "CampaignNotFound",
    "ContactRow",
    "add_contacts",
    "add_retry",
    "claim_due_attempts",
    "create_campaign",
    "finish_attempt",
    "funnel",
    "get_campaign",
    "mark_originated",
    "numbers_called_today",
    "recount_matches",
    "release_attempt",
    "schedule_first_attempts",
    "set_status",
    "stale_dialing",
]

log = logging.getLogger(__name__)

LANGUAGES: Final = frozenset(language.value for language in Language)
# Contacts per INSERT statement: 9 parameters each stays far below the limits on bound
# parameters (SQLite 32766, PostgreSQL 65535).
CONTACT_CHUNK: Final = 1000
PHONE_CHUNK: Final = 500  # numbers per IN (...) list
UNKNOWN_AGE_GROUP: Final = "unknown"  # the by_age_group key of contacts without one

# What each status may become. The same status again is always allowed (to change only
# the reason). ``stopped`` is final; a completed campaign may run again (new contacts).
TRANSITIONS: Final[dict[CampaignStatus, frozenset[CampaignStatus]]] = {
    CampaignStatus.DRAFT: frozenset({CampaignStatus.RUNNING, CampaignStatus.STOPPED}),
    CampaignStatus.RUNNING: frozenset(
        {CampaignStatus.PAUSED, CampaignStatus.STOPPED, CampaignStatus.COMPLETED}
    ),
    CampaignStatus.PAUSED: frozenset(
        {CampaignStatus.RUNNING, CampaignStatus.STOPPED, CampaignStatus.COMPLETED}
    ),
    CampaignStatus.COMPLETED: frozenset({CampaignStatus.RUNNING, CampaignStatus.STOPPED}),
    CampaignStatus.STOPPED: frozenset(),
}


# --------------------------------------------------------------------------- errors
class CampaignError(StoreError, ValueError):
    """A campaign or attempt cannot be changed as asked; the message says why."""


class CampaignNotFound(StoreError, LookupError):
    def __init__(self, campaign_id: str) -> None:
        super().__init__(f"no campaign {campaign_id!r}")
        self.campaign_id = campaign_id


class AttemptNotFound(StoreError, LookupError):
    def __init__(self, attempt_id: str) -> None:
        super().__init__(f"no attempt {attempt_id!r}")
        self.attempt_id = attempt_id


class AttemptStateError(CampaignError):
    """The attempt is not in a state that allows the change (finishing it twice, say)."""


# --------------------------------------------------------------------------- rows
@dataclass(frozen=True, slots=True)
class ContactRow:
    """One contact to add: ``phone`` in E.164, ``source_line`` the line of the file."""

    phone: str
    language: str = Language.FI.value
    age_group: str | None = None
    birth_year: int | None = None
    area: str | None = None
    postcode: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    source_line: int = 1


# --------------------------------------------------------------------------- helpers
def _dialect(s: Session) -> str:
    return s.get_bind().dialect.name


def _table(name: str) -> sa.Table:
    return Base.metadata.tables[name]


def _insert(s: Session, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """INSERT with ON CONFLICT support: both backends have it, each with its own class."""
    dialect = _dialect(s)
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"unsupported database {dialect!r}")  # pragma: no cover


def _rowcount(result: sa.Result[Any]) -> int:
    if not isinstance(result, sa.CursorResult):  # pragma: no cover - DML always has one
        raise TypeError("expected a cursor result")
    return int(result.rowcount)


def _campaign(s: Session, campaign_id: str) -> Campaign:
    campaign = s.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignNotFound(campaign_id)
    return campaign


def _attempt(s: Session, attempt_id: str) -> Attempt:
    attempt = s.get(Attempt, attempt_id, populate_existing=True)
    if attempt is None:
        raise AttemptNotFound(attempt_id)
    return attempt


def _describe(attempt: Attempt) -> str:
    text = f"attempt {attempt.attempt_no} to {attempt.phone} ({attempt.id}) is {attempt.state}"
    if attempt.outcome is not None:
        text += f" with outcome {attempt.outcome}"
    return text


T = TypeVar("T")


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --------------------------------------------------------------------------- campaigns
def _int_setting(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CampaignError(
            f"campaign setting {name}: {value!r} is not a whole number >= {minimum}"
        )
    return value


def _check_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings, checked, with a clear error naming the first bad one."""
    checked: dict[str, Any] = {}
    for name, value in settings.items():
        if name in ("max_attempts", "max_concurrent"):
            checked[name] = _int_setting(name, value, 1)
        elif name in ("retry_busy_minutes", "retry_no_answer_minutes", "retry_failed_minutes"):
            checked[name] = _int_setting(name, value, 0)
        elif name == "calls_per_second":
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise CampaignError(f"campaign setting {name}: {value!r} is not a number > 0")
            checked[name] = float(value)
        elif name in ("allow_holidays", "cross_campaign_daily_cap"):
            if not isinstance(value, bool):
                raise CampaignError(f"campaign setting {name}: {value!r} is not true or false")
            checked[name] = value
        elif name == "default_language":
            if value not in LANGUAGES:
                raise CampaignError(
                    f"campaign setting {name}: {value!r} is not one of "
                    f"{', '.join(sorted(LANGUAGES))}"
                )
            checked[name] = Language(value)
        elif name == "timezone":
            try:
                ZoneInfo(str(value))
            except (ZoneInfoNotFoundError, ValueError):
                raise CampaignError(
                    f"campaign setting timezone: {value!r} is not a known time zone "
                    "(like Europe/Helsinki)"
                ) from None
            checked[name] = str(value)
        elif name == "caller_id":
            if value is not None and not (isinstance(value, str) and E164.fullmatch(value)):
                raise CampaignError(
                    f"campaign setting caller_id: {value!r} is not an E.164 number "
                    "(like +35891234567)"
                )
            checked[name] = value
        elif name == "windows":
            if not isinstance(value, str) or not value.strip():
                raise CampaignError(f"campaign setting windows: {value!r} is empty")
            checked[name] = value.strip()
        elif name in ("flow_id", "flow_version", "flow_snapshot", "status_reason"):
            if value is not None and not isinstance(value, str):
                raise CampaignError(f"campaign setting {name}: {value!r} is not text")
            checked[name] = value
        elif name == "price_per_minute":  # euros per billable minute; None: not set
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value < 0
            ):
                raise CampaignError(f"campaign setting {name}: {value!r} is not a price >= 0")
            checked[name] = None if value is None else float(value)
        elif name == "billing_rule":  # "MIN/STEP" (ivr.campaigns.billing)
            from ivr.campaigns.billing import BillingRuleError, parse_rule

            try:
                checked[name] = str(parse_rule(str(value)))
            except BillingRuleError as exc:
                raise CampaignError(f"campaign setting {name}: {exc}") from None
        else:
            raise CampaignError(f"unknown campaign setting {name!r}")
    return checked


def create_campaign(
    s: Session,
    *,
    name: str,
    flow_path: str,
    at: datetime | None = None,
    org_id: str | None = None,
    **settings: Any,
) -> Campaign:
    """A new draft campaign of organisation ``org_id`` (None: a command-line campaign that
    no staff user sees). ``settings`` are column names (``max_attempts=5`` ...).

    A name that another campaign of the same organisation has is refused
    (``CampaignError``); the transaction stays usable (the insert runs in a savepoint).
    """
    clean = name.strip()
    if not 1 <= len(clean) <= 100:
        raise CampaignError(f"campaign name {name!r}: give 1 to 100 characters")
    if not flow_path.strip():
        raise CampaignError("campaign flow_path is empty")
    same_name = sa.select(Campaign.id).where(
        Campaign.name == clean,
        Campaign.org_id.is_(None) if org_id is None else Campaign.org_id == org_id,
    )
    if s.scalar(same_name) is not None:
        raise CampaignError(f"a campaign named {clean!r} exists already")
    campaign = Campaign(
        id=new_id(),
        name=clean,
        org_id=org_id,
        flow_path=flow_path,
        status=CampaignStatus.DRAFT,
        created_at=at or utcnow(),
        **_check_settings(settings),
    )
    try:
        with s.begin_nested():
            s.add(campaign)
            s.flush()
    except sa.exc.IntegrityError:
        if s.scalar(same_name) is not None:
            raise CampaignError(f"a campaign named {clean!r} exists already") from None
        raise
    return campaign


def get_campaign(s: Session, name_or_id: str, org_id: str | None = None) -> Campaign | None:
    """The campaign with this id, else the one with this name (of organisation ``org_id``
    when given); None if neither. A name that several organisations use is refused
    (``CampaignError``: give the id or the organisation)."""
    by_id = s.get(Campaign, name_or_id)
    if by_id is not None and (org_id is None or by_id.org_id == org_id):
        return by_id
    query = sa.select(Campaign).where(Campaign.name == name_or_id)
    if org_id is not None:
        query = query.where(Campaign.org_id == org_id)
    found = s.scalars(query.limit(2)).all()
    if len(found) > 1:
        raise CampaignError(
            f"several organisations have a campaign named {name_or_id!r}: give its id"
        )
    return found[0] if found else None


def set_status(
    s: Session,
    campaign_id: str,
    status: CampaignStatus | str,
    reason: str | None = None,
    *,
    at: datetime,
) -> Campaign:
    """Move a campaign to ``status`` (see ``TRANSITIONS``) with the reason shown to staff.

    Running the first time sets ``started_at``; stopped or completed sets ``stopped_at``.
    Stopping cancels the attempts still due (those being dialled finish as they end).
    """
    new = CampaignStatus(status)
    campaign = _campaign(s, campaign_id)
    old = campaign.status
    if new is not old and new not in TRANSITIONS[old]:
        allowed = ", ".join(sorted(TRANSITIONS[old])) or "nothing: it is final"
        raise CampaignError(
            f"campaign {campaign.name!r} is {old}; it cannot become {new} (it can become: "
            f"{allowed})"
        )
    now = at
    campaign.status = new
    campaign.status_reason = reason
    if new is CampaignStatus.RUNNING:
        campaign.started_at = campaign.started_at or now
        campaign.stopped_at = None
    elif new in (CampaignStatus.STOPPED, CampaignStatus.COMPLETED) and new is not old:
        campaign.stopped_at = now
    if new is CampaignStatus.STOPPED:
        s.execute(
            sa.update(Attempt)
            .where(Attempt.campaign_id == campaign_id, Attempt.state == AttemptState.DUE)
            .values(state=AttemptState.CANCELLED)
            .execution_options(synchronize_session=False)
        )
    if new is CampaignStatus.COMPLETED and new is not old:  # webhooks: in this transaction
        data = {"campaign_id": campaign.id, "status": new.value}
        outbox.emit(s, campaign.org_id, events.CAMPAIGN_FINISHED, data, at=now)
    s.flush()
    return campaign


# --------------------------------------------------------------------------- contacts
def _contact_values(row: ContactRow) -> dict[str, Any]:
    if not E164.fullmatch(row.phone):
        raise ValueError(
            f"contact from line {row.source_line}: phone {row.phone!r} is not E.164 "
            "(like +358401234567)"
        )
    if row.language not in LANGUAGES:
        raise ValueError(
            f"contact from line {row.source_line}: language {row.language!r} is not one of "
            f"{', '.join(sorted(LANGUAGES))}"
        )
    if row.source_line < 1:
        raise ValueError(f"contact {row.phone}: source_line {row.source_line} is not >= 1")
    return {
        "id": new_id(),
        "phone": row.phone,
        "language": row.language,
        "age_group": row.age_group,
        "birth_year": row.birth_year,
        "area": row.area,
        "postcode": row.postcode,
        "attributes": json.dumps(row.attributes, ensure_ascii=False) if row.attributes else "{}",
        "source_line": row.source_line,
    }


# PostgreSQL: one row per element of nine arrays (9 parameters for a whole chunk, a short
# statement psycopg prepares once), instead of a VALUES list with a parameter per value,
# which psycopg must parse again for every chunk (4 times slower).
_PG_ADD_CONTACTS: Final = sa.text(
    "INSERT INTO contacts (campaign_id, created_at, id, phone, language, age_group, "
    "birth_year, area, postcode, attributes, source_line) "
    "SELECT :campaign_id, :created_at, t.* FROM unnest("
    "CAST(:id AS varchar[]), CAST(:phone AS varchar[]), CAST(:language AS varchar[]), "
    "CAST(:age_group AS varchar[]), CAST(:birth_year AS integer[]), CAST(:area AS text[]), "
    "CAST(:postcode AS varchar[]), CAST(:attributes AS text[]), CAST(:source_line AS integer[])"
    ") AS t(id, phone, language, age_group, birth_year, area, postcode, attributes, "
    "source_line) "
    "ON CONFLICT (campaign_id, phone) DO NOTHING RETURNING id"
).bindparams(sa.bindparam("created_at", type_=UtcDateTime()))
_CONTACT_ARRAYS: Final = ("id", "phone", "language", "age_group", "birth_year", "area",
                          "postcode", "attributes", "source_line")  # fmt: skip


def add_contacts(
    s: Session, campaign_id: str, contacts: Iterable[ContactRow], *, at: datetime | None = None
) -> tuple[int, int]:
    """Insert contacts in bulk; returns ``(added, duplicates)``.

    A number already in the campaign (or twice in ``contacts``) is a duplicate and is not
    added again (INSERT … ON CONFLICT DO NOTHING): importing the same list twice adds nothing.
    A contact that is not valid (not E.164, unknown language) raises ``ValueError`` naming
    its source line, before anything of its chunk is written.
    """
    _campaign(s, campaign_id)
    created_at = at or utcnow()
    postgres = _dialect(s) == "postgresql"
    contacts_table = _table("contacts")
    stmt = (
        _insert(s, contacts_table)
        .values(
            campaign_id=sa.literal(campaign_id, sa.String(36)),
            created_at=sa.literal(created_at, UtcDateTime()),
        )
        .on_conflict_do_nothing(index_elements=["campaign_id", "phone"])
        .returning(contacts_table.c.id)
    )
    given = added = 0
    for chunk in _chunks(contacts, CONTACT_CHUNK):
        rows = [_contact_values(row) for row in chunk]
        given += len(rows)
        if postgres:
            arrays = {name: [row[name] for row in rows] for name in _CONTACT_ARRAYS}
            params = {"campaign_id": campaign_id, "created_at": created_at, **arrays}
            added += len(s.execute(_PG_ADD_CONTACTS, params).all())
        else:
            # executemany with RETURNING: SQLAlchemy sends multi-row VALUES
            # ("insertmanyvalues") and gives back only the rows that were inserted.
            added += len(s.execute(stmt, rows).all())
    counters.add(s, campaign_id, "contacts", added)
    return added, given - added


# --------------------------------------------------------------------------- attempts
# A version 4 UUID made by SQLite itself, so that INSERT … SELECT can give ids.
_SQLITE_UUID4 = (
    "lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (random() & 3), 1) || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))"
)


def _sql_uuid(s: Session) -> sa.ColumnElement[str]:
    if _dialect(s) == "postgresql":
        return sa.cast(sa.func.gen_random_uuid(), sa.String(36))
    return sa.literal_column(_SQLITE_UUID4, sa.String(36))


FIRST_ATTEMPT_COLUMNS: Final = [
    "id",
    "campaign_id",
    "contact_id",
    "phone",
    "attempt_no",
    "state",
    "due_at",
    "created_at",
]


def schedule_first_attempts(
    s: Session, campaign_id: str, due_at: datetime, *, at: datetime | None = None
) -> int:
    """Attempt 1 (due at ``due_at``) for every contact of the campaign that has no attempt
    yet; returns how many were created. Idempotent, also against a concurrent run."""
    _campaign(s, campaign_id)
    attempts, contacts = _table("attempts"), _table("contacts")
    has_attempt = sa.exists().where(attempts.c.contact_id == contacts.c.id)
    select = sa.select(
        _sql_uuid(s),
        contacts.c.campaign_id,
        contacts.c.id,
        contacts.c.phone,
        sa.literal(1, sa.Integer),
        sa.literal(AttemptState.DUE.value, sa.String(16)),
        sa.literal(due_at, UtcDateTime()),
        sa.literal(at or due_at, UtcDateTime()),
    ).where(contacts.c.campaign_id == campaign_id, ~has_attempt)
    stmt = (
        _insert(s, attempts)
        .from_select(FIRST_ATTEMPT_COLUMNS, select)
        .on_conflict_do_nothing(index_elements=["contact_id", "attempt_no"])
    )
    # preserve_rowcount: psycopg forgets the count of an INSERT once its cursor is closed.
    return _rowcount(s.execute(stmt.execution_options(preserve_rowcount=True)))


def _begin_immediate(s: Session) -> None:
    """SQLite: the claim's transaction holds the write lock from its start (every SQLite
    transaction begins IMMEDIATE, see ivr.store.db), so no other writer claims between our
    read and our update."""
    options: dict[str, Any] = {BEGIN_IMMEDIATE: True}
    s.connection(execution_options=options)


def claim_due_attempts(
    s: Session,
    *,
    node: str,
    now: datetime,
    limit: int,
    campaign_ids: Sequence[str] | None = None,
) -> list[Attempt]:
    """Claim up to ``limit`` due attempts (``due_at <= now``) of running campaigns for
    ``node``, the earliest first: they become ``dialing``, ``claimed_by=node``.

    No two callers ever get the same attempt: PostgreSQL skips rows another transaction has
    locked (``FOR UPDATE SKIP LOCKED``); on SQLite the claim runs as the only writer
    (its transaction began with ``BEGIN IMMEDIATE``).
    """
    if limit <= 0 or (campaign_ids is not None and not campaign_ids):
        return []
    postgres = _dialect(s) == "postgresql"
    if not postgres:
        _begin_immediate(s)
    running = sa.select(Campaign.id).where(Campaign.status == CampaignStatus.RUNNING)
    if campaign_ids is not None:
        running = running.where(Campaign.id.in_(list(campaign_ids)))
    picked = (
        sa.select(Attempt.id)
        .where(
            Attempt.state == AttemptState.DUE,
            Attempt.due_at <= now,
            Attempt.campaign_id.in_(running),
        )
        .order_by(Attempt.due_at, Attempt.id)
        .limit(limit)
    )
    if postgres:
        picked = picked.with_for_update(skip_locked=True)
    # A CTE (run once, not inlined: it locks rows), then the UPDATE of exactly those rows.
    picked_cte = picked.cte("picked")
    claimed = s.scalars(
        sa.update(Attempt)
        .where(Attempt.id.in_(sa.select(picked_cte.c.id)), Attempt.state == AttemptState.DUE)
        .values(state=AttemptState.DIALING, claimed_by=node, claimed_at=now)
        .returning(Attempt)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).all()
    return sorted(claimed, key=lambda a: (a.due_at, a.id))


def mark_originated(
    s: Session, attempt_id: str, *, channel_id: str, started_at: datetime
) -> Attempt:
    """The dialer placed the call of a claimed attempt: its channel and start time.

    From now on the attempt is in flight: ``release_attempt`` refuses it, and
    ``numbers_called_today`` counts it.
    """
    mark_originated_many(s, {attempt_id: channel_id}, started_at=started_at)
    return _attempt(s, attempt_id)


def mark_originated_many(s: Session, channels: dict[str, str], *, started_at: datetime) -> None:
    """``mark_originated`` for several claimed attempts (attempt id -> channel id) at once."""
    attempts = _table("attempts")
    at = started_at
    contact_ids = s.scalars(
        sa.select(attempts.c.contact_id).where(attempts.c.id.in_(list(channels)))
    ).all()
    with counters.change(s, contact_ids):
        _originate(s, channels, at)


def _originate(s: Session, channels: dict[str, str], at: datetime) -> None:
    attempts = _table("attempts")
    for attempt_id, channel_id in channels.items():
        done = s.execute(
            sa.update(attempts)
            .where(
                attempts.c.id == attempt_id,
                attempts.c.state == AttemptState.DIALING.value,
            )
            .values(channel_id=channel_id, started_at=at)
        )
        if not done.rowcount:  # type: ignore[attr-defined]
            raise AttemptStateError(
                f"{_describe(_attempt(s, attempt_id))}; only a dialing attempt is originated"
            )


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def finish_attempt(
    s: Session,
    attempt_id: str,
    *,
    outcome: Outcome | str,
    cause: int | None = None,
    sip_code: int | None = None,
    started_at: datetime | None = None,
    answered_at: datetime | None = None,
    ended_at: datetime | None = None,
    call_id: str | None = None,
    detail: str | None = None,
) -> Attempt:
    """Give an attempt its outcome (state ``done``), with ring and talk time.

    Only a ``dialing`` attempt can be finished, or a ``due`` one with outcome ``skipped``
    (a dial-time rule said no; ``detail`` names it). Finishing an attempt again raises
    ``AttemptStateError``: the conditional UPDATE makes that hold for concurrent finishers.
    Times not given keep what the attempt has (``started_at`` from ``mark_originated``).
    ``ring_seconds`` runs from the start to the answer (or the end, unanswered);
    ``talk_seconds`` from the answer to the end.
    """
    final = Outcome(outcome)
    if final not in ATTEMPT_OUTCOMES:
        raise ValueError(f"{final.value!r} is not the outcome of an attempt")
    allowed = (
        (AttemptState.DUE, AttemptState.DIALING)
        if final is Outcome.SKIPPED
        else (AttemptState.DIALING,)
    )
    attempt = _attempt(s, attempt_id)
    if attempt.state not in allowed:
        raise AttemptStateError(
            f"{_describe(attempt)}; it cannot be finished as {final} (only a "
            f"{' or '.join(allowed)} attempt can)"
        )
    started = started_at or attempt.started_at
    answered = answered_at or attempt.answered_at
    ended = ended_at or attempt.ended_at
    if started and answered and answered < started:
        raise ValueError(f"attempt {attempt_id}: answered at {answered} before it started")
    reference = answered or started
    if ended and reference and ended < reference:
        raise ValueError(f"attempt {attempt_id}: ended at {ended} before it started or answered")
    values: dict[str, Any] = {
        "state": AttemptState.DONE,
        "outcome": final,
        "outcome_detail": detail,
        "cause": cause,
        "sip_code": sip_code,
        "started_at": started,
        "answered_at": answered,
        "ended_at": ended,
        "ring_seconds": _seconds(started, answered or ended),
        "talk_seconds": _seconds(answered, ended),
    }
    if call_id is not None:
        values["call_id"] = call_id
    with counters.change(s, [attempt.contact_id]):
        finished = s.scalars(
            sa.update(Attempt)
            .where(Attempt.id == attempt_id, Attempt.state.in_(allowed))
            .values(values)
            .returning(Attempt.id)
            .execution_options(synchronize_session=False)
        ).one_or_none()
    if finished is None:  # another worker finished it between our read and our update
        raise AttemptStateError(f"{_describe(_attempt(s, attempt_id))}; finished twice")
    # Read back (not from RETURNING: SQLite returns a whole REAL as an integer there).
    return _attempt(s, attempt_id)


def add_retry(
    s: Session, attempt: Attempt, due_at: datetime, *, at: datetime | None = None
) -> Attempt:
    """The next attempt (``attempt_no + 1``) for a finished attempt's contact, due at
    ``due_at``. If it exists already (a retry made twice), that one is returned unchanged.

    Whether a retry is allowed (attempts cap, outcome) is the dialer's rule, not checked here.
    """
    if attempt.state is not AttemptState.DONE:
        raise AttemptStateError(f"{_describe(attempt)}; only a finished attempt is retried")
    attempts = _table("attempts")
    number = attempt.attempt_no + 1
    s.execute(
        _insert(s, attempts)
        .values(
            id=new_id(),
            campaign_id=attempt.campaign_id,
            contact_id=attempt.contact_id,
            phone=attempt.phone,
            attempt_no=number,
            state=AttemptState.DUE.value,
            due_at=due_at,
            created_at=at or attempt.ended_at or due_at,
        )
        .on_conflict_do_nothing(index_elements=["contact_id", "attempt_no"])
    )
    return s.scalars(
        sa.select(Attempt)
        .where(Attempt.contact_id == attempt.contact_id, Attempt.attempt_no == number)
        .execution_options(populate_existing=True)
    ).one()


def release_attempt(s: Session, attempt_id: str) -> Attempt:
    """Give a claimed attempt that was never originated back to the queue (``due``)."""
    released = s.scalars(
        sa.update(Attempt)
        .where(
            Attempt.id == attempt_id,
            Attempt.state == AttemptState.DIALING,
            Attempt.channel_id.is_(None),
        )
        .values(state=AttemptState.DUE, claimed_by=None, claimed_at=None)
        .returning(Attempt)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).one_or_none()
    if released is None:
        attempt = _attempt(s, attempt_id)
        if attempt.channel_id is not None:
            raise AttemptStateError(
                f"{_describe(attempt)}; it was originated (channel {attempt.channel_id}): "
                "finish it instead of releasing it"
            )
        raise AttemptStateError(f"{_describe(attempt)}; only a dialing attempt is released")
    return released


def return_unplaced(s: Session, attempt_id: str, due_at: datetime | None = None) -> bool:
    """An attempt marked originated whose call never reached the network (Asterisk
    unreachable, the trunk refused it, the worker died before the originate) goes back to
    the queue unspent: no start time, so it counts neither as an attempt nor as "called
    today". ``due_at``: when to try again (None: keep its due time). False if it was not
    dialling any more."""
    values: dict[str, Any] = {
        "state": AttemptState.DUE,
        "channel_id": None,
        "started_at": None,
        "claimed_by": None,
        "claimed_at": None,
    }
    if due_at is not None:
        values["due_at"] = due_at
    contact_id = s.scalar(
        sa.select(Attempt.contact_id).where(
            Attempt.id == attempt_id, Attempt.state == AttemptState.DIALING
        )
    )
    if contact_id is None:
        return False
    with counters.change(s, [contact_id]):  # placed, it counted; back in the queue, not
        done = s.execute(
            sa.update(Attempt)
            .where(Attempt.id == attempt_id, Attempt.state == AttemptState.DIALING)
            .values(values)
            .execution_options(synchronize_session=False)
        )
    return bool(_rowcount(done))


def running_campaigns(s: Session) -> list[Campaign]:
    return list(s.scalars(sa.select(Campaign).where(Campaign.status == CampaignStatus.RUNNING)))


def due_summary(s: Session, campaign_id: str, now: datetime) -> tuple[int, datetime | None, int]:
    """(attempts due now, the earliest due time, attempts due or being dialled)."""
    due_now, next_due, left = s.execute(
        sa.select(
            sa.func.count().filter(
                sa.and_(Attempt.state == AttemptState.DUE, Attempt.due_at <= now)
            ),
            sa.func.min(Attempt.due_at).filter(Attempt.state == AttemptState.DUE),
            sa.func.count(),
        ).where(  # only the attempts left: an index range, not the campaign's history
            Attempt.campaign_id == campaign_id,
            Attempt.state.in_((AttemptState.DUE, AttemptState.DIALING)),
        )
    ).one()
    return int(due_now), next_due, int(left)


def put_off(s: Session, attempt_id: str, due_at: datetime) -> None:
    """A claimed attempt that a dial-time rule holds back (never originated): due again at
    ``due_at``."""
    s.execute(
        sa.update(Attempt)
        .where(
            Attempt.id == attempt_id,
            Attempt.state == AttemptState.DIALING,
            Attempt.channel_id.is_(None),
        )
        .values(state=AttemptState.DUE, due_at=due_at, claimed_by=None, claimed_at=None)
    )


def attempts_made(s: Session, contact_id: str) -> int:
    """The contact's finished attempts that were dialled (not skipped)."""
    return int(
        s.scalar(
            sa.select(sa.func.count())
            .select_from(Attempt)
            .where(
                Attempt.contact_id == contact_id,
                Attempt.state == AttemptState.DONE,
                Attempt.outcome != Outcome.SKIPPED,
            )
        )
        or 0
    )


def stale_dialing(s: Session, node: str) -> list[Attempt]:
    """Attempts this node left in ``dialing`` (after a crash: reconcile each one)."""
    return list(
        s.scalars(
            sa.select(Attempt)
            .where(Attempt.state == AttemptState.DIALING, Attempt.claimed_by == node)
            .order_by(Attempt.claimed_at, Attempt.id)
        )
    )


def adopt_dialing(s: Session, *, owner: str, node: str, limit: int | None = None) -> list[Attempt]:
    """Make ``node`` the claimant of the attempts ``owner`` left in ``dialing`` and return
    them (oldest claim first), for ``node`` to settle in the same transaction.

    ``owner == node``: a restarted node reconciling its own attempts; otherwise a node
    taking over the attempts of one that is down (``ivr.campaigns.takeover``). The UPDATE
    is guarded (``claimed_by = owner AND state = dialing``, re-checked on the locked row by
    PostgreSQL; on SQLite the transaction is the only writer), so of two nodes adopting
    the same attempts at once, each attempt goes to exactly one: the other gets none.
    ``limit``: at most this many (a bounded pass; the rest the next time).
    """
    picked = (
        sa.select(Attempt.id)
        .where(Attempt.state == AttemptState.DIALING, Attempt.claimed_by == owner)
        .order_by(Attempt.claimed_at, Attempt.id)
    )
    if limit is not None:
        picked = picked.limit(limit)
    picked_cte = picked.cte("adopted")
    adopted = s.scalars(
        sa.update(Attempt)
        .where(
            Attempt.id.in_(sa.select(picked_cte.c.id)),
            Attempt.state == AttemptState.DIALING,
            Attempt.claimed_by == owner,
        )
        .values(claimed_by=node)
        .returning(Attempt)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).all()
    return sorted(adopted, key=lambda a: (a.claimed_at or a.due_at, a.id))


def numbers_called_today(
    s: Session, phones: Iterable[str], day_start_utc: datetime, exclude_campaign_id: str
) -> set[str]:
    """Which of ``phones`` another campaign has called since ``day_start_utc``: an attempt
    started then or later, or one being dialled now (claimed then or later)."""
    wanted = sorted(set(phones))
    called: set[str] = set()
    for chunk in _chunks(wanted, PHONE_CHUNK):
        called.update(
            s.scalars(
                sa.select(Attempt.phone)
                .where(
                    Attempt.phone.in_(chunk),
                    Attempt.campaign_id != exclude_campaign_id,
                    sa.or_(
                        Attempt.started_at >= day_start_utc,
                        sa.and_(
                            Attempt.state == AttemptState.DIALING,
                            Attempt.claimed_at >= day_start_utc,
                        ),
                    ),
                )
                .distinct()
            )
        )
    return called


@dataclass(frozen=True)
class DialFacts:
    """What the dial-time rules need to know about one claimed attempt."""

    attempts_made: int  # earlier dialled attempts on this number in this campaign
    last_attempt_at: datetime | None
    opted_out: bool
    unallocated_before: bool  # any campaign found the number unallocated
    called_today_elsewhere: bool
    language: str | None  # the contact's


def dial_facts(
    s: Session,
    attempts: Sequence[Attempt],
    *,
    campaign_id: str,
    day_start: datetime,
    daily_cap: bool,
) -> dict[str, DialFacts]:
    """The dial-time facts of a claimed batch (attempt id -> facts), in four queries for
    the whole batch: finished attempts on the numbers, the do-not-call list, the numbers
    called today by other campaigns (only if the daily cap applies), the languages."""
    phones = sorted({a.phone for a in attempts})
    history: dict[str, list[sa.Row[Any]]] = {phone: [] for phone in phones}
    for chunk in _chunks(phones, PHONE_CHUNK):
        for row in s.execute(
            sa.select(
                Attempt.outcome, Attempt.started_at, Attempt.campaign_id, Attempt.phone
            ).where(Attempt.phone.in_(chunk), Attempt.state == AttemptState.DONE)
        ):
            history[row.phone].append(row)
    opted_out = opted_out_among(s, phones)
    elsewhere = numbers_called_today(s, phones, day_start, campaign_id) if daily_cap else set()
    languages = {
        contact_id: language.value
        for contact_id, language in s.execute(
            sa.select(Contact.id, Contact.language).where(
                Contact.id.in_([a.contact_id for a in attempts])
            )
        )
    }
    facts = {}
    for attempt in attempts:
        rows = history[attempt.phone]
        mine = [
            h for h in rows if h.campaign_id == campaign_id and h.outcome is not Outcome.SKIPPED
        ]
        facts[attempt.id] = DialFacts(
            attempts_made=len(mine),
            last_attempt_at=max((h.started_at for h in mine if h.started_at), default=None),
            opted_out=attempt.phone in opted_out,
            unallocated_before=any(h.outcome is Outcome.UNALLOCATED for h in rows),
            called_today_elsewhere=attempt.phone in elsewhere,
            language=languages.get(attempt.contact_id),
        )
    return facts


# --------------------------------------------------------------------------- the funnel
def _empty_block() -> dict[str, Any]:
    block: dict[str, Any] = dict.fromkeys(FUNNEL_COUNTS, 0)
    block["outcomes"] = dict.fromkeys((o.value for o in ATTEMPT_OUTCOMES), 0)
    return block


def _add_into(block: dict[str, Any], counts: dict[str, int], outcomes: dict[str, int]) -> None:
    for key, value in counts.items():
        block[key] += value
    for key, value in outcomes.items():
        block["outcomes"][key] += value


def _finish_block(block: dict[str, Any]) -> dict[str, Any]:
    contacts = block["contacts"]
    block["response_rate"] = block["completed"] / contacts if contacts else 0.0
    return block


def funnel(s: Session, campaign_id: str) -> dict[str, Any]:
    """The campaign's funnel, counted in SQL (grouped by language and age group):

    - ``contacts``; ``numbers_attempted``: contacts with at least one attempt placed (in
      flight now, or finished and not ``skipped``); ``calls_placed``: those attempts;
    - ``answered``: finished attempts with ``answered_at`` (or an answered outcome);
      ``survey_started``: answered attempts whose call has at least one answer;
    - ``completed``, ``opted_out``: contacts with an attempt of that outcome;
    - ``response_rate``: completed / contacts; ``outcomes``: finished attempts per outcome
      (every outcome present, 0 when none);
    - ``by_language`` (fi, sv, en always present) and ``by_age_group`` (the groups the
      contacts have; ``"unknown"`` for none): the same keys for each part.
    """
    _campaign(s, campaign_id)
    done = counters.done()
    group = (Contact.language, Contact.age_group)

    counts: dict[tuple[str, str], dict[str, int]] = {}
    for language, age_group, number in s.execute(
        sa.select(*group, sa.func.count())
        .where(Contact.campaign_id == campaign_id)
        .group_by(*group)
    ):
        key = (Language(language).value, age_group or UNKNOWN_AGE_GROUP)
        counts.setdefault(key, dict.fromkeys(FUNNEL_COUNTS, 0))["contacts"] += int(number)

    columns = counters.funnel_columns()
    stats = sa.select(*group, *(column for _, column in columns))
    for row in s.execute(
        stats.select_from(Attempt)
        .join(Contact, Contact.id == Attempt.contact_id)
        .where(Attempt.campaign_id == campaign_id)
        .group_by(*group)
    ):
        key = (Language(row[0]).value, row[1] or UNKNOWN_AGE_GROUP)
        entry = counts.setdefault(key, dict.fromkeys(FUNNEL_COUNTS, 0))
        for (name, _), value in zip(columns, row[2:], strict=True):
            entry[name] += int(value)

    outcomes: dict[tuple[str, str], dict[str, int]] = {}
    for language, age_group, outcome, number in s.execute(
        sa.select(*group, Attempt.outcome, sa.func.count())
        .select_from(Attempt)
        .join(Contact, Contact.id == Attempt.contact_id)
        .where(Attempt.campaign_id == campaign_id, done)
        .group_by(*group, Attempt.outcome)
    ):
        key = (Language(language).value, age_group or UNKNOWN_AGE_GROUP)
        outcomes.setdefault(key, {})[Outcome(outcome).value] = int(number)

    total = _empty_block()
    by_language = {language.value: _empty_block() for language in Language}
    by_age_group: dict[str, dict[str, Any]] = {}
    for key in sorted(counts.keys() | outcomes.keys()):
        language, age_group = key
        entry = counts.get(key, dict.fromkeys(FUNNEL_COUNTS, 0))
        per_outcome = outcomes.get(key, {})
        _add_into(total, entry, per_outcome)
        _add_into(by_language[language], entry, per_outcome)
        _add_into(by_age_group.setdefault(age_group, _empty_block()), entry, per_outcome)

    result = _finish_block(total)
    result["by_language"] = {k: _finish_block(v) for k, v in by_language.items()}
    result["by_age_group"] = {k: _finish_block(v) for k, v in sorted(by_age_group.items())}
    return result


def live_counts(s: Session, campaign_id: str) -> dict[str, Any]:
    """The funnel's totals (no breakdown) from the campaign's counters (``ivr.store.counters``):
    one indexed query, however large the campaign."""
    _campaign(s, campaign_id)
    return counters.read(s, [campaign_id])[campaign_id]


def recount_matches(s: Session, campaign_id: str) -> bool:
    """Whether the campaign's counters equal a full recount (``funnel``); the differences are
    logged."""
    kept = live_counts(s, campaign_id)
    recount = funnel(s, campaign_id)
    wanted = {k: recount[k] for k in (*FUNNEL_COUNTS, "outcomes", "response_rate")}
    if kept == wanted:
        return True
    log.error("campaign %s: counters %s, recount %s", campaign_id, kept, wanted)
    return False
