"""Call flows end to end on the real Asterisk: a real softphone calls the call-in line,
simulated residents answer outbound survey calls. Answers land in the database."""

from __future__ import annotations

import asyncio
import contextlib
import time
import wave
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydub import AudioSegment

from ivr.bootstrap import App
from ivr.config import EXAMPLE_FLOWS
from ivr.flows.loader import load_flow
from ivr.flows.model import Flow
from ivr.softphone import accounts
from ivr.store.models import Call
from ivr.telephony import personas as P
from ivr.telephony.service import OutboundCall
from ivr.telephony.simscript import BARGE_IN, plan_steps, prompt_seconds
from tests.support.baresip import Baresip
from tests.support.telephony import ServiceThread

pytestmark = pytest.mark.pbx

SURVEY_ANSWERS = {
    "services": "4",
    "develop-area": "transport",
    "recommend": "yes",
    "age-group": "30-49",
    "contact": "requested",
}


@pytest.fixture(scope="module")
def svc(pbx_instance: tuple[App, dict[str, str]]) -> Iterator[ServiceThread]:
    app, _ = pbx_instance
    if app.pbx().pid() is None:
        app.pbx().start()
    with ServiceThread(app) as thread:
        yield thread


def _flow(svc: ServiceThread, flow_id: str) -> Flow:
    """A flow for outbound calls (campaigns name theirs; here: the example file)."""
    if flow_id not in svc.parts.flows:
        flow = load_flow(EXAMPLE_FLOWS / f"{flow_id}.yaml")
        svc.parts.prompts.prerender(flow)
        svc.parts.flows[flow_id] = flow
    return svc.parts.flows[flow_id]


def _call(svc: ServiceThread, call_id: str) -> Call:
    call = svc.parts.store.call(call_id)
    assert call is not None, f"no call {call_id} in the database"
    return call


def _latest(call: Call) -> dict[str, str]:
    answers: dict[str, str] = {}
    for a in sorted(call.answers, key=lambda a: a.seq):
        answers[a.node_id] = a.value
    return answers


def _speech_wav(path: Path, app: App, seconds: int) -> Path:
    """The English sim answer repeated with pauses: a softphone's voice for ``seconds``."""
    one = AudioSegment.from_wav(app.pbx().root / "sim-audio" / "01.wav")
    silence = AudioSegment.silent(1000, frame_rate=8000)
    audio = AudioSegment.empty()
    while len(audio) < seconds * 1000:
        audio += one + silence
    audio.set_frame_rate(8000).set_channels(1).set_sample_width(2).export(path, format="wav")
    return path


def _place(
    svc: ServiceThread,
    code: int,
    serial: int,
    flow: Flow,
    steps: list[P.Step],
    language: str | None = "fi",
) -> tuple[OutboundCall, str]:
    async def go() -> tuple[OutboundCall, str]:
        out = await svc.service.call(
            P.number_for(code, serial), flow, language, variables=P.script_variables(steps)
        )
        status = await asyncio.wait_for(asyncio.shield(out.done), 240)
        return out, status

    return svc.run(go(), timeout=260)


# ----------------------------------------------------------------- call-in line (softphone)
@pytest.mark.parametrize(("line", "lang_key", "language"), [("100", "1", "fi"), ("101", "2", "sv")])
def test_softphone_completes_the_call_in_survey(
    svc: ServiceThread, tmp_path: Path, line: str, lang_key: str, language: str
) -> None:
    app = svc.app
    flow = svc.service.lines[line].flow
    media = svc.parts.prompts
    account = next(a for a in accounts(app.settings, app.credentials) if a.username == "softphone2")
    voice = _speech_wav(tmp_path / "voice.wav", app, 150)
    before = svc.parts.store.call_ids()
    with Baresip(account.baresip_line(), audio_file=voice, lifetime=150) as phone:
        phone.wait_registered(10)
        phone.dial(line)
        phone.wait_event("CALL_ESTABLISHED", 10)
        # Each key goes in once the flow is at its question (a key during the welcome
        # would be ignored): the test follows the call's progress in the database.
        for node_id, key in (
            ("lang", lang_key),
            ("services", "4"),
            ("develop-area", "3"),
            ("recommend", "1"),
            ("age-group", "2"),
        ):
            _reach(svc, before, node_id)
            phone.send_digits(key, gap=BARGE_IN)  # barge-in on the question
        _reach(svc, before, "develop-open")
        time.sleep(prompt_seconds(media, flow, "develop-open", language) + 1.5)
        time.sleep(4.0)  # speak into the recording
        phone.send_digits("#")  # ...and end it
        _reach(svc, before, "contact")
        phone.send_digits("1122", gap=BARGE_IN)  # consent, phone, afternoon, Arabic
        phone.wait_event("CALL_CLOSED", 60)
    call_id = svc.run(_wait_for_new_call(svc, before))
    call = _call(svc, call_id)
    assert call.status.value == "completed", (call.status, _latest(call))
    assert call.direction.value == "inbound" and call.line_number == line
    assert call.remote_number == "softphone2"
    assert call.language == language
    answers = _latest(call)
    assert answers["lang"] == language
    for node_id, value in SURVEY_ANSWERS.items():
        assert answers[node_id] == value, (node_id, answers)
    assert {a.language for a in call.answers if a.node_id != "lang"} == {language}
    (recording,) = call.recordings
    assert recording.node_id == "develop-open"
    path = Path(recording.path)
    assert path.exists()
    assert 2.0 <= recording.duration_seconds <= 8.0, recording.duration_seconds
    with wave.open(str(path)) as wav:
        assert wav.getframerate() == 8000
    audio = AudioSegment.from_wav(path)
    assert max(chunk.dBFS for chunk in audio[::250]) > -30, "the recording holds no speech"
    (request,) = call.callback_requests
    assert (request.channel.value, request.time_window, request.interpreter_language) == (
        "phone",
        "afternoon",
        "ar",
    )
    assert request.consent_version == flow.nodes["contact"].consent_version
    assert request.phone_number == "softphone2" and request.language == language


def _new_call_id(svc: ServiceThread, before: set[str]) -> str | None:
    """The call made since ``before`` (the ids then): by id, not by start time, as the
    tests move the clock back and forth."""
    new = svc.parts.store.call_ids() - before
    assert len(new) <= 1, new
    return next(iter(new), None)


async def _wait_for_new_call(svc: ServiceThread, before: set[str]) -> str:
    for _ in range(100):
        newest = _new_call_id(svc, before)
        if newest:
            call = svc.parts.store.call(newest)
            if call is not None and call.status.value != "active":
                return newest
        await asyncio.sleep(0.1)
    raise AssertionError("the call did not end in the database")


# ----------------------------------------------------------------- outbound (simulated)
FULL_SURVEY = [
    ("intro", ""),
    ("lang", "1"),
    ("how-to", ""),
    ("services", "4"),
    ("develop-area", "3"),
    ("recommend", "1"),
    ("age-group", "2"),
    ("develop-open", "speak"),
    ("contact", "1123"),
]


def test_simulated_resident_completes_the_outbound_survey(svc: ServiceThread) -> None:
    flow = _flow(svc, "strategy-survey")
    steps = plan_steps(svc.parts.prompts, flow, FULL_SURVEY, "fi")
    out, status = _place(svc, 901, 1, flow, steps)
    assert status == "completed"
    call = _call(svc, out.call_id)
    assert call.status.value == "completed" and call.remote_number == out.number
    assert call.answered_at is not None and call.ended_at is not None
    answers = _latest(call)
    for node_id, value in SURVEY_ANSWERS.items():
        assert answers[node_id] == value, (node_id, answers)
    (recording,) = call.recordings
    spoken = AudioSegment.from_wav(svc.app.pbx().root / "sim-audio" / "01.wav")
    assert recording.duration_seconds >= len(spoken) / 1000 - 1.0
    assert max(c.dBFS for c in AudioSegment.from_wav(recording.path)[::250]) > -30
    (request,) = call.callback_requests
    assert request.phone_number == out.number and request.channel.value == "phone"


def test_hang_up_midway_keeps_the_answers_given(svc: ServiceThread) -> None:
    flow = _flow(svc, "strategy-survey")
    plan = [
        ("intro", ""),
        ("lang", "2"),
        ("how-to", ""),
        ("services", "5"),
        ("develop-area", "hangup"),
    ]
    out, status = _place(svc, 901, 2, flow, plan_steps(svc.parts.prompts, flow, plan, "fi"))
    assert status == "partial"
    call = _call(svc, out.call_id)
    assert call.status.value == "partial"
    assert call.last_node_id == "develop-area"
    assert _latest(call) == {"lang": "sv", "services": "5"}
    assert call.language == "sv"


def test_opt_out_key_puts_the_number_on_the_do_not_call_list(svc: ServiceThread) -> None:
    flow = _flow(svc, "strategy-survey")
    plan = [("intro", ""), ("lang", "1"), ("how-to", ""), ("services", "0")]
    out, status = _place(svc, 901, 3, flow, plan_steps(svc.parts.prompts, flow, plan, "fi"))
    assert status == "opted_out"
    call = _call(svc, out.call_id)
    assert call.status.value == "opted_out"
    assert svc.parts.store.is_opted_out(out.number)
    assert not svc.parts.store.is_opted_out(P.number_for(901, 4))


def test_unanswered_outbound_call_is_recorded_with_its_outcome(svc: ServiceThread) -> None:
    flow = _flow(svc, "strategy-survey")

    async def go() -> tuple[OutboundCall, str]:
        out = await svc.service.call(P.number_for(302, 5), flow, "fi")
        return out, await asyncio.wait_for(asyncio.shield(out.done), 30)

    out, status = svc.run(go())
    assert status == "busy"
    call = _call(svc, out.call_id)
    assert call.status.value == "busy" and call.hangup_cause == 17
    assert call.answers == [] and call.answered_at is None


# ----------------------------------------------------------------- the housing line (102)
MONDAY_10 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # 10:00 in Helsinki: the desk is open
SUNDAY_10 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def _phone(app: App, name: str, answermode: str = "manual") -> str:
    account = next(a for a in accounts(app.settings, app.credentials) if a.username == name)
    return account.baresip_line(answermode=answermode)


@contextlib.contextmanager
def _clock(svc: ServiceThread, when: datetime) -> Iterator[None]:
    svc.set_time(when)
    try:
        yield
    finally:
        svc.set_time(None)


def _reach(svc: ServiceThread, calls_before: set[str], node_id: str, timeout: float = 30) -> None:
    """Wait until the newest call is at ``node_id`` (its question is being asked)."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        newest = _new_call_id(svc, calls_before)
        if newest:
            call = svc.parts.store.call(newest) if newest else None
            seen = call.last_node_id if call is not None else None
            if seen == node_id:
                return
        time.sleep(0.1)
    raise AssertionError(f"the call did not reach {node_id!r} (it is at {seen!r})")


def _run_housing(svc: ServiceThread, caller: Baresip, plan: list[tuple[str, str]]) -> None:
    """Dial the housing line from a softphone and walk ``plan`` (node, keys): each key goes
    in when the call is at that node; say nodes are listened to."""
    flow = svc.service.lines["102"].flow
    before = svc.parts.store.call_ids()
    caller.dial("102")
    caller.wait_event("CALL_ESTABLISHED", 10)
    for node_id, keys in plan:
        if flow.nodes[node_id].kind != "say":
            _reach(svc, before, node_id)
            caller.send_digits(keys, gap=BARGE_IN)


def test_anonymous_housing_line_keeps_no_number_but_the_callback_does(
    svc: ServiceThread,
) -> None:
    with _clock(svc, SUNDAY_10), Baresip(_phone(svc.app, "softphone3"), lifetime=120) as caller:
        caller.wait_registered(10)
        before = svc.parts.store.call_ids()
        _run_housing(
            svc,
            caller,
            [
                ("lang", "1"),
                ("menu", "3"),
                ("homeless-advice", ""),
                ("next-steps", "2"),
                ("contact", "112"),
            ],
        )
        caller.wait_event("CALL_CLOSED", 40)
        call = _call(svc, svc.run(_wait_for_new_call(svc, before)))
    assert call.status.value == "completed"
    assert call.remote_number is None and call.line_number == "102"
    assert _latest(call) == {
        "lang": "fi",
        "menu": "homeless_now",
        "next-steps": "callback",
        "contact": "requested",
    }
    (request,) = call.callback_requests
    assert request.phone_number == "softphone3"  # given with consent, for the call back
    assert (request.time_window, request.interpreter_language) == ("morning", "ar")


def test_housing_line_transfers_to_a_person_in_opening_hours(svc: ServiceThread) -> None:
    app = svc.app
    with (
        _clock(svc, MONDAY_10),
        Baresip(_phone(app, "softphone1", answermode="auto"), lifetime=120) as agent,
        Baresip(_phone(app, "softphone3"), lifetime=120) as caller,
    ):
        agent.wait_registered(10)
        caller.wait_registered(10)
        before = svc.parts.store.call_ids()
        _run_housing(
            svc, caller, [("lang", "1"), ("menu", "1"), ("rent-advice", ""), ("next-steps", "1")]
        )
        agent.wait_event("CALL_ESTABLISHED", 40)  # the advisor's phone answered
        call_id = svc.run(_wait_for_new_call(svc, before))
        assert _call(svc, call_id).status.value == "transferred"
        caller.hangup()  # the resident hangs up: the advisor's leg ends too
        agent.wait_event("CALL_CLOSED", 15)
    call = _call(svc, call_id)
    assert _latest(call) == {"lang": "fi", "menu": "rent_arrears", "next-steps": "talk"}


def test_a_transfer_ringing_when_the_caller_hangs_up_leaves_nothing_behind(
    svc: ServiceThread,
) -> None:
    """The advisor's phone rings (it does not answer); the resident hangs up: the advisor's
    leg is hung up too, and no channel or bridge is left in Asterisk."""
    app = svc.app
    with (
        _clock(svc, MONDAY_10 + timedelta(hours=1)),  # later than the other tests' calls
        Baresip(_phone(app, "softphone1", answermode="manual"), lifetime=120) as agent,
        Baresip(_phone(app, "softphone3"), lifetime=120) as caller,
    ):
        agent.wait_registered(10)
        caller.wait_registered(10)
        _run_housing(
            svc, caller, [("lang", "1"), ("menu", "1"), ("rent-advice", ""), ("next-steps", "1")]
        )
        agent.wait_event("CALL_INCOMING", 40)  # ringing, not answered
        caller.hangup()
        agent.wait_event("CALL_CLOSED", 15)  # its leg was hung up with the caller's

        async def leftovers() -> tuple[list[Any], list[Any]]:
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                channels = await svc.service.ari.request("GET", "/channels")
                bridges = await svc.service.ari.request("GET", "/bridges")
                if (not channels and not bridges) or asyncio.get_running_loop().time() > deadline:
                    return channels, bridges
                await asyncio.sleep(0.2)

        channels, bridges = svc.run(leftovers())
    assert channels == [] and bridges == [], (channels, bridges)


def test_housing_desk_closed_offers_a_callback_instead(svc: ServiceThread) -> None:
    with _clock(svc, SUNDAY_10), Baresip(_phone(svc.app, "softphone3"), lifetime=120) as caller:
        caller.wait_registered(10)
        before = svc.parts.store.call_ids()
        _run_housing(
            svc,
            caller,
            [
                ("lang", "1"),
                ("menu", "2"),
                ("search-advice", ""),
                ("next-steps", "1"),
                ("desk-closed", ""),
                ("contact", "2"),
            ],
        )
        caller.wait_event("CALL_CLOSED", 40)
        call = _call(svc, svc.run(_wait_for_new_call(svc, before)))
    answers = _latest(call)
    assert answers["next-steps"] == "talk" and answers["contact"] == "declined"
    assert call.callback_requests == [] and call.status.value == "completed"
