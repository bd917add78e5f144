"""Background jobs: a huey queue (SQLite in the data directory) and its tasks.

Nothing is built at import time. ``make_queue(settings)`` creates the huey instance, registers
the task functions on it and returns a ``JobQueue``; the telephony worker (producer) and
``ivr worker`` (consumer) each call it, so both know the same task names.

Task ``transcribe_recording(recording_id)``: speech-to-text of one open-answer recording in
the recording's language (the call's language when the answer was given), stored as one
``transcripts`` row. It is idempotent: a recording that already has a transcript is skipped,
so running it twice (or enqueueing twice) stores one transcript. It is retried 3 times.

The speech-to-text models: ``DATA_DIR/stt.toml`` if present (there is no setting for it in
``ivr.toml`` yet)::

    [models]
    default = "/srv/models/faster-whisper-small"   # any language without its own entry
    fi = "/srv/models/whisper-fi-ct2"
    sv = "/srv/models/whisper-sv-ct2"

Each value is a local CTranslate2 model folder or a model name already on this machine (see
``ivr.speech.stt``); a relative path is relative to the data directory. Without the file (or
with no model for the language) a transcription fails with a ModelError and is retried.
"""

from __future__ import annotations

import json
import logging
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from huey import SqliteHuey  # type: ignore[import-untyped]
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ivr.config import Settings
from ivr.speech.stt import SpeechEngine, SttConfig, SttError, Transcript, make_engine
from ivr.store.models import Call, Recording, TranscriptRow

log = logging.getLogger(__name__)

STT_FILE = "stt.toml"
JOBS_FILE = "jobs.db"
RETRIES = 3
RETRY_DELAY = 30.0  # seconds between tries of a failed task


def load_stt_config(data_dir: Path) -> SttConfig:
    """The speech-to-text configuration from ``DATA_DIR/stt.toml`` (empty if there is none)."""
    path = data_dir / STT_FILE
    if not path.is_file():
        return SttConfig()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SttError(f"{path}: {exc}") from None
    models = raw.get("models", {})
    if not isinstance(models, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in models.items()
    ):
        raise SttError(f'{path}: [models] must map languages to strings, e.g. fi = "..."')

    def resolve(spec: str) -> str:
        if spec.startswith(("./", "../")):
            return str((data_dir / spec).resolve())
        return spec

    per_language = {k: resolve(v) for k, v in models.items() if k != "default"}
    default = models.get("default")
    return SttConfig(models=per_language, default_model=resolve(default) if default else None)


def store_transcript(session: Session, recording: Recording, transcript: Transcript) -> None:
    """Add the transcript row of ``recording`` (the caller commits)."""
    session.add(
        TranscriptRow(
            recording_id=recording.id,
            call_id=recording.call_id,
            engine=transcript.engine,
            model=transcript.model,
            language=transcript.language,
            machine_text=transcript.text,
            confidence=transcript.confidence,
            segments=json.dumps(
                [
                    {"start": s.start, "end": s.end, "text": s.text, "confidence": s.confidence}
                    for s in transcript.segments
                ],
                ensure_ascii=False,
            ),
            flagged=transcript.flagged,
        )
    )


def transcribe_recording(
    factory: sessionmaker[Session], engine: SpeechEngine, recording_id: int
) -> str:
    """Transcribe one recording and store it; what happened: stored, exists or missing."""
    with factory() as s:
        recording = s.get(Recording, recording_id)
        if recording is None:
            log.warning("recording %s is not in the database; nothing to transcribe", recording_id)
            return "missing"
        exists = s.scalar(
            sa.select(TranscriptRow.id).where(TranscriptRow.recording_id == recording_id)
        )
        if exists is not None:
            return "exists"
        call_language = s.scalar(sa.select(Call.language).where(Call.id == recording.call_id))
        language = recording.language or call_language or ""
        path = Path(recording.path)
    transcript = engine.transcribe(path, language)  # outside any transaction: it takes time
    try:
        with factory.begin() as s:
            recording = s.get(Recording, recording_id)
            if recording is None:  # purged meanwhile
                return "missing"
            store_transcript(s, recording, transcript)
    except IntegrityError:  # another worker stored it first
        return "exists"
    log.info(
        "recording %s transcribed (%s, %s%s)",
        recording_id,
        transcript.model,
        transcript.language,
        f", flagged {transcript.flagged}" if transcript.flagged else "",
    )
    return "stored"


@dataclass
class JobQueue:
    """The huey queue and its tasks; the database and the engine are built on first use."""

    settings: Settings
    huey: Any  # a huey.SqliteHuey (the package has no type information)
    stt: SttConfig | None = None
    engine_factory: Callable[[SttConfig], SpeechEngine] = make_engine
    _task: Any = None
    _factory: sessionmaker[Session] | None = None
    _engine: SpeechEngine | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def enqueue_transcription(self, recording_id: int) -> None:
        """Queue ``transcribe_recording(recording_id)`` (the consumer runs it)."""
        self._task(recording_id)

    def pending(self) -> int:
        """Tasks waiting for the consumer (not counting retries scheduled for later)."""
        return int(self.huey.pending_count())

    def scheduled(self) -> int:
        """Tasks scheduled for later (retries after their delay)."""
        return int(self.huey.scheduled_count())

    def sessions(self) -> sessionmaker[Session]:
        with self._lock:
            if self._factory is None:
                from ivr.store.db import make_engine as make_db_engine
                from ivr.store.db import make_session_factory

                self._factory = make_session_factory(make_db_engine(self.settings.database_url))
            return self._factory

    def speech_engine(self) -> SpeechEngine:
        with self._lock:
            if self._engine is None:
                config = self.stt or load_stt_config(self.settings.data_dir)
                self._engine = self.engine_factory(config)
            return self._engine

    def transcribe_now(self, recording_id: int) -> str:
        """The task's body, run here and now (what the consumer runs)."""
        return transcribe_recording(self.sessions(), self.speech_engine(), recording_id)

    def consumer(self) -> Any:
        """A huey consumer: one worker thread (``.run()`` until SIGTERM/SIGINT)."""
        return self.huey.create_consumer(workers=1, worker_type="thread", periodic=False)

    def close(self) -> None:
        if self._factory is not None:
            bind = self._factory.kw.get("bind")
            if bind is not None:
                bind.dispose()


def make_queue(
    settings: Settings,
    *,
    stt: SttConfig | None = None,
    engine_factory: Callable[[SttConfig], SpeechEngine] = make_engine,
    retry_delay: float = RETRY_DELAY,
    filename: Path | None = None,
) -> JobQueue:
    """The job queue of ``settings``' data directory (``DATA_DIR/jobs.db``), tasks registered.

    ``stt``: the speech-to-text configuration (default: ``DATA_DIR/stt.toml``).
    """
    path = filename or settings.data_dir / JOBS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    huey = SqliteHuey(name="ivr", filename=str(path))
    queue = JobQueue(settings, huey, stt, engine_factory)

    def transcribe_task(recording_id: int) -> str:
        return queue.transcribe_now(recording_id)

    register = huey.task(retries=RETRIES, retry_delay=retry_delay, name="transcribe_recording")
    queue._task = register(transcribe_task)
    return queue
