"""Inbound lines kept in the database, on the real Asterisk with a real softphone: a line an
admin adds (``LineAdmin``, as the web page does) is answered by its flow while the telephony
worker runs, without restarting anything; a line taken out of use, or a number nobody
configured, is refused as unallocated (SIP 404); an anonymous line stores no caller number."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from ivr.accounts.audit import Actor
from ivr.bootstrap import App
from ivr.config import EXAMPLE_FLOWS
from ivr.services import Services
from ivr.softphone import accounts
from ivr.store.models import Call
from ivr.store.org_models import FlowDoc
from ivr.telephony.line_admin import LineChange
from ivr.telephony.simscript import BARGE_IN
from tests.support.baresip import Baresip
from tests.support.telephony import ServiceThread

pytestmark = pytest.mark.pbx

SURVEY = (EXAMPLE_FLOWS / "survey-call-in.yaml").read_text(encoding="utf-8")
SURVEY_ID = "strategy-survey-call-in"  # the flow's own id (calls record it)


@pytest.fixture(scope="module")
def svc(pbx_instance: tuple[App, dict[str, str]]) -> Iterator[ServiceThread]:
    app, _ = pbx_instance
    if app.pbx().pid() is None:
        app.pbx().start()
    with ServiceThread(app) as thread:
        yield thread


@pytest.fixture(scope="module")
def staff(svc: ServiceThread) -> Iterator[tuple[Services, Actor, str]]:
    """The staff services, an organisation's admin (the command line) and its survey flow
    in the ``flows`` table."""
    services = svc.app.services()
    org = services.accounts.add_org(Actor.cli(), "Deltala")
    with services.factory.begin() as s:
        doc = FlowDoc(org_id=org.id, name="kysely", yaml=SURVEY, updated_by="test")
        s.add(doc)
        s.flush()
        flow_id = doc.id
    try:
        yield services, Actor.cli(org.id), flow_id
    finally:
        services.close()


def _phone(app: App, name: str) -> str:
    account = next(a for a in accounts(app.settings, app.credentials) if a.username == name)
    return account.baresip_line()


def _picked_up(svc: ServiceThread) -> None:
    """Wait for the worker's next pass over the database (it began after this call)."""
    directory = svc.parts.directory
    assert directory is not None
    svc.run(directory.refreshed(10), timeout=15)


def _new_call(svc: ServiceThread, before: set[str], timeout: float = 20) -> Call:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = svc.parts.store.call_ids() - before
        assert len(new) <= 1, new
        if new:
            call = svc.parts.store.call(next(iter(new)))
            if call is not None:
                return call
        time.sleep(0.1)
    raise AssertionError("no call was stored")


def _reach(svc: ServiceThread, call_id: str, node_id: str, timeout: float = 30) -> Call:
    """Wait until the call is at ``node_id`` (its question is being asked)."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        call = svc.parts.store.call(call_id)
        seen = call.last_node_id if call is not None else None
        if call is not None and seen == node_id:
            return call
        time.sleep(0.1)
    raise AssertionError(f"the call did not reach {node_id!r} (it is at {seen!r})")


def _ended(svc: ServiceThread, call_id: str, timeout: float = 20) -> Call:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        call = svc.parts.store.call(call_id)
        if call is not None and call.status.value != "active":
            return call
        time.sleep(0.1)
    raise AssertionError(f"the call {call_id} did not end in the database")


def _answers(call: Call) -> dict[str, str]:
    return {a.node_id: a.value for a in sorted(call.answers, key=lambda a: a.seq)}


def _refused(svc: ServiceThread, number: str) -> None:
    """A call to ``number`` is refused as unallocated (SIP 404), and nothing is stored."""
    before = svc.parts.store.call_ids()
    with Baresip(_phone(svc.app, "softphone2"), lifetime=60) as phone:
        phone.wait_registered(10)
        phone.dial(number)
        closed = phone.wait_event("CALL_CLOSED", 15, fail_on=("CALL_ESTABLISHED",))
    assert str(closed.get("param", "")).startswith("404"), closed
    assert svc.parts.store.call_ids() == before


def test_a_line_added_at_run_time_is_answered_by_its_flow_then_refused_once_disabled(
    svc: ServiceThread, staff: tuple[Services, Actor, str]
) -> None:
    services, admin, flow_id = staff
    number = "0301234567"
    assert number not in svc.service.lines
    _refused(svc, number)  # not a line yet: Asterisk routes it in, the worker refuses it

    line = services.lines.create(admin, LineChange(number, flow_id, "sv"))
    _picked_up(svc)
    assert svc.service.lines[number].flow.id == SURVEY_ID

    before = svc.parts.store.call_ids()
    with Baresip(_phone(svc.app, "softphone2"), lifetime=90) as phone:
        phone.wait_registered(10)
        phone.dial(number)
        phone.wait_event("CALL_ESTABLISHED", 10)
        call = _new_call(svc, before)
        _reach(svc, call.id, "lang")
        phone.send_digits("2", gap=BARGE_IN)  # på svenska
        _reach(svc, call.id, "services")
        phone.send_digits("4", gap=BARGE_IN)
        _reach(svc, call.id, "develop-area")
        phone.hangup()
        phone.wait_event("CALL_CLOSED", 10)
    call = _ended(svc, call.id)
    assert call.direction.value == "inbound" and call.line_number == number
    assert call.flow_id == SURVEY_ID and call.language == "sv"
    assert call.remote_number == "softphone2"  # a line that is not anonymous keeps it
    assert _answers(call) == {"lang": "sv", "services": "4"}

    services.lines.update(admin, line.id, LineChange(number, flow_id, "sv", enabled=False))
    _picked_up(svc)
    assert number not in svc.service.lines
    _refused(svc, number)
    assert "100" in svc.service.lines  # the config file's lines are untouched


def test_an_anonymous_line_stores_no_caller_number(
    svc: ServiceThread, staff: tuple[Services, Actor, str]
) -> None:
    services, admin, flow_id = staff
    number = "+358301234568"
    services.lines.create(admin, LineChange(number, flow_id, anonymous=True))
    _picked_up(svc)
    assert not svc.service.lines[number].flow.anonymous  # the line, not the flow, says so

    before = svc.parts.store.call_ids()
    with Baresip(_phone(svc.app, "softphone3"), lifetime=90) as phone:
        phone.wait_registered(10)
        phone.dial(number)
        phone.wait_event("CALL_ESTABLISHED", 10)
        call = _new_call(svc, before)
        _reach(svc, call.id, "lang")
        phone.send_digits("1", gap=BARGE_IN)
        _reach(svc, call.id, "services")
        phone.hangup()
        phone.wait_event("CALL_CLOSED", 10)
    call = _ended(svc, call.id)
    assert call.line_number == number and call.flow_id == SURVEY_ID
    assert call.remote_number is None
    assert _answers(call) == {"lang": "fi"}
