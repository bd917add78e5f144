"""The funnel and the AAPOR dispositions and rates from grouped contacts (pure).

Each group of contacts (``queries.ContactGroup``: a cell and the set of outcomes its
attempts ended in) gets its disposition from ``ivr.campaigns.aapor.disposition``: the
mapping and its precedence live there, once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Final

from ivr.campaigns import aapor
from ivr.reports.model import Aapor, DispositionCount, Funnel, Rate
from ivr.reports.queries import Cell, ContactGroup

RATE_DEFINITIONS: Final[tuple[tuple[str, str, str], ...]] = (
    ("rr1", "Response rate 1", "I / ((I+P) + (R+NC+O) + (UH+UO))"),
    ("rr2", "Response rate 2", "(I+P) / ((I+P) + (R+NC+O) + (UH+UO))"),
    ("coop1", "Cooperation rate 1", "I / ((I+P) + R + O)"),
    ("ref1", "Refusal rate 1", "R / ((I+P) + (R+NC+O) + (UH+UO))"),
    ("con1", "Contact rate 1", "((I+P) + R + O) / ((I+P) + R + O + NC + (UH+UO))"),
)
"""Each rate's key, AAPOR's name and formula (the groups: I complete, P partial, R refusal
and break-off, NC non-contact, O other, UH/UO unknown eligibility; NE is in none)."""


def disposition_of(group: ContactGroup) -> aapor.Disposition:
    return aapor.disposition(sorted(group.outcomes), group.attempted)


def funnel(groups: Iterable[ContactGroup]) -> Funnel:
    contacts = attempted = answered = completed = placed = 0
    for g in groups:
        contacts += g.contacts
        attempted += g.contacts if g.attempted else 0
        answered += g.contacts if g.answered else 0
        completed += g.contacts if disposition_of(g) is aapor.COMPLETE else 0
        placed += g.calls_placed
    return Funnel(contacts, attempted, answered, completed, placed)


def dispositions(groups: Iterable[ContactGroup]) -> Aapor:
    per_code: Counter[str] = Counter()
    for g in groups:
        per_code[disposition_of(g).code] += g.contacts
    listed = tuple(
        DispositionCount(d.code, d.group.value, d.label, per_code[d.code]) for d in aapor.CODES
    )
    group_counts = _group_counts(per_code)
    found = aapor.rates(group_counts)
    rates = tuple(
        Rate(key, name, formula, getattr(found, key)) for key, name, formula in RATE_DEFINITIONS
    )
    return Aapor(listed, {g.value: n for g, n in group_counts.items()}, rates)


def _group_counts(per_code: Mapping[str, int]) -> dict[aapor.DispositionGroup, int]:
    totals = dict.fromkeys(aapor.DispositionGroup, 0)
    for d in aapor.CODES:
        totals[d.group] += per_code.get(d.code, 0)
    return totals


def cells(groups: Iterable[ContactGroup]) -> tuple[dict[Cell, int], dict[Cell, int]]:
    """Contacts and respondents (AAPOR 1.1) per cell."""
    contacts: Counter[Cell] = Counter()
    respondents: Counter[Cell] = Counter()
    for g in groups:
        contacts[g.cell] += g.contacts
        if disposition_of(g) is aapor.COMPLETE:
            respondents[g.cell] += g.contacts
    return dict(contacts), dict(respondents)
