"""The outbound trunk pointed at a far end that never answers SIP OPTIONS (SIPp as a UAS).

Many SIP phones and some providers never answer OPTIONS. With qualify on, Asterisk marks
such a far end unreachable and refuses every call to it (ARI: 500 Allocation failed);
with ``pbx.trunk_qualify_seconds = 0`` (the default) the call reaches it. Real Asterisk,
real SIPp, all on loopback.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ivr.bootstrap import App
from ivr.telephony.ami import AmiClient, ami_health, contacts_reachable
from ivr.telephony.ari import AriError
from ivr.telephony.trunk import trunk_reachable
from tests.support.cli import run_ivr
from tests.support.instance import running_instance
from tests.support.sipp import SippFarEnd

pytestmark = pytest.mark.pbx

NUMBER = "0401234567"


@contextmanager
def trunk_instance(
    far_end: SippFarEnd, qualify_seconds: int
) -> Iterator[tuple[App, dict[str, str]]]:
    """An Asterisk whose outbound trunk is the SIPp far end on loopback."""
    trunk = {
        "IVR_PBX_TRUNK_HOST": "127.0.0.1",
        "IVR_PBX_TRUNK_PORT": str(far_end.port),
        "IVR_PBX_TRUNK_QUALIFY_SECONDS": str(qualify_seconds),
    }
    with running_instance("ivr-trunk-", lambda env: trunk) as instance:
        yield instance


async def _trunk_reachable(app: App) -> bool | None:
    ami: AmiClient = await app.ami()
    try:
        return await trunk_reachable(ami)
    finally:
        ami.close()


def _far_end(tmp_path: Path, calls: int | None = None) -> SippFarEnd:
    try:
        return SippFarEnd(tmp_path, calls).start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


def test_without_qualify_a_far_end_that_ignores_options_gets_the_call(tmp_path: Path) -> None:
    far = _far_end(tmp_path, calls=1)
    try:
        with trunk_instance(far, qualify_seconds=0) as (app, env):
            channel_id = uuid.uuid4().hex

            async def call() -> tuple[bool | None, str]:
                ari = app.ari()
                await ari.start()
                try:
                    reachable = await _trunk_reachable(app)
                    answered = ari.expect(
                        lambda e: e.type == "StasisStart" and e.channel_id == channel_id
                    )
                    gone = ari.expect(
                        lambda e: e.type == "ChannelDestroyed" and e.channel_id == channel_id
                    )
                    await ari.originate(f"PJSIP/{NUMBER}@trunk", channel_id=channel_id)
                    event = await asyncio.wait_for(answered, 15)
                    await ari.hangup(channel_id)
                    await asyncio.wait_for(gone, 10)
                    return reachable, str(event.data["channel"]["state"])
                finally:
                    await ari.close()

            reachable, state = asyncio.run(call())
            assert state == "Up"  # SIPp answered the call placed through the trunk
            assert reachable is None  # not qualified: unknown, and Asterisk tries every call
            assert far.wait(15) == 0, far.log_tail()  # SIPp: its one call went through
            status = run_ivr(env, "pbx", "status")
            assert status.returncode == 0, status.stdout + status.stderr
            assert f"trunk: not checked - sip:127.0.0.1:{far.port}" in status.stdout
            assert "pbx.trunk_qualify_seconds = 0" in status.stdout
    finally:
        far.close()
    assert far.received("INVITE") >= 1
    assert far.received("OPTIONS") == 0  # qualify off: no OPTIONS at all


def test_with_qualify_a_far_end_that_ignores_options_is_shown_unreachable(
    tmp_path: Path,
) -> None:
    far = _far_end(tmp_path)
    try:
        with trunk_instance(far, qualify_seconds=2) as (app, env):
            deadline = time.monotonic() + 30
            while True:
                health = asyncio.run(ami_health(app.settings, app.credentials))
                if contacts_reachable(health.trunk) is False:
                    break
                assert time.monotonic() < deadline, f"trunk never unreachable: {health.trunk}"
                time.sleep(0.2)

            status = run_ivr(env, "pbx", "status")
            assert status.returncode == 0, status.stdout + status.stderr  # Asterisk is fine
            assert f"trunk: UNREACHABLE - sip:127.0.0.1:{far.port}" in status.stdout
            assert "pbx.trunk_qualify_seconds = 0" in status.stdout  # says what to do
            as_json = json.loads(run_ivr(env, "pbx", "status", "--json").stdout)
            assert as_json["trunk"]["state"] == "unreachable"
            assert as_json["trunk"]["qualify_seconds"] == 2

            async def call() -> tuple[bool | None, str]:
                ari = app.ari()
                await ari.start()
                try:
                    reachable = await _trunk_reachable(app)
                    try:
                        await ari.originate(f"PJSIP/{NUMBER}@trunk")
                    except AriError as exc:
                        return reachable, f"{exc.status} {exc}"
                    return reachable, "placed"
                finally:
                    await ari.close()

            reachable, placed = asyncio.run(call())
            assert reachable is False
            assert placed.startswith("500") and "Allocation failed" in placed
    finally:
        far.close()
    assert far.received("OPTIONS") >= 1  # Asterisk asked ...
    assert far.answered("OPTIONS") == 0  # ... and the far end never answered
    assert far.received("INVITE") == 0  # the refused call never left Asterisk
