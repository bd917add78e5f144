"""PURE rules of the cluster view: what state a node is in, from its last heartbeat.

No I/O and no clock of its own: the caller passes ``now`` (the App's clock) and the node
timeout (``[cluster] node_timeout_seconds``).
"""

from __future__ import annotations

import enum
from datetime import datetime


class NodeState(enum.StrEnum):
    UP = "up"  # heartbeating, taking calls and claiming campaign attempts
    DRAINING = "draining"  # heartbeating; claims no new attempts, its live calls finish
    DOWN = "down"  # silent for longer than the node timeout without a clean shutdown
    STOPPED = "stopped"  # left cleanly (its worker's shutdown said so)


def heartbeat_age(heartbeat_at: datetime, now: datetime) -> float:
    """Seconds since the heartbeat (never negative: a clock a little behind reads 0)."""
    return max(0.0, (now - heartbeat_at).total_seconds())


AGE_UNITS = (("s", 1.0, 120.0), ("min", 60.0, 7200.0), ("h", 3600.0, 172800.0))


def age_in_units(seconds: float) -> tuple[int, str]:
    """A heartbeat's age as shown to people: whole seconds below 2 minutes, minutes below
    2 hours, hours below 2 days, else days (``(count, unit)``, unit s, min, h or d)."""
    for unit, size, below in AGE_UNITS:
        if seconds < below:
            return round(seconds / size), unit
    return round(seconds / 86400), "d"


def node_state(
    *,
    heartbeat_at: datetime,
    stopped_at: datetime | None,
    draining: bool,
    now: datetime,
    timeout_seconds: float,
) -> NodeState:
    """A clean shutdown reads "stopped" (until a later heartbeat); silence longer than the
    timeout reads "down", whether draining or not (health first); a live node is
    "draining" or "up". A heartbeat exactly ``timeout_seconds`` old is still up."""
    if timeout_seconds <= 0:
        raise ValueError(f"timeout_seconds: must be positive, not {timeout_seconds!r}")
    if stopped_at is not None and stopped_at >= heartbeat_at:
        return NodeState.STOPPED
    if heartbeat_age(heartbeat_at, now) > timeout_seconds:
        return NodeState.DOWN
    return NodeState.DRAINING if draining else NodeState.UP


def takes_new_attempts(state: NodeState) -> bool:
    """Whether a node in this state claims new campaign attempts."""
    return state is NodeState.UP
