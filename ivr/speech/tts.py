"""Text to speech with espeak-ng (the embedded default), written as Asterisk-ready WAV."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from pydub import AudioSegment

VOICES = {"fi": "fi", "sv": "sv", "en": "en-gb"}


class TtsError(Exception):
    pass


def to_asterisk_wav(source: Path, target: Path) -> float:
    """Convert audio to 8 kHz mono 16-bit WAV; returns its duration in seconds."""
    audio = AudioSegment.from_file(source)
    audio = audio.set_channels(1).set_frame_rate(8000).set_sample_width(2)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    audio.export(tmp, format="wav")
    tmp.replace(target)
    return len(audio) / 1000.0


def synthesize_wav(text: str, language: str, target: Path, speed: int = 150) -> float:
    """Speak ``text`` in ``language`` into ``target``; returns the duration in seconds."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise TtsError("espeak-ng is not installed: run `apt-get install espeak-ng`")
    voice = VOICES.get(language)
    if voice is None:
        raise TtsError(f"no espeak-ng voice for language {language!r}")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "tts.wav"
        proc = subprocess.run(
            [espeak, "-v", voice, "-s", str(speed), "-w", str(raw), text],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not raw.exists():
            raise TtsError(f"espeak-ng failed: {proc.stderr.strip()}")
        return to_asterisk_wav(raw, target)
