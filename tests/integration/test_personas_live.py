"""(a) Originate through the loopback trunk to each persona on the real Asterisk."""

from __future__ import annotations

import asyncio

import pytest

from ivr.bootstrap import App
from ivr.outcome import Outcome
from ivr.telephony.personas import number_for
from tests.support.calls import CallResult, CallTracker, place_call

pytestmark = pytest.mark.pbx


async def _listen(tracker: CallTracker) -> None:
    """Stay on the line until the resident hangs up or 10 s pass."""
    await asyncio.wait_for(tracker.ended.wait(), 10)


async def _call(app: App, code: int, ring_timeout: int = 8) -> CallResult:
    ari = app.ari()
    await ari.start()
    try:
        return await place_call(
            ari, number_for(code, 17), on_answer=_listen, ring_timeout=ring_timeout
        )
    finally:
        await ari.close()


@pytest.mark.parametrize(
    ("code", "outcome", "cause", "sip", "digits"),
    [
        (701, Outcome.ANSWERED, 16, None, "123"),
        (702, Outcome.ANSWERED, 16, None, "42#"),
        (301, Outcome.BUSY, 17, 486, ""),
        (401, Outcome.DECLINED, 21, 603, ""),
        (501, Outcome.UNALLOCATED, 1, 404, ""),
        (200, Outcome.NO_ANSWER, 19, None, ""),
    ],
)
def test_persona_outcome(
    pbx_app: App, code: int, outcome: Outcome, cause: int, sip: int | None, digits: str
) -> None:
    if code in (701, 702):  # these stay on the line: hang up once the keys are in

        async def on_answer(tracker: CallTracker) -> None:
            for _ in digits:
                assert await tracker.next_digit(8) is not None

        async def run() -> CallResult:
            ari = pbx_app.ari()
            await ari.start()
            try:
                return await place_call(ari, number_for(code, 3), on_answer=on_answer)
            finally:
                await ari.close()

        result = asyncio.run(run())
    else:
        result = asyncio.run(_call(pbx_app, code, ring_timeout=4))
    assert result.outcome is outcome, result
    assert result.cause == cause, result
    if sip is not None:
        assert result.sip_code == sip, result
    assert result.digits == digits


def test_silent_resident_hangs_up_after_its_seconds(pbx_app: App) -> None:
    result = asyncio.run(_call(pbx_app, 103))
    assert result.outcome is Outcome.ANSWERED
    assert 2.5 <= result.talk_seconds <= 5.0, result  # persona 103: hangs up after 3 s
    assert result.cause == 16


def test_slow_answer_rings_before_answering(pbx_app: App) -> None:
    async def hang_up_at_once(tracker: CallTracker) -> None:
        return None

    async def run() -> CallResult:
        ari = pbx_app.ari()
        await ari.start()
        try:
            return await place_call(ari, number_for(603), on_answer=hang_up_at_once)
        finally:
            await ari.close()

    result = asyncio.run(run())
    assert result.outcome is Outcome.ANSWERED
    assert 2.5 <= result.ring_seconds <= 5.0, result


def test_busy_after_ringing_reports_the_ring_time(pbx_app: App) -> None:
    result = asyncio.run(_call(pbx_app, 303))
    assert result.outcome is Outcome.BUSY
    assert 2.5 <= result.ring_seconds <= 5.0, result
