"""The cluster's nodes: the pure state rules, and the store (heartbeat upsert, draining,
the view, down nodes) on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr.cluster import nodes
from ivr.cluster.node_rules import NodeState, heartbeat_age, node_state, takes_new_attempts
from ivr.cluster.nodes import NodeBeat
from ivr.store.cluster_models import ClusterNode
from ivr.store.db import session_scope

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
TIMEOUT = 30.0


# --------------------------------------------------------------------------- pure rules
@pytest.mark.parametrize(
    ("age", "stopped", "draining", "expected"),
    [
        (0, False, False, NodeState.UP),
        (30, False, False, NodeState.UP),  # exactly the timeout: still up
        (30.5, False, False, NodeState.DOWN),
        (5, False, True, NodeState.DRAINING),
        (31, False, True, NodeState.DOWN),  # health first: a silent draining node is down
        (5, True, False, NodeState.STOPPED),
        (900, True, True, NodeState.STOPPED),  # left cleanly: never "down"
        (-3, False, False, NodeState.UP),  # a heartbeat a little in the future
    ],
)
def test_node_state(age: float, stopped: bool, draining: bool, expected: NodeState) -> None:
    beat = T0 - timedelta(seconds=age)
    state = node_state(
        heartbeat_at=beat,
        stopped_at=beat if stopped else None,
        draining=draining,
        now=T0,
        timeout_seconds=TIMEOUT,
    )
    assert state is expected
    assert takes_new_attempts(state) is (expected is NodeState.UP)


def test_a_heartbeat_after_a_stop_is_running_again() -> None:
    state = node_state(
        heartbeat_at=T0, stopped_at=T0 - timedelta(seconds=1), draining=False,
        now=T0, timeout_seconds=TIMEOUT,
    )  # fmt: skip
    assert state is NodeState.UP


def test_heartbeat_age_and_a_bad_timeout() -> None:
    assert heartbeat_age(T0 - timedelta(seconds=12.5), T0) == 12.5
    assert heartbeat_age(T0 + timedelta(seconds=2), T0) == 0.0
    with pytest.raises(ValueError, match="timeout_seconds"):
        node_state(heartbeat_at=T0, stopped_at=None, draining=False, now=T0, timeout_seconds=0)


# --------------------------------------------------------------------------- the store


def beat(name: str = "node-a", **overrides: object) -> NodeBeat:
    values: dict[str, object] = {
        "name": name,
        "started_at": T0 - timedelta(minutes=5),
        "asterisk_version": "22.10.0~dfsg+~cs6.15.60671435-1",
        "calls_in_progress": 3,
        "pacing": 2.5,
        "campaigns_running": 2,
    }
    values.update(overrides)
    return NodeBeat(**values)  # type: ignore[arg-type]


def test_heartbeat_inserts_then_updates_and_reads_back_draining(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as s:
        result = nodes.heartbeat(s, beat(), T0)
    assert (result.draining, result.draining_since) == (False, None)

    with session_scope(sessions) as s:
        nodes.set_draining(s, "node-a", True, T0 + timedelta(seconds=1))
    error_at = T0 + timedelta(seconds=3)
    with session_scope(sessions) as s:
        later = beat(
            calls_in_progress=7, pacing=None, last_error="ARI disconnected", last_error_at=error_at
        )
        result = nodes.heartbeat(s, later, T0 + timedelta(seconds=5))
    assert (result.draining, result.draining_since) == (True, T0 + timedelta(seconds=1))

    with session_scope(sessions) as s:
        rows = s.scalars(sa.select(ClusterNode)).all()
        assert len(rows) == 1
        row = rows[0]
        assert (row.heartbeat_at, row.calls_in_progress, row.pacing) == (
            T0 + timedelta(seconds=5), 7, None,
        )  # fmt: skip
        assert (row.last_error, row.last_error_at) == ("ARI disconnected", error_at)
        assert row.draining and row.asterisk_version == "22.10.0~dfsg+~cs6.15.60671435-1"


def test_set_draining_keeps_the_first_instant_and_undrain_clears_it(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as s:
        nodes.heartbeat(s, beat(), T0)
        assert not nodes.is_draining(s, "node-a")
        assert not nodes.is_draining(s, "nobody")
    with session_scope(sessions) as s:
        nodes.set_draining(s, "node-a", True, T0 + timedelta(seconds=10))
    with session_scope(sessions) as s:
        nodes.set_draining(s, "node-a", True, T0 + timedelta(seconds=20))  # twice: kept
        assert nodes.is_draining(s, "node-a")
    with session_scope(sessions) as s:
        (view,) = nodes.node_views(s, T0 + timedelta(seconds=25), TIMEOUT)
        assert (view.state, view.draining_since) == (NodeState.DRAINING, T0 + timedelta(seconds=10))
    with session_scope(sessions) as s:
        nodes.set_draining(s, "node-a", False, T0 + timedelta(seconds=30))
    with session_scope(sessions) as s:
        assert not nodes.is_draining(s, "node-a")
        assert s.get(ClusterNode, "node-a").draining_since is None  # type: ignore[union-attr]


def test_set_draining_names_an_unknown_node(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as s:
        with pytest.raises(LookupError, match=r"'node-x'.*known: none yet"):
            nodes.set_draining(s, "node-x", True, T0)
        nodes.heartbeat(s, beat("node-b"), T0)
        nodes.heartbeat(s, beat("node-a"), T0)
        with pytest.raises(LookupError, match=r"'node-x'.*known: node-a, node-b"):
            nodes.set_draining(s, "node-x", False, T0)


def test_views_states_and_down_nodes(sessions: sessionmaker[Session]) -> None:
    now = T0 + timedelta(minutes=2)
    with session_scope(sessions) as s:
        nodes.heartbeat(s, beat("node-up", calls_in_progress=4), now - timedelta(seconds=4))
        nodes.heartbeat(s, beat("node-down"), now - timedelta(seconds=45))
        nodes.heartbeat(s, beat("node-draining"), now - timedelta(seconds=2))
        nodes.set_draining(s, "node-draining", True, now - timedelta(seconds=60))
        nodes.heartbeat(s, beat("node-stopped"), now - timedelta(seconds=100))
        assert nodes.mark_stopped(s, "node-stopped", now - timedelta(seconds=90))
        assert not nodes.mark_stopped(s, "nobody", now)
    with session_scope(sessions) as s:
        views = {v.name: v for v in nodes.node_views(s, now, TIMEOUT)}
        assert [v.name for v in nodes.node_views(s, now, TIMEOUT)] == sorted(views)
        assert {name: v.state for name, v in views.items()} == {
            "node-up": NodeState.UP,
            "node-down": NodeState.DOWN,
            "node-draining": NodeState.DRAINING,
            "node-stopped": NodeState.STOPPED,
        }
        assert views["node-up"].heartbeat_age == 4.0
        assert views["node-up"].calls_in_progress == 4
        assert views["node-stopped"].calls_in_progress == 0
        assert views["node-stopped"].heartbeat_age == 90.0
        assert nodes.down_nodes(s, now, TIMEOUT) == ["node-down"]
        assert nodes.down_nodes(s, now, 60) == []
        as_json = views["node-draining"].as_json()
        assert as_json["state"] == "draining" and as_json["pacing_calls_per_second"] == 2.5
        assert as_json["draining_since"] == (now - timedelta(seconds=60)).isoformat()
    # A heartbeat after a clean stop: the node is back.
    with session_scope(sessions) as s:
        nodes.heartbeat(s, beat("node-stopped"), now)
    with session_scope(sessions) as s:
        views = {v.name: v for v in nodes.node_views(s, now, TIMEOUT)}
        assert views["node-stopped"].state is NodeState.UP
        assert views["node-stopped"].stopped_at is None


def test_bad_beats_are_refused_naming_the_field(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as s:
        with pytest.raises(ValueError, match="node name"):
            nodes.heartbeat(s, beat(""), T0)
        with pytest.raises(ValueError, match="calls_in_progress"):
            nodes.heartbeat(s, beat(calls_in_progress=-1), T0)
        with pytest.raises(ValueError, match="pacing"):
            nodes.heartbeat(s, beat(pacing=-0.5), T0)
        nodes.heartbeat(
            s, beat(last_error="x" * 5000, last_error_at=T0, asterisk_version="v" * 99), T0
        )
        row = s.get(ClusterNode, "node-a")
        assert row is not None
        assert len(row.last_error or "") == nodes.MAX_ERROR_CHARS
        assert len(row.asterisk_version or "") == nodes.MAX_VERSION_CHARS


def test_first_heartbeats_of_one_node_at_once_make_one_row(sessions: sessionmaker[Session]) -> None:
    """Two sessions insert the same new node at the same time (a worker restarted while its
    old heartbeat thread still ran): one inserts, the other updates; neither fails."""
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            with session_scope(sessions) as s:
                nodes.heartbeat(s, beat(calls_in_progress=i), T0 + timedelta(seconds=i))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    with session_scope(sessions) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(ClusterNode)) == 1


def test_errors_shown_in_the_cluster_view_carry_no_number_and_one_line() -> None:
    from ivr.cluster.heartbeat import public_error

    assert public_error(
        "calls failing at the trunk: could not place the call: "
        "AriError(400, POST /channels, PJSIP/+358401234567@trunk)\nDETAIL: Key (phone)=(…)"
    ) == (
        "calls failing at the trunk: could not place the call: "
        "AriError(400, POST /channels, PJSIP/[number]@trunk)"
    )
    assert public_error("SIP 503 from 040 123 4567") == "SIP 503 from [number]"
    assert public_error("  ") == "error"
    assert len(public_error("x" * 5000)) == nodes.MAX_ERROR_CHARS
