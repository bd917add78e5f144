"""The exports' database reads: a campaign's contacts with their attempts, answers and
transcripts, and its reviewed transcripts, read in keyset-paged chunks.

Nothing here loads a whole campaign: :func:`contacts` reads ``chunk`` contacts at a time in
the order of the ``(campaign_id, phone)`` unique index (the rows come out ordered by phone
number; the keyset is the last phone of the chunk), then that chunk's attempts, answers,
transcripts and tags, each with one query that joins them to the contacts of the chunk's
phone range (the same index: no list of ids sent, and a statement of the same shape every
chunk, compiled once). Columns are read raw (an enum as its stored text, no ORM objects)
and the chunk's records are yielded before the next chunk is read: memory stays that of
one chunk however large the campaign.
"""

from __future__ import annotations

import contextlib
import gc
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ivr.exports.columns import AnswerInfo, AttemptInfo, ContactRecord, TranscriptInfo
from ivr.outcome import Outcome
from ivr.store.models import (
    Answer,
    Attempt,
    AttemptState,
    Contact,
    Recording,
    ReviewState,
    TranscriptRow,
)
from ivr.store.work_models import Tag, TranscriptTag

CHUNK = 1000
# Contacts per chunk of :func:`contacts`, by database (measured at 500,000 contacts: on
# SQLite a smaller chunk's objects die before the garbage collector promotes them; on
# PostgreSQL each chunk's four queries are four round trips).
CONTACT_CHUNK = {"sqlite": 300}
CONTACT_CHUNK_DEFAULT = 1000
GC_THRESHOLD = 20_000  # allocations between the cyclic collector's youngest collections


@contextlib.contextmanager
def fewer_collections(threshold: int = GC_THRESHOLD) -> Iterator[None]:
    """The cyclic garbage collector's youngest generation collected less often while the
    block runs (then as before). An export makes millions of short-lived tuples; at the
    default (700) a chunk's records outlive a few young collections, are promoted, and the
    full collections they then set off walk the whole heap again and again: more than half
    of the export's time, measured. Nothing of an export is cyclic garbage; a larger
    young generation lets the chunk's objects die young. (Process-wide: another thread's
    collections are only later meanwhile.)"""
    before = gc.get_threshold()
    gc.set_threshold(max(threshold, before[0]), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


_OUTCOMES = {o.value: o for o in Outcome}
_DIALING = AttemptState.DIALING.value
_SKIPPED = Outcome.SKIPPED.value


def _raw(column: Any) -> Any:
    """A column read as stored (an enum's text: no conversion per row)."""
    return sa.type_coerce(column, sa.String)


def _in_range(campaign_id: str) -> list[sa.ColumnElement[bool]]:
    """The contacts of one chunk: the campaign's, with a phone in (low, high]."""
    return [
        Contact.campaign_id == campaign_id,
        Contact.phone > sa.bindparam("low"),
        Contact.phone <= sa.bindparam("high"),
    ]


def contacts(
    s: Session, campaign_id: str, *, times: bool = True, chunk: int | None = None
) -> Iterator[ContactRecord]:
    """Every contact of the campaign with its attempts, answers and open answers'
    transcripts, ordered by phone number (the index's order); ``times``: read when each
    answer was given (the long layout's column; the wide one does without)."""
    for batch in chunks(s, campaign_id, times=times, chunk=chunk):
        yield from batch


def chunks(
    s: Session, campaign_id: str, *, times: bool = True, chunk: int | None = None
) -> Iterator[list[ContactRecord]]:
    """:func:`contacts` a chunk at a time (``chunk``: contacts each; None: the database's
    ``CONTACT_CHUNK``)."""
    conn = s.connection()
    if chunk is None:
        chunk = CONTACT_CHUNK.get(conn.dialect.name, CONTACT_CHUNK_DEFAULT)
    first = (
        sa.select(
            Contact.id, Contact.phone, _raw(Contact.language), Contact.age_group, Contact.area
        )
        .where(Contact.campaign_id == campaign_id, Contact.phone > sa.bindparam("low"))
        .order_by(Contact.phone)
        .limit(chunk)
    )
    reads = _chunk_reads(campaign_id, times)
    last = ""  # every phone number sorts after the empty text
    while True:
        rows = conn.execute(first, {"low": last}).all()
        if not rows:
            return
        records = {
            cid: ContactRecord(cid, phone, language, age_group, area)
            for cid, phone, language, age_group, area in rows
        }
        high = rows[-1][1]
        _fill(conn, reads, records, {"low": last, "high": high})
        yield list(records.values())
        if len(rows) < chunk:
            return
        last = high


@dataclass(frozen=True)
class _Reads:
    attempts: sa.Select[Any]
    answers: sa.Select[Any]
    transcripts: sa.Select[Any]  # with their tags: a row per tag (one without)


def _chunk_reads(campaign_id: str, times: bool) -> _Reads:
    """The queries of one chunk's attempts, answers, and transcripts with their tags
    (bound to the chunk's phone range, ``low`` and ``high``)."""
    chunk = _in_range(campaign_id)
    # The answer's time read raw (no parsing into a datetime, the read's largest cost):
    # SQLite gives its stored UTC text, PostgreSQL's driver a datetime.
    at = sa.type_coerce(Answer.created_at, sa.String) if times else sa.null()
    return _Reads(
        attempts=sa.select(
            Attempt.contact_id, Attempt.attempt_no, _raw(Attempt.outcome),
            _raw(Attempt.state), Attempt.call_id,
        )
        .join(Contact, Contact.id == Attempt.contact_id)
        .where(*chunk),
        answers=sa.select(
            Answer.call_id, Answer.seq, Answer.node_id, _raw(Answer.kind), Answer.value,
            Answer.language, at,
        )
        .join(Attempt, Attempt.call_id == Answer.call_id)
        .join(Contact, Contact.id == Attempt.contact_id)
        .where(*chunk),
        transcripts=sa.select(
            TranscriptRow.id, TranscriptRow.call_id, Recording.node_id, TranscriptRow.machine_text,
            TranscriptRow.corrected_text, _raw(TranscriptRow.review_state), Tag.name,
        )
        .join(Recording, Recording.id == TranscriptRow.recording_id)
        .join(Attempt, Attempt.call_id == TranscriptRow.call_id)
        .join(Contact, Contact.id == Attempt.contact_id)
        .outerjoin(TranscriptTag, TranscriptTag.transcript_id == TranscriptRow.id)
        .outerjoin(Tag, Tag.id == TranscriptTag.tag_id)
        .where(*chunk),
    )  # fmt: skip


def _fill(
    conn: sa.Connection, reads: _Reads, records: dict[str, ContactRecord], bounds: dict[str, str]
) -> None:
    """The chunk's attempts, answers, transcripts and tags, into its records (a row of a
    contact added to the range since its contacts were read is left out)."""
    calls: dict[str, tuple[ContactRecord, int]] = {}
    for contact_id, attempt_no, outcome, state, call_id in conn.execute(
        reads.attempts, bounds
    ).all():
        record = records.get(contact_id)
        if record is None:
            continue
        ended = _OUTCOMES[outcome] if outcome is not None else None
        placed = state == _DIALING or (outcome is not None and outcome != _SKIPPED)
        record.attempts.append(AttemptInfo(attempt_no, ended, placed, call_id))
        if call_id is not None:
            calls[call_id] = (record, attempt_no)
    if not calls:
        return
    for call_id, seq, node_id, kind, value, language, at in conn.execute(
        reads.answers, bounds
    ).all():
        found = calls.get(call_id)
        if found is not None:
            found[0].answers.append(
                AnswerInfo(call_id, found[1], seq, node_id, kind, value, language, at)
            )
    texts: dict[int, tuple[ContactRecord, tuple[str, str], tuple[str, str | None, str]]] = {}
    tags: dict[int, list[str]] = defaultdict(list)
    transcripts = conn.execute(reads.transcripts, bounds).all()
    for tid, call_id, node_id, machine, corrected, state, tag in transcripts:
        found = calls.get(call_id)
        if found is not None:
            texts[tid] = (found[0], (call_id, node_id), (machine, corrected, state))
            if tag is not None:
                tags[tid].append(tag)
    for tid, (record, key, (machine, corrected, state)) in texts.items():
        named = tags.get(tid)
        record.transcripts[key] = TranscriptInfo(
            machine, corrected, state, tuple(sorted(named)) if named else ()
        )


# --------------------------------------------------------------------------- speech dataset
@dataclass(frozen=True)
class Clip:
    """A reviewed open answer: its audio file and its text."""

    transcript_id: int
    path: str  # the recording on the server
    text: str  # the corrected text, else the machine text the reviewer accepted
    machine_text: str
    language: str
    duration: float
    question: str  # the node id


def reviewed_clips(s: Session, campaign_id: str, *, chunk: int = CHUNK) -> Iterator[Clip]:
    """The campaign's reviewed transcripts with their recordings, in id order (keyset)."""
    last = 0
    while True:
        rows = s.execute(
            sa.select(
                TranscriptRow.id, Recording.path, TranscriptRow.corrected_text,
                TranscriptRow.machine_text, TranscriptRow.language, Recording.duration_seconds,
                Recording.node_id,
            )
            .join(Recording, Recording.id == TranscriptRow.recording_id)
            .where(
                TranscriptRow.campaign_id == campaign_id,
                TranscriptRow.review_state == ReviewState.REVIEWED,
                TranscriptRow.id > last,
            )
            .order_by(TranscriptRow.id)
            .limit(chunk)
        ).all()  # fmt: skip
        if not rows:
            return
        for tid, path, corrected, machine, language, duration, node_id in rows:
            text = corrected if corrected is not None else machine
            yield Clip(tid, path, text, machine, language, duration, node_id)
        last = rows[-1].id


def count_reviewed(s: Session, campaign_id: str) -> int:
    query = sa.select(sa.func.count()).where(
        TranscriptRow.campaign_id == campaign_id,
        TranscriptRow.review_state == ReviewState.REVIEWED,
    )
    return int(s.scalar(query) or 0)
