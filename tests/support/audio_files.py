"""Real audio for prompt tests: espeak-ng speech padded with silence, encoded by ffmpeg."""

from __future__ import annotations

import math
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyloudnorm  # type: ignore[import-untyped]
from scipy import signal  # type: ignore[import-untyped]

Samples = npt.NDArray[np.float64]

# name -> (file suffix, ffmpeg encoder options)
FORMATS: dict[str, tuple[str, list[str]]] = {
    "wav": (".wav", ["-c:a", "pcm_s16le"]),
    "mp3": (".mp3", ["-c:a", "libmp3lame", "-b:a", "128k"]),
    "m4a": (".m4a", ["-c:a", "aac", "-b:a", "128k"]),
    "ogg-vorbis": (".ogg", ["-c:a", "libvorbis", "-q:a", "5"]),
    "ogg-opus": (".ogg", ["-c:a", "libopus", "-b:a", "96k"]),
    "flac": (".flac", ["-c:a", "flac"]),
}


def espeak(text: str, language: str = "fi") -> tuple[Samples, int]:
    """espeak-ng's speech of ``text`` as mono float samples and its rate."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "speech.wav"
        subprocess.run(
            ["espeak-ng", "-v", language, "-w", str(raw), "--stdin"],
            input=text,
            text=True,
            check=True,
            capture_output=True,
        )
        return read_wav(raw)


def read_wav(path: Path) -> tuple[Samples, int]:
    """A 16-bit WAV's samples in -1..1, (frames,) for mono or (frames, channels)."""
    with wave.open(str(path), "rb") as wav:
        assert wav.getsampwidth() == 2
        channels, rate = wav.getnchannels(), wav.getframerate()
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2") / 32768.0
    return (data if channels == 1 else data.reshape(-1, channels)), rate


def write_wav(path: Path, samples: Samples, rate: int) -> Path:
    """16-bit PCM WAV of samples in -1..1 (mono, or (frames, channels)); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


def lufs(samples: Samples, rate: int) -> float:
    """BS.1770 integrated loudness, straight from pyloudnorm."""
    return float(pyloudnorm.Meter(rate).integrated_loudness(samples))


def peak_dbfs(samples: Samples) -> float:
    peak = float(np.max(np.abs(samples)))
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def speech_file(
    path: Path,
    *,
    text: str = "Hyvää päivää. Tämä on kaupungin kysely asukkaille.",
    language: str = "fi",
    rate: int = 44100,
    channels: int = 2,
    lead: float = 1.0,
    tail: float = 1.5,
    loudness: float | None = None,
    peak: float | None = None,
) -> float:
    """Write speech padded with ``lead``/``tail`` seconds of silence as a 16-bit WAV.

    Scaled to ``loudness`` LUFS or to a sample ``peak`` (dBFS). Returns the length of the
    sound in seconds (espeak-ng's own speech less its own quiet start and end).
    """
    speech, speech_rate = espeak(text, language)
    quiet_start, quiet_end = sound_edges(speech, speech_rate, floor_dbfs=-60.0)
    sound = len(speech) / speech_rate - quiet_start - quiet_end
    if rate != speech_rate:
        common = math.gcd(rate, speech_rate)
        speech = signal.resample_poly(speech, rate // common, speech_rate // common)
    audio = np.concatenate([np.zeros(int(lead * rate)), speech, np.zeros(int(tail * rate))])
    if channels > 1:
        audio = np.repeat(audio[:, None], channels, axis=1)
    if loudness is not None:  # as the file measures: a stereo copy is 3 LU louder than mono
        audio = audio * 10.0 ** ((loudness - lufs(audio, rate)) / 20.0)
    if peak is not None:
        audio = audio * 10.0 ** ((peak - peak_dbfs(audio)) / 20.0)
    write_wav(path, audio, rate)
    return sound


def encode(source: Path, target: Path, options: list[str]) -> Path:
    """``source`` encoded by ffmpeg into ``target`` with the encoder ``options``."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), *options, str(target)],
        check=True,
        capture_output=True,
    )
    return target


def sound_edges(samples: Samples, rate: int, floor_dbfs: float = -50.0) -> tuple[float, float]:
    """Seconds of near-silence (10 ms frames under ``floor_dbfs`` RMS) before and after."""
    size = rate // 100
    count = len(samples) // size
    frames = samples[: count * size].reshape(count, size)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    loud = np.flatnonzero(rms > 10.0 ** (floor_dbfs / 20.0))
    assert len(loud), "no sound at all"
    return float(loud[0]) * size / rate, float(count - 1 - loud[-1]) * size / rate
