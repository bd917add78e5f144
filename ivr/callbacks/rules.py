"""The callback worklist's rules, without I/O: which change is allowed from which status,
what a change needs (a recorded answer to end a request, a note to reopen one), and when an
open request is overdue.

A request starts ``new``; ``assigned`` once a member takes it; ``contacted`` when the staff
reached the resident; it ends ``resolved`` or ``unreachable`` (could not reach), each with
the answer the resident got or what was tried (``resolution``). An ended request can be
reopened with a note (the resident calls again, say): back to ``assigned`` if it has an
assignee, else ``new``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from ivr.store.models import CallbackStatus

OPEN = frozenset({CallbackStatus.NEW, CallbackStatus.ASSIGNED, CallbackStatus.CONTACTED})
FINAL = frozenset({CallbackStatus.RESOLVED, CallbackStatus.UNREACHABLE})
# Waiting for a first contact: these become overdue.
WAITING = frozenset({CallbackStatus.NEW, CallbackStatus.ASSIGNED})
MAX_TEXT = 4000  # characters in a note or a resolution


class Action(enum.StrEnum):
    ASSIGN = "assign"
    NOTE = "note"
    CONTACTED = "contacted"
    RESOLVE = "resolve"
    UNREACHABLE = "unreachable"
    REOPEN = "reopen"


@dataclass(frozen=True)
class Change:
    """What an allowed action does: the status afterwards (None: unchanged), the
    resolution to store (None: unchanged; "" clears it), and whether it ends the request."""

    status: CallbackStatus | None
    resolution: str | None = None
    ends: bool = False
    reopens: bool = False


class ChangeRefused(Exception):
    """The action is not allowed, or lacks what it needs: field name -> problem code
    (``action``: not_allowed; ``resolution``: required, too_long; ``note``: required,
    too_long; ``assignee``: required)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def allowed_actions(status: CallbackStatus) -> tuple[Action, ...]:
    """The actions offered on a request in ``status``, in the page's order."""
    if status in FINAL:
        return (Action.REOPEN, Action.NOTE)
    actions = [Action.ASSIGN]
    if status is not CallbackStatus.CONTACTED:
        actions.append(Action.CONTACTED)
    actions += [Action.RESOLVE, Action.UNREACHABLE, Action.NOTE]
    return tuple(actions)


def plan(
    status: CallbackStatus,
    action: Action,
    *,
    note: str = "",
    resolution: str = "",
    assignee: str | None = None,
    has_assignee: bool = False,
) -> Change:
    """The change ``action`` makes to a request in ``status``, or ChangeRefused naming
    every problem. ``note``/``resolution`` are the texts the staff member wrote."""
    errors: dict[str, str] = {}
    note, resolution = note.strip(), resolution.strip()
    if action not in allowed_actions(status):
        raise ChangeRefused({"action": "not_allowed"})
    if len(note) > MAX_TEXT:
        errors["note"] = "too_long"
    change: Change
    if action is Action.ASSIGN:
        if not assignee:
            errors["assignee"] = "required"
        after = CallbackStatus.ASSIGNED if status is CallbackStatus.NEW else None
        change = Change(after)
    elif action is Action.NOTE:
        if not note:
            errors["note"] = "required"
        change = Change(None)
    elif action is Action.CONTACTED:
        change = Change(CallbackStatus.CONTACTED)
    elif action in (Action.RESOLVE, Action.UNREACHABLE):
        if not resolution:
            errors["resolution"] = "required"
        elif len(resolution) > MAX_TEXT:
            errors["resolution"] = "too_long"
        final = CallbackStatus.RESOLVED if action is Action.RESOLVE else CallbackStatus.UNREACHABLE
        change = Change(final, resolution=resolution, ends=True)
    else:  # REOPEN
        if not note:
            errors["note"] = "required"
        after = CallbackStatus.ASSIGNED if has_assignee else CallbackStatus.NEW
        change = Change(after, reopens=True)
    if errors:
        raise ChangeRefused(errors)
    return change


def overdue_cutoff(now: datetime, hours: int) -> datetime:
    """Requests received before this instant and still waiting are overdue."""
    return now - timedelta(hours=hours)


def is_overdue(status: CallbackStatus, created_at: datetime, now: datetime, hours: int) -> bool:
    """A request still waiting for its first contact (new or assigned) ``hours`` after it
    came in."""
    return status in WAITING and created_at <= overdue_cutoff(now, hours)


def age(created_at: datetime, now: datetime) -> timedelta:
    """How long the request has waited (never negative)."""
    return max(now - created_at, timedelta(0))
