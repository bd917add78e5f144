"""A graceful shutdown of `ivr telephony` (a real worker process on a real Asterisk): on
SIGTERM it stops dialling at once, refuses new inbound calls, lets the live calls go on for
`[telephony] drain_seconds`, then ends the rest as interrupted (retried) and exits 0; a
second SIGTERM ends the live calls at once. Nothing is lost or placed twice either way."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ivr.accounts.audit import Actor
from ivr.bootstrap import App
from ivr.campaigns.admin import CampaignAdmin, CampaignSettings
from ivr.softphone import accounts
from ivr.store.models import Attempt, Call
from ivr.telephony.personas import number_for
from tests.support.baresip import Baresip
from tests.support.instance import destroy, make_instance, start_or_fail
from tests.support.worker import Worker

pytestmark = pytest.mark.pbx

FLOW = Path(__file__).parent / "flows" / "long-question.yaml"  # waits minutes for a key
CLI = Actor.cli()  # the command line: campaigns of no organisation
STAYS = 100  # persona: answers and stays on the line until we hang up
HANGS_UP_AFTER_6 = 106  # persona: answers and hangs up after 6 s


def _settings(cps: float, max_concurrent: int) -> CampaignSettings:
    return CampaignSettings(
        windows="mon-sun 0-24",
        allow_holidays=True,
        calls_per_second=cps,
        max_concurrent=max_concurrent,
        retry_failed_minutes=1,  # interrupted calls are retried after this long
        cross_campaign_daily_cap=False,
    )


@pytest.fixture()
def node() -> Iterator[tuple[App, dict[str, str]]]:
    app, env = make_instance(prefix="ivr-drain-")
    start_or_fail(app)
    yield app, env
    destroy(app)


def _campaign(
    admin: CampaignAdmin, tmp_path: Path, name: str, phones: list[str], settings: CampaignSettings
) -> None:
    (tmp_path / f"{name}.csv").write_text("phone\n" + "\n".join(phones) + "\n")
    admin.create(CLI, name, FLOW, settings)
    admin.import_contacts(CLI, name, tmp_path / f"{name}.csv")


def _until(check: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, (
            f"timed out waiting for {what}; worker log:\n{log.read_text(errors='replace')[-3000:]}"
        )
        time.sleep(0.1)


def _calls(admin: CampaignAdmin) -> list[sa.Row[Any]]:
    """(remote number, status, attempt id, started, answered, ended) of every call."""
    with admin.factory() as s:
        return list(
            s.execute(
                sa.select(
                    Call.remote_number,
                    Call.status,
                    Call.attempt_id,
                    Call.started_at,
                    Call.answered_at,
                    Call.ended_at,
                ).order_by(Call.started_at)
            ).all()
        )


def _live(admin: CampaignAdmin, phones: list[str]) -> list[str]:
    """Which of ``phones`` are in an answered call that runs now."""
    return [
        c.remote_number
        for c in _calls(admin)
        if c.remote_number in phones and str(c.status) == "active" and c.answered_at is not None
    ]


def _attempts(admin: CampaignAdmin) -> list[sa.Row[Any]]:
    with admin.factory() as s:
        return list(
            s.execute(
                sa.select(
                    Attempt.id,
                    Attempt.contact_id,
                    Attempt.phone,
                    Attempt.attempt_no,
                    Attempt.state,
                    Attempt.outcome,
                    Attempt.due_at,
                    Attempt.started_at,
                    Attempt.ended_at,
                )
            ).all()
        )


def _channels(app: App) -> int:
    out = app.pbx().cli("core show channels count")
    return int(out.split("active channel")[0].split()[-1])


def _no_channels_left(app: App, log: Path) -> None:
    _until(lambda: _channels(app) == 0, 10, "Asterisk to have no channel left", log)


def _check_exactly_once(admin: CampaignAdmin, phones: list[str]) -> Counter[str]:
    """Nothing active or in flight; no attempt placed twice; every contact either settled
    for good or due exactly once (a retry or its first attempt)."""
    attempts = _attempts(admin)
    calls = _calls(admin)
    assert all(str(c.status) != "active" for c in calls), calls
    assert {str(a.state) for a in attempts} <= {"done", "due"}, attempts  # nothing dialling
    per_attempt = Counter(c.attempt_id for c in calls)
    assert max(per_attempt.values()) == 1, per_attempt  # no attempt placed twice
    assert {a.id for a in attempts if a.started_at is not None} == set(per_attempt)
    due = Counter(a.phone for a in attempts if str(a.state) == "due")
    assert sorted({a.phone for a in attempts}) == sorted(phones)  # no contact lost
    assert all(n == 1 for n in due.values()), due  # never due twice
    for a in attempts:  # an interrupted attempt has exactly its one retry waiting
        if str(a.outcome) == "interrupted":
            retry = [
                b
                for b in attempts
                if b.contact_id == a.contact_id and b.attempt_no == a.attempt_no + 1
            ]
            assert len(retry) == 1 and str(retry[0].state) == "due", (a, retry)
    return Counter(str(a.outcome) for a in attempts if a.outcome is not None)


def test_drain_lets_live_calls_finish_then_interrupts_the_rest(
    node: tuple[App, dict[str, str]], tmp_path: Path
) -> None:
    app, env = node
    drain = 12.0
    admin = app.campaigns()
    # "long": residents who stay on the line, dialled one every 2 s (the dialer is still
    # busy when the signal comes); "short": two who hang up 6 s after answering.
    long_phones = [number_for(STAYS, n) for n in range(1, 21)]
    short_phones = [number_for(HANGS_UP_AFTER_6, n) for n in range(1, 3)]
    _campaign(admin, tmp_path, "long", long_phones, _settings(0.5, 30))
    _campaign(admin, tmp_path, "short", short_phones, _settings(5, 5))
    log = tmp_path / "worker.log"
    worker = Worker({**env, "IVR_TELEPHONY_DRAIN_SECONDS": f"{drain:g}"}, log)
    account = next(a for a in accounts(app.settings, app.credentials) if a.username == "softphone1")
    try:
        with Baresip(account.baresip_line(), lifetime=120) as phone:
            phone.wait_registered(10)
            admin.start(CLI, "long")
            _until(lambda: len(_live(admin, long_phones)) >= 2, 30, "two long calls", log)
            admin.start(CLI, "short")
            _until(lambda: len(_live(admin, short_phones)) == 2, 30, "both short calls", log)
            # Signal just after the dialer placed a call (the next is 2 s away), so "no call
            # after the signal" can only fail if the dialer really goes on.
            placed = len(_calls(admin))
            _until(lambda: len(_calls(admin)) > placed, 5, "the next long call", log)
            signalled = app.clock()
            os.kill(worker.proc.pid, signal.SIGTERM)
            t0 = time.monotonic()
            _until(lambda: "draining" in log.read_text(errors="replace"), 5, "the drain", log)
            # A resident calling in now is refused with congestion (SIP 503).
            phone.dial("100")
            closed = phone.wait_event("CALL_CLOSED", 10, fail_on=("CALL_ESTABLISHED",))
            assert "503" in str(closed.get("param", "")), closed
            exit_code = worker.proc.wait(drain + 15)
            took = time.monotonic() - t0
    finally:
        worker.kill()  # only if it is still running: a failure above left it behind
    out = log.read_text(errors="replace")
    assert exit_code == 0, out[-3000:]
    assert drain - 1 <= took <= drain + 8, (took, out[-3000:])
    _no_channels_left(app, log)

    calls = _calls(admin)
    # No call was placed after the signal, although the long campaign had more to dial.
    assert all(c.started_at <= signalled for c in calls), (signalled, calls)
    left = [a for a in _attempts(admin) if a.attempt_no == 1 and str(a.state) == "due"]
    assert len(left) >= 5, left
    live_at_signal = [
        c
        for c in calls
        if c.answered_at is not None and (c.ended_at is None or c.ended_at > signalled)
    ]
    assert f"draining {len(live_at_signal)} live calls for up to {drain:g} s" in out, out[-3000:]
    by_phone = {c.remote_number: c for c in calls}
    # The short calls ended by themselves during the drain, with their real status.
    for phone_number in short_phones:
        c = by_phone[phone_number]
        assert str(c.status) == "partial", c  # the resident hung up mid-question
        assert c.ended_at is not None and signalled < c.ended_at
        assert c.ended_at < signalled + timedelta(seconds=drain), c
    # The long calls outlived the drain: ended as interrupted, and retried.
    cut = [c for c in live_at_signal if c.remote_number in long_phones]
    assert len(cut) >= 3, calls
    assert all(str(c.status) == "interrupted" for c in cut), cut
    with admin.factory() as s:
        reasons = set(
            s.scalars(sa.select(Call.end_reason).where(Call.status == "interrupted")).all()
        )
    assert reasons == {f"the telephony worker shut down ({drain:g} s drain passed)"}, reasons
    assert f"ended {len(cut)} calls as interrupted" in out, out[-3000:]
    attempts = {a.id: a for a in _attempts(admin)}
    for c in cut:
        a = attempts[c.attempt_id]
        assert str(a.outcome) == "interrupted", a
        assert c.ended_at is not None
        assert c.ended_at >= signalled + timedelta(seconds=drain - 1), c
        retries = [
            r for r in attempts.values() if r.contact_id == a.contact_id and r.attempt_no == 2
        ]
        assert len(retries) == 1 and str(retries[0].state) == "due", retries
        assert retries[0].due_at >= c.ended_at + timedelta(seconds=59), (c, retries)
    outcomes = _check_exactly_once(admin, long_phones + short_phones)
    assert outcomes["partial"] == 2 and outcomes["interrupted"] == len(cut), outcomes


def test_second_sigterm_ends_at_once_and_a_restart_loses_nothing(
    node: tuple[App, dict[str, str]], tmp_path: Path
) -> None:
    app, env = node
    admin = app.campaigns()
    phones = [number_for(STAYS, n) for n in range(1, 9)]
    _campaign(admin, tmp_path, "hold", phones, _settings(2, 5))
    log = tmp_path / "worker.log"
    env = {**env, "IVR_TELEPHONY_DRAIN_SECONDS": "120"}
    worker = Worker(env, log)
    try:
        admin.start(CLI, "hold")
        _until(lambda: len(_live(admin, phones)) >= 3, 30, "calls in flight", log)
        os.kill(worker.proc.pid, signal.SIGTERM)
        t0 = time.monotonic()
        _until(lambda: "draining" in log.read_text(errors="replace"), 5, "the drain", log)
        os.kill(worker.proc.pid, signal.SIGTERM)
        exit_code = worker.proc.wait(30)
        took = time.monotonic() - t0
    finally:
        worker.kill()  # only if it is still running: a failure above left it behind
    out = log.read_text(errors="replace")
    assert exit_code == 0, out[-3000:]
    assert took < 10, (took, out[-3000:])  # not the 120 s drain
    assert "SIGTERM again: ending the live calls now" in out, out[-3000:]
    _no_channels_left(app, log)  # the calls were hung up, not left to ring on

    # Nobody is dialled by the restarted worker: what it finds is what the shutdown left.
    admin.pause(CLI, "hold", "paused by the test")
    worker = Worker(env, log)
    try:
        _until(lambda: all(str(c.status) != "active" for c in _calls(admin)), 15, "reconcile", log)
        exit_code = worker.stop()  # nothing live: it exits at once
    finally:
        worker.kill()
    assert exit_code == 0, log.read_text(errors="replace")[-3000:]
    outcomes = _check_exactly_once(admin, phones)
    assert outcomes["interrupted"] >= 3, outcomes
    assert set(outcomes) <= {"interrupted"}, outcomes
