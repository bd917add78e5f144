"""The cluster's nodes in the database: heartbeats, draining, and the cluster view.

Each telephony worker calls ``heartbeat`` every ``[cluster] heartbeat_seconds`` (an upsert
of its row that works the same on SQLite and PostgreSQL) and reads back whether the
operator set it draining; ``ivr cluster drain NODE`` calls ``set_draining``; ``ivr cluster
status`` and the web admin page read ``node_views``. What state a node is in is decided by
the pure rules in ``ivr.cluster.node_rules``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ivr.cluster.node_rules import NodeState, heartbeat_age, node_state
from ivr.store.cluster_models import ClusterNode

MAX_ERROR_CHARS = 2000  # a last error longer than this is cut (a stack trace is not needed)
MAX_VERSION_CHARS = 64


@dataclass(frozen=True, slots=True)
class NodeBeat:
    """What a telephony worker reports in one heartbeat."""

    name: str
    started_at: datetime  # when this run of the worker started
    asterisk_version: str | None = None  # None: not connected to Asterisk yet
    calls_in_progress: int = 0
    pacing: float | None = None  # calls/s its dialer allows now; None: no dialer
    campaigns_running: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BeatResult:
    """What the heartbeat read back: the operator's draining flag for this node."""

    draining: bool
    draining_since: datetime | None


@dataclass(frozen=True, slots=True)
class NodeView:
    """One node as ``ivr cluster status`` and the admin page show it."""

    name: str
    state: NodeState
    heartbeat_at: datetime
    heartbeat_age: float  # seconds
    started_at: datetime
    stopped_at: datetime | None
    asterisk_version: str | None
    calls_in_progress: int
    pacing: float | None
    campaigns_running: int
    draining: bool
    draining_since: datetime | None
    last_error: str | None
    last_error_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "name": self.name,
            "state": self.state.value,
            "heartbeat_at": iso(self.heartbeat_at),
            "heartbeat_age_seconds": round(self.heartbeat_age, 1),
            "started_at": iso(self.started_at),
            "stopped_at": iso(self.stopped_at),
            "asterisk_version": self.asterisk_version,
            "calls_in_progress": self.calls_in_progress,
            "pacing_calls_per_second": self.pacing,
            "campaigns_running": self.campaigns_running,
            "draining": self.draining,
            "draining_since": iso(self.draining_since),
            "last_error": self.last_error,
            "last_error_at": iso(self.last_error_at),
        }


def _check_name(name: str) -> str:
    if not name or len(name) > 255 or name != name.strip():
        raise ValueError(f"node name: 1-255 characters without surrounding spaces, not {name!r}")
    return name


def _cut(text: str | None, limit: int) -> str | None:
    return None if text is None else text[:limit]


def heartbeat(s: Session, beat: NodeBeat, now: datetime) -> BeatResult:
    """Write the node's heartbeat (insert its row, or update it) and read back its draining
    flag. The flag and ``draining_since`` belong to the operator: a heartbeat never
    changes them. A heartbeat after a clean stop clears ``stopped_at`` (the node is back).

    Portable: an UPDATE first (the common case); when no row was there, an INSERT, and if
    another session inserted the same node in between, the UPDATE once more.
    """
    _check_name(beat.name)
    if beat.calls_in_progress < 0 or beat.campaigns_running < 0:
        raise ValueError("calls_in_progress and campaigns_running: must not be negative")
    if beat.pacing is not None and beat.pacing < 0:
        raise ValueError(f"pacing: must not be negative, not {beat.pacing!r}")
    values: dict[str, Any] = {
        "asterisk_version": _cut(beat.asterisk_version, MAX_VERSION_CHARS),
        "started_at": beat.started_at,
        "heartbeat_at": now,
        "stopped_at": None,
        "calls_in_progress": beat.calls_in_progress,
        "pacing": beat.pacing,
        "campaigns_running": beat.campaigns_running,
        "last_error": _cut(beat.last_error, MAX_ERROR_CHARS),
        "last_error_at": beat.last_error_at if beat.last_error is not None else None,
    }
    update = sa.update(ClusterNode).where(ClusterNode.name == beat.name).values(**values)
    if s.execute(update).rowcount == 0:  # type: ignore[attr-defined]
        try:
            with s.begin_nested():
                s.execute(sa.insert(ClusterNode).values(name=beat.name, draining=False, **values))
        except sa.exc.IntegrityError:
            s.execute(update)
    row = s.execute(
        sa.select(ClusterNode.draining, ClusterNode.draining_since).where(
            ClusterNode.name == beat.name
        )
    ).one()
    return BeatResult(draining=bool(row.draining), draining_since=row.draining_since)


def mark_stopped(s: Session, name: str, at: datetime) -> bool:
    """A clean shutdown: the node reads "stopped" (not "down") until its next heartbeat.
    Its calls in progress are zero by then. False when the node has no row."""
    result = s.execute(
        sa.update(ClusterNode)
        .where(ClusterNode.name == _check_name(name))
        .values(stopped_at=at, heartbeat_at=at, calls_in_progress=0)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def set_draining(s: Session, name: str, draining: bool, at: datetime) -> None:
    """Set or clear the node's draining flag (the operator's ``ivr cluster drain|undrain``).

    ``draining_since`` keeps the first instant of a drain (draining twice does not move it)
    and is cleared by undraining. LookupError when no node by that name ever heartbeated.
    """
    node = s.get(ClusterNode, _check_name(name))
    if node is None:
        known = s.scalars(sa.select(ClusterNode.name).order_by(ClusterNode.name)).all()
        listed = ", ".join(known) if known else "none yet"
        raise LookupError(f"node {name!r}: no such node in the cluster (known: {listed})")
    if draining and not node.draining:
        node.draining, node.draining_since = True, at
    elif not draining:
        node.draining, node.draining_since = False, None
    s.flush()


def is_draining(s: Session, name: str) -> bool:
    """Whether the operator set the node draining (False for an unknown node)."""
    value = s.scalar(sa.select(ClusterNode.draining).where(ClusterNode.name == name))
    return bool(value)


def draining_nodes(s: Session) -> frozenset[str]:
    """The names of the nodes the operator set draining."""
    return frozenset(s.scalars(sa.select(ClusterNode.name).where(ClusterNode.draining)))


def _view(node: ClusterNode, now: datetime, timeout_seconds: float) -> NodeView:
    return NodeView(
        name=node.name,
        state=node_state(
            heartbeat_at=node.heartbeat_at,
            stopped_at=node.stopped_at,
            draining=node.draining,
            now=now,
            timeout_seconds=timeout_seconds,
        ),
        heartbeat_at=node.heartbeat_at,
        heartbeat_age=heartbeat_age(node.heartbeat_at, now),
        started_at=node.started_at,
        stopped_at=node.stopped_at,
        asterisk_version=node.asterisk_version,
        calls_in_progress=node.calls_in_progress,
        pacing=node.pacing,
        campaigns_running=node.campaigns_running,
        draining=node.draining,
        draining_since=node.draining_since,
        last_error=node.last_error,
        last_error_at=node.last_error_at,
    )


def node_views(s: Session, now: datetime, timeout_seconds: float) -> list[NodeView]:
    """Every node the database knows, by name, with its state at ``now``."""
    nodes = s.scalars(sa.select(ClusterNode).order_by(ClusterNode.name)).all()
    return [_view(node, now, timeout_seconds) for node in nodes]


def down_nodes(s: Session, now: datetime, timeout_seconds: float) -> list[str]:
    """The names of the nodes that are down at ``now``: silent for longer than the timeout
    without a clean shutdown (their calls in flight are for another node to settle)."""
    return [
        view.name for view in node_views(s, now, timeout_seconds) if view.state is NodeState.DOWN
    ]


def forget_node(s: Session, name: str) -> bool:
    """Remove a node's row (a node taken out of the cluster for good). False if unknown."""
    result = s.execute(sa.delete(ClusterNode).where(ClusterNode.name == _check_name(name)))
    return bool(result.rowcount)  # type: ignore[attr-defined]
