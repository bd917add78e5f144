"""AAPOR final dispositions and outcome rates for a campaign's contacts (pure core).

Nothing here does I/O. The codes and the rate formulas are those of the AAPOR Standard
Definitions (final disposition codes for telephone surveys); no code is invented here, and
the platform uses the few that its outcomes can tell apart:

==========  ========================  =====  =============================================
Code        AAPOR label               Group  Final result of the contact
==========  ========================  =====  =============================================
1.1         Complete                  I      an attempt ``completed`` (or ``transferred``)
1.2         Partial                   P      an attempt ``partial``, none completed
2.10        Refusal and break-off     R      ``opted_out`` during a call, no interview
2.11        Refusal                   R      ``declined``, no interview, no opt-out
4.31        Non-working number        NE     ``unallocated``, no interview, no refusal
3.12        Always busy               UH     every attempt that reached the network: ``busy``
3.13        No answer                 UH     ``no_answer`` (with or without ``busy``)
3.90        Other                     UO     only ``failed`` / ``interrupted`` attempts
3.11        Not attempted or worked   UH     no call placed (no attempt, or ``skipped``)
==========  ========================  =====  =============================================

The table is :data:`CODES` (each disposition in that order) and :data:`MAPPING` (each
attempt outcome to the disposition of a contact whose attempts all ended that way).

Precedence, when a contact's attempts ended differently (:func:`disposition`), first match:

1. any attempt completed (or transferred: :func:`ivr.outcome.attempt_outcome` counts a call
   handed to a person as completing its attempt) → 1.1;
2. any partial → 1.2 (the interview took place: AAPOR ranks interviews above all else);
3. any opted_out → 2.10; else any declined → 2.11 (an explicit refusal by the resident);
4. any unallocated → 4.31 (the number does not exist: not eligible);
5. among the attempts that reached the network without an answer: all busy → 3.12, any no
   answer → 3.13 (AAPOR's "always busy" is only for a number busy at every attempt);
6. only failed or interrupted attempts → 3.90 (see :data:`OTHER_UNKNOWN`);
7. no call placed → 3.11, or 3.90 if a call was placed but has no outcome yet (in flight).

Rates (:func:`rates`), AAPOR's formulas with I, P, R, NC, O, UH, UO the counts per group
(NE, not eligible, is in no denominator):

- RR1 = I / ((I+P) + (R+NC+O) + (UH+UO))
- RR2 = (I+P) / ((I+P) + (R+NC+O) + (UH+UO))
- COOP1 = I / ((I+P) + R + O)
- REF1 = R / ((I+P) + (R+NC+O) + (UH+UO))
- CON1 = ((I+P) + R + O) / ((I+P) + R + O + NC + (UH+UO))

A rate whose denominator is 0 is ``None`` (not 0.0): "no case to compute it on" is not a
0 % rate, and a report shows it as a dash.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from ivr.outcome import ATTEMPT_OUTCOMES, CALL_ENDS, PLACED_OUTCOMES, Outcome, attempt_outcome

__all__ = [
    "ALWAYS_BUSY",
    "CODES",
    "COMPLETE",
    "MAPPING",
    "NON_WORKING",
    "NOT_ATTEMPTED",
    "NO_ANSWER",
    "OTHER_UNKNOWN",
    "PARTIAL",
    "REFUSAL",
    "REFUSAL_AND_BREAK_OFF",
    "Disposition",
    "DispositionGroup",
    "Rates",
    "counts",
    "disposition",
    "rates",
]


class DispositionGroup(StrEnum):
    """The groups of AAPOR's rate formulas (and NE, not eligible, which is in none)."""

    I = "I"  # noqa: E741 (AAPOR's own letter) complete interview (1.1)
    P = "P"  # partial interview (1.2)
    R = "R"  # refusal and break-off (2.10)
    NC = "NC"  # non-contact (2.20)
    O = "O"  # noqa: E741 (AAPOR's own letter) other, eligible (2.30)
    UH = "UH"  # unknown if household / occupied (3.10)
    UO = "UO"  # unknown eligibility, other (3.20, 3.90)
    NE = "NE"  # not eligible (4.x)


@dataclass(frozen=True, slots=True)
class Disposition:
    """An AAPOR final disposition: its code, its rate group and AAPOR's English label."""

    code: str
    group: DispositionGroup
    label: str


COMPLETE: Final = Disposition("1.1", DispositionGroup.I, "Complete")
PARTIAL: Final = Disposition("1.2", DispositionGroup.P, "Partial")
# An opt-out is pressed during the call: before the first question it is a refusal (2.11),
# after some answers a break-off (2.12). The outcome does not say which, so the parent code
# 2.10, which AAPOR provides for exactly this, is used.
REFUSAL_AND_BREAK_OFF: Final = Disposition("2.10", DispositionGroup.R, "Refusal and break-off")
# ``declined``: the call was rejected (SIP 603) or refused after answering; ivr.outcome
# documents it as the resident's rejection, so a refusal. (A 603 sent by a call-blocking
# service would be 3.15, technological barrier; the network's answer cannot tell them apart.)
REFUSAL: Final = Disposition("2.11", DispositionGroup.R, "Refusal")
# ``unallocated`` covers Q.850 causes 1 (unallocated), 22 (number changed) and 28 (invalid
# format) and SIP 404/410/484/604; 4.31 (non-working number) fits them best as a whole.
NON_WORKING: Final = Disposition("4.31", DispositionGroup.NE, "Non-working number")
NOT_ATTEMPTED: Final = Disposition("3.11", DispositionGroup.UH, "Not attempted or worked")
ALWAYS_BUSY: Final = Disposition("3.12", DispositionGroup.UH, "Always busy")
NO_ANSWER: Final = Disposition("3.13", DispositionGroup.UH, "No answer")
# ``failed`` and ``interrupted`` are faults on our side (ARI, database, trunk, a worker or
# Asterisk stopping). They say nothing about the number or the resident, so the contact's
# eligibility is unknown for a reason none of AAPOR's specific 3.x codes describes (3.16,
# technical phone problems, is about the sampled number's line, not the caller's system):
# 3.90, other. Also the disposition of a contact whose placed call has no outcome yet.
OTHER_UNKNOWN: Final = Disposition("3.90", DispositionGroup.UO, "Other")

CODES: Final[tuple[Disposition, ...]] = (
    COMPLETE,
    PARTIAL,
    REFUSAL_AND_BREAK_OFF,
    REFUSAL,
    NON_WORKING,
    ALWAYS_BUSY,
    NO_ANSWER,
    OTHER_UNKNOWN,
    NOT_ATTEMPTED,
)
"""Every disposition this module gives, in the README table's order."""

_ACCEPTED: Final = frozenset(ATTEMPT_OUTCOMES) | CALL_ENDS
"""The outcomes an attempt can end with: the attempt outcomes, and a call's end (transferred
is read as completed)."""

MAPPING: Final[Mapping[Outcome, Disposition]] = MappingProxyType(
    {
        Outcome.COMPLETED: COMPLETE,
        Outcome.TRANSFERRED: COMPLETE,
        Outcome.PARTIAL: PARTIAL,
        Outcome.OPTED_OUT: REFUSAL_AND_BREAK_OFF,
        Outcome.DECLINED: REFUSAL,
        Outcome.UNALLOCATED: NON_WORKING,
        Outcome.BUSY: ALWAYS_BUSY,
        Outcome.NO_ANSWER: NO_ANSWER,
        Outcome.FAILED: OTHER_UNKNOWN,
        Outcome.INTERRUPTED: OTHER_UNKNOWN,
        Outcome.SKIPPED: NOT_ATTEMPTED,
    }
)
"""Each outcome an attempt can end with → the disposition of a contact whose attempts all
ended so (``skipped``: never dialled). ``active`` and ``answered`` are not ends: a call in
progress, a dial answered whose flow has not ended; :func:`disposition` refuses them."""


def disposition(outcomes: Sequence[Outcome], attempted: bool) -> Disposition:
    """The AAPOR final disposition of a contact.

    ``outcomes``: its finished attempts' outcomes, in order (a call's end is accepted too:
    ``transferred`` reads as ``completed``); ``attempted``: whether a call was placed for it
    at all (the funnel's ``numbers_attempted``: in flight now, or finished and not
    ``skipped``). Raises ``ValueError`` for an outcome that is not an end (``active``,
    ``answered``) and for placed outcomes with ``attempted`` false.
    """
    ends: set[Outcome] = set()
    for outcome in outcomes:
        if outcome not in _ACCEPTED:
            raise ValueError(f"{outcome.value!r} is not how an attempt ends")
        ends.add(outcome if outcome is Outcome.SKIPPED else attempt_outcome(outcome))
    placed = ends & PLACED_OUTCOMES
    if placed and not attempted:
        raise ValueError(f"not attempted, yet calls ended {sorted(o.value for o in placed)}")
    # Interviews first, then refusals, then what the network said about the number.
    for outcome in (
        Outcome.COMPLETED,
        Outcome.PARTIAL,
        Outcome.OPTED_OUT,
        Outcome.DECLINED,
        Outcome.UNALLOCATED,
    ):
        if outcome in placed:
            return MAPPING[outcome]
    if Outcome.NO_ANSWER in placed:
        return NO_ANSWER  # busy and no answer mixed: not "always busy"
    if Outcome.BUSY in placed:
        return ALWAYS_BUSY  # failed/interrupted attempts never tested the line
    if placed or attempted:
        return OTHER_UNKNOWN  # only our own faults, or a call still in flight
    return NOT_ATTEMPTED


def counts(dispositions: Iterable[Disposition]) -> dict[DispositionGroup, int]:
    """Contacts per rate group (every group present, 0 when none): :func:`rates`' input."""
    tally = Counter(d.group for d in dispositions)
    return {group: tally[group] for group in DispositionGroup}


@dataclass(frozen=True, slots=True)
class Rates:
    """AAPOR's rates as fractions (0.0–1.0); ``None`` where the denominator is 0."""

    rr1: float | None
    rr2: float | None
    coop1: float | None
    ref1: float | None
    con1: float | None


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def rates(counts: Mapping[DispositionGroup, int]) -> Rates:
    """RR1, RR2, COOP1, REF1 and CON1 from contacts per group (a missing group counts 0;
    NE is in no formula). Raises ``ValueError`` for a negative count."""
    if any(n < 0 for n in counts.values()):
        raise ValueError("a count is negative")
    g = DispositionGroup
    i, p, r, nc, o = (counts.get(x, 0) for x in (g.I, g.P, g.R, g.NC, g.O))
    unknown = counts.get(g.UH, 0) + counts.get(g.UO, 0)
    interviews = i + p
    all_eligible_or_unknown = interviews + (r + nc + o) + unknown
    contacted = interviews + r + o
    return Rates(
        rr1=_ratio(i, all_eligible_or_unknown),
        rr2=_ratio(interviews, all_eligible_or_unknown),
        coop1=_ratio(i, contacted),
        ref1=_ratio(r, all_eligible_or_unknown),
        con1=_ratio(contacted, contacted + nc + unknown),
    )
