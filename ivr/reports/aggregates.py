"""A campaign's report aggregates (the results of the heavy GROUP BY queries in
``ivr.reports.queries``) and their JSON form, for the cache (``ivr.reports.cache``).

Pure: no I/O. ``loads(dumps(a)) == a`` for every ``Aggregates``; the lists keep their
order (the report is built from them exactly as from the queries' rows). ``loads`` raises
``ValueError`` on a text it cannot read (another format version, damaged data): the
caller then counts anew.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ivr.outcome import Outcome
from ivr.reports.queries import AnswerGroup, Cell, ContactGroup

FORMAT = 1  # the JSON's layout; a text of another layout is not read


@dataclass(frozen=True, slots=True)
class Aggregates:
    """What ``queries.contact_groups``, ``campaign_answers`` and ``talk`` returned."""

    groups: tuple[ContactGroup, ...]
    answers: tuple[AnswerGroup, ...]
    talk: tuple[int, float, int]  # answered calls billed, talk seconds, billable seconds


def dumps(aggregates: Aggregates) -> str:
    data = {
        "format": FORMAT,
        "groups": [
            [list(g.cell), sorted(o.value for o in g.outcomes), g.attempted, g.answered,
             g.contacts, g.calls_placed]
            for g in aggregates.groups
        ],
        "answers": [
            [a.node_id, a.kind, a.value, list(a.cell), a.respondent, a.answers]
            for a in aggregates.answers
        ],
        "talk": list(aggregates.talk),
    }  # fmt: skip
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _cell(value: Any) -> Cell:
    if not isinstance(value, list) or len(value) != 3:
        raise ValueError(f"a cell is three texts, not {value!r}")
    return (_text(value[0]), _text(value[1]), _text(value[2]))


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a text, not {value!r}")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number, not {value!r}")
    return int(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, not {value!r}")
    return value


def loads(text: str) -> Aggregates:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError("not aggregates of this format")
    try:
        groups = tuple(
            ContactGroup(
                cell=_cell(cell),
                outcomes=frozenset(Outcome(_text(o)) for o in outcomes),
                attempted=_bool(attempted),
                answered=_bool(answered),
                contacts=_int(contacts),
                calls_placed=_int(placed),
            )
            for cell, outcomes, attempted, answered, contacts, placed in data["groups"]
        )
        answers = tuple(
            AnswerGroup(
                node_id=_text(node_id),
                kind=_text(kind),
                value=_text(value),
                cell=_cell(cell),
                respondent=_bool(respondent),
                answers=_int(count),
            )
            for node_id, kind, value, cell, respondent, count in data["answers"]
        )
        calls, seconds, billable = data["talk"]
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ValueError(f"talk seconds: expected a number, not {seconds!r}")
        talk = (_int(calls), float(seconds), _int(billable))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"aggregates incomplete: {exc!r}") from exc
    return Aggregates(groups, answers, talk)
