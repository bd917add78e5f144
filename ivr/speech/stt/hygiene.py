"""Audio hygiene before a model sees a recording: load, measure, flag, trim, resample.

Any format ffmpeg reads (WAV, MP3, M4A, OGG, FLAC…) is loaded through pydub. A recording
that is silent, or has less speech than a minimum, is flagged here so that no model runs
for it. The voice-activity measure is energy-based: 20 ms frames whose level is well above
the recording's own noise floor (and above an absolute floor) count as speech.
Leading and trailing non-speech is trimmed (with a margin) and the result is resampled to
16 kHz mono float32, which is what Whisper expects. ``windows`` then packs the speech into
model windows (30 s for Whisper): pauses longer than ``max_pause_ms`` are cut out, and each
window keeps the map from its own time back to the original file's.
"""

from __future__ import annotations

import math
import shutil
from bisect import bisect_right
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydub import AudioSegment  # type: ignore[import-untyped]
from pydub.exceptions import CouldntDecodeError  # type: ignore[import-untyped]

from ivr.speech.stt.base import FLAG_EMPTY, FLAG_SILENT, FLAG_TOO_SHORT, AudioError

Samples = npt.NDArray[np.float32]

WHISPER_RATE = 16_000
SILENCE_DBFS = -120.0  # the level reported for digital silence


@dataclass(frozen=True)
class Audio:
    """Mono samples in -1..1 at ``rate`` Hz, and the file they came from."""

    path: Path
    samples: Samples
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate


@dataclass(frozen=True)
class HygieneSettings:
    """Thresholds of the screening; the defaults suit phone recordings of open answers."""

    frame_ms: int = 20
    silence_peak_dbfs: float = -50.0  # a peak below this: silent
    speech_floor_dbfs: float = -50.0  # a frame quieter than this is never speech
    noise_margin_db: float = 12.0  # speech is this far above the noise floor...
    dynamics_cap_db: float = 10.0  # ...but at most this far below the loudest frame
    min_burst_ms: int = 60  # shorter bursts (clicks) are not speech
    bridge_gap_ms: int = 200  # shorter pauses inside speech count as speech
    min_speech_seconds: float = 0.5  # less speech than this: too short to transcribe
    trim_margin_ms: int = 250  # kept around the speech when trimming
    max_pause_ms: int = 1000  # longer pauses are cut out of the model's windows (keeping margins)


@dataclass(frozen=True)
class Measure:
    """What the screening found in a recording."""

    audio_seconds: float
    speech_seconds: float
    peak_dbfs: float
    rms_dbfs: float
    speech_start: float  # seconds; 0 when there is no speech
    speech_end: float

    def flag(self, settings: HygieneSettings) -> str | None:
        """FLAG_EMPTY, FLAG_SILENT, FLAG_TOO_SHORT, or None when it is worth transcribing."""
        if self.audio_seconds == 0:
            return FLAG_EMPTY
        if self.peak_dbfs < settings.silence_peak_dbfs or self.speech_seconds == 0:
            return FLAG_SILENT
        if self.speech_seconds < settings.min_speech_seconds:
            return FLAG_TOO_SHORT
        return None


@dataclass(frozen=True)
class Prepared:
    """A recording ready for a model: 16 kHz mono float32, trimmed; or a flag instead."""

    measure: Measure
    flagged: str | None
    samples: Samples  # empty when flagged
    offset: float  # seconds cut from the start (to map model times back to the file)
    rate: int = WHISPER_RATE  # of ``samples``
    # The stretches of speech (seconds from the start of the file; pauses up to
    # ``bridge_gap_ms`` included) that the screening found; empty when flagged.
    speech: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Piece:
    """A stretch of a window: ``seconds`` long, at ``at`` in the window, from ``start`` in
    the original file; its first ``lead`` and last ``trail`` seconds are the margin of
    non-speech kept around the speech (0 where the piece was cut inside speech)."""

    at: float
    start: float
    seconds: float
    lead: float = 0.0
    trail: float = 0.0


@dataclass(frozen=True)
class Window:
    """Audio for one model pass: the speech of a recording with its long pauses cut out.

    ``pieces`` (in order) map times in the window back to the original file; ``speech`` is
    where in the window the screening found speech (window seconds, in order).
    """

    samples: Samples
    rate: int
    pieces: tuple[Piece, ...]
    speech: tuple[tuple[float, float], ...] = ()

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate

    def speech_after(self, t: float) -> float:
        """Seconds of speech in the window after window time ``t``."""
        return sum(max(0.0, end - max(start, t)) for start, end in self.speech)

    def after(self, t: float) -> Window | None:
        """The rest of the window from window time ``t`` (None if nothing is left), with its
        pieces and speech: for a second pass over what a model left out."""
        first = max(0, int(round(t * self.rate)))
        if first >= len(self.samples):
            return None
        t = first / self.rate
        pieces = []
        for piece in self.pieces:
            if piece.at + piece.seconds <= t:
                continue
            skipped = max(0.0, t - piece.at)  # cut off the front of this piece
            pieces.append(
                Piece(
                    at=max(0.0, piece.at - t),
                    start=piece.start + skipped,
                    seconds=piece.seconds - skipped,
                    lead=max(0.0, piece.lead - skipped),
                    trail=min(piece.trail, piece.seconds - skipped),
                )
            )
        speech = tuple((max(0.0, a - t), b - t) for a, b in self.speech if b > t)
        return Window(self.samples[first:], self.rate, tuple(pieces), speech)

    def to_original(self, t: float, *, end: bool = False) -> float:
        """Window time ``t`` as seconds from the start of the original file.

        A model's times are rough at the joins, where a cut pause was: a segment that ends
        in the margin at the start of a piece ended with the piece before (``end``), and
        one that starts in the margin at the end of a piece starts with the next one. Times
        outside the window are clamped to it.
        """
        index = max(0, bisect_right([piece.at for piece in self.pieces], t) - 1)
        piece = self.pieces[index]
        into = t - piece.at
        if end and index > 0 and into <= piece.lead:
            before = self.pieces[index - 1]
            return before.start + before.seconds
        if not end and index + 1 < len(self.pieces) and into >= piece.seconds - piece.trail:
            return self.pieces[index + 1].start
        return piece.start + min(max(into, 0.0), piece.seconds)


def _dbfs(value: float) -> float:
    return 20.0 * math.log10(value) if value > 0 else SILENCE_DBFS


def _ffmpeg_reason(path: Path, exc: CouldntDecodeError) -> str:
    """The last line of ffmpeg's complaint: the one that says what is wrong."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = lines[-1] if lines else "unknown error"
    detail = detail.removeprefix(f"{path}: ")
    return f"not an audio file, or a corrupt one (ffmpeg: {detail})"


def load_audio(path: Path) -> Audio:
    """Decode ``path`` to mono float32; AudioError (naming the file) when that is impossible."""
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "no such file")
    if not path.is_file():
        raise AudioError(path, "not a file")
    size = path.stat().st_size
    if size == 0:
        raise AudioError(path, "the file is empty (0 bytes)")
    if path.suffix.lower() != ".wav" and shutil.which("ffmpeg") is None:
        raise AudioError(path, "ffmpeg is needed to read this format: apt-get install ffmpeg")
    try:
        segment = AudioSegment.from_file(str(path))
    except CouldntDecodeError as exc:
        raise AudioError(path, _ffmpeg_reason(path, exc)) from None
    except (IndexError, KeyError):
        # pydub's probe found no audio stream in the file
        raise AudioError(path, "not an audio file (no audio stream found)") from None
    except (OSError, ValueError, EOFError) as exc:
        raise AudioError(path, f"not readable as audio ({exc})") from None
    except Exception as exc:  # the decoder's own failure, whatever it is: still the file's
        raise AudioError(path, f"not readable as audio ({type(exc).__name__}: {exc})") from None
    if segment.frame_rate <= 0:
        raise AudioError(path, "the file contains no audio (no sample rate)")
    if segment.frame_count() == 0:  # a valid file with 0 s of audio: flagged "empty"
        return Audio(path=path, samples=np.zeros(0, dtype=np.float32), rate=int(segment.frame_rate))
    width = int(segment.sample_width)
    raw = np.asarray(segment.get_array_of_samples(), dtype=np.float64)
    raw /= float(1 << (8 * width - 1))
    channels = int(segment.channels)
    if channels > 1:
        raw = raw[: len(raw) - len(raw) % channels].reshape(-1, channels).mean(axis=1)
    return Audio(path=path, samples=raw.astype(np.float32), rate=int(segment.frame_rate))


def frame_levels(samples: Samples, rate: int, frame_ms: int) -> npt.NDArray[np.float64]:
    """The RMS level (dBFS) of each whole ``frame_ms`` frame; the last partial frame too."""
    size = max(1, rate * frame_ms // 1000)
    count = -(-len(samples) // size)
    padded = np.zeros(count * size, dtype=np.float64)
    padded[: len(samples)] = samples
    frames = padded.reshape(count, size)
    rms: npt.NDArray[np.float64] = np.sqrt(np.mean(frames * frames, axis=1))
    floor = 10.0 ** (SILENCE_DBFS / 20.0)
    levels: npt.NDArray[np.float64] = 20.0 * np.log10(np.maximum(rms, floor))
    return levels


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(start, end) frame index pairs of the True runs in ``mask``; end is exclusive."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def speech_frames(
    levels: npt.NDArray[np.float64], settings: HygieneSettings
) -> npt.NDArray[np.bool_]:
    """Which frames are speech: loud enough, not a click, pauses inside speech bridged."""
    if len(levels) == 0:
        return np.zeros(0, dtype=np.bool_)
    noise = float(np.percentile(levels, 10))
    loudest = float(levels.max())
    threshold = max(
        settings.speech_floor_dbfs,
        min(noise + settings.noise_margin_db, loudest - settings.dynamics_cap_db),
    )
    mask = levels > threshold
    min_burst = max(1, settings.min_burst_ms // settings.frame_ms)
    for start, end in _runs(mask):
        if end - start < min_burst:
            mask[start:end] = False
    bridge = settings.bridge_gap_ms // settings.frame_ms
    runs = _runs(mask)
    for (_, end), (next_start, _) in zip(runs, runs[1:], strict=False):
        if next_start - end <= bridge:
            mask[end:next_start] = True
    return mask


def measure(audio: Audio, settings: HygieneSettings | None = None) -> Measure:
    """Length, speech, levels and where the speech starts and ends."""
    return _analyse(audio, settings or HygieneSettings())[0]


def _analyse(audio: Audio, settings: HygieneSettings) -> tuple[Measure, list[tuple[float, float]]]:
    """The measure of ``audio`` and its stretches of speech (seconds)."""
    samples = audio.samples
    peak = float(np.abs(samples).max()) if len(samples) else 0.0
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0
    levels = frame_levels(samples, audio.rate, settings.frame_ms)
    mask = speech_frames(levels, settings)
    frame_s = settings.frame_ms / 1000.0
    hits = np.flatnonzero(mask)
    start = float(hits[0]) * frame_s if len(hits) else 0.0
    end = min(audio.seconds, float(hits[-1] + 1) * frame_s) if len(hits) else 0.0
    found = Measure(
        audio_seconds=audio.seconds,
        speech_seconds=min(audio.seconds, float(len(hits)) * frame_s),
        peak_dbfs=_dbfs(peak),
        rms_dbfs=_dbfs(rms),
        speech_start=start,
        speech_end=end,
    )
    runs = [(a * frame_s, min(audio.seconds, b * frame_s)) for a, b in _runs(mask)]
    return found, runs


def trim(audio: Audio, found: Measure, settings: HygieneSettings | None = None) -> Audio:
    """``audio`` without the non-speech before and after the speech (keeping a margin)."""
    settings = settings or HygieneSettings()
    if found.speech_end <= found.speech_start:
        return audio
    margin = settings.trim_margin_ms / 1000.0
    first = max(0, int((found.speech_start - margin) * audio.rate))
    last = min(len(audio.samples), int(math.ceil((found.speech_end + margin) * audio.rate)))
    return Audio(path=audio.path, samples=audio.samples[first:last], rate=audio.rate)


def _kaiser_lowpass(cutoff: float, half_width: int) -> npt.NDArray[np.float64]:
    """A windowed-sinc low-pass with ``2 * half_width + 1`` taps; cutoff in cycles/sample."""
    n = np.arange(-half_width, half_width + 1, dtype=np.float64)
    return 2.0 * cutoff * np.sinc(2.0 * cutoff * n) * np.kaiser(len(n), 8.0)


def resample(samples: Samples, rate: int, target: int, zero_crossings: int = 16) -> Samples:
    """Band-limited resampling by the rational factor ``target / rate`` (polyphase FIR).

    Conceptually: insert ``up - 1`` zeros between samples, low-pass below both Nyquist
    rates, keep every ``down``-th sample. Only the output samples are computed: output
    ``n`` is a dot product of the input around ``n * down // up`` with the filter's phase
    ``n * down % up``. Outputs ``up`` apart share a phase and are ``down`` input samples
    apart, so each phase is one matrix product over a strided view of the input.
    """
    if rate <= 0 or target <= 0:
        raise ValueError(f"sample rates must be positive, not {rate} -> {target}")
    if rate == target or len(samples) == 0:
        return samples.astype(np.float32, copy=False)
    ratio = Fraction(target, rate)
    up, down = ratio.numerator, ratio.denominator
    wider = max(up, down)
    half = zero_crossings * wider  # the filter's half length at the upsampled rate
    kernel = _kaiser_lowpass(0.5 / wider, half) * up  # gain `up` restores the level
    # y[n] = sum_j x[k0 - j] * h(p + j * up + half), with k0 = n * down // up, p = its rest
    reach = half // up + 1
    width = 2 * reach + 1
    out_len = -(-len(samples) * up // down)
    # source[k0 + i] = x[k0 + reach - i]... read the other way: window i is j = reach - i
    source = np.concatenate(
        (np.zeros(reach), samples.astype(np.float64), np.zeros(reach + down * up + 1))
    )
    views = np.lib.stride_tricks.sliding_window_view(source, width)
    taps = np.arange(width)
    result = np.zeros(out_len, dtype=np.float64)
    block = 1 << 15  # outputs per product: bounds the memory of the copied windows
    for first in range(min(up, out_len)):
        base, phase = divmod(first * down, up)
        index = phase + (reach - taps) * up + half
        valid = (index >= 0) & (index < len(kernel))
        weights = np.where(valid, kernel[np.clip(index, 0, len(kernel) - 1)], 0.0)
        count = len(range(first, out_len, up))
        for start in range(0, count, block):
            stop = min(count, start + block)
            rows = views[base + start * down : base + stop * down : down]
            result[first + start * up : first + stop * up : up] = rows @ weights
    return result.astype(np.float32)


def prepare(
    path: Path, settings: HygieneSettings | None = None, *, rate: int = WHISPER_RATE
) -> Prepared:
    """Load, measure and screen ``path``; unless flagged, trim it and resample to ``rate``."""
    settings = settings or HygieneSettings()
    audio = load_audio(path)
    found, speech = _analyse(audio, settings)
    flagged = found.flag(settings)
    if flagged is not None:
        return Prepared(found, flagged, np.zeros(0, dtype=np.float32), 0.0, rate)
    trimmed = trim(audio, found, settings)
    offset = max(0.0, found.speech_start - settings.trim_margin_ms / 1000.0)
    offset = int(offset * audio.rate) / audio.rate
    samples = resample(trimmed.samples, audio.rate, rate)
    return Prepared(found, None, samples, offset, rate, tuple(speech))


# A stretch of prepared samples: first, last (exclusive), and its margins (samples).
Stretch = tuple[int, int, int, int]


def _stretches(prepared: Prepared, settings: HygieneSettings) -> list[Stretch]:
    """The parts of ``prepared.samples`` to keep: the speech with a margin each side,
    pauses up to ``max_pause_ms`` kept whole."""
    rate, total = prepared.rate, len(prepared.samples)
    margin = settings.trim_margin_ms / 1000.0
    pause = settings.max_pause_ms / 1000.0
    merged: list[list[float]] = []
    for start, end in prepared.speech:
        if merged and start - merged[-1][1] <= max(pause, 2 * margin):
            merged[-1][1] = end
        else:
            merged.append([start, end])
    found: list[Stretch] = []
    for start, end in merged:
        speech_first = int(round((start - prepared.offset) * rate))
        speech_last = int(round((end - prepared.offset) * rate))
        first = max(0, speech_first - int(round(margin * rate)))
        last = min(total, speech_last + int(round(margin * rate)))
        if last > first:
            found.append((first, last, max(0, speech_first - first), max(0, last - speech_last)))
    return found or ([(0, total, 0, 0)] if total else [])


def _split(
    samples: Samples, stretch: Stretch, limit: int, rate: int, frame_ms: int
) -> list[Stretch]:
    """``stretch`` in parts of at most ``limit`` samples, each cut at the quietest frame
    of the last 3 seconds before the limit (the parts have no margin at a cut)."""
    first, last, lead, trail = stretch
    parts: list[Stretch] = []
    frame = max(1, rate * frame_ms // 1000)
    while last - first > limit:
        look = min(limit - frame, 3 * rate)
        zone = samples[first + limit - look : first + limit]
        levels = frame_levels(zone, rate, frame_ms)[: len(zone) // frame]
        cut = first + limit - look + (int(np.argmin(levels)) * frame + frame // 2)
        cut = min(max(cut, first + frame), first + limit)
        parts.append((first, cut, lead, 0))
        first, lead = cut, 0
    parts.append((first, last, lead, trail))
    return parts


def windows(
    prepared: Prepared, settings: HygieneSettings | None = None, max_seconds: float = 30.0
) -> list[Window]:
    """The speech of ``prepared`` packed into windows of at most ``max_seconds``.

    Pauses longer than ``max_pause_ms`` are cut out (``trim_margin_ms`` of each is kept on
    either side of the speech), stretches are packed in order, and a stretch longer than a
    window is cut at a quiet frame. Empty for a flagged recording.
    """
    settings = settings or HygieneSettings()
    if prepared.flagged is not None or len(prepared.samples) == 0:
        return []
    rate = prepared.rate
    limit = max(1, int(max_seconds * rate))
    ranges: list[Stretch] = []
    for stretch in _stretches(prepared, settings):
        ranges += _split(prepared.samples, stretch, limit, rate, settings.frame_ms)
    found: list[Window] = []
    group: list[Stretch] = []

    def close() -> None:
        pieces: list[Piece] = []
        speech: list[tuple[float, float]] = []
        at = 0
        for first, last, lead, trail in group:
            start, seconds = prepared.offset + first / rate, (last - first) / rate
            pieces.append(Piece(at / rate, start, seconds, lead / rate, trail / rate))
            for a, b in prepared.speech:
                a, b = max(a, start), min(b, start + seconds)
                if b > a:
                    speech.append((at / rate + a - start, at / rate + b - start))
            at += last - first
        samples = np.concatenate([prepared.samples[a:b] for a, b, _, _ in group])
        found.append(
            Window(samples.astype(np.float32, copy=False), rate, tuple(pieces), tuple(speech))
        )

    used = 0
    for stretch in ranges:
        length = stretch[1] - stretch[0]
        if group and used + length > limit:
            close()
            group, used = [], 0
        group.append(stretch)
        used += length
    if group:
        close()
    return found
