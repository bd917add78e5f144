"""ARI operations and AMI health against the real Asterisk."""

from __future__ import annotations

import asyncio
import time

import pytest

from ivr.bootstrap import App
from ivr.telephony.ami import ami_health
from ivr.telephony.ari import SERVICE_EVENTS, AriClient, AriError, AriEvent
from ivr.telephony.personas import number_for
from tests.support.calls import CallTracker, place_call

pytestmark = pytest.mark.pbx


async def _with_ari(app: App, body):  # type: ignore[no-untyped-def]
    ari = app.ari()
    await ari.start()
    try:
        return await body(ari)
    finally:
        await ari.close()


def _playback_done(playback_id: str):  # type: ignore[no-untyped-def]
    return lambda e: e.type == "PlaybackFinished" and e.data["playback"]["id"] == playback_id


def test_play_stop_variables_and_bridge(pbx_app: App) -> None:
    checks: dict[str, object] = {}

    async def on_answer(tracker: CallTracker) -> None:
        ari, ch = tracker.ari, tracker.channel_id
        await ari.set_variable(ch, "IVR_TEST", "kuntalainen")
        checks["var"] = await ari.get_variable(ch, "IVR_TEST")
        checks["missing_var"] = await ari.get_variable(ch, "NO_SUCH_VARIABLE_X")
        # A prompt plays to its end by itself.
        started = time.monotonic()
        done = ari.expect(_playback_done("hello"))
        await ari.play(ch, ["sound:hello-world"], playback_id="hello")
        await asyncio.wait_for(done, 10)
        checks["prompt_seconds"] = time.monotonic() - started
        # A tone never ends by itself; stopping it ends the playback (how soon: python -m
        # bench.ari_playback).
        playing = ari.expect(
            lambda e: e.type == "PlaybackStarted" and e.data["playback"]["id"] == "tone"
        )
        tone = await ari.play(ch, ["tone:ring"], playback_id="tone")
        await asyncio.wait_for(playing, 10)
        done = ari.expect(_playback_done(tone.id))
        await ari.stop_playback(tone.id)
        await asyncio.wait_for(done, 5)
        # Bridge this call with a second simulated resident, as a transfer would.
        other_id = f"other-{ch}"
        answered = ari.expect(lambda e: e.type == "StasisStart" and e.channel_id == other_id)
        other = await ari.originate(
            f"PJSIP/{number_for(100, 2)}@trunk", app_args=["transfer"], channel_id=other_id
        )
        await asyncio.wait_for(answered, 10)
        bridge = await ari.create_bridge()
        entered = [
            ari.expect(
                lambda e, c=c: (
                    e.type == "ChannelEnteredBridge"
                    and e.channel_id == c
                    and e.data["bridge"]["id"] == bridge
                )
            )
            for c in (ch, other.id)
        ]
        await ari.add_to_bridge(bridge, [ch, other.id])
        await asyncio.wait_for(asyncio.gather(*entered), 10)  # both are in the bridge
        checks["bridged"] = True
        await ari.destroy_bridge(bridge)
        await ari.hangup(other.id)

    asyncio.run(
        _with_ari(pbx_app, lambda ari: place_call(ari, number_for(100, 1), on_answer=on_answer))
    )
    assert checks["var"] == "kuntalainen"
    assert checks["missing_var"] in (None, "")
    # It played: a sound that cannot be played ends at once (hello-world is 1.4 s long).
    assert float(checks["prompt_seconds"]) > 0.5  # type: ignore[arg-type]
    assert checks["bridged"] is True


def test_rest_errors_name_the_call(pbx_app: App) -> None:
    async def body(ari: AriClient) -> None:
        try:
            await ari.answer("no-such-channel")
        except AriError as exc:
            assert exc.status == 404
            assert "/channels/no-such-channel/answer" in str(exc)
        else:
            raise AssertionError("answering a missing channel did not fail")

    asyncio.run(_with_ari(pbx_app, body))


def test_ami_health_lists_endpoints_and_counts_calls(pbx_app: App) -> None:
    idle = asyncio.run(ami_health(pbx_app.settings, pbx_app.credentials))
    assert idle.fully_booted
    assert idle.version.startswith("22")
    names = {e.name for e in idle.endpoints}
    assert {"trunk", "resident", "softphone1", "softphone2", "softphone3"} <= names
    during: list[int] = []

    async def on_answer(tracker: CallTracker) -> None:
        health = await ami_health(pbx_app.settings, pbx_app.credentials)
        during.append(health.channels)

    asyncio.run(
        _with_ari(pbx_app, lambda ari: place_call(ari, number_for(100, 3), on_answer=on_answer))
    )
    assert during and during[0] >= 2  # both legs of the loopback call


def test_events_reach_every_listener_even_if_one_fails(pbx_app: App) -> None:
    got: list[str] = []

    def broken(event: AriEvent) -> None:
        raise RuntimeError("listener bug")

    async def body(ari: AriClient) -> None:
        ari.add_listener(broken)
        ari.add_listener(lambda e: got.append(e.type))
        await place_call(ari, number_for(501))

    asyncio.run(_with_ari(pbx_app, body))
    assert "ChannelDestroyed" in got


def test_requests_go_over_the_websocket_and_http_gives_the_same_answers(pbx_app: App) -> None:
    """Asterisk 22 answers REST on the events websocket; HTTP is the fallback."""

    async def run(over_websocket: bool) -> dict[str, object]:
        ari = pbx_app.ari()
        ari.rest_over_websocket = over_websocket
        await ari.start()
        try:
            info = await ari.info()
            channels = await ari.channels()
            try:
                await ari.hangup("no-such-channel")
                error = ""
            except AriError as exc:
                error = str(exc)
            # A listener that awaits a request while events keep coming must not block the
            # reading of its own response (the reader and the listeners are separate tasks).
            answered: list[str] = []

            async def on_start(event: AriEvent) -> None:
                if event.type == "StasisStart":
                    await ari.answer(event.channel_id or "")
                    answered.append(
                        await ari.get_variable(event.channel_id or "", "CHANNEL(state)")
                    )
                    await ari.hangup(event.channel_id or "")

            remove = ari.add_listener(on_start)
            ended = ari.expect(lambda e: e.type == "StasisEnd")
            await ari.originate(f"PJSIP/{number_for(100, 2)}@trunk", app_args=["x"])
            await asyncio.wait_for(ended, 15)
            remove()
            return {
                "version": info["system"]["version"],
                "channels": [c.id for c in channels],
                "error": error,
                "answered": answered,
                "ws": ari.ws_requests,
                "http": ari.http_requests,
            }
        finally:
            await ari.close()

    ws = asyncio.run(run(True))
    http = asyncio.run(run(False))
    # Only the event filter, set at connect before the reader runs, went over HTTP.
    assert ws["http"] == 1 and int(ws["ws"]) >= 7, ws
    assert http["ws"] == 0 and int(http["http"]) >= 8, http
    for key in ("version", "channels", "error", "answered"):
        assert ws[key] == http[key], key
    assert ws["error"] == "ARI DELETE /channels/no-such-channel: 404 Channel not found"
    assert ws["answered"] == ["Up"]


def test_an_event_filter_keeps_out_what_the_service_does_not_read(pbx_app: App) -> None:
    async def run(event_filter: tuple[str, ...] | None) -> set[str]:
        ari = pbx_app.ari()
        ari.event_filter = event_filter
        seen: set[str] = set()
        ari.add_listener(lambda e: seen.add(e.type))
        await ari.start()
        try:
            ended = ari.expect(lambda e: e.type == "StasisEnd")

            async def on_start(event: AriEvent) -> None:
                if event.type == "StasisStart":
                    await ari.answer(event.channel_id or "")  # answered over the websocket
                    await ari.hangup(event.channel_id or "")

            ari.add_listener(on_start)
            await ari.originate(f"PJSIP/{number_for(100, 3)}@trunk", app_args=["x"])
            await asyncio.wait_for(ended, 15)
            await asyncio.sleep(0.5)  # let anything else that is coming arrive
        finally:
            await ari.close()
        return seen - {"IvrAriConnected", "IvrAriDisconnected"}

    filtered = asyncio.run(run(SERVICE_EVENTS))
    assert filtered and filtered <= set(SERVICE_EVENTS), filtered
    unfiltered = asyncio.run(run(None))  # the next client clears the application's filter
    assert "ChannelVarset" in unfiltered and "ChannelStateChange" in unfiltered, unfiltered
