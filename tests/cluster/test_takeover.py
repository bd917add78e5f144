"""A node that is down: another node takes its attempts in flight over exactly once (the
store and the dialer's settling, on SQLite and on a real PostgreSQL, no Asterisk).

The node "node-a" died with five attempts in flight, one of each kind the dialer leaves:
a call answered and running, a call ringing, a call that ended (busy) before its attempt
was settled, an attempt marked originated whose call row was never written, and one
claimed but not yet originated; and an inbound call of its own. "node-b" is up.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr.campaigns.dialer import Dialer
from ivr.campaigns.takeover import TakenOver, take_over
from ivr.cluster import nodes
from ivr.cluster.nodes import NodeBeat
from ivr.outcome import Outcome
from ivr.store import campaigns as cstore
from ivr.store import repo
from ivr.store.campaigns import ContactRow
from ivr.store.db import session_scope
from ivr.store.models import Attempt, AttemptState, Call, CampaignStatus

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
TIMEOUT = 30.0
KINDS = ("talking", "ringing", "ended-busy", "no-call-row", "not-originated")


def _beat(s: Session, name: str, at: datetime) -> None:
    nodes.heartbeat(s, NodeBeat(name=name, started_at=at - timedelta(minutes=5)), at)


def _dialer(sessions: sessionmaker[Session], node: str, delay: float = 0.0) -> Dialer:
    """A dialer for ``node`` without a telephony service (settling needs none); ``delay``:
    each attempt's settling takes this long (holding the transaction open)."""

    class Slow(Dialer):
        def settle_stale(self, s: Session, attempt: Attempt, detail: str) -> None:
            time.sleep(delay)
            super().settle_stale(s, attempt, detail)

    return Slow(cast(Any, None), sessions, node, clock=lambda: NOW, node_timeout_seconds=TIMEOUT)


def _node_a_died(sessions: sessionmaker[Session], contacts: int = 5) -> dict[str, str]:
    """The scene above; returns kind -> attempt id (the other contacts wait, due)."""
    with session_scope(sessions) as s:
        campaign = cstore.create_campaign(
            s,
            name="kysely",
            flow_path="flows/kysely.yaml",
            max_attempts=3,
            retry_busy_minutes=30,
            retry_failed_minutes=5,
        )
        rows = [ContactRow(phone=f"+35840{1_000_000 + i}", source_line=i + 2) for i in range(8)]
        cstore.add_contacts(s, campaign.id, rows)
        cstore.schedule_first_attempts(s, campaign.id, NOW - timedelta(minutes=2))
        cstore.set_status(s, campaign.id, CampaignStatus.RUNNING, at=NOW - timedelta(minutes=2))
    with session_scope(sessions) as s:  # the claim's transaction: its first statement
        started = NOW - timedelta(seconds=40)
        claimed = cstore.claim_due_attempts(s, node="node-a", now=started, limit=contacts)
        ids = dict(zip(KINDS, (a.id for a in claimed), strict=False))
        placed = [ids[k] for k in KINDS[:4] if k in ids]
        cstore.mark_originated_many(s, {i: f"out-{i}" for i in placed}, started_at=started)
        for kind in ("talking", "ringing", "ended-busy"):
            if kind not in ids:
                continue
            attempt = s.get(Attempt, ids[kind])
            assert attempt is not None
            repo.create_call(
                s, direction="outbound", flow_id="kysely", flow_version="1",
                channel_id=f"out-{attempt.id}", node_name="node-a", language="fi",
                remote_number=attempt.phone, attempt_id=attempt.id, call_id=attempt.id,
                started_at=started,
            )  # fmt: skip
        if "talking" in ids:
            s.execute(
                sa.update(Call)
                .where(Call.id == ids["talking"])
                .values(answered_at=started + timedelta(seconds=5))
            )
        if "ended-busy" in ids:
            repo.end_call(s, ids["ended-busy"], Outcome.BUSY, at=started + timedelta(seconds=3))
        repo.create_call(
            s, direction="inbound", flow_id="kysely", flow_version="1", channel_id="in-1",
            node_name="node-a", language="fi", call_id="inbound-1", started_at=started,
        )  # fmt: skip
        _beat(s, "node-a", NOW - timedelta(seconds=TIMEOUT + 5))  # silent: down
        _beat(s, "node-b", NOW)
    return ids


def _snapshot(sessions: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    with sessions() as s:
        attempts = s.execute(
            sa.select(
                Attempt.id, Attempt.attempt_no, Attempt.state, Attempt.outcome,
                Attempt.claimed_by, Attempt.due_at, Attempt.started_at, Attempt.outcome_detail,
            ).order_by(Attempt.contact_id, Attempt.attempt_no)
        ).all()  # fmt: skip
        calls = s.execute(sa.select(Call.id, Call.status, Call.ended_at).order_by(Call.id)).all()
    return [tuple(r) for r in [*attempts, *calls]]


def test_a_node_that_is_down_is_taken_over_once(sessions: sessionmaker[Session]) -> None:
    ids = _node_a_died(sessions)
    survivor = _dialer(sessions, "node-b")
    with session_scope(sessions) as s:
        assert take_over(survivor, s) == [TakenOver("node-a", 5, 1)]
    assert survivor.taken_over == 5
    with sessions() as s:
        attempts = {a.id: a for a in s.scalars(sa.select(Attempt))}
        calls = {c.id: c for c in s.scalars(sa.select(Call))}
        retries = {
            a.contact_id: a for a in attempts.values() if a.attempt_no == 2
        }  # the retries the rules allow, exactly one each
    for kind in ("talking", "ringing"):
        a = attempts[ids[kind]]
        assert (a.state, a.outcome, a.claimed_by) == (AttemptState.DONE, "interrupted", "node-b")
        assert "node node-a down" in (a.outcome_detail or "")
        assert calls[a.id].status == Outcome.INTERRUPTED and calls[a.id].ended_at == NOW
        assert retries[a.contact_id].due_at == NOW + timedelta(minutes=5)
    busy = attempts[ids["ended-busy"]]
    assert (busy.state, busy.outcome) == (AttemptState.DONE, "busy")
    assert retries[busy.contact_id].due_at == NOW - timedelta(seconds=37) + timedelta(minutes=30)
    for kind in ("no-call-row", "not-originated"):  # never placed: back, unspent
        a = attempts[ids[kind]]
        assert (a.state, a.started_at, a.claimed_by, a.channel_id) == (
            AttemptState.DUE, None, None, None,
        )  # fmt: skip
        assert a.contact_id not in retries
    assert len(retries) == 3
    assert calls["inbound-1"].status == Outcome.INTERRUPTED
    with sessions() as s:
        assert cstore.recount_matches(s, busy.campaign_id)  # the live counters agree

    # Again (the next refresh), by another survivor, and the dead node coming back: nothing.
    before = _snapshot(sessions)
    with session_scope(sessions) as s:
        _beat(s, "node-c", NOW)
        assert take_over(survivor, s) == []
        assert take_over(_dialer(sessions, "node-c"), s) == []
        assert take_over(_dialer(sessions, "node-a"), s) == []  # never from itself
    with session_scope(sessions) as s:
        _dialer(sessions, "node-a")._reconcile(s)
    assert _snapshot(sessions) == before


def test_nodes_that_are_up_or_just_stopped_are_not_taken_over(
    sessions: sessionmaker[Session],
) -> None:
    _node_a_died(sessions)
    with session_scope(sessions) as s:
        _beat(s, "node-a", NOW - timedelta(seconds=TIMEOUT))  # exactly the timeout: up
    before = _snapshot(sessions)
    with session_scope(sessions) as s:
        assert take_over(_dialer(sessions, "node-b"), s) == []
    with session_scope(sessions) as s:
        nodes.mark_stopped(s, "node-a", NOW - timedelta(seconds=TIMEOUT))  # left cleanly
    with session_scope(sessions) as s:
        assert take_over(_dialer(sessions, "node-b"), s) == []
    assert _snapshot(sessions) == before
    # Stopped cleanly for longer than the timeout, with attempts it could not settle: those
    # are settled by another node (it will not, if it never comes back).
    with session_scope(sessions) as s:
        nodes.mark_stopped(s, "node-a", NOW - timedelta(seconds=TIMEOUT + 1))
    with session_scope(sessions) as s:
        assert take_over(_dialer(sessions, "node-b"), s) == [TakenOver("node-a", 5, 1)]


def test_a_pass_is_bounded(sessions: sessionmaker[Session]) -> None:
    _node_a_died(sessions)
    survivor = _dialer(sessions, "node-b")
    with session_scope(sessions) as s:
        assert take_over(survivor, s, limit=2) == [TakenOver("node-a", 2, 0)]
    with session_scope(sessions) as s:
        assert take_over(survivor, s, limit=2) == [TakenOver("node-a", 2, 0)]
    with session_scope(sessions) as s:
        assert take_over(survivor, s, limit=2) == [TakenOver("node-a", 1, 1)]
    with sessions() as s:
        assert not s.scalar(
            sa.select(sa.func.count()).select_from(Attempt).where(Attempt.claimed_by == "node-a")
        )


def test_two_survivors_and_the_node_coming_back_settle_each_attempt_once(
    sessions: sessionmaker[Session],
) -> None:
    """All at once: node-b and node-c take over while node-a restarts and reconciles. Each
    holds its transaction open while it settles (PostgreSQL: the others wait on the row
    locks, then find the rows no longer node-a's; SQLite: one writer at a time)."""
    ids = _node_a_died(sessions)
    with session_scope(sessions) as s:
        _beat(s, "node-c", NOW)
    settled: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def survivor(node: str) -> None:
        try:
            dialer = _dialer(sessions, node, delay=0.2)
            barrier.wait()
            with session_scope(sessions) as s:
                settled[node] = [str(t.attempts) for t in take_over(dialer, s)]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def comes_back() -> None:
        try:
            dialer = _dialer(sessions, "node-a", delay=0.2)
            barrier.wait()
            with session_scope(sessions) as s:
                dialer._reconcile(s)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=survivor, args=("node-b",)),
        threading.Thread(target=survivor, args=("node-c",)),
        threading.Thread(target=comes_back),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    with sessions() as s:
        attempts = {a.id: a for a in s.scalars(sa.select(Attempt))}
    # Exactly one node settled all five: the others found nothing left.
    owners = {attempts[ids[k]].claimed_by for k in ("talking", "ringing", "ended-busy")}
    assert len(owners) == 1, owners
    assert sum(int(n) for got in settled.values() for n in got) in (0, 5)
    retries = [a for a in attempts.values() if a.attempt_no == 2]
    assert len(retries) == 3  # one retry each for talking, ringing and busy: none twice
    for kind in ("no-call-row", "not-originated"):
        assert attempts[ids[kind]].state == AttemptState.DUE
    assert not [a for a in attempts.values() if a.state == AttemptState.DIALING]
