"""The review queue's queries: a filtered page in one of three orders (keyset pagination),
the counts per state, and the item after a given one in the same queue.

Every query names the organisation (``org_id``) and is served by an index on
``transcripts``: (org_id, review_state, created_at, id) for the oldest first,
(org_id, review_state, confidence, id) for the lowest confidence first, and
(org_id, sample_key, id) for the random sample. The other filters (campaign, question,
language, tag) narrow the rows as the index is walked; a tag is an EXISTS on the primary
key of ``transcript_tags``. The counts per state read a covering index (org_id,
review_state, campaign_id, node_id, language, confidence), or start from the tag's rows.

Rows without a confidence come after those with one in the confidence order: the page is
read in two index ranges (``confidence IS NOT NULL`` ascending, then ``confidence IS
NULL`` by id), which keeps the order the same on SQLite and PostgreSQL (they sort NULLs
differently) and each range on the index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ivr.review.words import BANDS, Cursor, QueueFilter, encode_cursor
from ivr.store.models import ReviewState, TranscriptRow
from ivr.store.work_models import TranscriptTag

T = TranscriptRow


@dataclass(frozen=True)
class QueueRow:
    id: int
    campaign_id: str | None
    node_id: str
    language: str
    confidence: float | None
    created_at: datetime
    review_state: str
    text: str  # the corrected text, or the machine's
    sample_key: float


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    next_cursor: str | None  # None: this is the last page


def _filters(
    org_id: str, f: QueueFilter, *, state: bool = True, tag_as_list: bool = False
) -> list[Any]:
    """The conditions of the filter. A band orders nothing but the confidence order: in
    the others its range is on ``confidence + 0``, which no index serves, so that the
    planner walks the order's own index rather than the confidence index and a sort of
    every row in the band on each page."""
    found: list[Any] = [T.org_id == org_id]
    if state:
        found.append(T.review_state == ReviewState(f.state))
    if f.campaign:
        found.append(T.campaign_id == f.campaign)
    if f.node:
        found.append(T.node_id == f.node)
    if f.language:
        found.append(T.language == f.language)
    if f.band:
        low, high = BANDS[f.band]
        confidence = T.confidence if f.order == "confidence" else T.confidence + 0
        if low is not None:
            found.append(confidence >= low)
        if high is not None:
            found.append(confidence < high)
    if f.tag is not None and tag_as_list:  # from the tag's rows (counting: all of them)
        tagged = sa.select(TranscriptTag.transcript_id).where(TranscriptTag.tag_id == f.tag)
        found.append(T.id.in_(tagged))
    elif f.tag is not None:  # row by row as the order's index is walked (a page)
        found.append(
            sa.exists().where(TranscriptTag.transcript_id == T.id, TranscriptTag.tag_id == f.tag)
        )
    return found


_COLUMNS = (
    T.id,
    T.campaign_id,
    T.node_id,
    T.language,
    T.confidence,
    T.created_at,
    T.review_state,
    sa.func.coalesce(T.corrected_text, T.machine_text),
    T.sample_key,
)


def _row(found: Any) -> QueueRow:
    return QueueRow(
        id=found[0],
        campaign_id=found[1],
        node_id=found[2],
        language=found[3],
        confidence=found[4],
        created_at=found[5],
        review_state=ReviewState(found[6]).value,
        text=found[7] or "",
        sample_key=found[8],
    )


def cursor_of(row: QueueRow, order: str) -> Cursor:
    """Where ``row`` stands in ``order`` (the next page starts after it)."""
    if order == "confidence":
        if row.confidence is None:
            return Cursor("n", "", row.id)
        return Cursor("c", repr(float(row.confidence)), row.id)
    if order == "random":
        return Cursor("r", repr(float(row.sample_key)), row.id)
    return Cursor("o", row.created_at.isoformat(), row.id)


def _after(cursor: Cursor | None, order: str) -> list[Any]:
    """The keyset condition of the (first) index range after ``cursor``."""
    if cursor is None:
        return []
    if order == "oldest":
        at = datetime.fromisoformat(cursor.value)
        return [sa.or_(T.created_at > at, sa.and_(T.created_at == at, T.id > cursor.id))]
    if order == "random":
        key = float(cursor.value)
        return [sa.or_(T.sample_key > key, sa.and_(T.sample_key == key, T.id > cursor.id))]
    value = float(cursor.value)
    return [sa.or_(T.confidence > value, sa.and_(T.confidence == value, T.id > cursor.id))]


def _select(where: list[Any], order_by: list[Any], limit: int) -> Any:
    return sa.select(*_COLUMNS).where(*where).order_by(*order_by).limit(limit)


def rows_after(
    s: Session, org_id: str, f: QueueFilter, cursor: Cursor | None, limit: int
) -> list[QueueRow]:
    """Up to ``limit`` rows of the queue after ``cursor`` (None: from the start)."""
    where = _filters(org_id, f)
    if f.order == "oldest":
        query = _select(where + _after(cursor, "oldest"), [T.created_at, T.id], limit)
        return [_row(r) for r in s.execute(query)]
    if f.order == "random":
        query = _select(where + _after(cursor, "random"), [T.sample_key, T.id], limit)
        return [_row(r) for r in s.execute(query)]
    found: list[QueueRow] = []
    if cursor is None or cursor.kind == "c":
        ranged = where + [T.confidence.is_not(None)] + _after(cursor, "confidence")
        query = _select(ranged, [T.confidence, T.id], limit)
        found = [_row(r) for r in s.execute(query)]
        cursor = None
    if len(found) < limit and not f.band:  # a band excludes rows without a confidence
        nulls = where + [T.confidence.is_(None)]
        if cursor is not None:
            nulls.append(T.id > cursor.id)
        query = _select(nulls, [T.id], limit - len(found))
        found += [_row(r) for r in s.execute(query)]
    return found


def page(
    s: Session, org_id: str, f: QueueFilter, cursor: Cursor | None, limit: int = 25
) -> QueuePage:
    """A page of the queue: ``limit`` rows after ``cursor`` and the next page's cursor."""
    rows = rows_after(s, org_id, f, cursor, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    following = encode_cursor(cursor_of(rows[-1], f.order)) if more and rows else None
    return QueuePage(rows, following)


def counts(s: Session, org_id: str, f: QueueFilter) -> dict[str, int]:
    """How many answers each state holds under the filter's other conditions."""
    query = (
        sa.select(T.review_state, sa.func.count())
        .where(*_filters(org_id, f, state=False, tag_as_list=True))
        .group_by(T.review_state)
    )
    found = {state.value: 0 for state in ReviewState}
    for state, count in s.execute(query):
        found[ReviewState(state).value] = int(count)
    return found


def next_after(s: Session, org_id: str, f: QueueFilter, row: QueueRow) -> int | None:
    """The item after ``row`` in the queue (the first one when none is after it and the
    queue holds another); None when the queue holds nothing else."""
    following = rows_after(s, org_id, f, cursor_of(row, f.order), 1)
    if following:
        return following[0].id
    first = rows_after(s, org_id, f, None, 2)
    others = [r.id for r in first if r.id != row.id]
    return others[0] if others else None


def row_of(s: Session, org_id: str, transcript_id: int) -> QueueRow | None:
    found = s.execute(sa.select(*_COLUMNS).where(T.org_id == org_id, T.id == transcript_id)).first()
    return None if found is None else _row(found)
