"""Faults during calls, against the real Asterisk: no dead air, nothing left active, and a
reconnect never touches a call that is being set up."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ivr.accounts.audit import Actor
from ivr.bootstrap import App
from ivr.campaigns.admin import CampaignSettings
from ivr.flows import engine as fe
from ivr.flows.loader import load_flow
from ivr.flows.model import Flow
from ivr.outcome import Outcome
from ivr.store.db import make_engine
from ivr.store.models import Attempt, AttemptState, Call
from ivr.telephony.ari import AriError, AriEvent
from ivr.telephony.personas import number_for
from ivr.telephony.service import OutboundCall
from tests.support.instance import start_or_fail
from tests.support.telephony import ServiceThread

pytestmark = pytest.mark.pbx

FLOW = Path(__file__).parent / "flows" / "mini-survey.yaml"
OPEN_FLOW = Path(__file__).parent / "flows" / "open-answer-en.yaml"  # starts recording
HELSINKI = ZoneInfo("Europe/Helsinki")


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _call_row(app: App, call_id: str) -> Call:
    engine = make_engine(app.settings.database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.select(Call.__table__).where(Call.id == call_id)).one()
    finally:
        engine.dispose()
    return row  # type: ignore[return-value]


def _sqlite(app: App, statement: str) -> None:
    """Run ``statement`` on the instance's SQLite database from another process."""
    database = make_url(app.settings.database_url).database
    assert database, app.settings.database_url
    code = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=30); "
        "c.execute(sys.argv[2]); c.commit()"
    )
    subprocess.run([sys.executable, "-c", code, database, statement], check=True, timeout=60)


def _outcome(svc: ServiceThread, out: OutboundCall, timeout: float) -> str:
    return svc.run(asyncio.wait_for(asyncio.shield(out.done), timeout), timeout + 5)


def test_a_database_write_that_fails_mid_call_ends_it_with_an_apology(pbx_app: App) -> None:
    app = pbx_app
    flow = load_flow(FLOW)
    finished: list[dict[str, Any]] = []
    with ServiceThread(app) as svc:
        svc.service.ari.add_listener(
            lambda e: finished.append(e.data["playback"]) if e.type == "PlaybackFinished" else None
        )
        # Another process takes the answers table away: the resident's key press (persona
        # 701 keys 1) cannot be stored.
        _sqlite(app, "ALTER TABLE answers RENAME TO answers_away")
        try:
            out = svc.run(svc.service.call(number_for(701, 1), flow, "fi"))
            status = _outcome(svc, out, 60)
        finally:
            _sqlite(app, "ALTER TABLE answers_away RENAME TO answers")
        channels = svc.run(svc.service.ari.request("GET", "/channels"))
    assert status == "failed"
    row = _call_row(app, out.call_id)
    assert row.status == "failed" and row.ended_at is not None
    assert "database" in row.end_reason and "answers" in row.end_reason, row.end_reason
    # The resident heard the apology to its end (Asterisk says so), then the line closed.
    apology = [p for p in finished if p["id"] == f"{out.call_id}-apology"]
    assert apology and apology[0]["state"] == "done", finished
    assert out.channel_id not in {c["id"] for c in channels}


def test_asterisk_killed_mid_prompt_leaves_no_call_active(pbx_app: App) -> None:
    app = pbx_app
    flow = load_flow(FLOW)
    try:
        with ServiceThread(app) as svc:
            out = svc.run(svc.service.call(number_for(100, 3), flow, "fi"))  # stays on the line
            _until(lambda: out.answered_at is not None, 20, "the answer")
            pid = app.pbx().pid()
            assert pid is not None
            os.killpg(pid, signal.SIGKILL)  # mid-prompt: q1 is playing
            status = _outcome(svc, out, svc.service.OUTAGE_GRACE + 20)
        row = _call_row(app, out.call_id)
    finally:
        app.pbx().stop()
        start_or_fail(app)
    assert status == "interrupted"
    assert row.status == "interrupted" and row.ended_at is not None
    assert row.end_reason, "the reason is stored"


def test_a_reconnect_never_touches_calls_being_set_up(pbx_app: App) -> None:
    """The ARI connection drops and comes back again and again; right after each reconnect,
    while its reconcile runs (snapshot, grace, judgement), new calls are placed and
    answered: every one of them runs to its end. (A call answered *during* the gap cannot
    enter Stasis, as no application is registered then: Asterisk ends it, and reconcile
    records it interrupted; that is not what this test is about.)"""
    app = pbx_app
    flow = load_flow(FLOW)
    reconnects: list[AriEvent] = []
    with ServiceThread(app) as svc:
        ari = svc.service.ari
        ari.add_listener(
            lambda e: (
                reconnects.append(e)
                if e.type == "IvrAriConnected" and e.data.get("reconnect")
                else None
            )
        )

        async def drop_connection() -> None:
            ws = ari._ws
            assert ws is not None, "REST over the websocket: the socket is there to close"
            await ws.close()

        during: list[OutboundCall] = []
        for round_ in range(4):
            before = len(reconnects)
            svc.run(drop_connection())
            _until(lambda b=before: len(reconnects) > b, 15, "the reconnect")
            for n in range(3):  # placed while the reconcile of this reconnect runs
                number = number_for(701, 100 + 3 * round_ + n)
                during.append(svc.run(svc.service.call(number, flow, "fi")))
            _until(lambda: svc.service.reconciled.is_set(), 15, "the reconcile")
            # Answered before the next drop: a call answered in the gap is Asterisk's loss.
            _until(lambda: all(o.answered_at or o.done.done() for o in during), 15, "answers")
        statuses = [_outcome(svc, out, 60) for out in during]
    assert len(reconnects) >= 4
    assert statuses == ["completed"] * len(during), [(o.detail, o.answered_at) for o in during]
    for out in during:
        row = _call_row(app, out.call_id)
        assert row.status == "completed" and row.end_reason is None, (out.call_id, row.status)
        assert row.hangup_cause == 16, row.hangup_cause  # Q.850 normal clearing, stored


def _recording_name(flow: Flow, call_id: str) -> str:
    """The name the session gives the recording of the flow's first node (an open question)
    once its prompt has played: ``<call id>-<node>-<token>``, the token from the engine."""
    now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # decides nothing in this flow
    state, _ = fe.step(flow, fe.initial_state(flow), fe.Answered(), now)
    _, actions = fe.step(flow, state, fe.PromptDone(state.token), now)
    [record] = [a for a in actions if isinstance(a, fe.Record)]
    return f"{call_id}-{record.node_id}-{record.token}"


def test_a_request_asterisk_refuses_mid_call_ends_it_with_an_apology_and_a_retry(
    pbx_app: App, tmp_path: Path
) -> None:
    """Asterisk itself answers a request of the running session with a 4xx: the recording
    of the open answer is refused (409) because a recording of that name is in progress
    (Asterisk refuses that whatever ``ifExists`` says). Another ARI user holds the name by
    recording a bridge under it, so the refusal is Asterisk's own, on the real call path
    of a campaign: the resident hears the apology, the call ends ``failed`` with the
    refused request and its status stored, no channel is left, and the attempt is retried
    by the rules."""
    app = pbx_app
    admin = app.campaigns()
    staff = Actor.cli(None)  # as `ivr campaign` does
    campaign = admin.create(
        staff,
        f"refused-{uuid.uuid4().hex[:8]}",
        OPEN_FLOW,
        CampaignSettings(
            windows="mon-sun 00:00-24:00",  # whatever today is, the call is in a window
            allow_holidays=True,
            default_language="en",
            retry_failed_minutes=45,
        ),
    )
    phone = number_for(100, 5000 + uuid.uuid4().int % 4000)  # answers, stays on the line
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(f"puhelin;kieli\n{phone};en\n", encoding="utf-8")
    assert admin.import_contacts(staff, campaign.id, contacts)["accepted"] == 1
    finished: list[dict[str, Any]] = []
    with ServiceThread(app) as svc:
        ari = svc.service.ari
        ari.add_listener(
            lambda e: finished.append(e.data["playback"]) if e.type == "PlaybackFinished" else None
        )
        admin.start(staff, campaign.id)
        try:
            [first] = _attempts(app, phone)
            refused = _recording_name(load_flow(OPEN_FLOW), first.id)
            holder = svc.run(ari.create_bridge(bridge_id=f"holder-{first.id}"))
            try:
                svc.run(
                    ari.request(
                        "POST",
                        f"/bridges/{holder}/record",
                        params={"name": refused, "format": "wav", "maxDurationSeconds": 300},
                    )
                )
                svc.run(svc.parts.dialer.start())
                _until(lambda: _attempts(app, phone)[0].state == AttemptState.DONE, 60, "its end")
                attempts = _attempts(app, phone)
                channels = svc.run(ari.request("GET", "/channels"))
            finally:
                with contextlib.suppress(AriError):  # discard the held recording
                    svc.run(ari.request("DELETE", f"/recordings/live/{refused}"))
                with contextlib.suppress(AriError):
                    svc.run(ari.destroy_bridge(holder))
        finally:
            admin.stop(staff, campaign.id, "the test is over")
    done, retry = attempts
    assert done.outcome is Outcome.FAILED, (done.outcome, done.outcome_detail)
    row = _call_row(app, first.id)
    assert row.status == Outcome.FAILED and row.ended_at is not None
    for reason in (row.end_reason, done.outcome_detail):
        assert reason and "POST" in reason and "/record" in reason and "409" in reason, reason
        assert refused in reason, reason
    # The resident heard the apology to its end (Asterisk says so), then the line closed.
    apology = [p for p in finished if p["id"] == f"{first.id}-apology"]
    assert apology and apology[0]["state"] == "done", finished
    assert not [c["id"] for c in channels if first.id in c["id"]], channels
    # The rules retry a technical failure: the next attempt is due after the spacing.
    assert (retry.attempt_no, retry.state) == (2, AttemptState.DUE), retry
    assert done.ended_at is not None
    assert timedelta(minutes=45) <= retry.due_at - done.ended_at < timedelta(minutes=46)


def _attempts(app: App, phone: str) -> list[Attempt]:
    engine = make_engine(app.settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(Attempt.__table__)
                .where(Attempt.phone == phone)
                .order_by(Attempt.attempt_no)
            ).all()
    finally:
        engine.dispose()
    return rows  # type: ignore[return-value]
