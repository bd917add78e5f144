"""Background jobs: a huey queue (SQLite in the data directory, or Redis) and its tasks.

Nothing is built at import time. ``make_queue(settings)`` creates the huey instance of
``[jobs]`` (``backend = "sqlite"``: ``DATA_DIR/jobs.db``; ``"redis"``: ``jobs.redis_url``),
registers the task functions on it and returns a ``JobQueue``; the telephony worker
(producer) and ``ivr worker`` (consumer) each call it, so both know the same task names.

Task ``transcribe_recording(recording_id)``: speech-to-text of one open-answer recording in
the recording's language (the call's language when the answer was given), stored as one
``transcripts`` row. It is idempotent: a recording that already has a transcript is skipped,
and the database allows one transcript per recording, so running it twice (or enqueueing
it twice, or two workers at once) stores one transcript.

Retries: a failed transcription is tried again ``jobs.retries`` times (unless the error says
it is not retryable, e.g. Google refusing the credentials), the first time after
``jobs.retry_delay`` seconds and each later time after twice the previous delay (30, 60,
120 s by default). huey's own retry delay is fixed, so the task, which huey hands its own
task instance (``context=True``), sets that instance's ``retry_delay`` for the next try
before it re-raises; huey requeues the instance with it.

Nothing is lost when a worker dies: huey takes a message off the queue (SQLite deletes the
row, Redis pops it) before it runs, so a worker killed mid-job (SIGKILL, a power cut) loses
that message. The database is the record of what is to do: ``ivr worker`` starts with
``sweep()``, which enqueues every recording that has no transcript and no job waiting in
the queue. Recordings stored while no worker runs, or while Redis is down, are found the
same way. While workers run, each claims a recording before it transcribes it (one at a
time per recording) and every ``[jobs] sweep_seconds`` queues again the ones whose claim
expired with a worker that died (``ivr.job_claims``).

Speech-to-text settings come from ``[stt]`` and ``[stt.models]`` in ``ivr.toml``
(``stt_config``); the old ``DATA_DIR/stt.toml`` is refused with a message saying where its
models go now.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ivr.config import LANGUAGE_KEYS, ConfigError, Settings
from ivr.job_claims import Claims
from ivr.speech.stt import ModelError, SpeechEngine, SttConfig, SttError, Transcript, make_engine
from ivr.store.models import Call, Recording, TranscriptRow
from ivr.webhooks import events, outbox

log = logging.getLogger(__name__)

OLD_STT_FILE = "stt.toml"
JOBS_FILE = "jobs.db"
QUEUE_NAME = "ivr"
TASK_NAME = "transcribe_recording"
POLL_MAX_SECONDS = 1.0  # the longest an idle consumer waits before looking at the queue
REDIS_CONNECT_TIMEOUT = 5.0  # seconds to reach Redis before giving up with an error
REDIS_SOCKET_TIMEOUT = 30.0  # longer than the blocking read (1 s) of the consumer
NO_MODEL_KEY = "stt-no-model:"  # + language: why its recordings wait (huey's key-value store)
SCHEDULES_INTERVAL = 60.0  # seconds between looks for due report schedules


class JobQueueError(ConfigError):
    """The job queue's storage cannot be reached or refuses us; the message names the setting."""


class NoModelError(ModelError):
    """A recording's language has no usable speech-to-text model: a configuration problem
    that waiting does not mend, so the job is not retried; the recording waits until a
    model is configured (and `ivr worker` restarted, which queues it again)."""

    def __init__(self, language: str, reason: str) -> None:
        super().__init__(f"no model for {language}: {reason}")
        self.language = language
        self.reason = reason


# --- speech-to-text settings -------------------------------------------------------------


def _resolve_model(spec: str, data_dir: Path) -> str:
    """A model from ``[stt.models]``: a relative path becomes a path in the data directory.

    ``./x`` and ``../x`` are paths; so is any relative name that exists in the data
    directory (``models/fi``). Anything else (``small``, ``Systran/faster-whisper-small``)
    is a model name, looked up in ``stt.models_dir`` and the Hugging Face cache.
    """
    path = Path(spec).expanduser()
    if path.is_absolute():
        return str(path)
    if spec.startswith(("./", "../")) or (data_dir / path).exists():
        return str((data_dir / path).resolve())
    return spec


def stt_config(settings: Settings) -> SttConfig:
    """The speech-to-text configuration from ``[stt]`` / ``[stt.models]`` of ``settings``.

    ConfigError if the old ``DATA_DIR/stt.toml`` is still there (its models are not read).
    """
    old = settings.data_dir / OLD_STT_FILE
    if old.exists():
        raise ConfigError(
            f"{old}: speech-to-text models are no longer read from this file: move its "
            f"[models] entries into [stt.models] in {settings.config_file} (same keys: fi, "
            f'sv, en, default; e.g. [stt.models] default = "./models/small"), then delete {old}'
        )
    stt = settings.stt
    data_dir = settings.data_dir
    models = {k: _resolve_model(v, data_dir) for k, v in stt.models.items()}
    default = models.pop("default", None)
    if stt.models_dir:
        models_dir = Path(stt.models_dir).expanduser()
        if not models_dir.is_absolute():
            models_dir = data_dir / models_dir
    else:
        models_dir = data_dir / "models"
    return SttConfig(
        engine=stt.engine,
        models=models,
        default_model=default,
        device=stt.device,
        compute_type=stt.compute_type or None,
        threads=stt.threads,
        models_dir=models_dir,
        beam_size=stt.beam_size,
        google_project=stt.google_project,
        google_location=stt.google_location,
        google_endpoint=stt.google_endpoint,
        google_model=stt.google_model,
        batch_size=stt.batch_size,
    )


# --- the task ----------------------------------------------------------------------------


def store_transcript(session: Session, recording: Recording, transcript: Transcript) -> None:
    """Add the transcript row of ``recording`` (the caller commits), with its call's
    organisation and campaign and the question it answers (the review queue's filters)."""
    owner = session.execute(
        sa.select(Call.org_id, Call.campaign_id).where(Call.id == recording.call_id)
    ).first()
    row = TranscriptRow(
        recording_id=recording.id,
        call_id=recording.call_id,
        org_id=owner[0] if owner else None,
        campaign_id=owner[1] if owner else None,
        node_id=recording.node_id,
        engine=transcript.engine,
        model=transcript.model,
        language=transcript.language,
        machine_text=transcript.text,
        confidence=transcript.confidence,
        segments=json.dumps(
            [
                {
                    "start": s.start,
                    "end": s.end,
                    "text": s.text,
                    "confidence": s.confidence,
                    "words": [[w.start, w.end, w.text] for w in s.words],
                }
                for s in transcript.segments
            ],
            ensure_ascii=False,
        ),
        flagged=transcript.flagged,
    )
    session.add(row)
    if row.org_id is not None:  # webhooks: in the caller's transaction
        session.flush()
        data = {"transcript_id": row.id, "call_id": row.call_id, "campaign_id": row.campaign_id}
        outbox.emit(session, row.org_id, events.TRANSCRIPT_READY, data, at=row.created_at)


def transcribe_recording(
    factory: sessionmaker[Session],
    engine: SpeechEngine,
    recording_id: int,
    batch: int = 1,
    claims: Claims | None = None,
) -> str:
    """Transcribe one recording and store it; what happened: stored, exists, missing or
    claimed (``claims``: another worker holds it, see ivr.job_claims; it is let go when the
    job ends, however it ends).

    With ``batch`` > 1 and an engine that decodes several files together
    (``transcribe_many``), up to ``batch - 1`` other recordings of the same language that
    still have no transcript (oldest first) are transcribed in the same pass and stored too:
    decoding them together costs ~26 % less CPU than one by one (bench/stt_pipeline.py).
    Their own jobs then find the transcript and skip. A problem with one of the others is
    left to its own job (which retries it); only this recording's problem fails this job.
    """
    with factory() as s:
        recording = s.get(Recording, recording_id)
        if recording is None:
            log.warning("recording %s is not in the database; nothing to transcribe", recording_id)
            return "missing"
        exists = s.scalar(
            sa.select(TranscriptRow.id).where(TranscriptRow.recording_id == recording_id)
        )
        if exists is not None:
            log.info("recording %s already has a transcript", recording_id)
            return "exists"
        language = _language(s, recording)
        work = [(recording_id, Path(recording.path))]
        many = getattr(engine, "transcribe_many", None)
        if batch > 1 and many is not None:
            work += _companions(s, recording_id, language, batch - 1)
    if claims is None:
        return _transcribe(factory, engine, recording_id, language, work)
    mine = claims.take(rid for rid, _ in work)
    if recording_id not in mine:
        log.info("recording %s: another worker transcribes it (or has done)", recording_id)
        return "claimed"
    work = [(rid, path) for rid, path in work if rid in mine]
    try:
        return _transcribe(factory, engine, recording_id, language, work)
    finally:
        claims.let_go(rid for rid, _ in work)


def _transcribe(
    factory: sessionmaker[Session],
    engine: SpeechEngine,
    recording_id: int,
    language: str,
    work: list[tuple[int, Path]],
) -> str:
    many = getattr(engine, "transcribe_many", None)
    # Outside any transaction: it takes time.
    try:
        if len(work) == 1:
            results: list[Transcript | SttError] = [engine.transcribe(work[0][1], language)]
        else:
            results = list(many([path for _, path in work], language))  # type: ignore[misc]
    except NoModelError:
        raise
    except ModelError as exc:  # the configuration: no (usable) model for this language
        raise NoModelError(language, str(exc)) from None
    outcome = "stored"
    for (rid, _), result in zip(work, results, strict=True):
        if isinstance(result, BaseException):
            if rid == recording_id:
                raise result  # this job's own recording: fail (and retry) as usual
            log.info("recording %s not transcribed with %s: %s", rid, recording_id, result)
            continue
        stored = _store(factory, rid, result)
        if rid == recording_id:
            outcome = stored
    return outcome


def _language(s: Session, recording: Recording) -> str:
    """The recording's language: the call's language when the answer was given."""
    call_language = s.scalar(sa.select(Call.language).where(Call.id == recording.call_id))
    return recording.language or call_language or ""


def _companions(s: Session, recording_id: int, language: str, limit: int) -> list[tuple[int, Path]]:
    """Other recordings in ``language`` with no transcript yet, oldest first."""
    candidates = s.scalars(
        sa.select(Recording)
        .outerjoin(TranscriptRow, TranscriptRow.recording_id == Recording.id)
        .where(TranscriptRow.id.is_(None), Recording.id != recording_id)
        .order_by(Recording.id)
        .limit(limit * 4)
    ).all()
    picked = [(r.id, Path(r.path)) for r in candidates if _language(s, r) == language]
    return picked[:limit]


def _store(factory: sessionmaker[Session], recording_id: int, transcript: Transcript) -> str:
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


def model_problems(
    engine: SpeechEngine, languages: tuple[str, ...] = LANGUAGE_KEYS
) -> dict[str, str]:
    """Each language without a usable model, and why (an engine that loads local models
    loads them now; one without, e.g. google, is not checked here)."""
    check = getattr(engine, "model_for", None)
    problems: dict[str, str] = {}
    if check is None:
        return problems
    for language in languages:
        try:
            check(language)
        except ModelError as exc:
            problems[language] = str(exc)
    return problems


def untranscribed_languages(factory: sessionmaker[Session]) -> dict[int, str]:
    """Every recording without a transcript and its language, oldest first."""
    language = sa.func.coalesce(sa.func.nullif(Recording.language, ""), Call.language, "")
    query = (
        sa.select(Recording.id, language)
        .outerjoin(TranscriptRow, TranscriptRow.recording_id == Recording.id)
        .outerjoin(Call, Call.id == Recording.call_id)
        .where(TranscriptRow.id.is_(None))
        .order_by(Recording.id)
    )
    with factory() as s:
        return {int(rid): str(lang) for rid, lang in s.execute(query)}


def backoff_delay(first: float, failures: int) -> float:
    """Seconds before the next try after ``failures`` failed tries (1, 2, ...): doubling."""
    return float(first * 2 ** max(0, failures - 1))


def untranscribed_ids(factory: sessionmaker[Session]) -> list[int]:
    """Every recording without a transcript, oldest first."""
    query = (
        sa.select(Recording.id)
        .outerjoin(TranscriptRow, TranscriptRow.recording_id == Recording.id)
        .where(TranscriptRow.id.is_(None))
        .order_by(Recording.id)
    )
    with factory() as s:
        return list(s.scalars(query))


# --- the queue ---------------------------------------------------------------------------


def safe_redis_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


@dataclass
class JobQueue:
    """The huey queue and its tasks; the database and the engine are built on first use."""

    settings: Settings
    huey: Any  # a huey.SqliteHuey or huey.RedisHuey (the package has no type information)
    stt: SttConfig | None = None
    engine_factory: Callable[[SttConfig], SpeechEngine] = make_engine
    _task: Any = None
    _factory: sessionmaker[Session] | None = None
    _engine: SpeechEngine | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _claims: Claims | None = None

    @property
    def backend(self) -> str:
        return self.settings.jobs.backend

    @property
    def where(self) -> str:
        """Where the queue lives: the SQLite file, or the Redis URL without its password."""
        if self.backend == "redis":
            return f"redis {safe_redis_url(self.settings.jobs.redis_url)}"
        return str(self.huey.storage.filename)

    @contextmanager
    def _storage(self, doing: str) -> Iterator[None]:
        """Turn a failure of the queue's storage into a JobQueueError naming the setting."""
        try:
            yield
        except JobQueueError:
            raise
        except Exception as exc:
            if self.backend != "redis" or not _is_redis_error(exc):
                raise
            raise JobQueueError(self._redis_problem(exc, doing)) from None

    def _redis_problem(self, exc: Exception, doing: str) -> str:
        import redis

        url = self.settings.jobs.redis_url
        where = f"jobs.redis_url ({safe_redis_url(url)})"
        detail = str(exc)
        password = urlsplit(url).password
        if password:
            detail = detail.replace(password, "***")
        if isinstance(exc, redis.AuthenticationError) or "NOAUTH" in detail:
            if password:
                return (
                    f"{where}: Redis refused the password while {doing} ({detail}); "
                    "check the password in the URL (redis://:PASSWORD@HOST:PORT/DB)"
                )
            return (
                f"{where}: Redis wants a password while {doing} ({detail}); put it in the URL "
                "(redis://:PASSWORD@HOST:PORT/DB)"
            )
        return f"{where}: cannot reach Redis while {doing}: {detail}"

    def check(self) -> None:
        """Reach the queue's storage now; JobQueueError with the reason if it cannot be used."""
        with self._storage("connecting"):
            if self.backend == "redis":
                self.huey.storage.conn.ping()
            else:
                self.huey.storage.queue_size()

    def enqueue_transcription(self, recording_id: int) -> None:
        """Queue ``transcribe_recording(recording_id)`` (the consumer runs it)."""
        with self._storage(f"queueing the transcription of recording {recording_id}"):
            self._task(recording_id)

    def pending(self) -> int:
        """Tasks waiting for the consumer (not counting retries scheduled for later)."""
        with self._storage("counting pending jobs"):
            return int(self.huey.pending_count())

    def scheduled(self) -> int:
        """Tasks scheduled for later (retries after their delay)."""
        with self._storage("counting scheduled jobs"):
            return int(self.huey.scheduled_count())

    def queued_recordings(self) -> set[int]:
        """The recordings that have a transcription waiting in the queue or scheduled."""
        with self._storage("reading the queue"):
            tasks = [*self.huey.pending(), *self.huey.scheduled()]
        return {int(t.args[0]) for t in tasks if t.name == TASK_NAME and t.args}

    def untranscribed(self) -> list[int]:
        """Every recording in the database without a transcript, oldest first."""
        return untranscribed_ids(self.sessions())

    def depth(self) -> dict[str, Any]:
        """The queue depth: pending and scheduled jobs, recordings without a transcript, and
        how many of those have no job in the queue (being transcribed, failed, or lost);
        ``waiting_for_model``: per language the worker found no usable model for, how many
        recordings wait and why."""
        queued = self.queued_recordings()
        missing = untranscribed_languages(self.sessions())
        waiting: dict[str, dict[str, Any]] = {}
        for language, reason in self.no_model().items():
            count = sum(1 for lang in missing.values() if lang == language)
            if count:
                waiting[language] = {"recordings": count, "reason": reason}
        return {
            "pending": self.pending(),
            "scheduled": self.scheduled(),
            "untranscribed": len(missing),
            "not_queued": sum(1 for rid in missing if rid not in queued),
            "waiting_for_model": waiting,
        }

    def note_no_model(self, language: str, reason: str | None) -> None:
        """Remember (for `ivr jobs`) that ``language`` has no usable model; None: it has."""
        key = NO_MODEL_KEY + language
        with self._storage("noting a missing speech model"):
            if reason is None:
                self.huey.delete(key)
            else:
                self.huey.put(key, reason)

    def no_model(self) -> dict[str, str]:
        """The languages a worker found without a usable model, and why."""
        found: dict[str, str] = {}
        with self._storage("reading the missing speech models"):
            for language in LANGUAGE_KEYS:
                reason = self.huey.get(NO_MODEL_KEY + language, peek=True)
                if reason is not None:
                    found[language] = str(reason)
        return found

    def check_models(self) -> dict[str, str]:
        """At the worker's start: each language without a usable model (loading the models
        now), remembered for `ivr jobs`; the languages that have one are cleared."""
        try:
            problems = model_problems(self.speech_engine())
        except ModelError as exc:  # the engine itself cannot be built (e.g. google missing)
            problems = {language: str(exc) for language in LANGUAGE_KEYS}
        for language in LANGUAGE_KEYS:
            self.note_no_model(language, problems.get(language))
        return problems

    def sweep(self) -> list[int]:
        """Enqueue every recording without a transcript that has no job in the queue."""
        queued = self.queued_recordings()
        swept = [rid for rid in self.untranscribed() if rid not in queued]
        for rid in swept:
            self.enqueue_transcription(rid)
        if swept:
            log.info("queued %d recordings that had no transcript and no job", len(swept))
        return swept

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
                config = self.stt or stt_config(self.settings)
                self._engine = self.engine_factory(config)
            return self._engine

    def transcribe_now(self, recording_id: int) -> str:
        """The task's body, run here and now (what the consumer runs)."""
        config = self.stt or stt_config(self.settings)
        return transcribe_recording(
            self.sessions(),
            self.speech_engine(),
            recording_id,
            batch=config.batch_size,
            claims=self.claims(),
        )

    def claims(self) -> Claims:
        """This worker's transcription claims (``[jobs] claim_seconds``; ivr.job_claims)."""
        sessions = self.sessions()
        with self._lock:
            if self._claims is None:
                self._claims = Claims(sessions, self.settings.jobs.claim_seconds)
            return self._claims

    def sweep_lost(self) -> list[int]:
        """Queue again the recordings lost with a worker that died, or never queued, while
        this worker runs (``ivr.job_claims.sweep_lost``); returns them."""
        from ivr.job_claims import sweep_lost

        return sweep_lost(self)

    def start_sweeper(self) -> threading.Event:
        """``sweep_lost`` every ``[jobs] sweep_seconds`` in a thread, until the returned event
        is set (or the process ends)."""
        from ivr.job_claims import start_sweeper

        return start_sweeper(self)

    def consumer(self) -> Any:
        """A huey consumer: one worker thread (``.run()`` until SIGTERM/SIGINT).

        An idle worker looks at the queue at least once a second (huey's default backs off
        to 10 s on SQLite, which would delay a new job, or a due retry, by up to 10 s).
        """
        return self.huey.create_consumer(
            workers=1, worker_type="thread", periodic=False, max_delay=POLL_MAX_SECONDS
        )

    def start_report_schedules(self, interval: float = SCHEDULES_INTERVAL) -> threading.Event:
        """Scheduled e-mailed reports (``ivr.schedules``): a thread that sends what is due
        every ``interval`` seconds until the returned event is set (or the process ends).
        Several workers may run it: each run is claimed once (see ivr.schedules.service)."""
        from ivr.clock import system_clock
        from ivr.schedules.service import Schedules

        stop = threading.Event()
        schedules = Schedules(self.sessions(), system_clock, self.settings.smtp)
        thread = threading.Thread(
            target=run_schedules, args=(schedules, stop, interval), name="report-schedules",
            daemon=True,
        )  # fmt: skip
        thread.start()
        return stop

    def close(self) -> None:
        if self._claims is not None:
            self._claims.close()
        if self._factory is not None:
            bind = self._factory.kw.get("bind")
            if bind is not None:
                bind.dispose()
        if self.backend == "redis":
            self.huey.storage.pool.disconnect()


def run_schedules(schedules: Any, stop: threading.Event, interval: float) -> None:
    """Send the due report schedules (``Schedules.run_due``) now and every ``interval``
    seconds until ``stop`` is set; a failure is logged and the loop goes on."""
    while not stop.is_set():
        try:
            schedules.run_due()
        except Exception:  # noqa: BLE001 - the database away for a while: try again
            log.exception("report schedules: the due-runner failed; trying again")
        stop.wait(interval)


def _is_redis_error(exc: Exception) -> bool:
    try:
        import redis
    except ImportError:  # pragma: no cover - make_queue needs it for the redis backend
        return False
    return isinstance(exc, redis.RedisError)


def make_huey(settings: Settings, filename: Path | None = None) -> Any:
    """The huey instance of ``[jobs]``: SqliteHuey in the data directory, or RedisHuey."""
    jobs = settings.jobs
    if jobs.backend == "redis":
        try:
            import redis
            from huey import RedisHuey  # type: ignore[import-untyped]
        except ImportError:
            raise ConfigError(
                'jobs.backend = "redis" needs the redis package (pip install redis)'
            ) from None
        try:
            pool = redis.ConnectionPool.from_url(
                jobs.redis_url,
                socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
                socket_timeout=REDIS_SOCKET_TIMEOUT,
            )
        except ValueError as exc:
            raise ConfigError(f"jobs.redis_url ({safe_redis_url(jobs.redis_url)}): {exc}") from None
        return RedisHuey(name=QUEUE_NAME, connection_pool=pool, results=False, read_timeout=1)
    from huey import SqliteHuey

    path = filename or settings.data_dir / JOBS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(name=QUEUE_NAME, filename=str(path), results=False)


def make_queue(
    settings: Settings,
    *,
    stt: SttConfig | None = None,
    engine_factory: Callable[[SttConfig], SpeechEngine] = make_engine,
    filename: Path | None = None,
) -> JobQueue:
    """The job queue of ``settings`` (``[jobs]``), its task registered.

    ``stt``: the speech-to-text configuration (default: ``stt_config(settings)``, read when
    the first transcription runs). ``filename``: another SQLite file (tests).
    """
    jobs = settings.jobs
    huey = make_huey(settings, filename)
    queue = JobQueue(settings, huey, stt, engine_factory)

    def transcribe_task(recording_id: int, task: Any = None) -> str:
        try:
            return queue.transcribe_now(recording_id)
        except NoModelError as exc:  # not retried, no traceback: the recording waits
            queue.note_no_model(exc.language, exc.reason)
            log.warning(
                "recording %s waits: %s; it is transcribed once a model is configured "
                "(`ivr worker` queues it again when it starts)",
                recording_id,
                exc,
            )
            return "waiting"
        except Exception as exc:
            if task is not None:
                failures = jobs.retries - task.retries + 1  # this one included
                if getattr(exc, "retryable", True) is False:  # e.g. the cloud refused it
                    task.retries = 0
                    log.error(
                        "recording %s: transcription failed, not retryable: %s", recording_id, exc
                    )
                elif task.retries > 0:
                    task.retry_delay = backoff_delay(jobs.retry_delay, failures)
                    log.warning(
                        "recording %s: transcription failed (try %d of %d), next try in %.0f s: %s",
                        recording_id,
                        failures,
                        jobs.retries + 1,
                        task.retry_delay,
                        exc,
                    )
                else:
                    log.error(
                        "recording %s: transcription failed %d times, giving up (`ivr worker` "
                        "tries again when it starts): %s",
                        recording_id,
                        failures,
                        exc,
                    )
            raise

    register = huey.task(
        retries=jobs.retries, retry_delay=jobs.retry_delay, name=TASK_NAME, context=True
    )
    queue._task = register(transcribe_task)
    return queue
