"""The exports' columns and rows (pure: no I/O).

A campaign's questions come from its flow, in the flow's order: every node that stores an
answer (language, choice, scale, number, open, callback). Each gets a column name that is
a valid SPSS variable name and the same in every format (``q_`` + the node id with every
character other than a letter, digit or ``_`` made ``_``), a label (the question's prompt
in the export's language) and, for the nodes with options, value labels.

Two layouts:

- *wide*, one row per contact (:func:`wide_header`, :func:`wide_row`): who (a pseudonymous
  contact id: the contact's random database id; the phone number only when asked for),
  the attempts placed, the last attempt's outcome, the AAPOR final disposition, the contact
  list's language, age group and area, the raking weight, then each question's answer.
  An open question has four columns: the machine transcript, the corrected text, the
  review state and the tags. When a contact was reached in more than one call, each
  question's answer is the one from the latest call that answered it.
- *long*, one row per answer (:func:`long_header`, :func:`long_rows`): the answers that
  count, the latest per call and question (an earlier answer to the same question in the
  same call, after ``*`` or a language switch, is superseded).

A choice is written as its stored value (``codes``) or as its label (``labels``); the SPSS
file holds numeric codes with the labels as value labels (``Question.code``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from ivr.campaigns import aapor
from ivr.flows.model import Flow, Node
from ivr.outcome import Outcome

Cell = str | int | float | None
ANSWER_KINDS = ("language", "choice", "scale", "number", "open", "callback")
NUMERIC_KINDS = ("scale", "number")
# What a callback node stores (ivr.flows.engine): the resident asked to be contacted, or not.
CALLBACK_OPTIONS = (("requested", "Asked to be contacted"), ("declined", "Declined contact"))
OPEN_PARTS = (
    ("text", "machine transcript"),
    ("corrected", "corrected text"),
    ("review", "review state"),
    ("tags", "tags"),
)
MAX_NAME = 64  # SPSS: a variable name is at most 64 bytes
MAX_LABEL = 256  # SPSS: a variable label is at most 256 characters

CONTACT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("contact_id", "Contact (pseudonymous id)"),
    ("attempts", "Attempts placed"),
    ("last_outcome", "Outcome of the last attempt"),
    ("aapor_code", "AAPOR final disposition code"),
    ("aapor_disposition", "AAPOR final disposition"),
    ("language", "Language (contact list)"),
    ("age_group", "Age group (contact list)"),
    ("area", "Area (contact list)"),
    ("weight", "Raking weight to the contact list's margins (respondents)"),
)
PHONE_COLUMN = ("phone", "Phone number")
LONG_COLUMNS: tuple[tuple[str, str], ...] = (
    ("contact_id", "Contact (pseudonymous id)"),
    ("call_id", "Call"),
    ("attempt_no", "Attempt number"),
    ("question", "Question (column name)"),
    ("node_id", "Question (node in the flow)"),
    ("kind", "Kind of answer"),
    ("value", "Answer (stored value)"),
    ("label", "Answer (label)"),
    ("language", "Language of the call"),
    ("answered_at", "Answered at (UTC)"),
    ("transcript", "Machine transcript (open answer)"),
    ("corrected", "Corrected text (open answer)"),
    ("review", "Review state (open answer)"),
    ("tags", "Tags (open answer)"),
)


@dataclass(frozen=True)
class Question:
    """One question of the flow as the exports show it."""

    node_id: str
    name: str  # the column / SPSS variable name
    kind: str
    text: str  # the prompt in the export's language ("" if it has none)
    options: tuple[tuple[str, str], ...] = ()  # (stored value, label)
    keys: tuple[str, ...] = ()  # the options' keys (their numeric codes where all are digits)

    @functools.cached_property
    def _labels(self) -> dict[str, str]:
        labels: dict[str, str] = {}
        for value, label in self.options:
            labels.setdefault(value, label)  # the first option of a value, as listed
        return labels

    # how many columns the question has in the wide layout
    width: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "width", len(OPEN_PARTS) if self.kind == "open" else 1)

    def label(self, value: str) -> str:
        """The option's label for a stored value (the value itself when it is no option)."""
        return self._labels.get(value, value)

    def codes(self) -> dict[str, int]:
        """Each option's numeric code: its key where every key is a distinct number,
        else its place (1, 2, ...)."""
        values = [value for value, _ in self.options]
        if (
            self.keys
            and all(k.isdigit() for k in self.keys)
            and len(set(self.keys)) == len(self.keys)
        ):
            return {value: int(key) for value, key in zip(values, self.keys, strict=True)}
        return {value: n for n, value in enumerate(values, start=1)}

    def columns(self) -> list[tuple[str, str]]:
        """``(name, label)`` of the question's columns in the wide layout."""
        if self.kind == "open":
            return [
                (f"{self.name}_{part}", _clip(f"{self.text} ({what})")) for part, what in OPEN_PARTS
            ]
        return [(self.name, _clip(self.text))]


# The records are named tuples: an export makes one per attempt and answer read, and a
# tuple is made several times faster than a frozen dataclass.
class AttemptInfo(NamedTuple):
    attempt_no: int
    outcome: Outcome | None
    placed: bool  # a call was placed (finished and not skipped, or being dialled)
    call_id: str | None


class AnswerInfo(NamedTuple):
    call_id: str
    attempt_no: int
    seq: int
    node_id: str
    kind: str
    value: str
    language: str
    # When it was given: a UTC datetime, or SQLite's stored UTC text (read raw, unparsed,
    # for speed: see ``ivr.exports.rows``); None where the layout does not need it.
    at: datetime | str | None


class TranscriptInfo(NamedTuple):
    machine_text: str
    corrected_text: str | None
    review_state: str
    tags: tuple[str, ...] = ()


@dataclass(slots=True)
class ContactRecord:
    """A contact with everything the exports write about it."""

    contact_id: str
    phone: str
    language: str
    age_group: str | None
    area: str | None
    attempts: list[AttemptInfo] = field(default_factory=list)
    answers: list[AnswerInfo] = field(default_factory=list)  # all given, any order
    transcripts: dict[tuple[str, str], TranscriptInfo] = field(default_factory=dict)


# --------------------------------------------------------------------------- questions
_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")


def column_name(node_id: str, taken: set[str]) -> str:
    """``q_`` + the node id made a valid SPSS name, unique among ``taken`` (which it joins)."""
    base = "q_" + _NOT_NAME.sub("_", node_id)
    base = base[: MAX_NAME - 13]  # room for an open question's "_corrected" and a number
    name, n = base, 1
    while name.lower() in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name.lower())
    return name


def _text(mapping: Mapping[str, str], language: str, default: str) -> str:
    for lang in (language, default, *sorted(mapping)):
        if mapping.get(lang):
            return " ".join(mapping[lang].split())
    return ""


def _clip(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def questions(flow: Flow, language: str) -> list[Question]:
    """The flow's questions in its order, labelled in ``language`` (else the flow's
    default language, else any)."""
    taken: set[str] = set()
    found = []
    for node in flow.nodes.values():
        if node.kind not in ANSWER_KINDS or not node.store:
            continue
        found.append(_question(node, column_name(node.id, taken), language, flow.default_language))
    return found


def _question(node: Node, name: str, language: str, default: str) -> Question:
    text = _text(node.prompt.text, language, default) if node.prompt else ""
    if node.kind == "callback":
        return Question(node.id, name, node.kind, text, CALLBACK_OPTIONS, ("1", "2"))
    options = tuple((o.value, _text(o.label, language, default) or o.value) for o in node.options)
    keys = tuple(o.key for o in node.options)
    return Question(node.id, name, node.kind, text, options, keys)


# --------------------------------------------------------------------------- one contact
def latest_answers(answers: Iterable[AnswerInfo]) -> list[AnswerInfo]:
    """The answers that count: the latest per call and node, by attempt and order given."""
    latest: dict[tuple[str, str], AnswerInfo] = {}
    for answer in answers:
        key = (answer.call_id, answer.node_id)
        if key not in latest or latest[key].seq < answer.seq:
            latest[key] = answer
    return sorted(latest.values(), key=lambda a: (a.attempt_no, a.call_id, a.seq))


def disposition(attempts: Sequence[AttemptInfo]) -> aapor.Disposition:
    """The contact's AAPOR final disposition from its attempts."""
    outcomes = frozenset(a.outcome for a in attempts if a.outcome is not None)
    return _disposition(outcomes, any(a.placed for a in attempts))


@functools.lru_cache(maxsize=4096)
def _disposition(outcomes: frozenset[Outcome], attempted: bool) -> aapor.Disposition:
    # The disposition depends on the set of outcomes only: the few sets there are are
    # worked out once (an export asks for one per contact).
    return aapor.disposition(sorted(outcomes), attempted=attempted)


def last_outcome(attempts: Sequence[AttemptInfo]) -> str | None:
    """The outcome of the contact's last finished attempt (None: none finished)."""
    done = [(a.attempt_no, a.outcome) for a in attempts if a.outcome is not None]
    return max(done)[1].value if done else None


def wide_header(found: Sequence[Question], *, with_phone: bool = False) -> list[tuple[str, str]]:
    """``(name, label)`` of every column of the wide layout."""
    head = list(CONTACT_COLUMNS)
    if with_phone:
        head.insert(1, PHONE_COLUMN)
    for question in found:
        head.extend(question.columns())
    return head


def _answer_cell(question: Question, value: str, labels: bool) -> Cell:
    if question.kind in NUMERIC_KINDS:
        return _number(value)
    return question.label(value) if labels else value


def _number(value: str) -> Cell:
    try:
        number = float(value)
    except ValueError:
        return value  # not a number after all: kept as given
    return int(number) if number.is_integer() else number


def _open_cells(info: TranscriptInfo | None) -> list[Cell]:
    if info is None:
        return [None, None, None, None]
    tags = "; ".join(info.tags) or None
    return [info.machine_text, info.corrected_text, info.review_state, tags]


def wide_row(
    record: ContactRecord,
    found: Sequence[Question],
    weight: float | None,
    *,
    labels: bool = False,
    with_phone: bool = False,
    cell_weights: Mapping[tuple[str, str, str], float] | None = None,
) -> list[Cell]:
    """The contact's row in the wide layout (cells in :func:`wide_header`'s order; None:
    no value). ``cell_weights``: the raking weight of a respondent (AAPOR complete) per
    cell ``(language, age_group, area)``, "" for a value not known; given, it is the
    row's weight (none for a contact who is not a respondent) instead of ``weight``."""
    placed = 0
    outcomes: set[Outcome] = set()
    last: tuple[int, Outcome] | None = None
    for attempt in record.attempts:
        if attempt.placed:
            placed += 1
        if attempt.outcome is not None:
            outcomes.add(attempt.outcome)
            if last is None or attempt.attempt_no > last[0]:
                last = (attempt.attempt_no, attempt.outcome)
    final = _disposition(frozenset(outcomes), placed > 0)
    if cell_weights is not None:
        cell = (record.language, record.age_group or "", record.area or "")
        weight = cell_weights.get(cell) if final is aapor.COMPLETE else None
    row: list[Cell] = [
        record.contact_id,
        placed,
        None if last is None else last[1].value,
        final.code,
        final.label,
        record.language,
        record.age_group,
        record.area,
        weight,
    ]
    if with_phone:
        row.insert(1, record.phone)
    # Each question's answer from the latest call that answered it, the last given in that
    # call (what ``latest_answers`` keeps, the latest call's winning): no sort needed.
    given: dict[str, AnswerInfo] = {}
    for answer in record.answers:
        old = given.get(answer.node_id)
        if old is None or (answer.attempt_no, answer.call_id, answer.seq) > (
            old.attempt_no,
            old.call_id,
            old.seq,
        ):
            given[answer.node_id] = answer
    for question in found:
        given_answer = given.get(question.node_id)
        if given_answer is None:
            row.extend([None] * question.width)
        elif question.kind == "open":
            key = (given_answer.call_id, question.node_id)
            row.extend(_open_cells(record.transcripts.get(key)))
        else:
            row.append(_answer_cell(question, given_answer.value, labels))
    return row


def long_header() -> list[tuple[str, str]]:
    return list(LONG_COLUMNS)


def long_rows(record: ContactRecord, by_node: Mapping[str, Question]) -> list[list[Cell]]:
    """One row per answer that counts (see :func:`latest_answers`): the stored value and,
    for an answer with options, its label."""
    rows: list[list[Cell]] = []
    for answer in latest_answers(record.answers):
        question = by_node.get(answer.node_id)
        name = question.name if question else ""
        if answer.kind == "open":
            value: Cell = None  # the stored value is the recording's path on the server
            label: Cell = None
            info = record.transcripts.get((answer.call_id, answer.node_id))
            texts = _open_cells(info)
        else:
            numeric = answer.kind in NUMERIC_KINDS
            value = _number(answer.value) if numeric else answer.value
            label = None if numeric else question.label(answer.value) if question else None
            texts = [None, None, None, None]
        rows.append(
            [
                record.contact_id,
                answer.call_id,
                answer.attempt_no,
                name,
                answer.node_id,
                answer.kind,
                value,
                label,
                answer.language,
                iso(answer.at),
                *texts,
            ]
        )
    return rows


def iso(at: datetime | str | None) -> str | None:
    """A UTC timestamp as ISO 8601 with a ``Z``, to the second. Also takes the text SQLite
    stores a UTC timestamp as (``2030-01-07 10:00:05.000000``)."""
    if at is None:
        return None
    if isinstance(at, str):
        return f"{at[:10]}T{at[11:19]}Z"
    if at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    return at.replace(microsecond=0, tzinfo=None).isoformat() + "Z"
