"""Prompt audio made ready for the telephone: one conversion path for every prompt.

Uploads (``ivr prompt upload``), recordings a flow names and synthetic speech all go
through :func:`convert`:

1. check the file: an accepted extension (WAV, MP3, M4A, OGG, FLAC), not empty, audio by
   its content (ffprobe finds an audio stream), not cut short (a WAV's data chunk, an Ogg
   stream's last page, the duration the header declares against what decodes);
2. decode it with ffmpeg to float samples at its own rate and channels (at most
   ``max_seconds`` and a little more: a longer file is refused without decoding it all);
3. measure the original: ITU-R BS.1770 integrated loudness (pyloudnorm) and sample peak;
4. mix to mono and resample to 8 kHz (a polyphase low-pass resampler);
5. trim the silence before and after the sound (10 ms frames quieter than both -60 dBFS and
   the loudest frame less 40 dB; 0.1 s is kept on each side);
6. gain to the loudness target (about -20 LUFS); where that would lift the sample peaks
   above ``peak_dbfs`` a look-ahead limiter holds them down (it cuts them by at most 12 dB;
   where the target needs more, the prompt stays quieter and the achieved loudness says so);
7. write 8 kHz mono 16-bit PCM WAV atomically.

BS.1770 measures 400 ms blocks, so a sound shorter than that is measured as if it were
repeated to 400 ms (its K-weighted mean square, no gating); a sound shorter than 0.1 s is
refused as too short for a prompt.

An upload keeps its original byte for byte in ``<data dir>/prompts/originals/<sha256>.<ext>``
and the converted prompt in ``<data dir>/prompts/uploaded/<name>.wav`` with its figures in
``<name>.json``. A flow names it with ``upload: {fi: <name>}`` in a prompt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import struct
import subprocess
import tempfile
import unicodedata
import wave
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ivr.clock import system_clock
from ivr.config import PromptSettings
from ivr.flows.model import UPLOAD_NAME

Samples = npt.NDArray[np.float64]  # 8 kHz mono, as it is worked on
Native = npt.NDArray[np.float32]  # as decoded: the file's rate, (frames, channels)
AnySamples = npt.NDArray[np.floating[Any]]

RATE = 8000
# Bump when the conversion changes, so cached prompts are made again.
PIPELINE = "prompt-audio/v1"
ACCEPTED = {
    ".wav": "WAV",
    ".mp3": "MP3",
    ".m4a": "M4A",
    ".ogg": "OGG",
    ".oga": "OGG",
    ".opus": "OGG",
    ".flac": "FLAC",
}
ACCEPTED_NAMES = "WAV, MP3, M4A, OGG or FLAC"
BLOCK_SECONDS = 0.4  # BS.1770's gating block
MIN_SOUND_SECONDS = 0.1  # less sound than this is not a prompt
FRAME_SECONDS = 0.01  # silence trimming works on 10 ms frames
SILENCE_FLOOR_DBFS = -60.0  # a frame quieter than this is silence...
SILENCE_RANGE_DB = 40.0  # ...and so is one this far below the loudest frame
TRIM_MARGIN_SECONDS = 0.1  # kept before and after the sound
LIMITER_HALF_WINDOW_SECONDS = 0.01  # the limiter looks this far ahead and releases as slowly
MAX_LIMITING_DB = 12.0  # the most gain reduction the limiter may add to reach the target
PEAK_MARGIN_DB = 0.02  # below the ceiling, for rounding to 16 bits
PROBE_SECONDS = 30  # ffprobe/ffmpeg run at most this long per step (after the decode limit)


class PromptAudioError(Exception):
    """A file that cannot be a prompt: the message names the file and the reason."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Probe:
    """What ffprobe says about a file's first audio stream."""

    format_name: str  # ffmpeg's demuxer, e.g. "wav", "mp3", "ogg", "flac", "mov,mp4,m4a,..."
    codec: str  # e.g. "pcm_s16le", "mp3", "aac", "vorbis", "opus", "flac"
    sample_rate: int
    channels: int
    duration: float | None  # as the header declares it, where it does


@dataclass(frozen=True)
class Conversion:
    """The figures of one conversion: the original's, and the prompt's."""

    format: str  # the original's container and codec, e.g. "ogg/opus"
    source_rate: int
    source_channels: int
    source_seconds: float
    loudness_before_lufs: float  # the original (BS.1770 over its channels); -inf if silent
    peak_before_dbfs: float
    trimmed_start_seconds: float  # silence cut from the start (at 8 kHz)
    trimmed_end_seconds: float
    seconds: float  # the prompt's duration
    target_lufs: float
    loudness_after_lufs: float
    peak_after_dbfs: float
    gain_db: float  # the gain applied before the limiter
    limited_db: float  # the most gain reduction the limiter applied (0: none)
    short_measure: bool  # the sound was shorter than 400 ms (measured as if repeated)

    @property
    def on_target(self) -> bool:
        """Within 0.5 LU of the target (the limiter cap can keep a spiky sound quieter)."""
        return abs(self.loudness_after_lufs - self.target_lufs) <= 0.5


# ------------------------------------------------------------------------- checking the file
def _describe_magic(head: bytes) -> str | None:
    """What a file is, by its first bytes, for the formats worth naming in a message."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "a PNG image"
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG image"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "a GIF image"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive (or an office document)"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip archive"
    sample = head[:4096]
    if sample and b"\x00" not in sample:
        try:
            text = sample.decode("utf-8")
        except UnicodeDecodeError as exc:
            text = sample[: exc.start].decode("utf-8") if exc.start > len(sample) - 4 else ""
        if text and sum(ch.isprintable() or ch.isspace() for ch in text) >= 0.95 * len(text):
            return "a text file"
    return None


def _audio_magic(head: bytes) -> str | None:
    """The audio container a file's first bytes announce, if any."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "WAV"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "MP3"
    if head.startswith(b"OggS"):
        return "OGG"
    if head.startswith(b"fLaC"):
        return "FLAC"
    if head[4:8] == b"ftyp":
        return "M4A"
    return None


def _ffmpeg_line(stderr: str, path: Path) -> str:
    """The last line of ffmpeg's complaint (the one saying what is wrong), without the path."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return "no reason given"
    line = re.sub(r"^\[[^\]]* @ 0x[0-9a-f]+\] ", "", lines[-1])  # "[mp3float @ 0x55...] "
    for prefix in (f"{path}: ", f"{path.resolve()}: "):
        line = line.removeprefix(prefix)
    return line


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed: run `apt-get install ffmpeg`")
    return found


def check_file(path: Path) -> str:
    """The accepted format name for ``path``'s extension; PromptAudioError when refused."""
    path = Path(path)
    kind = ACCEPTED.get(path.suffix.lower())
    if kind is None:
        shown = path.suffix or "(no extension)"
        raise PromptAudioError(
            path, f"unsupported file type {shown}: upload {ACCEPTED_NAMES} audio"
        )
    if not path.exists():
        raise PromptAudioError(path, "no such file")
    if not path.is_file():
        raise PromptAudioError(path, "not a file")
    if path.stat().st_size == 0:
        raise PromptAudioError(path, "the file is empty (0 bytes)")
    return kind


def probe(path: Path) -> Probe:
    """ffprobe's view of ``path``; PromptAudioError for non-audio and unreadable files."""
    path = Path(path)
    with path.open("rb") as handle:
        head = handle.read(8192)
    proc = subprocess.run(
        [
            _tool("ffprobe"),
            "-v",
            "error",
            "-show_entries",
            "format=format_name,duration:stream=codec_type,codec_name,sample_rate,channels,duration",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=PROBE_SECONDS,
    )
    info: dict[str, Any] = {}
    if proc.returncode == 0:
        with contextlib.suppress(json.JSONDecodeError):
            info = json.loads(proc.stdout or "{}")
    streams = [s for s in info.get("streams", []) if s.get("codec_type") == "audio"]
    if proc.returncode != 0 or not info.get("format") or not streams:
        what = _describe_magic(head)
        if what is not None:
            raise PromptAudioError(path, f"not an audio file: it is {what}")
        announced = _audio_magic(head)
        detail = _ffmpeg_line(proc.stderr, path)
        if announced is not None:
            raise PromptAudioError(
                path, f"a corrupt or incomplete {announced} file (ffmpeg: {detail})"
            )
        if proc.returncode == 0 and info.get("format"):
            found = info["format"].get("format_name", "?")
            raise PromptAudioError(
                path, f"not an audio file: there is no audio in it (ffmpeg reads it as {found})"
            )
        raise PromptAudioError(path, f"not an audio file, or a corrupt one (ffmpeg: {detail})")
    stream = streams[0]
    fmt = info["format"]
    duration: float | None = None
    for value in (stream.get("duration"), fmt.get("duration")):
        try:
            duration = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(duration) and duration > 0:
            break
        duration = None
    try:
        rate = int(stream.get("sample_rate") or 0)
        channels = int(stream.get("channels") or 0)
    except ValueError:
        rate = channels = 0
    if rate <= 0 or channels <= 0:
        raise PromptAudioError(path, "a corrupt audio file: no sample rate or channels in it")
    return Probe(
        format_name=str(fmt.get("format_name", "?")),
        codec=str(stream.get("codec_name", "?")),
        sample_rate=rate,
        channels=channels,
        duration=duration,
    )


def _wav_cut_short(path: Path) -> str | None:
    """Why a RIFF/WAVE file is cut short (its data chunk is longer than the file), or None."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return None
        offset = 12
        while offset + 8 <= size:
            handle.seek(offset)
            chunk, length = struct.unpack("<4sI", handle.read(8))
            if chunk == b"data":
                if length in (0, 0xFFFFFFFF):  # a stream written without knowing its length
                    return None
                have = size - offset - 8
                if length > have:
                    return (
                        f"cut short: the header promises {length} bytes of audio, "
                        f"the file holds {have}"
                    )
                return None
            offset += 8 + length + (length & 1)
    return "cut short: the WAV file ends before its audio data starts"


def _ogg_cut_short(path: Path) -> str | None:
    """Why an Ogg file is cut short (a partial page, or no end-of-stream page), or None."""
    size = path.stat().st_size
    last_flags = -1
    with path.open("rb") as handle:
        offset = 0
        while offset < size:
            handle.seek(offset)
            header = handle.read(27)
            if len(header) < 27 or header[:4] != b"OggS":
                return "cut short or damaged: the Ogg stream breaks off mid-page"
            segments = header[26]
            table = handle.read(segments)
            if len(table) < segments:
                return "cut short: the last Ogg page is incomplete"
            end = offset + 27 + segments + sum(table)
            if end > size:
                return "cut short: the last Ogg page is incomplete"
            last_flags = header[5]
            offset = end
    if last_flags < 0 or not last_flags & 0x04:
        return "cut short: the Ogg stream has no end-of-stream page"
    return None


def _decode(path: Path, info: Probe, max_seconds: float) -> Native:
    """The first audio stream as float32 samples, shape (frames, channels), at its own rate."""
    limit = max_seconds + 0.5
    proc = subprocess.run(
        [
            _tool("ffmpeg"),
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:a:0",
            "-vn",
            "-t",
            f"{limit:.3f}",
            "-f",
            "f32le",
            "-acodec",
            "pcm_f32le",
            "-",
        ],
        capture_output=True,
        timeout=PROBE_SECONDS + limit,
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise PromptAudioError(
            path, f"a corrupt audio file: ffmpeg cannot decode it ({_ffmpeg_line(stderr, path)})"
        )
    if stderr.strip():
        raise PromptAudioError(
            path, f"a corrupt audio file: ffmpeg reports damage ({_ffmpeg_line(stderr, path)})"
        )
    raw = np.frombuffer(proc.stdout, dtype="<f4")
    frames = len(raw) // info.channels
    samples = raw[: frames * info.channels].reshape(frames, info.channels).copy()
    if not np.isfinite(samples).all():
        np.nan_to_num(samples, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    return samples


# ------------------------------------------------------------------------- measuring
def dbfs(value: float) -> float:
    return 20.0 * math.log10(value) if value > 0 else -math.inf


def loudness(samples: AnySamples, rate: int) -> float:
    """ITU-R BS.1770 integrated loudness (LUFS) of mono (n,) or (n, channels) samples.

    A sound shorter than one 400 ms block is measured as if repeated to 400 ms. More than
    five channels are mixed to mono first (BS.1770 weights only five). -inf for silence.
    """
    if samples.ndim == 2 and samples.shape[1] == 1:
        samples = samples[:, 0]
    if samples.ndim == 2 and samples.shape[1] > 5:
        samples = samples.mean(axis=1)
    if len(samples) == 0:
        return -math.inf
    block = int(math.ceil(BLOCK_SECONDS * rate)) + 1
    if len(samples) < block:
        repeats = -(-block // len(samples))
        reps = (repeats,) if samples.ndim == 1 else (repeats, 1)
        samples = np.tile(samples, reps)[:block]
    # Imported here, as scipy below: pyloudnorm and scipy.signal take ~0.7 s to import,
    # which every web worker and `ivr` command paid at start though only an uploaded
    # recording is measured and converted.
    import pyloudnorm  # type: ignore[import-untyped]

    value = float(pyloudnorm.Meter(rate).integrated_loudness(samples))
    return value if math.isfinite(value) else -math.inf


def peak_dbfs(samples: AnySamples) -> float:
    return dbfs(float(np.max(np.abs(samples)))) if samples.size else -math.inf


def to_mono_8k(samples: AnySamples, rate: int) -> Samples:
    """Mix (frames, channels) to mono and resample to 8 kHz (float64)."""
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    if rate != RATE:
        common = math.gcd(RATE, rate)
        from scipy import signal  # type: ignore[import-untyped]  # (see loudness)

        mono = signal.resample_poly(mono, RATE // common, rate // common)
    return np.asarray(mono, dtype=np.float64)


def sound_span(samples: Samples, rate: int = RATE) -> tuple[int, int] | None:
    """(first, end) sample of the sound in ``samples``, end exclusive; None if all silence.

    A 10 ms frame is sound when its RMS level is above -60 dBFS and within 40 dB of the
    loudest frame.
    """
    size = max(1, int(rate * FRAME_SECONDS))
    count = -(-len(samples) // size)
    if count == 0:
        return None
    padded = np.zeros(count * size)
    padded[: len(samples)] = samples
    rms = np.sqrt(np.mean(padded.reshape(count, size) ** 2, axis=1))
    levels = 20.0 * np.log10(np.maximum(rms, 1e-12))
    threshold = max(SILENCE_FLOOR_DBFS, float(levels.max()) - SILENCE_RANGE_DB)
    loud = np.flatnonzero(levels > threshold)
    if len(loud) == 0:
        return None
    return int(loud[0]) * size, min(len(samples), (int(loud[-1]) + 1) * size)


def limit(samples: Samples, ceiling: float, rate: int = RATE) -> tuple[Samples, float]:
    """Hold the sample peaks at or below ``ceiling`` (linear); returns (samples, most dB cut).

    Look-ahead limiter: each sample's needed gain is spread by a minimum filter over the
    window either side and then smoothed by a moving average of the same width, so the gain
    is never above what any sample in reach needs (the peaks stay under the ceiling) and it
    changes smoothly over 20 ms.
    """
    magnitude = np.abs(samples)
    if samples.size == 0 or float(magnitude.max()) <= ceiling:
        return samples, 0.0
    need = np.minimum(1.0, ceiling / np.maximum(magnitude, 1e-12))
    width = 2 * max(1, int(rate * LIMITER_HALF_WINDOW_SECONDS)) + 1
    from scipy import ndimage  # (see loudness)

    gain = ndimage.minimum_filter1d(need, size=width, mode="nearest")
    gain = ndimage.uniform_filter1d(gain, size=width, mode="nearest")
    gain = np.minimum(gain, need)  # the filters' own rounding
    return samples * gain, -dbfs(float(gain.min()))


def normalise(
    samples: Samples,
    target_lufs: float,
    peak_ceiling_dbfs: float,
    sound: tuple[int, int] | None = None,
) -> tuple[Samples, float, float, float]:
    """Gain ``samples`` (8 kHz mono) to ``target_lufs``, peaks held under the ceiling.

    The loudness is that of ``samples[sound[0]:sound[1]]`` (default: all of them), so the
    silence kept around a short sound does not count. The limiter may cut the peaks by at
    most MAX_LIMITING_DB; where the target needs more, the gain stops there and the prompt
    stays quieter. Returns (samples, achieved LUFS, the gain applied, the most the limiter
    cut).
    """
    first, end = sound if sound is not None else (0, len(samples))
    ceiling_db = peak_ceiling_dbfs - PEAK_MARGIN_DB
    ceiling = 10.0 ** (ceiling_db / 20.0)
    before = loudness(samples[first:end], RATE)
    if not math.isfinite(before):
        return samples, before, 0.0, 0.0
    most = ceiling_db - peak_dbfs(samples) + MAX_LIMITING_DB
    gain = min(target_lufs - before, most)
    out, cut, achieved = samples, 0.0, before
    for _ in range(8):
        out, cut = limit(samples * 10.0 ** (gain / 20.0), ceiling)
        achieved = loudness(out[first:end], RATE)
        short = target_lufs - achieved
        if abs(short) <= 0.05 or (short > 0 and gain >= most):
            break
        gain = min(gain + short, most)
    return out, achieved, gain, cut


# ------------------------------------------------------------------------- converting
def _write_wav(samples: Samples, target: Path) -> None:
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(handle)
    temporary = Path(name)
    try:
        with wave.open(str(temporary), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(pcm.tobytes())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def convert(source: Path, target: Path, settings: PromptSettings | None = None) -> Conversion:
    """Convert ``source`` into the prompt ``target`` (8 kHz mono 16-bit WAV, normalised).

    PromptAudioError (naming ``source`` and the reason) for an unsupported, empty, non-audio,
    corrupt, cut-short, over-long or silent file; ``target`` is then left as it was.
    """
    settings = settings or PromptSettings()
    source = Path(source)
    check_file(source)
    info = probe(source)
    if info.duration is not None and info.duration > settings.max_seconds + 0.5:
        raise PromptAudioError(
            source,
            f"too long: {info.duration:.1f} s; a prompt may be at most "
            f"{settings.max_seconds:g} s (prompts.max_seconds)",
        )
    reason = _wav_cut_short(source)
    if reason is None and info.format_name == "ogg":
        reason = _ogg_cut_short(source)
    if reason is not None:
        raise PromptAudioError(source, f"a corrupt audio file: {reason}")
    samples = _decode(source, info, settings.max_seconds)
    seconds = len(samples) / info.sample_rate
    if seconds > settings.max_seconds:
        raise PromptAudioError(
            source,
            f"too long: more than {settings.max_seconds:g} s; a prompt may be at most "
            f"{settings.max_seconds:g} s (prompts.max_seconds)",
        )
    if len(samples) == 0:
        raise PromptAudioError(source, "empty: the file holds no audio samples")
    if info.duration is not None and seconds < info.duration - (0.25 + 0.01 * info.duration):
        raise PromptAudioError(
            source,
            f"a corrupt audio file: cut short: the header says {info.duration:.2f} s, "
            f"only {seconds:.2f} s decode",
        )
    before = loudness(samples, info.sample_rate)
    peak_before = peak_dbfs(samples)
    mono = to_mono_8k(samples, info.sample_rate)
    span = sound_span(mono)
    if span is None:
        loudest = (
            "digital silence" if math.isinf(peak_before) else f"peaks at {peak_before:.1f} dBFS"
        )
        raise PromptAudioError(source, f"empty: nothing but silence ({loudest})")
    sound = (span[1] - span[0]) / RATE
    if sound < MIN_SOUND_SECONDS:
        raise PromptAudioError(
            source,
            f"too short: only {sound * 1000:.0f} ms of sound; a prompt needs at least "
            f"{MIN_SOUND_SECONDS * 1000:.0f} ms",
        )
    margin = int(TRIM_MARGIN_SECONDS * RATE)
    start, end = max(0, span[0] - margin), min(len(mono), span[1] + margin)
    trimmed = mono[start:end]
    # A sound shorter than a BS.1770 block is measured alone (repeated), not with its margins.
    short = (span[0] - start, span[1] - start) if sound < BLOCK_SECONDS else None
    out, achieved, gain, cut = normalise(trimmed, settings.loudness_lufs, settings.peak_dbfs, short)
    _write_wav(out, target)
    codec = info.codec
    names = info.format_name.split(",")
    extension = source.suffix.lower().lstrip(".")
    container = extension if extension in names else names[0]
    return Conversion(
        format=container if codec == container else f"{container}/{codec}",
        source_rate=info.sample_rate,
        source_channels=info.channels,
        source_seconds=round(seconds, 3),
        loudness_before_lufs=round(before, 2),
        peak_before_dbfs=round(peak_before, 2),
        trimmed_start_seconds=round(start / RATE, 3),
        trimmed_end_seconds=round((len(mono) - end) / RATE, 3),
        seconds=round(len(out) / RATE, 3),
        target_lufs=settings.loudness_lufs,
        loudness_after_lufs=round(achieved, 2),
        peak_after_dbfs=round(peak_dbfs(np.round(out * 32767.0) / 32768.0), 2),
        gain_db=round(gain, 2),
        limited_db=round(cut, 2),
        short_measure=sound < BLOCK_SECONDS,
    )


def conversion_key(settings: PromptSettings) -> str:
    """What a converted prompt depends on besides its source: for cache keys."""
    return f"{PIPELINE}/{RATE}/{settings.loudness_lufs:g}LUFS/{settings.peak_dbfs:g}dBFS"


# ------------------------------------------------------------------------- uploads
@dataclass(frozen=True)
class Upload:
    """An uploaded prompt: where it is and its figures (``<name>.json`` beside it)."""

    name: str
    prompt: Path  # the converted 8 kHz WAV
    original: Path  # the original, byte for byte
    original_name: str
    sha256: str
    uploaded_at: str
    conversion: Conversion
    replaced: bool = False  # an earlier upload of this name was replaced

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "prompt": str(self.prompt),
            "original": str(self.original),
            "original_name": self.original_name,
            "sha256": self.sha256,
            "uploaded_at": self.uploaded_at,
            "replaced": self.replaced,
            **asdict(self.conversion),
        }

    def describe(self) -> list[str]:
        """What `ivr prompt upload` says: where the files are, and the figures."""
        c = self.conversion
        layout = "mono" if c.source_channels == 1 else f"{c.source_channels} channels"
        lines = [
            f"uploaded {self.name}" + (" (replaced the earlier upload)" if self.replaced else ""),
            f"prompt:   {self.prompt} (8000 Hz mono 16-bit, {c.seconds:.2f} s)",
            f"original: {self.original} ({self.original_name}: {c.format}, {c.source_rate} Hz "
            f"{layout}, {c.source_seconds:.2f} s; kept as it was)",
            f"loudness: {c.loudness_before_lufs:.1f} -> {c.loudness_after_lufs:.1f} LUFS "
            f"(target {c.target_lufs:g}); peak {c.peak_before_dbfs:.1f} -> "
            f"{c.peak_after_dbfs:.1f} dBFS; gain {c.gain_db:+.1f} dB, "
            f"limiter {c.limited_db:.1f} dB",
            f"trimmed:  {c.trimmed_start_seconds:.2f} s of silence at the start, "
            f"{c.trimmed_end_seconds:.2f} s at the end",
        ]
        if not c.on_target:
            lines.append(
                f"note: its peaks hold it at {c.loudness_after_lufs:.1f} LUFS, quieter than "
                f"the {c.target_lufs:g} LUFS target"
            )
        if c.short_measure:
            lines.append("note: under 0.4 s of sound: its loudness is measured as if repeated")
        lines.append(f"in a flow: prompt: {{fi: ..., upload: {{fi: {self.name}}}}}")
        return lines


def uploads_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "prompts" / "uploaded"


def originals_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "prompts" / "originals"


def name_for(file: Path) -> str:
    """A prompt name from a file name: ``Intro Hämeenlinna.mp3`` -> ``intro-hameenlinna``."""
    plain = unicodedata.normalize("NFKD", Path(file).stem)
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch)).lower()
    plain = re.sub(r"[^a-z0-9_-]+", "-", plain).strip("-_")
    return plain[:64].rstrip("-_")


def check_name(name: str) -> str:
    if not UPLOAD_NAME.fullmatch(name):
        raise ValueError(
            f"bad prompt name {name!r}: use 1-64 of a-z, 0-9, '-' and '_', "
            "starting with a letter or digit"
        )
    return name


def _copy_hashing(source: Path, target: Path) -> str:
    """Copy ``source`` to ``target`` byte for byte; returns the SHA-256 of what was copied."""
    digest = hashlib.sha256()
    with source.open("rb") as reader, target.open("wb") as writer:
        for chunk in iter(lambda: reader.read(1 << 16), b""):
            digest.update(chunk)
            writer.write(chunk)
    return digest.hexdigest()


def _write_json(data: dict[str, Any], target: Path) -> None:
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2, ensure_ascii=False)
        out.write("\n")
    os.replace(name, target)


def upload(
    source: Path, data_dir: Path, settings: PromptSettings | None = None, name: str | None = None
) -> Upload:
    """Convert ``source`` into the uploaded prompt ``name`` and keep the original.

    The original is copied first and the prompt converted from the copy, so the kept
    original is exactly what was converted. The name defaults to one made from the file
    name. Nothing is left behind when the file is refused (PromptAudioError) or the name is
    bad (ValueError).
    """
    source = Path(source)
    settings = settings or PromptSettings()
    kind = check_file(source)
    if name is None:
        name = name_for(source)
        if not name:
            raise ValueError(f"{source}: cannot make a prompt name of the file name: give --name")
    check_name(name)
    folder, originals = uploads_dir(data_dir), originals_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    originals.mkdir(parents=True, exist_ok=True)
    suffix = source.suffix.lower()
    handle, copy_name = tempfile.mkstemp(dir=originals, prefix=".upload.", suffix=suffix)
    os.close(handle)
    copy = Path(copy_name)
    handle, temp_name = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".wav")
    os.close(handle)
    converted = Path(temp_name)
    prompt = folder / f"{name}.wav"
    try:
        sha = _copy_hashing(source, copy)
        try:
            conversion = convert(copy, converted, settings)
        except PromptAudioError as exc:  # name the file the operator gave, not the copy
            raise PromptAudioError(source, exc.reason) from None
        original = originals / f"{sha}{suffix}"
        if original.exists():
            copy.unlink()
        else:
            os.replace(copy, original)
        replaced = prompt.exists()
        os.replace(converted, prompt)
    finally:
        copy.unlink(missing_ok=True)
        converted.unlink(missing_ok=True)
    result = Upload(
        name=name,
        prompt=prompt,
        original=original,
        original_name=source.name,
        sha256=sha,
        uploaded_at=system_clock().isoformat(timespec="seconds"),  # a record only
        conversion=conversion,
        replaced=replaced,
    )
    _write_json({**result.as_json(), "accepted_as": kind}, folder / f"{name}.json")
    return result


def list_uploads(data_dir: Path) -> list[tuple[str, dict[str, Any] | None, str]]:
    """Every uploaded prompt: (name, its metadata or None, a problem or "")."""
    folder = uploads_dir(data_dir)
    if not folder.is_dir():
        return []
    found: list[tuple[str, dict[str, Any] | None, str]] = []
    for wav in sorted(folder.glob("*.wav")):
        if wav.name.startswith("."):
            continue
        meta = wav.with_suffix(".json")
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except FileNotFoundError:
            found.append((wav.stem, None, f"no metadata ({meta.name} is missing)"))
            continue
        except (OSError, json.JSONDecodeError) as exc:
            found.append((wav.stem, None, f"unreadable metadata {meta.name}: {exc}"))
            continue
        if not isinstance(data, dict):
            found.append((wav.stem, None, f"unreadable metadata {meta.name}: not an object"))
            continue
        found.append((wav.stem, data, ""))
    return found
