"""Classify how a call attempt ended, from Q.850 cause codes (pure; no I/O)."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    DECLINED = "declined"
    UNALLOCATED = "unallocated"
    FAILED = "failed"


# Q.850 cause codes as Asterisk reports them (ChannelDestroyed.cause).
NO_ANSWER_CAUSES = frozenset({18, 19, 0})  # no user responding, no answer, originate timeout
BUSY_CAUSES = frozenset({17})
DECLINED_CAUSES = frozenset({21})  # call rejected (SIP 603 Decline, 403)
UNALLOCATED_CAUSES = frozenset({1, 22, 28})  # unallocated, number changed, invalid format


def classify(answered: bool, cause: int | None, sip_code: int | None = None) -> Outcome:
    """The outcome of an attempt. ``sip_code`` (when known) is more precise than ``cause``."""
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
