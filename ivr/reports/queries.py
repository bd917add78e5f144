"""The report's aggregates, counted in SQL (GROUP BY): no query returns a row per answer.

Each function returns small tuples for the pure modules (``ivr.reports.dispositions``,
``weighting``, ``questions``, ``costs``); only ``respondent_cells`` returns a row per
respondent (the per-contact weights the exports need).

A contact's *cell* is its ``(language, age_group, area)``, "" for a value not known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ivr.campaigns.billing import BillingRule
from ivr.outcome import Outcome
from ivr.store import counters
from ivr.store.models import Answer, AnswerKind, Attempt, Call, Contact, TranscriptRow
from ivr.store.work_models import Tag, TranscriptTag

Cell = tuple[str, str, str]  # (language, age_group, area); "" = not known

# The outcomes a contact's finished attempts are summarised by (one flag each).
FLAG_OUTCOMES: tuple[Outcome, ...] = (
    Outcome.COMPLETED,
    Outcome.PARTIAL,
    Outcome.OPTED_OUT,
    Outcome.DECLINED,
    Outcome.UNALLOCATED,
    Outcome.NO_ANSWER,
    Outcome.BUSY,
    Outcome.FAILED,
    Outcome.INTERRUPTED,
    Outcome.SKIPPED,
)
QUESTION_KINDS = (AnswerKind.CHOICE, AnswerKind.SCALE, AnswerKind.NUMBER)
QUOTES_PER_THEME = 3


@dataclass(frozen=True, slots=True)
class ContactGroup:
    """Contacts of one cell whose attempts ended in the same set of outcomes."""

    cell: Cell
    outcomes: frozenset[Outcome]  # the outcomes among their finished attempts
    attempted: bool  # a call placed
    answered: bool  # a call answered
    contacts: int
    calls_placed: int


@dataclass(frozen=True, slots=True)
class AnswerGroup:
    """Latest answers per call and question with the same value, of one cell."""

    node_id: str
    kind: str
    value: str
    cell: Cell
    respondent: bool  # the call completed the survey (its answers are weighted)
    answers: int


@dataclass(frozen=True, slots=True)
class QuoteRow:
    transcript_id: int
    machine_text: str
    corrected_text: str | None
    reviewed: bool
    language: str


@dataclass(frozen=True, slots=True)
class ThemeRow:
    tag_id: int
    name: str
    count: int
    quotes: tuple[QuoteRow, ...]


@dataclass(frozen=True, slots=True)
class ThemeCounts:
    open_answers: int
    reviewed: int
    tagged: int
    themes: tuple[ThemeRow, ...]


def _cell(row: Sequence[Any]) -> Cell:
    return (str(row[0] or ""), str(row[1] or ""), str(row[2] or ""))


def _flag(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.max(sa.case((condition, 1), else_=0))


def contact_groups(s: Session, campaign_id: str) -> list[ContactGroup]:
    """The campaign's contacts grouped by cell and by what their attempts ended in: a
    contact's AAPOR disposition follows from its group (``dispositions``)."""
    done = counters.done()
    flags = [
        _flag(sa.and_(done, Attempt.outcome == outcome)).label(f"f_{outcome.value}")
        for outcome in FLAG_OUTCOMES
    ]
    per_contact = (
        sa.select(
            Attempt.contact_id.label("contact_id"),
            *flags,
            _flag(counters.placed()).label("attempted"),
            _flag(counters.answered()).label("answered"),
            counters.count_if(counters.placed()).label("placed"),
        )
        .where(Attempt.campaign_id == campaign_id)
        .group_by(Attempt.contact_id)
        .subquery()
    )
    flag_columns = [
        sa.func.coalesce(per_contact.c[f"f_{o.value}"], 0).label(f"f_{o.value}")
        for o in FLAG_OUTCOMES
    ]
    attempted = sa.func.coalesce(per_contact.c.attempted, 0)
    answered = sa.func.coalesce(per_contact.c.answered, 0)
    query = (
        sa.select(
            Contact.language,
            Contact.age_group,
            Contact.area,
            *flag_columns,
            attempted,
            answered,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(per_contact.c.placed), 0),
        )
        .select_from(Contact)
        .outerjoin(per_contact, per_contact.c.contact_id == Contact.id)
        .where(Contact.campaign_id == campaign_id)
        .group_by(Contact.language, Contact.age_group, Contact.area, *flag_columns, attempted,
                  answered)
    )  # fmt: skip
    groups = []
    n = len(FLAG_OUTCOMES)
    for row in s.execute(query):
        outcomes = frozenset(o for o, f in zip(FLAG_OUTCOMES, row[3 : 3 + n], strict=True) if f)
        groups.append(
            ContactGroup(
                cell=(_language(row[0]), str(row[1] or ""), str(row[2] or "")),
                outcomes=outcomes,
                attempted=bool(row[3 + n]),
                answered=bool(row[4 + n]),
                contacts=int(row[5 + n]),
                calls_placed=int(row[6 + n]),
            )
        )
    return groups


def _language(value: Any) -> str:
    return str(getattr(value, "value", value) or "")


def _latest() -> sa.ColumnElement[bool]:
    """The answer that counts for its call and question: none given after it."""
    later = sa.orm.aliased(Answer)
    return ~sa.exists().where(
        later.call_id == Answer.call_id, later.node_id == Answer.node_id, later.seq > Answer.seq
    )


def campaign_answers(s: Session, campaign_id: str) -> list[AnswerGroup]:
    """The campaign's latest choice/scale/number answers per call and question, counted
    by question, value, the caller's cell and whether the call completed the survey."""
    respondent = sa.case((Attempt.outcome == Outcome.COMPLETED, 1), else_=0)
    query = (
        sa.select(
            Contact.language, Contact.age_group, Contact.area,
            Answer.node_id, Answer.kind, Answer.value, respondent, sa.func.count(),
        )
        .select_from(Answer)
        .join(Call, Call.id == Answer.call_id)
        .outerjoin(Attempt, Attempt.id == Call.attempt_id)
        .outerjoin(Contact, Contact.id == Attempt.contact_id)
        .where(Call.campaign_id == campaign_id, Answer.kind.in_(QUESTION_KINDS), _latest())
        .group_by(Contact.language, Contact.age_group, Contact.area, Answer.node_id,
                  Answer.kind, Answer.value, respondent)
    )  # fmt: skip
    return [
        AnswerGroup(
            node_id=row[3],
            kind=_language(row[4]),
            value=row[5],
            cell=(_language(row[0]), str(row[1] or ""), str(row[2] or "")),
            respondent=bool(row[6]),
            answers=int(row[7]),
        )
        for row in s.execute(query)
    ]


def line_answers(s: Session, org_id: str, number: str) -> list[AnswerGroup]:
    """An inbound line's latest choice/scale/number answers, counted by question and value
    (no cells: callers of a line are not on a contact list)."""
    query = (
        sa.select(Answer.node_id, Answer.kind, Answer.value, sa.func.count())
        .select_from(Answer)
        .join(Call, Call.id == Answer.call_id)
        .where(*_line_calls(org_id, number), Answer.kind.in_(QUESTION_KINDS), _latest())
        .group_by(Answer.node_id, Answer.kind, Answer.value)
    )
    return [
        AnswerGroup(row[0], _language(row[1]), row[2], ("", "", ""), False, int(row[3]))
        for row in s.execute(query)
    ]


def _line_calls(org_id: str, number: str) -> list[sa.ColumnElement[bool]]:
    return [Call.org_id == org_id, Call.line_number == number, Call.campaign_id.is_(None)]


def line_funnel(s: Session, org_id: str, number: str) -> tuple[int, int, int]:
    """An inbound line's calls, answered calls and completed calls."""
    completed = Call.status.in_((Outcome.COMPLETED, Outcome.TRANSFERRED))
    row = s.execute(
        sa.select(
            sa.func.count(),
            counters.count_if(Call.answered_at.is_not(None)),
            counters.count_if(completed),
        ).where(*_line_calls(org_id, number))
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


def respondent_cells(s: Session, campaign_id: str) -> list[tuple[str, Cell]]:
    """Each respondent (a contact with a completed attempt) and its cell."""
    # Correlated on the contact alone (its attempts by the (contact_id, attempt_no) index):
    # a condition on the attempt's campaign let SQLite scan the campaign's attempts per
    # contact instead.
    completed = sa.exists().where(
        Attempt.contact_id == Contact.id, Attempt.outcome == Outcome.COMPLETED
    )
    query = sa.select(Contact.id, Contact.language, Contact.age_group, Contact.area).where(
        Contact.campaign_id == campaign_id, completed
    )
    return [
        (row[0], (_language(row[1]), str(row[2] or ""), str(row[3] or "")))
        for row in s.execute(query)
    ]


def _billable(s: Session, rule: BillingRule) -> sa.ColumnElement[Any]:
    """A call's billable seconds under ``rule`` in SQL (``BillingRule.billable_seconds``:
    at least ``minimum``, then up to a whole ``step``, 6 decimals of the ratio kept)."""
    talk = Attempt.talk_seconds
    if s.get_bind().dialect.name == "postgresql":
        longer = sa.func.greatest(sa.cast(rule.minimum, sa.Float), talk)
        ratio = sa.func.round(sa.cast(longer / rule.step, sa.Numeric), 6)
        steps: sa.ColumnElement[Any] = sa.func.ceil(ratio)
    else:
        longer = sa.func.max(sa.cast(rule.minimum, sa.Float), talk)
        ratio = sa.func.round(longer / rule.step, 6)
        whole = sa.cast(ratio, sa.Integer)
        steps = whole + sa.case((ratio > whole, 1), else_=0)
    return sa.case((sa.or_(talk.is_(None), talk <= 0), 0), else_=steps * rule.step)


def talk(s: Session, campaign_id: str, rule: BillingRule) -> tuple[int, float, int]:
    """The campaign's answered attempts billed: (calls, talk seconds, billable seconds)."""
    billable = _billable(s, rule)
    row = s.execute(
        sa.select(
            counters.count_if(Attempt.talk_seconds > 0),
            sa.func.coalesce(sa.func.sum(Attempt.talk_seconds), 0),
            sa.func.coalesce(sa.func.sum(billable), 0),
        ).where(Attempt.campaign_id == campaign_id, counters.answered())
    ).one()
    return int(row[0]), float(row[1]), int(row[2])


def themes(s: Session, scope: Sequence[sa.ColumnElement[bool]]) -> ThemeCounts:
    """Open answers (transcripts) of a campaign or line: how many, reviewed, tagged, and
    the count per tag with up to ``QUOTES_PER_THEME`` quotes each (reviewed first, then
    corrected, then the oldest)."""
    reviewed = TranscriptRow.review_state == "reviewed"
    tagged = sa.exists().where(TranscriptTag.transcript_id == TranscriptRow.id)
    base = sa.select(TranscriptRow.id).join(Call, Call.id == TranscriptRow.call_id)
    totals = s.execute(
        sa.select(sa.func.count(), counters.count_if(reviewed), counters.count_if(tagged))
        .select_from(TranscriptRow)
        .join(Call, Call.id == TranscriptRow.call_id)
        .where(*scope)
    ).one()
    per_tag = s.execute(
        sa.select(Tag.id, Tag.name, sa.func.count())
        .select_from(TranscriptTag)
        .join(Tag, Tag.id == TranscriptTag.tag_id)
        .where(TranscriptTag.transcript_id.in_(base.where(*scope)))
        .group_by(Tag.id, Tag.name)
        .order_by(sa.func.count().desc(), Tag.name)
    ).all()
    rows = []
    for tag_id, name, count in per_tag:
        quotes = s.execute(
            sa.select(
                TranscriptRow.id, TranscriptRow.machine_text, TranscriptRow.corrected_text,
                reviewed, TranscriptRow.language,
            )
            .join(Call, Call.id == TranscriptRow.call_id)
            .join(TranscriptTag, TranscriptTag.transcript_id == TranscriptRow.id)
            .where(*scope, TranscriptTag.tag_id == tag_id)
            .order_by(
                sa.case((reviewed, 0), else_=1),
                sa.case((TranscriptRow.corrected_text.is_(None), 1), else_=0),
                TranscriptRow.created_at, TranscriptRow.id,
            )
            .limit(QUOTES_PER_THEME)
        ).all()  # fmt: skip
        rows.append(
            ThemeRow(
                int(tag_id), name, int(count),
                tuple(QuoteRow(int(q[0]), q[1], q[2], bool(q[3]), q[4]) for q in quotes),
            )
        )  # fmt: skip
    return ThemeCounts(int(totals[0]), int(totals[1]), int(totals[2]), tuple(rows))


def campaign_scope(campaign_id: str) -> list[sa.ColumnElement[bool]]:
    return [TranscriptRow.campaign_id == campaign_id]


def line_scope(org_id: str, number: str) -> list[sa.ColumnElement[bool]]:
    return [TranscriptRow.org_id == org_id, *_line_calls(org_id, number)]
