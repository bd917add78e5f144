"""Transcription claims: a recording is transcribed by one `ivr worker` at a time, and one
lost with a worker that died is found again while the other workers run.

The queue (huey, on SQLite or Redis) hands a message to one consumer and forgets it: a
worker killed mid-job takes its message with it. The database keeps the record instead
(table ``transcription_claims``, ``ivr.store.job_models``):

* Before it transcribes, a worker claims the recording (one upsert, guarded: only a claim
  that is let go or has expired can be taken), and holds it ``[jobs] claim_seconds``,
  renewed every third of that by a thread of its own while the engine runs. A second job
  for the same recording (queued twice) finds the claim held and leaves it.
* When the job ends (stored, failed, waiting for a model) the claim is let go.
* Every ``[jobs] sweep_seconds`` each worker looks for recordings without a transcript whose
  claim expired (the worker holding it died) or that never got one and are not in the queue
  (a message lost between the queue and the claim, or never queued): it takes over the claim
  row first (a guarded UPDATE or INSERT, so of several workers sweeping at once one queues
  it) and queues the recording again.

The transcript itself is unique per recording in the database: whatever happens, a
recording has at most one transcript.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from ivr.clock import Clock, system_clock
from ivr.store.job_models import TranscriptionClaim
from ivr.store.models import Recording, TranscriptRow

if TYPE_CHECKING:
    from ivr.jobs import JobQueue

log = logging.getLogger(__name__)


def worker_name() -> str:
    """This process as a claimant: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _upsert(s: Session) -> postgresql.Insert | sqlite.Insert:
    if s.get_bind().dialect.name == "postgresql":
        return postgresql.insert(TranscriptionClaim)
    return sqlite.insert(TranscriptionClaim)


class Claims:
    """This worker's claims (``worker``), held ``seconds`` at a time and renewed."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        seconds: float,
        *,
        worker: str | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.factory = factory
        self.seconds = seconds
        self.worker = worker or worker_name()
        self.clock = clock
        self._held: set[int] = set()
        self._lock = threading.Lock()
        self._renewer: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ claiming
    def take(self, recording_ids: Iterable[int]) -> set[int]:
        """Claim those of ``recording_ids`` that nobody holds and that have no transcript
        yet; returns the ones now held by this worker."""
        ids = sorted(set(recording_ids))
        if not ids:
            return set()
        now = self.clock()
        until = now + timedelta(seconds=self.seconds)
        mine: set[int] = set()
        with self.factory.begin() as s:
            for rid in ids:
                current = TranscriptionClaim
                stmt = (
                    _upsert(s)
                    .values(recording_id=rid, worker=self.worker, claimed_at=now, expires_at=until)
                    .on_conflict_do_update(
                        index_elements=["recording_id"],
                        set_={"worker": self.worker, "claimed_at": now, "expires_at": until},
                        where=sa.or_(
                            current.expires_at.is_(None),
                            current.expires_at < now,
                            current.worker == self.worker,
                        ),
                    )
                    .returning(current.recording_id)
                )
                if s.execute(stmt).scalar() is not None:
                    mine.add(rid)
            # A transcript stored meanwhile (by the worker that held it): nothing to do.
            done = set(
                s.scalars(
                    sa.select(TranscriptRow.recording_id).where(
                        TranscriptRow.recording_id.in_(mine)
                    )
                )
            )
            if done:
                self._let_go(s, done)
        mine -= done
        with self._lock:
            self._held |= mine
        if mine:
            self._start_renewing()
        return mine

    def let_go(self, recording_ids: Iterable[int]) -> None:
        """The jobs of these recordings ended: their claims are free again."""
        ids = set(recording_ids)
        with self._lock:
            self._held -= ids
        if ids:
            with self.factory.begin() as s:
                self._let_go(s, ids)

    def _let_go(self, s: Session, ids: set[int]) -> None:
        s.execute(
            sa.update(TranscriptionClaim)
            .where(
                TranscriptionClaim.recording_id.in_(ids),
                TranscriptionClaim.worker == self.worker,
            )
            .values(expires_at=None)
        )

    def held(self) -> set[int]:
        with self._lock:
            return set(self._held)

    # ------------------------------------------------------------------ renewing
    def renew(self) -> int:
        """Hold this worker's claims ``seconds`` longer; how many are still held (one taken
        by another worker after it expired is dropped, with a warning)."""
        held = self.held()
        if not held:
            return 0
        until = self.clock() + timedelta(seconds=self.seconds)
        with self.factory.begin() as s:
            kept = set(
                s.scalars(
                    sa.update(TranscriptionClaim)
                    .where(
                        TranscriptionClaim.recording_id.in_(held),
                        TranscriptionClaim.worker == self.worker,
                        TranscriptionClaim.expires_at.is_not(None),
                    )
                    .values(expires_at=until)
                    .returning(TranscriptionClaim.recording_id)
                )
            )
        lost = held - kept
        if lost:
            log.warning(
                "claims on recordings %s expired and were taken by another worker "
                "(this one was too slow to renew them)",
                sorted(lost),
            )
            with self._lock:
                self._held -= lost
        return len(kept)

    def _start_renewing(self) -> None:
        with self._lock:
            if self._renewer is not None:
                return
            self._renewer = threading.Thread(
                target=self._renew_loop, name="claim-renewer", daemon=True
            )
        self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.renew()
            except Exception:  # noqa: BLE001 - the database away for a moment: next time
                log.exception("renewing the transcription claims failed")

    def close(self) -> None:
        self._stop.set()


# ---------------------------------------------------------------------- finding lost ones
def lost_recordings(s: Session, now: datetime, older_than: datetime, queued: set[int]) -> list[int]:
    """Recordings without a transcript that nobody is transcribing: their claim expired, or
    they never had one, are not in ``queued`` and were stored before ``older_than``."""
    claim = TranscriptionClaim
    expired = (
        sa.select(Recording.id)
        .join(claim, claim.recording_id == Recording.id)
        .outerjoin(TranscriptRow, TranscriptRow.recording_id == Recording.id)
        .where(TranscriptRow.id.is_(None), claim.expires_at < now)
    )
    unclaimed = (
        sa.select(Recording.id)
        .outerjoin(claim, claim.recording_id == Recording.id)
        .outerjoin(TranscriptRow, TranscriptRow.recording_id == Recording.id)
        .where(
            TranscriptRow.id.is_(None),
            claim.recording_id.is_(None),
            Recording.created_at < older_than,
        )
    )
    found = set(s.scalars(expired)) | (set(s.scalars(unclaimed)) - queued)
    return sorted(found)


def requeue_lost(
    factory: sessionmaker[Session],
    worker: str,
    now: datetime,
    older_than: datetime,
    queued: set[int],
) -> list[int]:
    """The lost recordings this sweeper gets to queue again: it marks each claim row first
    (let go, in its name) with a guarded statement, so of several sweepers one queues it."""
    claim = TranscriptionClaim
    won: list[int] = []
    with factory.begin() as s:
        for rid in lost_recordings(s, now, older_than, queued):
            taken = s.execute(
                sa.update(claim)
                .where(claim.recording_id == rid, claim.expires_at < now)
                .values(worker=worker, claimed_at=now, expires_at=None)
                .returning(claim.recording_id)
            ).scalar()
            if taken is None:
                stmt = (
                    _upsert(s)
                    .values(recording_id=rid, worker=worker, claimed_at=now, expires_at=None)
                    .on_conflict_do_nothing(index_elements=["recording_id"])
                    .returning(claim.recording_id)
                )
                taken = s.execute(stmt).scalar()
            if taken is not None:
                won.append(rid)
    return won


def sweep_lost(queue: JobQueue) -> list[int]:
    """Queue again the recordings lost with a worker that died (their claim expired), or
    never queued (stored longer than two sweeps ago, not in the queue); returns them."""
    now = system_clock()
    grace = timedelta(seconds=2 * queue.settings.jobs.sweep_seconds)
    queued = queue.queued_recordings()
    lost = requeue_lost(queue.sessions(), queue.claims().worker, now, now - grace, queued)
    for rid in lost:
        queue.enqueue_transcription(rid)
    if lost:
        log.warning(
            "queued %d recording(s) again that were lost with a worker or never queued: %s",
            len(lost),
            lost,
        )
    return lost


def start_sweeper(queue: JobQueue) -> threading.Event:
    """A thread that runs ``sweep_lost`` every ``[jobs] sweep_seconds`` until the returned
    event is set (or the process ends)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(queue.settings.jobs.sweep_seconds):
            try:
                sweep_lost(queue)
            except Exception:  # noqa: BLE001 - the database or the queue away: next time
                log.exception("sweeping for lost transcriptions failed; trying again")

    threading.Thread(target=loop, name="lost-job-sweeper", daemon=True).start()
    return stop
