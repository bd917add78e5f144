"""Text to speech: espeak-ng (the embedded default) or piper (optional), as WAV files.

``choose_voice`` says which engine and voice speak a language: piper where
``prompts.tts_engine = "piper"``, piper-tts is installed (``pip install 'ivr[piper]'``) and
the language's voice (``<name>.onnx`` and ``<name>.onnx.json``) is in the voices folder;
espeak-ng otherwise, with the reason piper could not be used. ``speak`` writes the engine's
own WAV; prompts are then converted by :mod:`ivr.speech.prompt_audio` like any recording.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import shutil
import subprocess
import tempfile
import threading
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydub import AudioSegment  # type: ignore[import-untyped,unused-ignore]

from ivr.config import PromptSettings

VOICES = {"fi": "fi", "sv": "sv", "en": "en-gb"}
PIPER_INSTALL = "pip install 'ivr[piper]'"

Engine = Literal["espeak-ng", "piper"]


class TtsError(Exception):
    pass


@dataclass(frozen=True)
class Voice:
    """Who speaks a language: the engine, its voice, and why espeak-ng stands in for piper."""

    engine: Engine
    name: str  # the espeak-ng voice, or the piper voice's name
    version: str  # the engine's version and the voice's identity, for cache keys
    model: Path | None = None  # piper: the .onnx file
    fallback: str = ""  # piper was asked for: why espeak-ng speaks instead ("" if it does not)


def to_asterisk_wav(source: Path, target: Path) -> float:
    """Convert audio to 8 kHz mono 16-bit WAV as it is; returns its duration in seconds.

    For audio that is not a prompt (the simulated residents' answers): prompts go through
    :func:`ivr.speech.prompt_audio.convert`, which also trims and normalises.
    """
    audio = AudioSegment.from_file(source)
    audio = audio.set_channels(1).set_frame_rate(8000).set_sample_width(2)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    audio.export(tmp, format="wav")
    tmp.replace(target)
    return len(audio) / 1000.0


def voice_for(language: str) -> str:
    """The espeak-ng voice for ``language``; TtsError if there is none."""
    voice = VOICES.get(language)
    if voice is None:
        raise TtsError(f"no espeak-ng voice for language {language!r}")
    return voice


@functools.cache
def engine_version() -> str:
    """espeak-ng's version line (e.g. "eSpeak NG text-to-speech: 1.51 ..."), for cache keys."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise TtsError("espeak-ng is not installed: run `apt-get install espeak-ng`")
    proc = subprocess.run([espeak, "--version"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise TtsError(f"espeak-ng --version failed: {proc.stderr.strip()}")
    return proc.stdout.split("Data at:")[0].strip()


def espeak_voice(language: str, fallback: str = "") -> Voice:
    return Voice("espeak-ng", voice_for(language), engine_version(), fallback=fallback)


def piper_version() -> str | None:
    """The installed piper-tts version, or None."""
    try:
        return importlib.metadata.version("piper-tts")
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=16)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def piper_voice_files(voices_dir: Path, name: str) -> tuple[Path, Path]:
    model = Path(voices_dir) / f"{name}.onnx"
    return model, model.with_name(model.name + ".json")


def choose_voice(
    language: str, settings: PromptSettings | None = None, voices_dir: Path | None = None
) -> Voice:
    """The voice for ``language`` under ``settings``; TtsError when not even espeak-ng can."""
    settings = settings or PromptSettings()
    if settings.tts_engine != "piper":
        return espeak_voice(language)
    name = settings.piper_voices.get(language)
    if not name:
        return espeak_voice(
            language, f"no piper voice is configured for {language} (prompts.piper_voices)"
        )
    version = piper_version()
    if version is None:
        return espeak_voice(language, f"piper-tts is not installed ({PIPER_INSTALL})")
    if voices_dir is None:
        return espeak_voice(language, "no piper voices folder is set")
    model, config = piper_voice_files(voices_dir, name)
    for needed in (model, config):
        if not needed.is_file():
            return espeak_voice(
                language, f"the piper voice {name} is not installed: {needed} is missing"
            )
    stat = model.stat()
    identity = _file_digest(str(model), stat.st_size, stat.st_mtime_ns)
    config_stat = config.stat()
    config_identity = _file_digest(str(config), config_stat.st_size, config_stat.st_mtime_ns)
    return Voice(
        "piper",
        name,
        f"piper-tts {version}; {name} {identity[:16]} {config_identity[:16]}",
        model=model,
    )


_piper_lock = threading.Lock()


@functools.lru_cache(maxsize=4)
def _load_piper(model: str, mtime_ns: int) -> Any:
    from piper import PiperVoice  # type: ignore[import-not-found,unused-ignore]

    return PiperVoice.load(model)


def _piper(voice: Voice, text: str, target: Path) -> None:
    assert voice.model is not None
    try:
        with _piper_lock:
            loaded = _load_piper(str(voice.model), voice.model.stat().st_mtime_ns)
    except Exception as exc:  # onnxruntime and piper raise many kinds for a bad voice
        raise TtsError(f"piper cannot load the voice {voice.name} ({voice.model}): {exc}") from exc
    try:
        with wave.open(str(target), "wb") as out:
            loaded.synthesize_wav(text, out)
    except Exception as exc:
        raise TtsError(f"piper could not speak with the voice {voice.name}: {exc}") from exc


def _espeak(voice: Voice, text: str, target: Path, speed: int) -> None:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise TtsError("espeak-ng is not installed: run `apt-get install espeak-ng`")
    proc = subprocess.run(
        # The text goes in on stdin: as an argument, a leading "-" would read as an option.
        [espeak, "-v", voice.name, "-s", str(speed), "-w", str(target), "--stdin"],
        input=text,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not target.exists():
        raise TtsError(f"espeak-ng failed: {proc.stderr.strip()}")


def speak(voice: Voice, text: str, target: Path, speed: int = 150) -> None:
    """Say ``text`` with ``voice`` into the WAV ``target`` (the engine's own rate)."""
    if voice.engine == "piper":
        _piper(voice, text, target)
    else:
        _espeak(voice, text, target, speed)


def synthesize_wav(text: str, language: str, target: Path, speed: int = 150) -> float:
    """Speak ``text`` with espeak-ng into 8 kHz mono ``target``; returns the seconds.

    As spoken (not trimmed or normalised): for the simulated residents' answers.
    """
    voice = espeak_voice(language)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "tts.wav"
        speak(voice, text, raw, speed)
        return to_asterisk_wav(raw, target)
