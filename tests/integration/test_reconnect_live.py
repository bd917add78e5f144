"""(d) Asterisk restarts during a test; the ARI client reconnects and works again."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from ivr.bootstrap import App
from ivr.outcome import Outcome
from ivr.telephony.ari import CONNECTED, DISCONNECTED, AriEvent
from ivr.telephony.personas import number_for
from tests.support.calls import CallTracker, place_call

pytestmark = pytest.mark.pbx


def test_ari_reconnects_after_asterisk_restart(
    pbx_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    pbx = pbx_app.pbx()
    seen: list[AriEvent] = []
    caplog.set_level(logging.DEBUG, logger="ivr.telephony.ari")

    def failed_tries() -> int:
        return sum("ARI events connection failed" in r.getMessage() for r in caplog.records)

    async def collect(tracker: CallTracker) -> None:
        for _ in range(3):
            if await tracker.next_digit(8) is None:
                return

    async def run() -> None:
        ari = pbx_app.ari()
        ari.add_listener(lambda e: seen.append(e) if e.type in (CONNECTED, DISCONNECTED) else None)
        await ari.start()
        try:
            assert ari.connections == 1
            await asyncio.to_thread(pbx.stop)
            await ari.wait_for(
                lambda e: e.type == DISCONNECTED, 10
            ) if ari.connected.is_set() else None
            assert not ari.connected.is_set()
            # While Asterisk is down the client keeps trying (with backoff): two tries fail.
            tries, deadline = failed_tries(), time.monotonic() + 15
            while failed_tries() < tries + 2:
                assert time.monotonic() < deadline, "the client stopped trying to reconnect"
                await asyncio.sleep(0.05)
            await asyncio.to_thread(pbx.start)
            event = await ari.wait_for(lambda e: e.type == CONNECTED, 15)
            assert event.data["reconnect"] is True
            assert ari.connections >= 2
            result = await place_call(ari, number_for(701, 9), on_answer=collect)
            assert result.outcome is Outcome.ANSWERED
            assert result.digits == "123"
        finally:
            await ari.close()

    asyncio.run(run())
    types = [e.type for e in seen]
    assert types[0] == CONNECTED and DISCONNECTED in types and types[-1] == CONNECTED
