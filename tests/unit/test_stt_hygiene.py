"""Audio hygiene on synthetic recordings: loading, levels, flags, trimming, resampling."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from ivr.speech.stt import FLAG_SILENT, FLAG_TOO_SHORT, AudioError, SttConfig
from ivr.speech.stt.faster_whisper import fetch_hint, resolve_model
from ivr.speech.stt.hygiene import (
    Audio,
    HygieneSettings,
    Prepared,
    load_audio,
    measure,
    prepare,
    resample,
    trim,
    windows,
)

RATE = 8000
rng = np.random.default_rng(7)


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)


def voiced(seconds: float, rate: int = RATE, level: float = 0.3) -> np.ndarray:
    """Speech-like: a 140 Hz buzz with harmonics, its loudness moving at a syllable rate."""
    t = np.arange(int(seconds * rate)) / rate
    buzz = np.zeros_like(t)
    for k in range(1, 8):
        buzz += np.sin(2 * np.pi * 140 * k * t) / k
    syllables = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    signal = buzz * syllables
    return (level * signal / float(np.abs(signal).max())).astype(np.float32)


def noise(seconds: float, dbfs: float, rate: int = RATE) -> np.ndarray:
    level = 10 ** (dbfs / 20)
    return (rng.standard_normal(int(seconds * rate)) * level).astype(np.float32)


def audio(*parts: np.ndarray, rate: int = RATE) -> Audio:
    return Audio(Path("synthetic.wav"), np.concatenate(parts).astype(np.float32), rate)


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE, channels: int = 1) -> Path:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


def test_digital_silence_is_flagged_silent() -> None:
    found = measure(audio(silence(2.0)))
    assert found.speech_seconds == 0
    assert found.peak_dbfs <= -100
    assert found.flag(HygieneSettings()) == FLAG_SILENT


def test_quiet_line_noise_is_flagged_silent() -> None:
    found = measure(audio(noise(3.0, -65)))
    assert found.flag(HygieneSettings()) == FLAG_SILENT


def test_a_fifth_of_a_second_of_speech_is_too_short() -> None:
    found = measure(audio(silence(1.0), voiced(0.2), silence(1.0)))
    assert 0.1 <= found.speech_seconds < 0.5
    assert found.flag(HygieneSettings()) == FLAG_TOO_SHORT


def test_clicks_are_not_speech() -> None:
    click = np.zeros(RATE // 100, dtype=np.float32)  # 10 ms
    click[::2] = 0.9
    found = measure(audio(silence(0.5), click, silence(0.5), click, silence(0.5)))
    assert found.speech_seconds == 0
    assert found.flag(HygieneSettings()) == FLAG_SILENT


def test_speech_is_found_where_it_is() -> None:
    found = measure(audio(silence(1.0), voiced(1.5), silence(0.8)))
    assert found.audio_seconds == pytest.approx(3.3)
    assert found.speech_seconds == pytest.approx(1.5, abs=0.1)
    assert found.speech_start == pytest.approx(1.0, abs=0.05)
    assert found.speech_end == pytest.approx(2.5, abs=0.05)
    assert found.flag(HygieneSettings()) is None


def test_speech_over_line_noise_is_found() -> None:
    floor = noise(3.3, -55)
    speech = np.concatenate((silence(1.0), voiced(1.5), silence(0.8)))
    found = measure(audio(floor + speech))
    assert found.speech_start == pytest.approx(1.0, abs=0.05)
    assert found.speech_end == pytest.approx(2.5, abs=0.05)
    assert found.flag(HygieneSettings()) is None


def test_short_pauses_inside_speech_count_long_ones_do_not() -> None:
    short = measure(audio(silence(0.5), voiced(0.5), silence(0.1), voiced(0.5), silence(0.5)))
    long = measure(audio(silence(0.5), voiced(0.5), silence(0.6), voiced(0.5), silence(0.5)))
    assert short.speech_seconds == pytest.approx(1.1, abs=0.06)
    assert long.speech_seconds == pytest.approx(1.0, abs=0.06)


def test_minimum_speech_is_a_setting() -> None:
    found = measure(audio(silence(0.5), voiced(0.3), silence(0.5)))
    assert found.flag(HygieneSettings()) == FLAG_TOO_SHORT
    assert found.flag(HygieneSettings(min_speech_seconds=0.2)) is None


def test_trim_keeps_the_speech_and_a_margin() -> None:
    recording = audio(silence(2.0), voiced(1.0), silence(3.0))
    found = measure(recording)
    trimmed = trim(recording, found)
    assert trimmed.seconds == pytest.approx(1.0 + 2 * 0.25, abs=0.05)
    levels = np.abs(trimmed.samples)
    assert levels[: int(0.2 * RATE)].max() == 0  # the margin is the silence before
    assert levels[int(0.3 * RATE) : int(1.2 * RATE)].max() > 0.1


def test_trim_does_not_cut_speech_at_the_edges() -> None:
    recording = audio(voiced(1.0), silence(1.0))
    trimmed = trim(recording, measure(recording))
    assert trimmed.seconds == pytest.approx(1.25, abs=0.05)
    assert np.array_equal(trimmed.samples[: RATE // 2], recording.samples[: RATE // 2])


def tone(freq: float, seconds: float, rate: int) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)).astype(
        np.float32
    )


def test_resample_phone_band_to_16k_keeps_the_signal() -> None:
    out = resample(tone(440, 1.0, 8000), 8000, 16000)
    assert out.dtype == np.float32
    assert len(out) == 16000
    expected = tone(440, 1.0, 16000)
    inner = slice(400, -400)  # the filter's edges see zeros outside the recording
    assert np.abs(out[inner] - expected[inner]).max() < 1e-3


def test_resample_down_removes_what_cannot_be_represented() -> None:
    kept = resample(tone(3000, 1.0, 48000), 48000, 16000)
    gone = resample(tone(10000, 1.0, 48000), 48000, 16000)  # above the new Nyquist (8 kHz)
    assert len(kept) == 16000
    assert np.sqrt(np.mean(kept[400:-400] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)
    assert np.abs(gone[400:-400]).max() < 0.005


def test_resample_odd_ratio() -> None:
    out = resample(tone(1000, 0.5, 44100), 44100, 16000)
    assert len(out) == 8000
    expected = tone(1000, 0.5, 16000)
    assert np.abs(out[400:-400] - expected[400:-400]).max() < 2e-3


def test_load_wav_mixes_stereo_to_mono(tmp_path: Path) -> None:
    left = voiced(1.0)
    stereo = np.stack((left, np.zeros_like(left)), axis=1).reshape(-1)
    loaded = load_audio(write_wav(tmp_path / "stereo.wav", stereo, channels=2))
    assert loaded.rate == RATE
    assert loaded.seconds == pytest.approx(1.0)
    assert np.abs(loaded.samples - left / 2).max() < 1e-3


def test_prepare_gives_whisper_audio_and_the_offset(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "answer.wav", np.concatenate((silence(1.0), voiced(1.0))))
    prepared = prepare(path)
    assert prepared.flagged is None
    assert prepared.samples.dtype == np.float32
    assert len(prepared.samples) / 16000 == pytest.approx(1.25, abs=0.05)
    assert prepared.offset == pytest.approx(0.75, abs=0.05)
    assert prepared.measure.audio_seconds == pytest.approx(2.0)


def test_prepare_flags_without_resampling(tmp_path: Path) -> None:
    prepared = prepare(write_wav(tmp_path / "quiet.wav", silence(3.0)))
    assert prepared.flagged == FLAG_SILENT
    assert len(prepared.samples) == 0


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.wav", b"", "empty"),
        ("header-only.wav", b"RIFF\x24\x00\x00\x00WAVEfmt ", "corrupt"),
    ],
)
def test_unusable_files_name_the_file(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    assert str(path) in str(caught.value)
    assert reason in str(caught.value)
    assert caught.value.path == path


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "gone.wav")
    with pytest.raises(AudioError, match="not a file"):
        load_audio(tmp_path)


def test_config_picks_the_model_per_language() -> None:
    config = SttConfig(models={"fi": "/m/fi", "sv": "/m/sv"}, default_model="/m/any")
    assert config.model_for("fi") == "/m/fi"
    assert config.model_for("en") == "/m/any"
    assert config.resolved_compute_type() == "int8"
    assert SttConfig(device="cuda").resolved_compute_type() == "float16"
    with pytest.raises(Exception, match="no speech-to-text model is configured for language"):
        SttConfig(models={"fi": "/m/fi"}).model_for("sv")


def test_fetch_hint_names_the_download() -> None:
    assert "huggingface-cli download Systran/faster-whisper-small" in fetch_hint("small")
    assert "huggingface-cli download Org/whisper-fi-ct2" in fetch_hint("Org/whisper-fi-ct2")
    assert "ct2-transformers-converter" in fetch_hint("small")


def test_a_model_folder_must_hold_a_model(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(Exception, match="missing config.json, tokenizer.json"):
        resolve_model(str(tmp_path))
    with pytest.raises(Exception, match="does not exist"):
        resolve_model(str(tmp_path / "nothing"))


# --- windows: the speech packed for the model, times mapped back -----------------------------


def prepared_from(tmp_path: Path, *parts: np.ndarray) -> Prepared:
    return prepare(write_wav(tmp_path / "answer.wav", np.concatenate(parts)))


def test_a_long_pause_is_cut_out_and_times_map_back(tmp_path: Path) -> None:
    # 2 s silence, 2 s speech, 3 s pause, 1 s speech, 0.5 s pause, 1 s speech, 2 s silence
    prepared = prepared_from(
        tmp_path,
        silence(2.0),
        voiced(2.0),
        silence(3.0),
        voiced(1.0),
        silence(0.5),
        voiced(1.0),
        silence(2.0),
    )
    (window,) = windows(prepared)
    first, second = window.pieces  # the short pause stays inside the second piece
    assert window.rate == 16000
    assert first.at == 0
    assert first.start == pytest.approx(1.75, abs=0.03)  # the speech, less the margin
    assert first.seconds == pytest.approx(2.5, abs=0.05)
    assert second.at == pytest.approx(first.seconds)
    assert second.start == pytest.approx(6.75, abs=0.03)
    assert second.seconds == pytest.approx(3.0, abs=0.05)
    assert window.seconds == pytest.approx(first.seconds + second.seconds)
    # window time -> file time, inside each piece and at the join
    assert window.to_original(1.0) == pytest.approx(2.75, abs=0.03)
    assert window.to_original(second.at) == pytest.approx(second.start)
    assert window.to_original(second.at, end=True) == pytest.approx(first.start + first.seconds)
    # the margins are not speech: a segment ending in the margin before the second piece's
    # speech ended with the first piece; one starting in the first's last margin, with the
    # second piece
    assert first.lead == pytest.approx(0.25, abs=0.02) and first.trail == pytest.approx(0.25)
    assert second.lead == pytest.approx(0.25) and second.trail == pytest.approx(0.25, abs=0.02)
    just_after = second.at + 0.2
    assert window.to_original(just_after, end=True) == pytest.approx(first.start + first.seconds)
    assert window.to_original(just_after) == pytest.approx(second.start + 0.2)
    assert window.to_original(second.at + 0.3, end=True) == pytest.approx(second.start + 0.3)
    assert window.to_original(first.seconds - 0.2) == pytest.approx(second.start)
    assert window.to_original(first.seconds - 0.2, end=True) == pytest.approx(
        first.start + first.seconds - 0.2
    )
    assert window.to_original(second.at + 1.0) == pytest.approx(7.75, abs=0.03)
    assert window.to_original(99.0) == pytest.approx(second.start + second.seconds)
    # the samples of the second piece are the file's samples from where the piece says
    offset = round((second.start - prepared.offset) * 16000)
    at = round(second.at * 16000)
    length = round(second.seconds * 16000)
    assert np.array_equal(
        window.samples[at : at + length], prepared.samples[offset : offset + length]
    )


def test_pauses_up_to_the_limit_are_kept_whole(tmp_path: Path) -> None:
    prepared = prepared_from(tmp_path, silence(1.0), voiced(1.0), silence(0.9), voiced(1.0))
    (window,) = windows(prepared)
    assert len(window.pieces) == 1
    assert window.seconds == pytest.approx(0.25 + 2.9, abs=0.05)
    cut = windows(prepared, HygieneSettings(max_pause_ms=500))[0]
    assert len(cut.pieces) == 2
    assert cut.seconds == pytest.approx(1.5 + 1.25, abs=0.05)  # the file ends with speech


def test_speech_longer_than_a_window_is_split_in_order(tmp_path: Path) -> None:
    parts = [silence(1.0)]
    for _ in range(8):
        parts += [voiced(5.0), silence(1.5)]
    prepared = prepared_from(tmp_path, *parts)
    found = windows(prepared)
    assert len(found) == 2
    pieces = [piece for window in found for piece in window.pieces]
    assert len(pieces) == 8
    for window in found:
        assert window.seconds <= 30.0
        assert window.seconds == pytest.approx(sum(p.seconds for p in window.pieces))
    for piece, later in zip(pieces, pieces[1:], strict=False):
        assert later.start >= piece.start + piece.seconds + 0.9  # the cut pause
    assert pieces[0].start == pytest.approx(0.75, abs=0.03)
    assert pieces[-1].start + pieces[-1].seconds == pytest.approx(1.0 + 8 * 6.5 - 1.25, abs=0.05)


def test_continuous_speech_is_cut_at_a_quiet_frame(tmp_path: Path) -> None:
    prepared = prepared_from(tmp_path, silence(0.5), voiced(70.0), silence(0.5))
    found = windows(prepared)
    assert len(found) == 3
    pieces = [window.pieces[0] for window in found]
    for window in found:
        assert window.seconds <= 30.0 and len(window.pieces) == 1
    for piece, later in zip(pieces, pieces[1:], strict=False):
        assert later.start == pytest.approx(piece.start + piece.seconds, abs=1e-6)  # no gap
        assert piece.trail == 0 and later.lead == 0  # cut inside speech: no margin there
        assert piece.seconds > 27.0  # cut within the last 3 s before the limit
        # the cut is where the syllable rhythm (4 Hz) is quiet, not in the middle of a peak
        phase = (piece.start + piece.seconds - 0.5) * 4 % 1.0
        assert abs(phase - 0.75) < 0.1
    ((speech_start, speech_end),) = prepared.speech
    assert pieces[0].start == pytest.approx(speech_start - 0.25)
    assert pieces[-1].start + pieces[-1].seconds == pytest.approx(speech_end + 0.25, abs=0.01)


def test_a_flagged_recording_has_no_windows(tmp_path: Path) -> None:
    assert windows(prepare(write_wav(tmp_path / "quiet.wav", silence(3.0)))) == []


@pytest.mark.parametrize(("rate", "target"), [(8000, 16000), (44100, 16000), (16000, 8000)])
@pytest.mark.parametrize("count", [1, 2, 3, 441, 8001])
def test_resample_lengths(rate: int, target: int, count: int) -> None:
    out = resample(np.ones(count, dtype=np.float32), rate, target)
    assert len(out) == -(-count * target // rate)
    if count > 2000:  # away from the edges, a constant stays constant
        middle = out[len(out) // 4 : 3 * len(out) // 4]
        assert np.abs(middle - 1.0).max() < 1e-3


def test_the_rest_of_a_window_keeps_its_map_and_speech(tmp_path: Path) -> None:
    prepared = prepared_from(
        tmp_path, silence(1.0), voiced(2.0), silence(3.0), voiced(2.0), silence(1.0)
    )
    (window,) = windows(prepared)
    first, second = window.pieces
    ((a0, a1), (b0, b1)) = window.speech
    assert (a0, a1) == pytest.approx((0.25, 2.25), abs=0.03)
    assert (b0, b1) == pytest.approx((second.at + 0.25, second.at + 2.25), abs=0.03)
    assert window.speech_after(0.0) == pytest.approx(4.0, abs=0.06)
    assert window.speech_after(1.25) == pytest.approx(3.0, abs=0.06)
    assert window.speech_after(b1) == 0

    rest = window.after(1.25)  # a model stopped in the middle of the first speech
    assert rest is not None
    assert rest.seconds == pytest.approx(window.seconds - 1.25)
    assert np.array_equal(rest.samples, window.samples[20000:])
    head, tail = rest.pieces
    assert head.at == 0 and head.start == pytest.approx(first.start + 1.25)
    assert head.seconds == pytest.approx(first.seconds - 1.25)
    assert head.lead == 0 and head.trail == pytest.approx(first.trail)
    assert tail.at == pytest.approx(second.at - 1.25) and tail.start == second.start
    assert rest.speech_after(0.0) == pytest.approx(window.speech_after(1.25))
    # the same instant of the file, through either window
    assert rest.to_original(2.0) == pytest.approx(window.to_original(3.25))
    assert rest.to_original(tail.at + 0.5) == pytest.approx(second.start + 0.5)

    later = window.after(second.at + 0.1)
    assert later is not None and len(later.pieces) == 1
    assert later.pieces[0].lead == pytest.approx(second.lead - 0.1)
    assert window.after(window.seconds) is None
