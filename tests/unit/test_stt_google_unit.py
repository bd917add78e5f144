"""The Google engine's pure parts: endpoint, recognizer, languages, chunking, PCM, the client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ivr.speech.stt import ENGINES, ModelError, SpeechEngine, SttConfig, make_engine
from ivr.speech.stt.google import (
    GoogleSpeechEngine,
    endpoint_for,
    language_code,
    pcm16,
    plan_chunks,
    recognizer_for,
)
from ivr.speech.stt.hygiene import HygieneSettings

RATE = 16_000


def config(**changes: Any) -> SttConfig:
    values: dict[str, Any] = {"engine": "google", "google_project": "kunta-ivr"}
    values.update(changes)
    return SttConfig(**values)


@pytest.mark.parametrize(
    ("location", "endpoint", "expected"),
    [
        ("eu", "", "eu-speech.googleapis.com"),
        ("us", "", "us-speech.googleapis.com"),
        ("europe-west4", "", "europe-west4-speech.googleapis.com"),
        ("global", "", "speech.googleapis.com"),
        ("eu", "speech.example.internal:8443", "speech.example.internal:8443"),
        ("global", " eu-speech.googleapis.com ", "eu-speech.googleapis.com"),
    ],
)
def test_the_endpoint_follows_the_location_unless_one_is_given(
    location: str, endpoint: str, expected: str
) -> None:
    settings = config(google_location=location, google_endpoint=endpoint)
    assert endpoint_for(settings) == expected
    assert GoogleSpeechEngine(settings).endpoint == expected


def test_an_empty_location_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="stt.google_location is empty"):
        endpoint_for(config(google_location=" "))


def test_the_recognizer_is_the_implicit_one_of_project_and_location() -> None:
    assert recognizer_for(config()) == "projects/kunta-ivr/locations/eu/recognizers/_"
    assert (
        recognizer_for(config(google_location="global"))
        == "projects/kunta-ivr/locations/global/recognizers/_"
    )


def test_languages_map_to_their_regional_codes_and_nothing_else_is_sent() -> None:
    assert [language_code(x) for x in ("fi", "sv", "en", " FI ")] == [
        "fi-FI",
        "sv-SE",
        "en-US",
        "fi-FI",
    ]
    with pytest.raises(ModelError, match="fi, sv and en, not 'de'"):
        language_code("de")


def test_make_engine_builds_the_google_engine() -> None:
    assert "google" in ENGINES
    engine = make_engine(config())
    assert isinstance(engine, GoogleSpeechEngine) and isinstance(engine, SpeechEngine)
    assert (engine.name, engine.model) == ("google", "long")


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"google_project": ""}, "stt.google_project is not set"),
        ({"google_model": " "}, "stt.google_model is empty"),
        ({"engine": "faster-whisper"}, "engine 'faster-whisper' is not 'google'"),
    ],
)
def test_a_bad_google_config_is_a_model_error(changes: dict[str, str], says: str) -> None:
    with pytest.raises(ModelError, match=says):
        GoogleSpeechEngine(config(**changes))


def test_importing_the_stt_package_does_not_import_google() -> None:
    code = (
        "import sys, ivr.speech.stt\n"
        "print(sorted(m for m in sys.modules if m.startswith(('google', 'grpc'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_production_uses_credentials_and_the_regional_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "user.json"
    key.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "id.apps.googleusercontent.com",
                "client_secret": "not-a-secret",
                "refresh_token": "not-a-token",
            }
        )
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    engine = GoogleSpeechEngine(config(google_location="eu"))
    client = engine.client()  # builds the client; nothing is sent until a request
    assert client.api_endpoint == "eu-speech.googleapis.com"
    assert client.transport._host == "eu-speech.googleapis.com:443"
    credentials = client.transport._credentials
    assert getattr(credentials, "client_id", None) == "id.apps.googleusercontent.com"
    assert engine.client() is client  # built once


def tone(seconds: float, rate: int = RATE, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * 220 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))).astype(
        np.float32
    )


def gap(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)


def test_audio_under_the_limit_is_one_chunk() -> None:
    samples = tone(50)
    assert plan_chunks(samples, RATE, HygieneSettings()) == [(0, len(samples))]
    assert plan_chunks(gap(0), RATE, HygieneSettings()) == []


def test_long_audio_is_cut_in_pauses_into_chunks_under_the_limit() -> None:
    # 12 s bursts separated by 0.6 s pauses: about 102 s in all.
    pieces = []
    pauses = []
    at = 0
    for _ in range(8):
        pieces.append(tone(12))
        at += len(pieces[-1])
        pieces.append(gap(0.6))
        pauses.append((at, at + len(pieces[-1])))
        at += len(pieces[-1])
    samples = np.concatenate(pieces)
    chunks = plan_chunks(samples, RATE, HygieneSettings(), max_seconds=55)
    assert len(chunks) >= 2
    assert chunks[0][0] == 0 and chunks[-1][1] == len(samples)
    for (_, end), (start, _) in zip(chunks, chunks[1:], strict=False):
        assert end == start  # contiguous: nothing lost, nothing twice
        assert any(lo <= end <= hi for lo, hi in pauses), f"cut at {end / RATE:.2f} s"
    assert all((end - start) / RATE <= 55 for start, end in chunks)


def test_speech_without_pauses_is_cut_where_it_is_quietest() -> None:
    # 130 s of steady sound with two short dips (6 dB down: still speech, not a pause).
    samples = (0.3 * np.sin(2 * np.pi * 220 * np.arange(130 * RATE) / RATE)).astype(np.float32)
    dips = (35.0, 80.0)
    for at in dips:
        samples[int(at * RATE) : int((at + 0.1) * RATE)] *= 0.5
    chunks = plan_chunks(samples, RATE, HygieneSettings(), max_seconds=50, min_seconds=20)
    assert [start for start, _ in chunks][0] == 0 and chunks[-1][1] == len(samples)
    cuts = [end / RATE for _, end in chunks[:-1]]
    assert len(cuts) == 2
    for cut, at in zip(cuts, dips, strict=True):
        assert at <= cut <= at + 0.1
    assert all((end - start) / RATE <= 50 for start, end in chunks)


def test_noise_without_any_quieter_place_is_still_cut_within_the_limit() -> None:
    samples = np.random.default_rng(5).uniform(-0.3, 0.3, 125 * RATE).astype(np.float32)
    chunks = plan_chunks(samples, RATE, HygieneSettings(), max_seconds=55)
    assert chunks[0][0] == 0 and chunks[-1][1] == len(samples)
    for (_, end), (start, _) in zip(chunks, chunks[1:], strict=False):
        assert end == start
    assert all(0 < (end - start) / RATE <= 55 for start, end in chunks)


def test_pcm16_is_little_endian_signed_16_bit() -> None:
    data = pcm16(np.array([0.0, 1.0, -1.0, 0.5, 2.0], dtype=np.float32))
    assert np.frombuffer(data, dtype="<i2").tolist() == [0, 32767, -32767, 16384, 32767]
