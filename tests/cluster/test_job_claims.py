"""Transcription claims (ivr.job_claims) on SQLite and on a real PostgreSQL: one worker at
a time transcribes a recording; a claim of a worker that died expires and the recording is
queued again once, whichever of several workers sweeps."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr.job_claims import Claims, lost_recordings, requeue_lost
from ivr.jobs import transcribe_recording
from ivr.speech.stt import Transcript
from ivr.store.job_models import TranscriptionClaim
from ivr.store.models import Recording, TranscriptRow
from tests.support.recordings import store_recording

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _recordings(sessions: sessionmaker[Session], n: int, tmp_path: Path) -> list[int]:
    ids = [store_recording(sessions, tmp_path / f"r{i}.wav") for i in range(n)]
    with sessions.begin() as s:  # stored a while ago
        s.execute(sa.update(Recording).values(created_at=T0 - timedelta(minutes=10)))
    return ids


def test_one_worker_at_a_time_and_an_expired_claim_is_taken(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    r1, r2 = _recordings(sessions, 2, tmp_path)
    clock = Clock()
    a = Claims(sessions, 30, worker="host:1", clock=clock)
    b = Claims(sessions, 30, worker="host:2", clock=clock)
    try:
        assert a.take([r1]) == {r1}
        assert b.take([r1, r2]) == {r2}  # r1 is a's
        assert a.take([r1]) == {r1}  # a's own claim again (a job queued twice, same worker)
        clock.now = T0 + timedelta(seconds=20)
        assert a.renew() == 1 and b.renew() == 1  # held to T0 + 50 s
        clock.now = T0 + timedelta(seconds=45)
        assert b.take([r1]) == set()
        b.let_go([r2])
        assert a.take([r2]) == {r2}  # let go: free at once
        clock.now = T0 + timedelta(seconds=51)  # a died: its claims expire
        assert b.take([r1]) == {r1}
        assert a.renew() == 1  # r1 is b's now: a keeps only r2
        assert a.held() == {r2}
    finally:
        a.close()
        b.close()


def test_a_recording_with_a_transcript_is_not_claimed(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    [r1] = _recordings(sessions, 1, tmp_path)
    with sessions.begin() as s:
        s.add(TranscriptRow(recording_id=r1, call_id=s.get(Recording, r1).call_id, node_id="q",  # type: ignore[union-attr]
                            engine="e", model="m", language="en", machine_text="hei",
                            segments="[]"))  # fmt: skip
    claims = Claims(sessions, 30, worker="host:1", clock=Clock())
    assert claims.take([r1]) == set()
    claims.close()


def test_lost_recordings_are_queued_again_once(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    held, expired, never, queued, let_go = _recordings(sessions, 5, tmp_path)
    clock = Clock()
    live = Claims(sessions, 30, worker="host:live", clock=clock)
    dead = Claims(sessions, 5, worker="host:dead", clock=clock)
    try:
        assert live.take([held, let_go]) == {held, let_go}
        live.let_go([let_go])  # its job failed (or waits for a model): not "lost"
        assert dead.take([expired]) == {expired}
        clock.now = T0 + timedelta(seconds=10)
        with sessions() as s:
            found = lost_recordings(s, clock.now, T0, {queued})
        assert found == [expired, never]
        # Two workers sweep at once: each lost recording goes to exactly one of them.
        won: dict[str, list[int]] = {}
        barrier = threading.Barrier(2)

        def sweep(worker: str) -> None:
            barrier.wait()
            won[worker] = requeue_lost(sessions, worker, clock.now, T0, {queued})

        threads = [threading.Thread(target=sweep, args=(w,)) for w in ("host:x", "host:y")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(won["host:x"] + won["host:y"]) == [expired, never]
        with sessions() as s:
            assert lost_recordings(s, clock.now, T0, {queued}) == []  # queued: not lost now
            rows = {c.recording_id: c for c in s.scalars(sa.select(TranscriptionClaim))}
        assert rows[expired].expires_at is None and rows[never].expires_at is None
        assert b_can_take(sessions, clock, expired)
    finally:
        live.close()
        dead.close()


def b_can_take(sessions: sessionmaker[Session], clock: Clock, rid: int) -> bool:
    """A requeued recording is free for the worker whose job comes next."""
    claims = Claims(sessions, 30, worker="host:next", clock=clock)
    try:
        return claims.take([rid]) == {rid}
    finally:
        claims.close()


class Engine:
    """A speech engine that counts its work (and, optionally, waits to be let go on)."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[Path] = []
        self.started = threading.Event()
        self.gate = gate

    def transcribe(self, path: Path, language: str) -> Transcript:
        self.calls.append(path)
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(30)
        return Transcript(text="hei", language=language, engine="e", model="m", confidence=0.9)


def test_two_workers_with_the_same_job_transcribe_it_once(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    [r1] = _recordings(sessions, 1, tmp_path)
    gate = threading.Event()
    first, second = Engine(gate), Engine()
    a = Claims(sessions, 30, worker="host:1")
    b = Claims(sessions, 30, worker="host:2")
    results: list[str] = []
    try:
        thread = threading.Thread(
            target=lambda: results.append(transcribe_recording(sessions, first, r1, claims=a))
        )
        thread.start()
        assert first.started.wait(30)
        assert transcribe_recording(sessions, second, r1, claims=b) == "claimed"
        gate.set()
        thread.join(30)
        assert results == ["stored"]
        assert transcribe_recording(sessions, second, r1, claims=b) == "exists"
        assert second.calls == [] and len(first.calls) == 1
        with sessions() as s:
            claim = s.get(TranscriptionClaim, r1)
            assert claim is not None and claim.expires_at is None  # let go at the end
    finally:
        gate.set()
        a.close()
        b.close()
