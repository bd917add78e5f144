"""The one outcome vocabulary: how a call, or a campaign's attempt at one, stands or ended.

Pure: no I/O. Every part of the system that says how a call went uses the members of
:class:`Outcome`: the flow engine's end states, the telephony session and service, the
classification of the network's answer to a call placed (Q.850 cause, SIP code), the
store's ``calls.status`` and ``attempts.outcome`` columns (their CHECK constraints allow
exactly the subsets below, and the database holds the members' values), the campaign rules
and the campaign funnel the CLI prints. A narrower concept is a named subset of these
members, never a parallel enum or a string map:

- :data:`FlowEnd` / :data:`FLOW_ENDS`: how the flow engine ends a call it ran;
- :data:`DialResult` / :data:`DIAL_RESULTS`: the network's answer to placing a call:
  ``answered`` (the flow runs, and its end is the call's outcome) or why it was not;
- :data:`CALL_STATUSES`: what ``calls.status`` holds: ``active`` while the call runs, then
  one of :data:`CALL_ENDS`;
- :data:`ATTEMPT_OUTCOMES`: what ``attempts.outcome`` holds: the end of the call placed
  for the attempt (:func:`attempt_outcome`), or ``skipped`` when it was never dialled;
  :data:`PLACED_OUTCOMES` are those of an attempt whose call was placed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal, get_args

__all__ = [
    "ATTEMPT_OUTCOMES",
    "CALL_ENDS",
    "CALL_STATUSES",
    "DIAL_RESULTS",
    "FLOW_ENDS",
    "NOT_ANSWERED",
    "PLACED_OUTCOMES",
    "DialResult",
    "FlowEnd",
    "Outcome",
    "attempt_outcome",
    "classify",
]


class Outcome(StrEnum):
    """Where a call or an attempt stands, or how it ended (values as stored)."""

    # A call in progress (``calls.status`` until it ends): not an end.
    ACTIVE = "active"
    # The flow ran to its end (the flow engine's end states):
    COMPLETED = "completed"  # reached an end node
    PARTIAL = "partial"  # hung up (or failed input) before the end, some answers given
    OPTED_OUT = "opted_out"  # pressed the opt-out key, or asked not to be called
    TRANSFERRED = "transferred"  # handed to a person
    # Ended on our side; a campaign retries these:
    INTERRUPTED = "interrupted"  # the worker or Asterisk stopped mid-call
    FAILED = "failed"  # a technical fault: ARI or database, the trunk (cause and SIP kept)
    # Never answered (the network's answer to the call placed):
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    DECLINED = "declined"  # rejected (SIP 603), or refused after answering
    UNALLOCATED = "unallocated"  # the number does not exist
    # Dialling only: answered; the flow now runs and its end is the call's outcome.
    ANSWERED = "answered"
    # Attempts only: never dialled, a dial-time rule said no (``outcome_detail`` says which).
    SKIPPED = "skipped"


FlowEnd = Literal[Outcome.COMPLETED, Outcome.PARTIAL, Outcome.OPTED_OUT, Outcome.TRANSFERRED]
"""How the flow engine ends a call it ran."""
FLOW_ENDS: Final[frozenset[Outcome]] = frozenset(get_args(FlowEnd))

NOT_ANSWERED: Final = frozenset(
    {Outcome.NO_ANSWER, Outcome.BUSY, Outcome.DECLINED, Outcome.UNALLOCATED}
)
"""The network's answers to a call placed that mean the resident did not answer."""

DialResult = Literal[
    Outcome.ANSWERED,
    Outcome.NO_ANSWER,
    Outcome.BUSY,
    Outcome.DECLINED,
    Outcome.UNALLOCATED,
    Outcome.FAILED,
]
"""The network's answer to placing a call (:func:`classify`)."""
DIAL_RESULTS: Final[frozenset[Outcome]] = frozenset(get_args(DialResult))

CALL_STATUSES: Final = (
    Outcome.ACTIVE,
    Outcome.COMPLETED,
    Outcome.PARTIAL,
    Outcome.OPTED_OUT,
    Outcome.TRANSFERRED,
    Outcome.INTERRUPTED,
    Outcome.FAILED,
    Outcome.NO_ANSWER,
    Outcome.BUSY,
    Outcome.DECLINED,
    Outcome.UNALLOCATED,
)
"""What ``calls.status`` may hold (in the order of its CHECK constraint)."""
CALL_ENDS: Final = frozenset(CALL_STATUSES) - {Outcome.ACTIVE}
"""A call's final status."""

ATTEMPT_OUTCOMES: Final = (
    Outcome.COMPLETED,
    Outcome.PARTIAL,
    Outcome.NO_ANSWER,
    Outcome.BUSY,
    Outcome.DECLINED,
    Outcome.UNALLOCATED,
    Outcome.FAILED,
    Outcome.OPTED_OUT,
    Outcome.INTERRUPTED,
    Outcome.SKIPPED,
)
"""What ``attempts.outcome`` may hold (in the order of its CHECK constraint)."""
PLACED_OUTCOMES: Final = frozenset(ATTEMPT_OUTCOMES) - {Outcome.SKIPPED}
"""The outcomes of an attempt whose call was placed: what the campaign rules decide on."""


def attempt_outcome(call_end: Outcome) -> Outcome:
    """The outcome of a campaign's attempt whose call ended ``call_end``: the same member,
    except that a call handed to a person completed its attempt."""
    if call_end not in CALL_ENDS:
        raise ValueError(f"{call_end.value!r} is not how a call ends")
    return Outcome.COMPLETED if call_end is Outcome.TRANSFERRED else call_end


# Q.850 cause codes as Asterisk reports them (ChannelDestroyed.cause).
NO_ANSWER_CAUSES = frozenset({18, 19, 0})  # no user responding, no answer, originate timeout
BUSY_CAUSES = frozenset({17})
DECLINED_CAUSES = frozenset({21})  # call rejected (SIP 603 Decline, 403)
UNALLOCATED_CAUSES = frozenset({1, 22, 28})  # unallocated, number changed, invalid format


def classify(answered: bool, cause: int | None, sip_code: int | None = None) -> DialResult:
    """The network's answer to a call placed. ``sip_code`` (when known) is more precise
    than ``cause``."""
    if answered:
        return Outcome.ANSWERED
    if sip_code is not None:
        if sip_code in (600, 603):
            return Outcome.DECLINED
        if sip_code == 486:
            return Outcome.BUSY
        if sip_code in (404, 410, 484, 604):
            return Outcome.UNALLOCATED
        if sip_code in (408, 480, 487):
            return Outcome.NO_ANSWER
    if cause is None or cause in NO_ANSWER_CAUSES:
        return Outcome.NO_ANSWER
    if cause in BUSY_CAUSES:
        return Outcome.BUSY
    if cause in DECLINED_CAUSES:
        return Outcome.DECLINED
    if cause in UNALLOCATED_CAUSES:
        return Outcome.UNALLOCATED
    return Outcome.FAILED
