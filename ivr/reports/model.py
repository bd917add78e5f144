"""The ready report's numbers: a tree of frozen dataclasses, JSON-ready through ``to_dict``.

Pure: nothing here reads the database. ``ivr.reports.build`` fills these from the
aggregates ``ivr.reports.queries`` counts in SQL. Notes (why a number is missing, a stratum
without respondents) are codes with their subject, so that each reader (the page in the
staff's language, the workbook, the JSON) words them itself; ``NOTE_TEXTS`` holds the
English wording for the JSON and the command line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

NOTE_TEXTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "no_respondents": "No completed answers yet: nothing to compare or weight.",
        "no_values": "{dimension}: not known for any contact; not used for weighting.",
        "single_value": "{dimension}: every contact has the same value; nothing to weight.",
        "missing_stratum": (
            "{dimension} {value}: no respondents. Weighting cannot make up for this group;"
            " the other groups of {dimension} share its part of the weighted results."
        ),
        "unknown_value": "{dimension}: contacts without a value are a group of their own.",
        "not_converged": "The weights did not fully meet every margin (empty groups).",
        "price_not_set": "Price not set: no cost can be computed.",
        "bad_rule": "The billing rule {value} cannot be read; no cost can be computed.",
    }
)


@dataclass(frozen=True, slots=True)
class Note:
    """Why a number is missing or what to keep in mind: a code (``NOTE_TEXTS``) and its
    subject (a dimension such as ``age_group``, a value)."""

    code: str
    dimension: str = ""
    value: str = ""

    def text(self) -> str:
        return NOTE_TEXTS[self.code].format(dimension=self.dimension, value=self.value)


@dataclass(frozen=True, slots=True)
class Funnel:
    """Contacts, and how many of them got how far (each contact counted once)."""

    contacts: int
    attempted: int  # a call placed
    answered: int  # a call answered
    completed: int  # the survey completed (AAPOR 1.1)
    calls_placed: int  # calls, not contacts


@dataclass(frozen=True, slots=True)
class DispositionCount:
    code: str  # AAPOR code, e.g. "1.1"
    group: str  # the rate formulas' group, e.g. "I"
    label: str  # AAPOR's English label
    contacts: int


@dataclass(frozen=True, slots=True)
class Rate:
    key: str  # rr1, rr2, coop1, ref1, con1
    name: str  # AAPOR's name, e.g. "Response rate 1"
    formula: str  # e.g. "I / ((I+P) + (R+NC+O) + (UH+UO))"
    value: float | None  # a fraction 0..1; None: no case to compute it on


@dataclass(frozen=True, slots=True)
class Aapor:
    dispositions: tuple[DispositionCount, ...]  # every code, in aapor.CODES order
    groups: Mapping[str, int]  # contacts per rate group (I, P, R, NC, O, UH, UO, NE)
    rates: tuple[Rate, ...]


@dataclass(frozen=True, slots=True)
class OptionCount:
    value: str  # as stored in answers.value
    label: str  # the option's label in the report language (the value if none)
    count: int  # unweighted: latest answer per call and question
    share: float | None  # count / the question's answers
    respondents: int  # of these, answers of completed respondents (the weighted base)
    weighted: float | None  # respondents' answers weighted; None: no weights
    weighted_share: float | None


@dataclass(frozen=True, slots=True)
class QuestionResult:
    node_id: str
    kind: str  # choice, scale, number
    text: str  # the prompt in the report language ("" if none)
    answers: int  # answers counted (all calls)
    respondents: int  # answers of completed respondents
    options: tuple[OptionCount, ...]


@dataclass(frozen=True, slots=True)
class Quote:
    transcript_id: int
    text: str  # the corrected text when there is one, else the machine's
    corrected: bool
    reviewed: bool
    language: str


@dataclass(frozen=True, slots=True)
class Theme:
    tag_id: int
    name: str
    count: int  # open answers with this tag
    quotes: tuple[Quote, ...]


@dataclass(frozen=True, slots=True)
class Themes:
    open_answers: int  # transcripts of the campaign (or line)
    reviewed: int
    tagged: int  # with at least one tag
    themes: tuple[Theme, ...]  # most frequent first


@dataclass(frozen=True, slots=True)
class Share:
    value: str  # the group ("" = not known)
    contacts: int
    respondents: int
    contact_share: float | None
    respondent_share: float | None
    difference: float | None  # respondent_share - contact_share (fractions)
    weighted_share: float | None  # respondents' weighted share (≈ contact_share when raked)
    missing: bool  # contacts in the group but no respondent


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str  # age_group, area, language
    shares: tuple[Share, ...]
    weighted: bool  # used as a raking margin


@dataclass(frozen=True, slots=True)
class Representativeness:
    contacts: int
    respondents: int
    dimensions: tuple[Dimension, ...]


@dataclass(frozen=True, slots=True)
class WeightsSummary:
    method: str  # "raking (weightipy)"
    respondents: int
    margins: tuple[str, ...]  # the dimensions raked on
    minimum: float | None
    maximum: float | None
    efficiency: float | None  # Kish's weighting efficiency, percent
    converged: bool
    notes: tuple[Note, ...]


@dataclass(frozen=True, slots=True)
class CostSummary:
    billing_rule: str
    price_per_minute: float | None
    calls: int  # answered calls billed
    talk_seconds: float
    billable_seconds: int
    billable_minutes: float
    amount: float | None  # euros; None: price not set
    completed: int
    per_completed: float | None
    notes: tuple[Note, ...]


@dataclass(frozen=True, slots=True)
class CampaignReport:
    campaign_id: str
    name: str
    status: str
    language: str  # the report language (option labels, prompts)
    funnel: Funnel
    aapor: Aapor
    questions: tuple[QuestionResult, ...]
    themes: Themes
    representativeness: Representativeness
    weights_summary: WeightsSummary
    cost: CostSummary
    notes: tuple[Note, ...] = ()
    # contact id -> raking weight, for each respondent (completed contact)
    weights: Mapping[str, float] = field(default_factory=dict, compare=False)
    # when the counted figures were counted (``ivr.reports.cache``); None: just now
    as_of: datetime | None = field(default=None, compare=False)
    # (language, age_group, area) -> the raking weight of every respondent of that cell
    # (what the exports write per respondent; left out of ``to_dict``)
    cell_weights: Mapping[tuple[str, str, str], float] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The report's numbers as JSON-ready data (per-contact weights left out: the
        exports carry them per row)."""
        out: dict[str, Any] = _plain(self)
        out.pop("weights", None)
        out.pop("as_of", None)
        out.pop("cell_weights", None)
        return out


@dataclass(frozen=True, slots=True)
class LineFunnel:
    calls: int
    answered: int
    completed: int


@dataclass(frozen=True, slots=True)
class LineReport:
    line_id: str
    number: str
    flow_name: str
    language: str
    funnel: LineFunnel
    questions: tuple[QuestionResult, ...]
    themes: Themes

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = _plain(self)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, Note):
        return {"code": value.code, "dimension": value.dimension, "value": value.value,
                "text": value.text()}  # fmt: skip
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
