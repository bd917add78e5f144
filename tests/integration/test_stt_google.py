"""The Google Cloud Speech v2 engine against a local fake Speech gRPC server.

There is no internet here, so the Speech service is `tests.support.fake_speech`: a real gRPC
server on 127.0.0.1 speaking the package's own Recognize messages. The audio is real:
Finnish and Swedish spoken by espeak-ng and sent through 8 kHz µ-law (what a phone call
leaves of it). The tests check what the engine sends (recognizer, language, model, decoding,
features, the audio itself) and how it reads the answers, the errors and the credentials.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
import pytest
import sqlalchemy as sa
from google.cloud.speech_v2.types import cloud_speech
from sqlalchemy.orm import Session, sessionmaker

from ivr.clock import system_clock
from ivr.config import Settings, load_settings
from ivr.jobs import make_queue
from ivr.speech.stt import (
    FLAG_NO_SPEECH,
    FLAG_SILENT,
    FLAG_TOO_SHORT,
    ModelError,
    SpeechEngine,
    SttConfig,
    SttError,
)
from ivr.speech.stt.google import SEND_RATE, GoogleSpeechEngine, GoogleSpeechError
from ivr.speech.stt.hygiene import load_audio, measure
from ivr.store import repo
from ivr.store.db import make_engine as make_db_engine
from ivr.store.db import make_session_factory
from ivr.store.migrate import upgrade
from ivr.store.models import Direction, TranscriptRow
from tests.support import audio_files
from tests.support.fake_speech import FakeSpeech, Status, fake_speech_server, response, result, word
from tests.support.tools import run_tool, tool

Floats = npt.NDArray[np.float64]

FINNISH = "Haluaisin paremmat bussiyhteydet keskustaan ja enemmän harrastuksia nuorille"
SWEDISH = "Jag vill ha bättre bussförbindelser till centrum och mer aktiviteter för unga"
# Sentences for a long answer (about 90 s when repeated with pauses between them).
LONG_ANSWER = (
    "Kirjastossa pitäisi olla enemmän aukioloaikoja myös viikonloppuisin",
    "Uimahallin kunnostus on tärkeämpää kuin uusi parkkitalo keskustassa",
    "Pyöräteitä tarvitaan koulujen ympärille, jotta lapset voivat pyöräillä turvallisesti",
    "Vanhusten palveluihin pitää saada lisää henkilökuntaa ja kotihoitoa",
)
PAUSE_SECONDS = 0.9
PHONE_RATE = 8000


def phone_speech(folder: Path, name: str, voice: str, text: str) -> Floats:
    """``text`` spoken by espeak-ng through 8 kHz µ-law, as float samples at 8 kHz."""
    spoken = folder / f"{name}-espeak.wav"
    run_tool(tool("espeak-ng"), "-v", voice, "-s", "150", "-w", str(spoken), text)
    mulaw = folder / f"{name}-mulaw.wav"
    pcm = folder / f"{name}-pcm.wav"
    ffmpeg = (tool("ffmpeg"), "-loglevel", "error", "-y", "-i")
    run_tool(
        *ffmpeg, str(spoken), "-ar", str(PHONE_RATE), "-ac", "1", "-c:a", "pcm_mulaw", str(mulaw)
    )
    run_tool(*ffmpeg, str(mulaw), "-c:a", "pcm_s16le", str(pcm))
    return read_wav(pcm)


def read_wav(path: Path) -> Floats:
    with wave.open(str(path)) as src:
        assert (src.getnchannels(), src.getsampwidth()) == (1, 2)
        raw = np.frombuffer(src.readframes(src.getnframes()), dtype="<i2")
    return raw.astype(np.float64) / 32768.0


def write_wav(path: Path, samples: npt.NDArray[np.float64], rate: int = PHONE_RATE) -> Path:
    return audio_files.write_wav(path, samples, rate)


def silence(seconds: float) -> Floats:
    return np.zeros(int(seconds * PHONE_RATE))


def sent_samples(request: cloud_speech.RecognizeRequest) -> Floats:
    """The audio of a request, as the declared 16-bit little-endian PCM says it is."""
    assert len(request.content) % 2 == 0
    return np.frombuffer(request.content, dtype="<i2").astype(np.float64) / 32768.0


def rms_db(samples: Floats) -> float:
    return 20 * math.log10(max(float(np.sqrt(np.mean(samples * samples))), 1e-9))


def google_config(**changes: Any) -> SttConfig:
    values: dict[str, Any] = {"engine": "google", "google_project": "ivr-test-project"}
    values.update(changes)
    return SttConfig(**values)


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("google-audio")


@pytest.fixture(scope="module")
def finnish(audio_dir: Path) -> Floats:
    return phone_speech(audio_dir, "fi", "fi", FINNISH)


@pytest.fixture(scope="module")
def swedish(audio_dir: Path) -> Floats:
    return phone_speech(audio_dir, "sv", "sv", SWEDISH)


@pytest.fixture(scope="module")
def late_finnish(audio_dir: Path, finnish: Floats) -> Path:
    """The Finnish answer after 2 s of silence and before 1 s of it."""
    return write_wav(
        audio_dir / "late-fi.wav", np.concatenate((silence(2.0), finnish, silence(1.0)))
    )


@pytest.fixture()
def fake() -> Iterator[FakeSpeech]:
    with fake_speech_server() as server:
        yield server


@pytest.fixture()
def channel(fake: FakeSpeech) -> Iterator[Any]:
    ch = fake.channel()
    yield ch
    ch.close()


def test_a_finnish_answer_is_sent_as_the_call_says_and_the_answer_read(
    fake: FakeSpeech, channel: Any, late_finnish: Path
) -> None:
    engine = GoogleSpeechEngine(google_config(), channel=channel)
    assert isinstance(engine, SpeechEngine)
    fake.script(
        response(
            result(
                "Haluaisin paremmat bussiyhteydet keskustaan",
                [
                    word("haluaisin", 0.40, 0.95, 0.93),
                    word("paremmat", 1.00, 1.50, 0.91),
                    word("bussiyhteydet", 1.55, 2.40, 0.72),
                    word("keskustaan", 2.45, 3.10, 0.88),
                ],
                confidence=0.9,
                end=3.2,
            ),
            result(
                "ja enemmän harrastuksia nuorille",
                [word("ja", 3.4, 3.5), word("nuorille", 4.6, 5.3)],
                confidence=0.7,
                end=5.4,
            ),
        )
    )

    transcript = engine.transcribe(late_finnish, "fi")

    [got] = fake.received
    request = got.request
    assert request.recognizer == "projects/ivr-test-project/locations/eu/recognizers/_"
    assert got.metadata["x-goog-request-params"] == f"recognizer={request.recognizer}"
    config = request.config
    assert list(config.language_codes) == ["fi-FI"]
    assert config.model == "long"
    assert "auto_decoding_config" not in config
    decoding = config.explicit_decoding_config
    assert decoding.encoding == cloud_speech.ExplicitDecodingConfig.AudioEncoding.LINEAR16
    assert (decoding.sample_rate_hertz, decoding.audio_channel_count) == (SEND_RATE, 1)
    assert config.features.enable_word_time_offsets
    assert config.features.enable_word_confidence

    # The audio sent is the file's speech (silence trimmed, a margin kept), at the declared
    # rate, as 16-bit PCM at the level it has in the file.
    found = measure(load_audio(late_finnish))
    sent = sent_samples(request)
    sent_seconds = len(sent) / decoding.sample_rate_hertz
    kept = min(found.audio_seconds, found.speech_end + 0.25) - max(0, found.speech_start - 0.25)
    assert sent_seconds == pytest.approx(kept, abs=0.03)
    assert found.speech_seconds <= sent_seconds < found.audio_seconds - 2.5
    original = read_wav(late_finnish)
    region = original[int((found.speech_start) * 8000) : int(found.speech_end * 8000)]
    assert rms_db(sent) == pytest.approx(rms_db(region), abs=1.5)
    assert np.abs(sent).max() == pytest.approx(np.abs(original).max(), abs=0.05)

    offset = max(0.0, found.speech_start - 0.25)
    assert 1.6 < offset < 2.0  # the 2 s of silence, less the margin
    assert transcript.text == (
        "Haluaisin paremmat bussiyhteydet keskustaan ja enemmän harrastuksia nuorille"
    )
    assert (transcript.language, transcript.engine, transcript.model) == ("fi", "google", "long")
    assert transcript.flagged is None
    first, second = transcript.segments
    assert first.start == pytest.approx(offset + 0.40, abs=0.002)
    assert first.end == pytest.approx(offset + 3.2, abs=0.002)
    assert second.start == pytest.approx(offset + 3.4, abs=0.002)
    assert second.end == pytest.approx(offset + 5.4, abs=0.002)
    assert first.confidence == pytest.approx(0.9)
    assert second.confidence == pytest.approx(0.7)
    weighted = (0.9 * 2.8 + 0.7 * 2.0) / 4.8
    assert transcript.confidence == pytest.approx(weighted, abs=1e-3)
    assert transcript.audio_seconds == pytest.approx(len(original) / 8000, abs=0.001)
    assert engine.request_count == 1


def test_a_swedish_answer_goes_as_sv_se_to_the_configured_location_and_model(
    fake: FakeSpeech, channel: Any, audio_dir: Path, swedish: Floats
) -> None:
    path = write_wav(audio_dir / "sv.wav", swedish)
    engine = GoogleSpeechEngine(
        google_config(google_location="europe-west4", google_model="chirp_2"), channel=channel
    )
    # No answer-level confidence: the words' confidences are averaged.
    fake.script(
        response(
            result(
                "Jag vill ha bättre bussförbindelser",
                [word("Jag", 0.1, 0.3, 0.8), word("bussförbindelser", 1.2, 2.0, 0.6)],
            )
        )
    )
    transcript = engine.transcribe(path, "sv")
    [request] = fake.requests()
    assert request.recognizer == "projects/ivr-test-project/locations/europe-west4/recognizers/_"
    assert list(request.config.language_codes) == ["sv-SE"]
    assert request.config.model == "chirp_2"
    assert engine.endpoint == "europe-west4-speech.googleapis.com"
    assert (transcript.language, transcript.model) == ("sv", "chirp_2")
    [segment] = transcript.segments
    assert segment.confidence == pytest.approx(0.7)
    # without a result end, the segment ends with its last word
    assert segment.end - segment.start == pytest.approx(1.9, abs=0.002)


def test_an_empty_answer_is_flagged_no_speech(
    fake: FakeSpeech, channel: Any, late_finnish: Path
) -> None:
    fake.script(response())
    transcript = GoogleSpeechEngine(google_config(), channel=channel).transcribe(late_finnish, "fi")
    assert transcript.flagged == FLAG_NO_SPEECH
    assert (transcript.text, transcript.segments, transcript.confidence) == ("", [], None)
    assert len(fake.received) == 1


def test_silent_and_short_recordings_send_no_request(
    fake: FakeSpeech,
    channel: Any,
    audio_dir: Path,
    finnish: Floats,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    silent = write_wav(audio_dir / "silent.wav", silence(4.0))
    start = int(np.argmax(np.abs(finnish) > 0.1))
    short = write_wav(audio_dir / "short.wav", finnish[start : start + int(0.2 * PHONE_RATE)])
    engine = GoogleSpeechEngine(google_config(), channel=channel)

    quiet = engine.transcribe(silent, "fi")
    brief = engine.transcribe(short, "sv")

    assert (quiet.flagged, brief.flagged) == (FLAG_SILENT, FLAG_TOO_SHORT)
    for transcript in (quiet, brief):
        assert transcript.text == "" and transcript.segments == []
        assert transcript.confidence is None and transcript.engine == "google"
    assert quiet.audio_seconds == pytest.approx(4.0)
    assert fake.received == [] and engine.request_count == 0

    # Not even credentials are needed for a recording that is not sent.
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(audio_dir / "no-such-key.json"))
    offline = GoogleSpeechEngine(google_config())
    assert offline.transcribe(silent, "fi").flagged == FLAG_SILENT


def test_a_long_answer_is_split_at_pauses_into_requests_under_a_minute(
    fake: FakeSpeech, channel: Any, audio_dir: Path
) -> None:
    sentences = [
        phone_speech(audio_dir, f"long-{i}", "fi", text) for i, text in enumerate(LONG_ANSWER)
    ]
    parts: list[Floats] = [silence(1.0)]
    while sum(len(p) for p in parts) < 90 * PHONE_RATE:
        parts += [sentences[len(parts) // 2 % len(sentences)], silence(PAUSE_SECONDS)]
    path = write_wav(audio_dir / "long.wav", np.concatenate(parts))

    def answer(request: cloud_speech.RecognizeRequest) -> cloud_speech.RecognizeResponse:
        number = len(fake.received)
        seconds = (
            len(request.content) / 2 / request.config.explicit_decoding_config.sample_rate_hertz
        )
        return response(
            result(
                f"osa {number}",
                [word("osa", 0.5, 0.9), word(str(number), 1.0, seconds - 0.5)],
                confidence=0.5 + number / 10,
                end=seconds - 0.4,
            )
        )

    fake.default = answer
    engine = GoogleSpeechEngine(google_config(), channel=channel)
    transcript = engine.transcribe(path, "fi")

    requests = fake.requests()
    assert len(requests) >= 2
    lengths = [len(sent_samples(r)) / SEND_RATE for r in requests]
    assert all(seconds < 60 for seconds in lengths), lengths
    found = measure(load_audio(path))
    offset = max(0.0, found.speech_start - 0.25)
    kept = min(found.audio_seconds, found.speech_end + 0.25) - offset
    assert sum(lengths) == pytest.approx(kept, abs=0.03)  # every sample sent, once
    # The pieces are the file's audio in order, and each cut is in a pause.
    whole = np.concatenate([sent_samples(r) for r in requests])
    file_16k_level = rms_db(whole)
    for r in requests[:-1]:
        tail = sent_samples(r)[-int(0.1 * SEND_RATE) :]
        assert rms_db(tail) < file_16k_level - 30, "a cut in the middle of speech"
    for r in requests[1:]:
        head = sent_samples(r)[: int(0.1 * SEND_RATE)]
        assert rms_db(head) < file_16k_level - 30, "a cut in the middle of speech"
    for r in requests:
        assert list(r.config.language_codes) == ["fi-FI"]

    assert transcript.text == " ".join(f"osa {n}" for n in range(1, len(requests) + 1))
    starts = [offset + sum(lengths[:i]) for i in range(len(requests))]
    for segment, start, seconds in zip(transcript.segments, starts, lengths, strict=True):
        assert segment.start == pytest.approx(start + 0.5, abs=0.002)
        assert segment.end == pytest.approx(start + seconds - 0.4, abs=0.002)
    assert transcript.segments[-1].end < transcript.audio_seconds
    assert engine.request_count == len(requests)


@pytest.mark.parametrize(
    ("code", "retryable", "says"),
    [
        (grpc.StatusCode.PERMISSION_DENIED, False, ["not retryable", "roles/speech.client"]),
        (grpc.StatusCode.INVALID_ARGUMENT, False, ["not retryable", "'long'", "fi-FI"]),
        (grpc.StatusCode.UNAVAILABLE, True, ["temporary", "will be retried"]),
        (grpc.StatusCode.DEADLINE_EXCEEDED, True, ["temporary", "will be retried"]),
    ],
    ids=lambda value: getattr(value, "name", None),
)
def test_error_answers_are_clear_errors(
    fake: FakeSpeech,
    channel: Any,
    late_finnish: Path,
    code: grpc.StatusCode,
    retryable: bool,
    says: list[str],
) -> None:
    fake.script(Status(code, f"the service says {code.name.lower()}"))
    engine = GoogleSpeechEngine(google_config(), channel=channel)
    with pytest.raises(GoogleSpeechError) as caught:
        engine.transcribe(late_finnish, "fi")
    error = caught.value
    assert isinstance(error, SttError)
    assert (error.code, error.retryable) == (code.name, retryable)
    message = str(error)
    assert message.startswith(f"Google Speech-to-Text {code.name} for {late_finnish} ")
    assert f"the service says {code.name.lower()}" in message
    assert "ivr-test-project" in message and "eu-speech.googleapis.com" in message
    for words in says:
        assert words in message
    assert len(fake.received) == 1  # not retried inside the engine: the job retries


def test_missing_or_broken_credentials_name_the_variable(
    late_finnish: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "missing-key.json"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(missing))
    with pytest.raises(ModelError) as caught:
        GoogleSpeechEngine(google_config()).transcribe(late_finnish, "fi")
    assert "GOOGLE_APPLICATION_CREDENTIALS" in str(caught.value)
    assert str(missing) in str(caught.value)

    broken = tmp_path / "broken-key.json"
    broken.write_text("{ this is not json")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(broken))
    with pytest.raises(ModelError) as caught:
        GoogleSpeechEngine(google_config()).transcribe(late_finnish, "fi")
    assert "GOOGLE_APPLICATION_CREDENTIALS" in str(caught.value)
    assert str(broken) in str(caught.value)


def test_no_credentials_at_all_name_the_variable(late_finnish: Path, tmp_path: Path) -> None:
    # A fresh process: no variable, no gcloud login in HOME, and not on Google's cloud.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "GCE_", "IVR_"))}
    env.update(HOME=str(tmp_path), CLOUDSDK_CONFIG=str(tmp_path / "gcloud"), NO_GCE_CHECK="true")
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from ivr.speech.stt import ModelError, SttConfig, make_engine\n"
        "engine = make_engine(SttConfig(engine='google', google_project='p'))\n"
        "try:\n"
        f"    engine.transcribe(Path({str(late_finnish)!r}), 'fi')\n"
        "except ModelError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(3)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 3, proc.stderr
    assert "no usable Google credentials" in proc.stdout
    assert "set GOOGLE_APPLICATION_CREDENTIALS to the path" in proc.stdout


# --- the transcription job ------------------------------------------------------------------


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    settings = load_settings(environ={"IVR_DATA_DIR": str(tmp_path / "data")})
    settings.data_dir.mkdir()
    upgrade(settings.database_url)
    return settings


@pytest.fixture()
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_db_engine(settings.database_url)
    yield make_session_factory(engine)
    engine.dispose()


def test_a_transcription_job_stores_the_google_transcript(
    fake: FakeSpeech,
    channel: Any,
    settings: Settings,
    sessions: sessionmaker[Session],
    late_finnish: Path,
) -> None:
    built: list[SttConfig] = []

    def build(config: SttConfig) -> GoogleSpeechEngine:
        built.append(config)
        return GoogleSpeechEngine(config, channel=channel)

    queue = make_queue(
        settings,
        stt=google_config(google_location="europe-north1"),
        engine_factory=build,
    )
    with sessions.begin() as s:
        call = repo.create_call(
            s,
            direction=Direction.OUTBOUND,
            flow_id="open-answer-fi",
            flow_version="1",
            channel_id="chan-google",
            node_name="node-a",
            language="fi",
            started_at=system_clock(),
        )
        recording_id = repo.save_recording(
            s, call.id, node_id="q", path=str(late_finnish), duration_seconds=9.0, language="fi"
        ).id
    fake.script(
        response(
            result(
                "Haluaisin paremmat bussiyhteydet",
                [word("haluaisin", 0.4, 0.9, 0.9), word("bussiyhteydet", 1.5, 2.4, 0.8)],
                confidence=0.83,
                end=2.5,
            )
        )
    )
    try:
        assert queue.transcribe_now(recording_id) == "stored"
        assert queue.transcribe_now(recording_id) == "exists"  # no second request, no cost
    finally:
        queue.close()

    assert [c.engine for c in built] == ["google"]
    [request] = fake.requests()
    assert request.recognizer == "projects/ivr-test-project/locations/europe-north1/recognizers/_"
    assert list(request.config.language_codes) == ["fi-FI"]
    with sessions() as s:
        [row] = s.scalars(sa.select(TranscriptRow)).all()
        assert (row.recording_id, row.engine, row.model, row.language) == (
            recording_id,
            "google",
            "long",
            "fi",
        )
        assert row.machine_text == "Haluaisin paremmat bussiyhteydet"
        assert row.confidence == pytest.approx(0.83)
        assert row.flagged is None and row.corrected_text is None
        [segment] = json.loads(row.segments)
    assert segment["text"] == "Haluaisin paremmat bussiyhteydet"
    assert 1.6 + 0.4 < segment["start"] < 2.0 + 0.4  # counted from the start of the file
    assert segment["end"] - segment["start"] == pytest.approx(2.1, abs=0.002)
