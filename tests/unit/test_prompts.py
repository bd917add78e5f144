"""Prompt audio: recordings converted for Asterisk, TTS rendered once, cached by content."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path
from typing import Any

import pytest
from pydub import AudioSegment

from ivr.flows.loader import parse_flow
from ivr.flows.model import Flow
from ivr.speech import tts
from ivr.speech.prompts import PromptError, PromptStore, prompt_source

FLOW = """\
id: prompts
name: Kehotteet
version: "1"
languages: [fi, sv]
start: intro
nodes:
  intro:
    kind: say
    prompt:
      fi: Tervetuloa kyselyyn.
      sv: Välkommen till enkäten.
      recording: {fi: audio/intro-fi.wav}
    next: bye
  bye:
    kind: end
    prompt: {fi: Kiitos ja hei hei., sv: Tack och hej då.}
"""


def write_wav(
    path: Path,
    *,
    rate: int = 44100,
    channels: int = 2,
    seconds: float = 0.5,
    amplitude: float = 0.05,
    hz: float = 440.0,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = bytearray()
    for i in range(int(rate * seconds)):
        sample = int(amplitude * 32767 * math.sin(2 * math.pi * hz * i / rate))
        frames += struct.pack("<h", sample) * channels
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))


def wav_format(path: Path) -> tuple[int, int, int]:
    with wave.open(str(path), "rb") as wav:
        return wav.getframerate(), wav.getnchannels(), wav.getsampwidth()


@pytest.fixture()
def flow_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "flow"
    write_wav(folder / "audio" / "intro-fi.wav")
    return folder


@pytest.fixture()
def flow() -> Flow:
    return parse_flow(FLOW, "prompts.yaml")


@pytest.fixture()
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the real espeak-ng and conversion runs."""
    counts = {"synthesize": 0, "convert": 0}
    real_synthesize, real_convert = tts.synthesize_wav, tts.to_asterisk_wav

    def synthesize(*args: Any, **kwargs: Any) -> float:
        counts["synthesize"] += 1
        return real_synthesize(*args, **kwargs)

    def convert(*args: Any, **kwargs: Any) -> float:
        counts["convert"] += 1
        return real_convert(*args, **kwargs)

    monkeypatch.setattr(tts, "synthesize_wav", synthesize)
    monkeypatch.setattr(tts, "to_asterisk_wav", convert)
    return counts


def test_tts_prompt_is_rendered_once(
    flow: Flow, flow_dir: Path, tmp_path: Path, calls: dict[str, int]
) -> None:
    cache = tmp_path / "cache"
    prompt = flow.nodes["bye"].prompt
    assert prompt is not None
    first = PromptStore(cache).resolve(flow, prompt, "fi", flow_dir)
    assert first.source == "synthetic"
    assert first.path == cache / f"{first.key}.wav"
    mtime = first.path.stat().st_mtime_ns
    again = PromptStore(cache).resolve(flow, prompt, "fi", flow_dir)  # a new store, same cache
    assert again == first
    assert calls["synthesize"] == 1
    assert first.path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in cache.iterdir()) == [f"{first.key}.wav"]  # no temp files


def test_fi_and_sv_both_synthesise_as_asterisk_wav(
    flow: Flow, flow_dir: Path, tmp_path: Path
) -> None:
    store = PromptStore(tmp_path / "cache")
    prompt = flow.nodes["bye"].prompt
    assert prompt is not None
    fi = store.resolve(flow, prompt, "fi", flow_dir)
    sv = store.resolve(flow, prompt, "sv", flow_dir)
    assert fi.key != sv.key
    for audio in (fi, sv):
        assert audio.source == "synthetic"
        assert wav_format(audio.path) == (8000, 1, 2)
        segment = AudioSegment.from_file(audio.path)
        assert len(segment) > 500  # real speech, not an empty file
        assert abs(segment.dBFS - (-20.0)) < 1.5  # loudness-normalised


def test_recorded_prompt_is_converted_to_8khz_mono_16bit_and_cached_by_content(
    flow: Flow, flow_dir: Path, tmp_path: Path, calls: dict[str, int]
) -> None:
    store = PromptStore(tmp_path / "cache")
    prompt = flow.nodes["intro"].prompt
    assert prompt is not None
    assert wav_format(flow_dir / "audio" / "intro-fi.wav") == (44100, 2, 2)
    audio = store.resolve(flow, prompt, "fi", flow_dir)
    assert audio.source == "recorded" and prompt_source(prompt, "fi") == "recorded"
    assert wav_format(audio.path) == (8000, 1, 2)
    converted = AudioSegment.from_file(audio.path)
    assert abs(len(converted) - 500) < 20
    assert abs(converted.dBFS - (-20.0)) < 0.5  # a quiet recording (-29 dBFS) is lifted
    assert store.resolve(flow, prompt, "fi", flow_dir) == audio
    assert calls["convert"] == 1
    # new content under the same name is a new cache entry
    write_wav(flow_dir / "audio" / "intro-fi.wav", hz=660.0)
    changed = store.resolve(flow, prompt, "fi", flow_dir)
    assert changed.key != audio.key and changed.path.is_file() and audio.path.is_file()
    assert calls["convert"] == 2
    # the language without a recording is synthesised
    sv = store.resolve(flow, prompt, "sv", flow_dir)
    assert sv.source == "synthetic" and calls["synthesize"] == 1


def test_a_missing_recording_names_the_prompt_and_the_file(flow: Flow, tmp_path: Path) -> None:
    prompt = flow.nodes["intro"].prompt
    assert prompt is not None
    with pytest.raises(PromptError) as caught:
        PromptStore(tmp_path / "cache").resolve(flow, prompt, "fi", tmp_path / "elsewhere")
    message = str(caught.value)
    assert "nodes.intro.prompt" in message
    assert "audio/intro-fi.wav" in message and "missing" in message
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_an_unreadable_recording_fails_cleanly_and_leaves_no_partial_file(
    flow: Flow, flow_dir: Path, tmp_path: Path
) -> None:
    (flow_dir / "audio" / "intro-fi.wav").write_bytes(b"RIFF this is not audio")
    prompt = flow.nodes["intro"].prompt
    assert prompt is not None
    cache = tmp_path / "cache"
    with pytest.raises(PromptError, match="nodes.intro.prompt: cannot convert the fi recording"):
        PromptStore(cache).resolve(flow, prompt, "fi", flow_dir)
    assert list(cache.iterdir()) == []


def test_the_tts_key_follows_text_language_and_engine(
    flow: Flow, flow_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PromptStore(tmp_path / "cache")
    bye = flow.nodes["bye"].prompt
    assert bye is not None
    same_text = parse_flow(FLOW.replace("id: prompts", "id: other"))
    other_bye = same_text.nodes["bye"].prompt
    assert other_bye is not None
    first = store.resolve(flow, bye, "fi", flow_dir)
    assert store.resolve(same_text, other_bye, "fi", flow_dir).key == first.key
    monkeypatch.setattr(tts, "engine_version", lambda: "eSpeak NG text-to-speech: 9.99")
    assert store.resolve(flow, bye, "fi", flow_dir).key != first.key
