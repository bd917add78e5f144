"""The prompt audio pipeline on real files: espeak-ng speech encoded by ffmpeg in each format.

Every figure is measured on the written file with pyloudnorm and the wave module, not taken
from what the pipeline reports.
"""

from __future__ import annotations

import json
import math
import wave
from pathlib import Path

import numpy as np
import pytest

from ivr.config import PromptSettings
from ivr.speech import prompt_audio
from ivr.speech.prompt_audio import PromptAudioError, convert, upload
from tests.support.audio_files import (
    FORMATS,
    encode,
    lufs,
    peak_dbfs,
    read_wav,
    sound_edges,
    speech_file,
    write_wav,
)

LEAD, TAIL = 1.0, 1.5


def wav_format(path: Path) -> tuple[int, int, int, str]:
    with wave.open(str(path), "rb") as wav:
        return wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), wav.getcomptype()


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, float]]:
    """Quiet (-35 LUFS) and loud (peaks at -0.1 dBFS) speech, 44.1 kHz stereo WAV."""
    folder = tmp_path_factory.mktemp("sources")
    quiet = folder / "quiet.wav"
    loud = folder / "loud.wav"
    seconds = speech_file(quiet, loudness=-35.0, lead=LEAD, tail=TAIL)
    speech_file(loud, peak=-0.1, lead=LEAD, tail=TAIL)
    return {"quiet": (quiet, seconds), "loud": (loud, seconds)}


@pytest.mark.parametrize("level", ["quiet", "loud"])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_each_format_ends_at_minus_20_lufs_8khz_mono_16bit_trimmed(
    fmt: str, level: str, sources: dict[str, tuple[Path, float]], tmp_path: Path
) -> None:
    source, speech_seconds = sources[level]
    suffix, options = FORMATS[fmt]
    upload_file = encode(source, tmp_path / f"prompt{suffix}", options)
    before, before_rate = read_wav(source)
    assert (lufs(before, before_rate) < -34) == (level == "quiet")
    assert (peak_dbfs(before) > -0.5) == (level == "loud")
    target = tmp_path / "out.wav"

    result = convert(upload_file, target)

    assert wav_format(target) == (8000, 1, 2, "NONE")
    out, rate = read_wav(target)
    assert rate == 8000 and out.ndim == 1
    measured = lufs(out, rate)
    assert abs(measured - (-20.0)) <= 1.0, f"{fmt} {level}: {measured:.2f} LUFS"
    assert peak_dbfs(out) <= -1.0
    assert abs(result.loudness_after_lufs - measured) < 0.1
    assert abs(result.peak_after_dbfs - peak_dbfs(out)) < 0.05
    # the second of silence before and 1.5 s after are gone, the speech is all there
    lead, tail = sound_edges(out, rate)
    assert lead <= 0.15 and tail <= 0.2, (lead, tail)
    assert speech_seconds - 0.05 <= len(out) / rate <= speech_seconds + 0.25
    assert result.trimmed_start_seconds >= LEAD - 0.2 and result.trimmed_end_seconds >= TAIL - 0.3
    assert abs(result.loudness_before_lufs - lufs(*read_wav(source))) < 1.0
    assert result.source_rate in (44100, 48000) and result.source_channels == 2


def test_a_short_word_is_measured_as_if_repeated(tmp_path: Path) -> None:
    rate = 16000
    t = np.arange(int(0.25 * rate)) / rate
    beep = 0.01 * np.sin(2 * math.pi * 440 * t)
    source = tmp_path / "beep.wav"
    write_wav(source, np.concatenate([np.zeros(rate // 2), beep, np.zeros(rate // 2)]), rate)
    result = convert(source, tmp_path / "out.wav")
    assert result.short_measure
    out, out_rate = read_wav(tmp_path / "out.wav")
    assert 0.4 <= len(out) / out_rate <= 0.5  # 0.25 s of sound and 0.1 s either side
    start, end = sound_edges(out, out_rate)
    sound = out[int(start * out_rate) : len(out) - int(end * out_rate)]
    repeated = np.tile(sound, 4)  # what a 0.25 s sound is measured as
    assert abs(lufs(repeated, out_rate) - (-20.0)) <= 1.0
    assert peak_dbfs(out) <= -1.0


def test_the_limiter_holds_the_peaks_where_the_gain_would_push_them_over(tmp_path: Path) -> None:
    speech, rate = read_wav(_quiet_speech(tmp_path))
    clicky = speech.copy()
    clicky[int(1.2 * rate) :: rate // 2] = 0.5  # single-sample clicks at -6 dBFS
    source = tmp_path / "clicks.wav"
    write_wav(source, clicky, rate)
    result = convert(source, tmp_path / "out.wav")
    out, out_rate = read_wav(tmp_path / "out.wav")
    assert result.limited_db > 3.0
    assert peak_dbfs(out) <= -1.0
    assert abs(lufs(out, out_rate) - (-20.0)) <= 1.0
    assert result.on_target


def test_peaks_the_limiter_may_not_cut_enough_leave_it_quieter_and_say_so(
    tmp_path: Path,
) -> None:
    speech, rate = read_wav(_quiet_speech(tmp_path, loudness=-45.0))
    speech[int(1.5 * rate)] = 0.99  # one click near full scale: 25+ dB of limiting needed
    source = tmp_path / "click.wav"
    write_wav(source, speech, rate)
    result = convert(source, tmp_path / "out.wav")
    out, out_rate = read_wav(tmp_path / "out.wav")
    measured = lufs(out, out_rate)
    assert peak_dbfs(out) <= -1.0
    assert measured < -21.0 and not result.on_target
    assert abs(result.loudness_after_lufs - measured) < 0.1
    assert result.limited_db <= prompt_audio.MAX_LIMITING_DB + 0.01


def test_the_target_follows_the_settings(tmp_path: Path) -> None:
    source = _quiet_speech(tmp_path)
    settings = PromptSettings(loudness_lufs=-16.0, peak_dbfs=-3.0)
    convert(source, tmp_path / "out.wav", settings)
    out, rate = read_wav(tmp_path / "out.wav")
    assert abs(lufs(out, rate) - (-16.0)) <= 1.0
    assert peak_dbfs(out) <= -3.0


def _quiet_speech(folder: Path, loudness: float = -35.0) -> Path:
    path = folder / f"speech{loudness:g}.wav"
    speech_file(path, loudness=loudness, rate=16000, channels=1, lead=0.5, tail=0.5)
    return path


# ------------------------------------------------------------------------- refusals
def _refused(path: Path, *, settings: PromptSettings | None = None) -> str:
    target = path.parent / "refused-out.wav"
    with pytest.raises(PromptAudioError) as caught:
        convert(path, target, settings)
    assert not target.exists()
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    return caught.value.reason


def test_an_unsupported_extension_is_refused(tmp_path: Path) -> None:
    aiff = tmp_path / "intro.aiff"
    encode(_quiet_speech(tmp_path), aiff, [])
    assert _refused(aiff) == (
        "unsupported file type .aiff: upload WAV, MP3, M4A, OGG or FLAC audio"
    )
    bare = tmp_path / "intro"
    bare.write_bytes(aiff.read_bytes())
    assert "unsupported file type (no extension)" in _refused(bare)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    assert _refused(empty) == "the file is empty (0 bytes)"


def test_text_and_images_renamed_to_audio_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("Tervetuloa kyselyyn! Tämä on tekstiä, ei ääntä.\n", encoding="utf-8")
    assert _refused(text) == "not an audio file: it is a text file"
    png = tmp_path / "logo.mp3"
    png.write_bytes(_png())
    assert _refused(png) == "not an audio file: it is a PNG image"


def test_garbage_bytes_are_refused(tmp_path: Path) -> None:
    noise = np.random.default_rng(5).integers(0, 256, 40_000, dtype=np.uint8).tobytes()
    for name in ("garbage.wav", "garbage.mp3", "garbage.ogg", "garbage.m4a"):
        (tmp_path / name).write_bytes(noise)
        assert _refused(tmp_path / name).startswith("not an audio file, or a corrupt one (ffmpeg: ")


@pytest.mark.parametrize(
    ("fmt", "reason"),
    [
        ("wav", "a corrupt audio file: cut short: the header promises"),
        ("mp3", "a corrupt audio file: "),
        ("flac", "a corrupt audio file: "),
        ("ogg-vorbis", "a corrupt audio file: cut short: the last Ogg page is incomplete"),
        ("ogg-opus", "a corrupt audio file: cut short: the last Ogg page is incomplete"),
        ("m4a", "a corrupt or incomplete M4A file (ffmpeg: "),
    ],
)
def test_a_truncated_file_is_refused(
    fmt: str, reason: str, sources: dict[str, tuple[Path, float]], tmp_path: Path
) -> None:
    suffix, options = FORMATS[fmt]
    whole = encode(sources["loud"][0], tmp_path / f"whole{suffix}", options)
    cut = tmp_path / f"cut{suffix}"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2 + 1])
    assert _refused(cut).startswith(reason)
    convert(whole, tmp_path / "whole-out.wav")  # the whole file is fine


def test_damage_inside_a_file_is_refused(
    sources: dict[str, tuple[Path, float]], tmp_path: Path
) -> None:
    suffix, options = FORMATS["flac"]
    flac = encode(sources["loud"][0], tmp_path / f"whole{suffix}", options)
    data = bytearray(flac.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = bytes(2000)
    flac.write_bytes(bytes(data))
    assert _refused(flac).startswith("a corrupt audio file: ffmpeg reports damage (")


def test_silence_is_refused_as_empty(tmp_path: Path) -> None:
    silent = tmp_path / "silent.wav"
    write_wav(silent, np.zeros(16000), 16000)
    assert _refused(silent) == "empty: nothing but silence (digital silence)"
    hiss = tmp_path / "hiss.flac"
    write_wav(tmp_path / "hiss.wav", np.random.default_rng(1).normal(0, 1e-4, 16000), 16000)
    encode(tmp_path / "hiss.wav", hiss, ["-c:a", "flac"])
    assert _refused(hiss).startswith("empty: nothing but silence (peaks at -")


def test_a_click_is_too_short_for_a_prompt(tmp_path: Path) -> None:
    click = np.zeros(16000)
    click[8000:8400] = 0.3  # 25 ms
    path = tmp_path / "click.wav"
    write_wav(path, click, 16000)
    assert _refused(path).startswith("too short: only ")


def test_an_over_long_file_is_refused(tmp_path: Path) -> None:
    source = _quiet_speech(tmp_path)  # about 4 s
    settings = PromptSettings(max_seconds=2.0)
    reason = _refused(source, settings=settings)
    assert reason.startswith("too long: ") and "at most 2 s (prompts.max_seconds)" in reason
    # a stream that does not declare its length is measured while decoding
    raw = tmp_path / "stream.wav"
    data = bytearray(source.read_bytes())
    data[data.index(b"data") + 4 : data.index(b"data") + 8] = b"\xff\xff\xff\xff"
    raw.write_bytes(bytes(data))
    assert _refused(raw, settings=settings).startswith("too long: ")
    convert(raw, tmp_path / "ok.wav")  # under the default 300 s


# ------------------------------------------------------------------------- uploads
def test_upload_keeps_the_original_byte_for_byte_and_writes_the_figures(
    sources: dict[str, tuple[Path, float]], tmp_path: Path
) -> None:
    suffix, options = FORMATS["mp3"]
    source = encode(sources["quiet"][0], tmp_path / f"Kaupungin Tervehdys{suffix}", options)
    original_bytes = source.read_bytes()
    data_dir = tmp_path / "data"
    done = upload(source, data_dir)
    assert done.name == "kaupungin-tervehdys"
    assert done.prompt == data_dir / "prompts" / "uploaded" / "kaupungin-tervehdys.wav"
    assert done.original.parent == data_dir / "prompts" / "originals"
    assert done.original.name == f"{done.sha256}.mp3"
    assert done.original.read_bytes() == original_bytes == source.read_bytes()
    assert wav_format(done.prompt)[:3] == (8000, 1, 2)
    meta = json.loads(done.prompt.with_suffix(".json").read_text(encoding="utf-8"))
    assert meta["original_name"] == "Kaupungin Tervehdys.mp3"
    assert meta["format"] == "mp3" and meta["accepted_as"] == "MP3"
    assert meta["loudness_before_lufs"] < -34 and abs(meta["loudness_after_lufs"] + 20) < 1
    assert meta["peak_after_dbfs"] <= -1.0 and 2.0 < meta["seconds"] < 5.0
    assert meta["original"] == str(done.original) and not meta["replaced"]
    again = upload(source, data_dir, name="kaupungin-tervehdys")
    assert again.replaced and again.original == done.original
    assert [name for name, _, _ in prompt_audio.list_uploads(data_dir)] == ["kaupungin-tervehdys"]


def test_a_refused_upload_leaves_nothing_behind(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    text = tmp_path / "intro.wav"
    text.write_text("hello", encoding="utf-8")
    with pytest.raises(PromptAudioError, match=r"intro\.wav: not an audio file: it is a text"):
        upload(text, data_dir)
    leftovers = [p for p in (data_dir / "prompts").rglob("*") if p.is_file()]
    assert leftovers == []
    assert text.read_text(encoding="utf-8") == "hello"


def test_prompt_names(tmp_path: Path) -> None:
    assert prompt_audio.name_for(Path("Tervetuloa Hämeenlinnaan!.mp3")) == (
        "tervetuloa-hameenlinnaan"
    )
    assert prompt_audio.name_for(Path("Åland_intro (2).wav")) == "aland_intro-2"
    with pytest.raises(ValueError, match="bad prompt name 'Intro'"):
        upload(_quiet_speech(tmp_path), tmp_path / "data", name="Intro")
    with pytest.raises(ValueError, match="give --name"):
        upload(_copy(_quiet_speech(tmp_path), tmp_path / "ääää" / "——.wav"), tmp_path / "data")


def test_list_says_which_metadata_is_broken(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    upload(_quiet_speech(tmp_path), data_dir, name="good")
    folder = prompt_audio.uploads_dir(data_dir)
    (folder / "broken.wav").write_bytes((folder / "good.wav").read_bytes())
    (folder / "broken.json").write_text("{not json", encoding="utf-8")
    found = prompt_audio.list_uploads(data_dir)
    assert [(name, problem.split(":")[0]) for name, _, problem in found] == [
        ("broken", "unreadable metadata broken.json"),
        ("good", ""),
    ]


def _copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes())
    return target


def _png() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x00\x00" * 2)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
