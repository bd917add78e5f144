"""A flow's prompts in the browser: recorded or synthetic per language, uploading a recording
(real audio made with sox, through the project's conversion pipeline), playing it back, a
refused upload with its reason, and the preview that plays every prompt as the caller will
hear it (real audio rendered by the project's prompt pipeline)."""

from __future__ import annotations

import html
import io
import json
import os
import stat
import wave
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ivr.flows.library import prompt_prefix
from ivr.flows.loader import parse_flow
from ivr.speech import prompt_audio
from ivr.store.org_models import AuditEntry
from tests.web.test_flows_access import BASE, FlowSite, fsite, post, text, tone, unique

__all__ = ["fsite"]

FLOW = """\
# Written by hand: this comment stays when a recording is uploaded.
id: {key}
name: Äänikysely
version: "1"
languages: [fi, sv]
start: hello
nodes:
  hello:
    kind: say
    prompt:
      fi: Hei {key}!   # the greeting
      sv: Hej {key}!
    next: bye
  bye:
    kind: end
    prompt:
      fi: Kiitos.
      sv: Tack.
"""
WHERE = "nodes.hello.prompt"


def make_flow(fsite: FlowSite) -> tuple[str, str]:
    """A new flow of A (its texts unique: never rendered before); its id and address."""
    key = unique("aani")
    made = fsite.services.flows.create(fsite.actor("A", "manager"), FLOW.format(key=key))
    return made.id, f"/o/{fsite.orgs['A']}/flows/{made.id}"


def upload(client: FlaskClient, url: str, file: Path, name: str | None = None) -> TestResponse:
    return post(
        client,
        f"{url}/prompts/{WHERE}/fi",
        {"file": (io.BytesIO(file.read_bytes()), name or file.name)},
        content_type="multipart/form-data",
    )


def wav_format(data: bytes) -> tuple[int, int, int, float]:
    with wave.open(io.BytesIO(data)) as audio:
        frames, rate = audio.getnframes(), audio.getframerate()
        return rate, audio.getnchannels(), audio.getsampwidth(), frames / rate


def test_an_uploaded_recording_plays_back_and_the_list_says_recorded(
    fsite: FlowSite, tmp_path: Path
) -> None:
    flow_id, url = make_flow(fsite)
    client = fsite.client("A", "manager")
    before = html.unescape(text(client.get(f"{url}/prompts", base_url=BASE)))
    assert before.count("Synthetic speech") == 4 and "Recorded" not in before
    response = upload(client, url, tone(tmp_path, "Tervehdys kunnalta.wav"))
    assert response.status_code == 302
    page = html.unescape(text(client.get(response.headers["Location"], base_url=BASE)))
    assert "The recording was converted and saved." in page
    assert "Tervehdys_kunnalta.wav" in page and "LUFS" in page
    listed = html.unescape(text(fsite.client("A", "reviewer").get(f"{url}/prompts", base_url=BASE)))
    assert listed.count("Synthetic speech") == 3
    assert listed.count('<span class="status status-recorded">Recorded</span>') == 1
    audio_url = f"{url}/prompts/{WHERE}/fi/recording.wav"
    assert f'src="{audio_url}"' in listed
    played = fsite.client("A", "reviewer").get(audio_url, base_url=BASE)
    assert played.status_code == 200 and played.mimetype == "audio/wav"
    assert played.data[:4] == b"RIFF" and played.data[8:12] == b"WAVE"
    rate, channels, width, seconds = wav_format(played.data)
    assert (rate, channels, width) == (8000, 1, 2) and 1.0 < seconds < 2.0
    # The flow now names the organisation's own prompt; the author's comments are kept.
    record = fsite.services.flows.get(fsite.actor("A", "reviewer"), flow_id)
    prompt = parse_flow(record.yaml).nodes["hello"].prompt
    assert prompt is not None
    name = prompt.upload["fi"]
    assert name.startswith(prompt_prefix(fsite.orgs["A"])) and "sv" not in prompt.upload
    assert "# Written by hand" in record.yaml and "# the greeting" in record.yaml
    uploaded = prompt_audio.uploads_dir(fsite.services.settings.data_dir) / f"{name}.wav"
    assert uploaded.read_bytes() == played.data
    with fsite.services.factory() as s:
        entry = s.scalars(
            sa.select(AuditEntry).where(
                AuditEntry.target_id == flow_id, AuditEntry.action == "prompt.upload"
            )
        ).one()
    detail = json.loads(entry.detail)
    assert detail["prompt"] == name and detail["path"] == WHERE and detail["language"] == "fi"
    assert entry.actor == fsite.who("A", "manager").email
    # Another organisation's people cannot play it.
    other = fsite.client("B", "admin")
    assert other.get(audio_url, base_url=BASE).status_code == 404
    own_org = f"/o/{fsite.orgs['B']}/flows/{flow_id}/prompts/{WHERE}/fi/recording.wav"
    assert other.get(own_org, base_url=BASE).status_code == 404


def test_an_ogg_recording_is_accepted_and_a_new_upload_gets_a_new_name(
    fsite: FlowSite, tmp_path: Path
) -> None:
    flow_id, url = make_flow(fsite)
    client = fsite.client("A", "manager")
    assert upload(client, url, tone(tmp_path, "first.wav")).status_code == 302
    reader = fsite.actor("A", "reviewer")
    first = parse_flow(fsite.services.flows.get(reader, flow_id).yaml).nodes["hello"].prompt
    response = upload(client, url, tone(tmp_path, "second.ogg", seconds=2.5))
    assert response.status_code == 302
    second = parse_flow(fsite.services.flows.get(reader, flow_id).yaml).nodes["hello"].prompt
    assert first is not None and second is not None
    assert second.upload["fi"] != first.upload["fi"]
    uploads = prompt_audio.uploads_dir(fsite.services.settings.data_dir)
    # The earlier recording stays: a running campaign started with it keeps playing it.
    assert (uploads / f"{first.upload['fi']}.wav").is_file()
    figures = json.loads((uploads / f"{second.upload['fi']}.json").read_text())
    assert figures["format"] == "ogg/vorbis" and figures["original_name"] == "second.ogg"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("puhe.wav", b"hello, this is not audio\n", "not an audio file: it is a text file"),
        ("puhe.txt", b"RIFF....WAVE", "unsupported file type .txt: upload WAV, MP3, M4A, OGG"),
        ("tyhja.mp3", b"", "the file is empty (0 bytes)"),
    ],
    ids=["text-named-wav", "txt-file", "empty-mp3"],
)
def test_a_file_that_cannot_be_a_prompt_is_refused_with_the_reason(
    fsite: FlowSite, tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    flow_id, url = make_flow(fsite)
    file = tmp_path / name
    file.write_bytes(data)
    response = upload(fsite.client("A", "manager"), url, file)
    assert response.status_code == 400
    page = html.unescape(text(response))
    assert f"The recording {name} cannot be used: {reason}" in page
    record = fsite.services.flows.get(fsite.actor("A", "reviewer"), flow_id)
    assert "upload:" not in record.yaml


def test_a_reviewer_cannot_upload(fsite: FlowSite, tmp_path: Path) -> None:
    _flow_id, url = make_flow(fsite)
    response = upload(fsite.client("A", "reviewer"), url, tone(tmp_path))
    assert response.status_code == 403
    page = text(fsite.client("A", "reviewer").get(f"{url}/prompts/{WHERE}/fi", base_url=BASE))
    assert 'type="file"' not in page


def test_the_preview_plays_each_prompt_as_the_caller_hears_it(
    fsite: FlowSite, tmp_path: Path
) -> None:
    flow_id, url = make_flow(fsite)
    client = fsite.client("A", "manager")
    assert upload(client, url, tone(tmp_path)).status_code == 302
    page = client.get(f"{url}/preview", base_url=BASE)
    assert page.status_code == 200
    body = html.unescape(text(page))
    sources = [f"{url}/preview/{path}/{lang}.wav" for path in (WHERE, "nodes.bye.prompt")
               for lang in ("fi", "sv")]  # fmt: skip
    for source in sources:
        assert f'src="{source}"' in body
        audio = client.get(source, base_url=BASE)
        assert audio.status_code == 200 and audio.mimetype == "audio/wav"
        rate, channels, width, seconds = wav_format(audio.data)
        assert (rate, channels, width) == (8000, 1, 2) and seconds > 0.3
    assert "Synthetic speech (espeak-ng" in body and body.count(">Recorded<") == 1
    # The recorded prompt is the uploaded recording itself; the rest is speech synthesis.
    recording = client.get(f"{url}/prompts/{WHERE}/fi/recording.wav", base_url=BASE).data
    assert client.get(sources[0], base_url=BASE).data == recording
    assert client.get(sources[1], base_url=BASE).data != recording
    cache = fsite.services.settings.prompt_cache_dir
    assert any(cache.glob("*.wav"))


def test_a_preview_that_takes_too_long_shows_an_error(
    fsite: FlowSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _flow_id, url = make_flow(fsite)  # new texts: nothing in the cache yet
    hang = tmp_path / "espeak-ng"
    hang.write_text("#!/bin/sh\nexec sleep 600\n")
    hang.chmod(hang.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(fsite.services.flows, "render_timeout", 5.0)
    page = fsite.client("A", "reviewer").get(f"{url}/preview", base_url=BASE)
    assert page.status_code == 503
    body = html.unescape(text(page))
    assert "The preview could not be made: rendering the prompts took longer than 5 seconds" in body
    assert "Try again" in body


def test_the_editor_keeps_an_uploaded_recording(fsite: FlowSite, tmp_path: Path) -> None:
    from tests.web.test_flows_editor import form_of, press

    flow_id, url = make_flow(fsite)
    client = fsite.client("A", "manager")
    assert upload(client, url, tone(tmp_path)).status_code == 302
    page = text(client.get(f"{url}/edit", base_url=BASE))
    form = form_of(page)
    name = form["steps-0-upload-fi"]
    assert name.startswith(prompt_prefix(fsite.orgs["A"]))
    assert "The caller hears the uploaded recording" in html.unescape(page)
    form["steps-0-text-sv"] = "Hej och välkommen!"
    status, _page, _form = press(fsite, client, f"{url}/edit", form, "save")
    assert status == 200
    saved = fsite.services.flows.get(fsite.actor("A", "reviewer"), flow_id)
    prompt = parse_flow(saved.yaml).nodes["hello"].prompt
    assert prompt is not None and prompt.upload == {"fi": name}
    assert prompt.text["sv"] == "Hej och välkommen!"
    # A name from another organisation typed into the form is refused, beside the field.
    form["steps-0-upload-fi"] = prompt_prefix(fsite.orgs["B"]) + "hello-fi-0123456789"
    form["revision"] = saved.revision
    status, page, _form = press(fsite, client, f"{url}/edit", form, "save")
    assert status == 400
    assert "is not one of this organisation's uploaded prompts" in html.unescape(page)
