"""Text to speech with espeak-ng (the embedded default), written as Asterisk-ready WAV."""

from __future__ import annotations

import functools
import math
import shutil
import subprocess
import tempfile
from pathlib import Path

from pydub import AudioSegment

VOICES = {"fi": "fi", "sv": "sv", "en": "en-gb"}


class TtsError(Exception):
    pass


def to_asterisk_wav(source: Path, target: Path, *, target_dbfs: float | None = None) -> float:
    """Convert audio to 8 kHz mono 16-bit WAV; returns its duration in seconds.

    With ``target_dbfs`` the loudness is normalised to that average level (dBFS), with the
    gain held back where it would push the peaks above -1 dBFS; silence is left alone.
    """
    audio = AudioSegment.from_file(source)
    audio = audio.set_channels(1).set_frame_rate(8000).set_sample_width(2)
    if target_dbfs is not None and math.isfinite(audio.dBFS):
        gain = min(target_dbfs - audio.dBFS, -1.0 - audio.max_dBFS)
        audio = audio.apply_gain(gain)
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


def synthesize_wav(
    text: str,
    language: str,
    target: Path,
    speed: int = 150,
    *,
    target_dbfs: float | None = None,
) -> float:
    """Speak ``text`` in ``language`` into ``target``; returns the duration in seconds."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise TtsError("espeak-ng is not installed: run `apt-get install espeak-ng`")
    voice = voice_for(language)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "tts.wav"
        proc = subprocess.run(
            # The text goes in on stdin: as an argument, a leading "-" would read as an option.
            [espeak, "-v", voice, "-s", str(speed), "-w", str(raw), "--stdin"],
            input=text,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not raw.exists():
            raise TtsError(f"espeak-ng failed: {proc.stderr.strip()}")
        return to_asterisk_wav(raw, target, target_dbfs=target_dbfs)
