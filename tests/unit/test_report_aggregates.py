"""The report aggregates' JSON form (ivr/reports/aggregates.py): read back exactly, in
order; anything else is refused with ValueError (the cache then counts anew)."""

from __future__ import annotations

import json

import pytest

from ivr.outcome import Outcome
from ivr.reports.aggregates import FORMAT, Aggregates, dumps, loads
from ivr.reports.queries import FLAG_OUTCOMES, AnswerGroup, ContactGroup

SAMPLE = Aggregates(
    groups=(
        ContactGroup(("fi", "30-49", "Keskusta"), frozenset(FLAG_OUTCOMES), True, True, 7, 12),
        ContactGroup(("sv", "", ""), frozenset(), False, False, 3, 0),
        ContactGroup(("", "65+", "Pyhämaa"), frozenset({Outcome.BUSY}), True, False, 1, 2),
    ),
    answers=(
        AnswerGroup("services", "scale", "4", ("fi", "30-49", "Keskusta"), True, 5),
        AnswerGroup("develop-area", "choice", 'ääni "x"', ("sv", "", ""), False, 1),
    ),
    talk=(4, 123.456789, 240),
)


def test_read_back_exactly_in_order() -> None:
    again = loads(dumps(SAMPLE))
    assert again == SAMPLE
    assert [g.cell for g in again.groups] == [g.cell for g in SAMPLE.groups]
    assert type(again.talk[1]) is float


def test_the_same_aggregates_give_the_same_text() -> None:
    assert dumps(SAMPLE) == dumps(loads(dumps(SAMPLE)))


def test_empty_aggregates() -> None:
    empty = Aggregates((), (), (0, 0.0, 0))
    assert loads(dumps(empty)) == empty


def _with(**changes: object) -> str:
    data = json.loads(dumps(SAMPLE))
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        json.dumps({"format": FORMAT + 1, "groups": [], "answers": [], "talk": [0, 0, 0]}),
        _with(groups=None),
        _with(answers=[["q", "scale", "1", ["fi", "", ""], True]]),  # a field missing
        _with(groups=[[["fi", ""], [], True, True, 1, 1]]),  # a cell of two
        _with(groups=[[["fi", "", ""], ["no_such_outcome"], True, True, 1, 1]]),
        _with(groups=[[["fi", "", ""], [], "yes", True, 1, 1]]),
        _with(groups=[[["fi", "", ""], [], True, True, 1.5, 1]]),
        _with(answers=[["q", "scale", 1, ["fi", "", ""], True, 1]]),
        _with(talk=[1, "2", 3]),
        _with(talk=[1, 2.0]),
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        loads(text)
