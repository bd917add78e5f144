"""Campaign counters: the numbers of a campaign's live progress, kept up to date in the same
transaction as the changes they count, so that reading them costs one indexed query however
large the campaign (the full recount, ``ivr.store.campaigns.funnel``, scans every contact
and attempt: half a second for 100,000 contacts on SQLite).

One row per campaign and key (``campaign_counters``): the funnel's counts (``contacts``,
``numbers_attempted``, ``calls_placed``, ``answered``, ``survey_started``, ``completed``,
``opted_out``) and ``outcome:<outcome>`` per final outcome. A missing row is 0.

How a writer keeps them exact: ``change`` counts the affected contacts' attempts (all of
them: a contact has a handful) before and after the change, with the same definitions as
the funnel, and records the difference (on PostgreSQL with those attempts locked first, so
no concurrent writer changes them between the two counts). The differences of a
transaction are added up in the session and written just before it commits, as
``n = n + :d`` (an upsert), one statement with the rows in key order: concurrent writers
(two telephony workers on PostgreSQL) never lose an update, each holds the counter rows'
locks only while it commits, and they take them in the same order (no deadlock). A
rollback discards them. (A savepoint that rolls back must not contain counted writes;
none does.) Writes that cannot change a count need no tally: new due attempts
(``schedule_first_attempts``, ``add_retry``), claims, ``put_off`` and ``release_attempt``
(an attempt without a channel has no start time: it was never placed) and cancelling what
is due (``set_status``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from ivr.outcome import ATTEMPT_OUTCOMES, FLOW_ENDS, Outcome
from ivr.store.models import Answer, Attempt, AttemptState, Base, Contact

FUNNEL_COUNTS: Final = (
    "contacts",
    "numbers_attempted",
    "calls_placed",
    "answered",
    "survey_started",
    "completed",
    "opted_out",
)
OUTCOME_PREFIX: Final = "outcome:"
# Outcomes of an answered call (also when the dialer did not record answered_at).
ANSWERED_OUTCOMES: Final = tuple(o for o in ATTEMPT_OUTCOMES if o in FLOW_ENDS)
CONTACT_CHUNK: Final = 500  # contact ids per IN (...) list
_PENDING: Final = "ivr.campaign_counters"  # Session.info key: (campaign id, key) -> delta


class CampaignCounter(Base):
    """One number of a campaign's live progress (see the module's doc)."""

    __tablename__ = "campaign_counters"

    campaign_id: Mapped[str] = mapped_column(
        sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    n: Mapped[int] = mapped_column(sa.BigInteger, default=0)


def outcome_key(outcome: Outcome) -> str:
    return OUTCOME_PREFIX + outcome.value


# --------------------------------------------------------------------------- definitions
# The funnel (``ivr.store.campaigns.funnel``) counts with these same conditions.
def done() -> sa.ColumnElement[bool]:
    return Attempt.state == AttemptState.DONE


def placed() -> sa.ColumnElement[bool]:
    """A call counts from the moment it is placed (in flight now, or finished dialled)."""
    return sa.or_(
        sa.and_(done(), Attempt.outcome != Outcome.SKIPPED),
        sa.and_(Attempt.state == AttemptState.DIALING, Attempt.started_at.is_not(None)),
    )


def answered() -> sa.ColumnElement[bool]:
    return sa.and_(
        done(), sa.or_(Attempt.answered_at.is_not(None), Attempt.outcome.in_(ANSWERED_OUTCOMES))
    )


def survey_started() -> sa.ColumnElement[bool]:
    """Answered, and its call has at least one answer."""
    return sa.and_(answered(), sa.exists().where(Answer.call_id == Attempt.call_id))


def count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def contacts_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.count(sa.distinct(sa.case((condition, Attempt.contact_id))))


def funnel_columns() -> list[tuple[str, sa.ColumnElement[int]]]:
    """The funnel's counts over attempts, in ``FUNNEL_COUNTS`` order (all but ``contacts``):
    the counters and the full recount (``funnel``) count with these same columns."""
    return [
        ("numbers_attempted", contacts_if(placed())),
        ("calls_placed", count_if(placed())),
        ("answered", count_if(answered())),
        ("survey_started", count_if(survey_started())),
        ("completed", contacts_if(Attempt.outcome == Outcome.COMPLETED)),
        ("opted_out", contacts_if(Attempt.outcome == Outcome.OPTED_OUT)),
    ]


def _stat_columns() -> list[tuple[str, sa.ColumnElement[int]]]:
    return [
        *funnel_columns(),
        *(
            (outcome_key(o), count_if(sa.and_(done(), Attempt.outcome == o)))
            for o in ATTEMPT_OUTCOMES
        ),
    ]


# --------------------------------------------------------------------------- writing
def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_TALLY: tuple[tuple[str, ...], sa.Select[Any]] | None = None


def _tally_query() -> tuple[tuple[str, ...], sa.Select[Any]]:
    """The tally's statement, built once: it runs twice for every counted write on the
    telephony worker's hot path, and building its twenty aggregates anew each time cost
    more Python time than running it."""
    global _TALLY
    if _TALLY is None:
        columns = _stat_columns()
        query = (
            sa.select(Attempt.campaign_id, *(c for _, c in columns))
            .where(Attempt.contact_id.in_(sa.bindparam("ids", expanding=True)))
            .group_by(Attempt.campaign_id)
        )
        _TALLY = (tuple(key for key, _ in columns), query)
    return _TALLY


def tally(s: Session, contact_ids: Iterable[str]) -> Counter[tuple[str, str]]:
    """What the attempts of these contacts add to their campaigns' counters now."""
    ids = sorted(set(contact_ids))
    found: Counter[tuple[str, str]] = Counter()
    keys, query = _tally_query()
    for chunk in _chunks(ids, CONTACT_CHUNK):
        for row in s.execute(query, {"ids": list(chunk)}):
            for key, value in zip(keys, row[1:], strict=True):
                if value:
                    found[(row[0], key)] += int(value)
    return found


def add(s: Session, campaign_id: str, key: str, delta: int) -> None:
    """Add ``delta`` to a counter when this session's transaction commits."""
    if delta:
        pending: Counter[tuple[str, str]] = s.info.setdefault(_PENDING, Counter())
        pending[(campaign_id, key)] += delta


@contextmanager
def change(s: Session, contact_ids: Iterable[str]) -> Iterator[None]:
    """Around a change of these contacts' attempts: records what it changed in the counters."""
    ids = sorted(set(contact_ids))
    if not ids:
        yield
        return
    if s.get_bind().dialect.name == "postgresql":
        # Hold these contacts' attempts until the commit, so that no concurrent writer
        # (another telephony worker) changes them between the two tallies. (SQLite has
        # one writer at a time.)
        for chunk in _chunks(ids, CONTACT_CHUNK):
            s.execute(
                sa.select(Attempt.id)
                .where(Attempt.contact_id.in_(chunk))
                .order_by(Attempt.id)
                .with_for_update()
            ).all()
    before = tally(s, ids)
    yield
    after = tally(s, ids)
    for key in before.keys() | after.keys():
        add(s, key[0], key[1], after[key] - before[key])


def _upsert(s: Session) -> Any:
    table = Base.metadata.tables["campaign_counters"]
    dialect = s.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.campaign_id, table.c.key],
        set_={"n": table.c.n + stmt.excluded.n},
    )


def apply_pending(s: Session) -> None:
    """Write the counter changes of this transaction now (in key order; see the module)."""
    pending: Counter[tuple[str, str]] | None = s.info.pop(_PENDING, None)
    if not pending:
        return
    rows = [
        {"campaign_id": campaign_id, "key": key, "n": delta}
        for (campaign_id, key), delta in sorted(pending.items())
        if delta
    ]
    if rows:
        s.execute(_upsert(s).values(rows))


@event.listens_for(Session, "before_commit")
def _before_commit(s: Session) -> None:
    apply_pending(s)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(s: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the transaction ended: committed (applied) or not
        s.info.pop(_PENDING, None)


def rebuild(s: Session) -> int:
    """Count every campaign's counters again from its rows (for data loaded around the
    store, as the benchmarks do); returns the rows written. The campaigns must be idle."""
    table = Base.metadata.tables["campaign_counters"]
    s.execute(sa.delete(table))
    rows = [
        {"campaign_id": campaign_id, "key": "contacts", "n": int(n)}
        for campaign_id, n in s.execute(
            sa.select(Contact.campaign_id, sa.func.count()).group_by(Contact.campaign_id)
        )
    ]
    columns = _stat_columns()
    for row in s.execute(
        sa.select(Attempt.campaign_id, *(c for _, c in columns)).group_by(Attempt.campaign_id)
    ):
        rows += [
            {"campaign_id": row[0], "key": key, "n": int(n)}
            for (key, _), n in zip(columns, row[1:], strict=True)
            if n
        ]
    if rows:
        s.execute(sa.insert(table), rows)
    return len(rows)


# --------------------------------------------------------------------------- reading
def empty_block() -> dict[str, Any]:
    block: dict[str, Any] = dict.fromkeys(FUNNEL_COUNTS, 0)
    block["outcomes"] = dict.fromkeys((o.value for o in ATTEMPT_OUTCOMES), 0)
    return block


def read(s: Session, campaign_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """campaign id -> the funnel's totals (``FUNNEL_COUNTS``, ``outcomes``,
    ``response_rate``) from the counters: one indexed query."""
    apply_pending(s)  # this transaction's own changes first
    blocks = {campaign_id: empty_block() for campaign_id in campaign_ids}
    for chunk in _chunks(sorted(blocks), CONTACT_CHUNK):
        for campaign_id, key, n in s.execute(
            sa.select(CampaignCounter.campaign_id, CampaignCounter.key, CampaignCounter.n).where(
                CampaignCounter.campaign_id.in_(chunk)
            )
        ):
            block = blocks[campaign_id]
            if key.startswith(OUTCOME_PREFIX):
                block["outcomes"][key.removeprefix(OUTCOME_PREFIX)] = int(n)
            else:
                block[key] = int(n)
    for block in blocks.values():
        contacts = block["contacts"]
        block["response_rate"] = block["completed"] / contacts if contacts else 0.0
    return blocks
