"""`ivr demo`: start the PBX and call a few simulated residents, printing what happened."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from ivr.bootstrap import App, init
from ivr.pbx import tree
from ivr.softphone import describe
from ivr.telephony.ari import AriClient, AriEvent
from ivr.telephony.calls import CallTracker, place_call
from ivr.telephony.outcome import Outcome
from ivr.telephony.personas import number_for

# (persona code, what it does, the outcome we expect, the digits we expect)
DEMO_CALLS: tuple[tuple[int, str, Outcome, str], ...] = (
    (701, "answers and keys 1, 2, 3", Outcome.ANSWERED, "123"),
    (302, "busy after 2 s of ringing", Outcome.BUSY, ""),
    (402, "declines after 2 s of ringing", Outcome.DECLINED, ""),
)


async def _collect_digits(tracker: CallTracker) -> None:
    """Greet the resident and collect up to three digits."""
    await tracker.ari.play(tracker.channel_id, ["sound:hello-world"])
    for _ in range(3):
        if await tracker.next_digit(6.0) is None:
            break


async def _calls(app: App) -> bool:
    ari = app.ari()
    await ari.start()
    ok = True
    try:
        for code, what, expected, digits in DEMO_CALLS:
            number = number_for(code)
            print(f"calling {number} (simulated resident: {what}) ...", flush=True)
            result = await place_call(ari, number, on_answer=_collect_digits, ring_timeout=15)
            sip = f", SIP {result.sip_code}" if result.sip_code else ""
            print(
                f"  -> {result.outcome.value}: cause {result.cause} ({result.cause_txt}{sip}), "
                f"rang {result.ring_seconds:.1f} s, talked {result.talk_seconds:.1f} s"
                + (f", keyed {result.digits!r}" if result.digits else ""),
                flush=True,
            )
            if result.outcome is not expected or result.digits != digits:
                print(f"  !! expected {expected.value} with digits {digits!r}", flush=True)
                ok = False
    finally:
        await ari.close()
    return ok


async def _serve_inbound(ari: AriClient) -> None:
    """Answer calls to the inbound numbers: greet, then echo keys to the terminal."""

    async def on_event(event: AriEvent) -> None:
        if event.type == "StasisStart" and event.args[:1] == ["inbound"]:
            caller = event.data["channel"]["caller"]["number"]
            print(f"inbound call to {event.args[1]} from {caller}", flush=True)
            await ari.answer(event.channel_id or "")
            await ari.play(event.channel_id or "", ["sound:hello-world"])
        elif event.type == "ChannelDtmfReceived":
            print(f"  key {event.digit}", flush=True)
        elif event.type == "StasisEnd":
            print("  call ended", flush=True)

    ari.add_listener(on_event)
    await ari.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await ari.close()


def run_demo(once: bool) -> int:
    app, done = init()
    for line in done:
        print(line)
    tree.build(app.settings, lambda line: print(line, flush=True))
    pbx = app.pbx()
    started_here = pbx.pid() is None
    pbx.start()
    s = app.settings.pbx
    print(f"Asterisk is up: SIP {s.bind_address}:{s.sip_port}/udp, data in {app.settings.data_dir}")
    try:
        ok = asyncio.run(_calls(app))
        print("demo calls: all as expected" if ok else "demo calls: FAILED", flush=True)
        if once:
            return 0 if ok else 1
        print("\nThe PBX keeps running. Register a softphone and dial an inbound number:\n")
        print(describe(app.settings, app.credentials))
        print("\nPress Ctrl-C to stop.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve_inbound(app.ari()))
        return 0 if ok else 1
    finally:
        if started_here:
            pbx.stop()
            print("Asterisk stopped")
