"""`ivr demo`: start the PBX, call simulated residents (one through a whole survey), print
what happened; then keep the lines open for softphones (unless ``--once``)."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from ivr.bootstrap import App, init
from ivr.config import EXAMPLE_FLOWS
from ivr.flows.loader import load_flow
from ivr.pbx import tree
from ivr.softphone import describe
from ivr.telephony.calls import CallTracker, place_call
from ivr.telephony.outcome import Outcome
from ivr.telephony.personas import number_for, script_variables
from ivr.telephony.simscript import plan_steps

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


DEMO_SURVEY = "strategy-survey"
DEMO_PLAN = [
    ("intro", ""),
    ("lang", "1"),
    ("how-to", ""),
    ("services", "4"),
    ("develop-area", "3"),
    ("recommend", "1"),
    ("age-group", "2"),
    ("develop-open", "speak"),
    ("contact", "1121"),
]


async def _survey_and_serve(app: App, once: bool) -> bool:
    """A whole survey call to a simulated resident; then (unless once) serve the lines."""
    parts = app.telephony()
    await parts.service.start()
    try:
        flow = load_flow(EXAMPLE_FLOWS / f"{DEMO_SURVEY}.yaml")
        parts.prompts.prerender(flow)
        steps = plan_steps(parts.prompts, flow, DEMO_PLAN, flow.default_language)
        number = number_for(901, 1)
        print(
            f"survey call to {number} (a simulated resident who answers every question; "
            "about a minute) ...",
            flush=True,
        )
        out = await parts.service.call(number, flow, variables=script_variables(steps))
        status = await asyncio.wait_for(asyncio.shield(out.done), 300)
        call = parts.store.call(out.call_id)
        ok = status == "completed" and call is not None
        print(f"  -> {status}", flush=True)
        if call is not None:
            for answer in sorted(call.answers, key=lambda a: a.seq):
                print(f"     {answer.node_id:14} {answer.value}", flush=True)
            for rec in call.recordings:
                print(f"     recording      {rec.path} ({rec.duration_seconds:.1f} s)")
            for req in call.callback_requests:
                print(
                    f"     callback       {req.channel.value}, {req.time_window}, "
                    f"interpreter {req.interpreter_language or 'none'}"
                )
            ok = ok and len(call.answers) >= 6 and len(call.recordings) == 1
        if once:
            return ok
        print(
            "\nThe PBX and the telephony worker keep running. Register a softphone and dial "
            "an inbound line:\n"
        )
        print(describe(app.settings, app.credentials))
        for number, line in parts.service.lines.items():
            print(f"  {number}: {line.flow.name} ({line.language or 'language menu'})")
        print("\nPress Ctrl-C to stop.", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        return ok
    finally:
        await parts.close()


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
        with contextlib.suppress(KeyboardInterrupt):
            survey_ok = asyncio.run(_survey_and_serve(app, once))
            print("survey call: completed and stored" if survey_ok else "survey call: FAILED")
            ok = ok and survey_ok
        return 0 if ok else 1
    finally:
        if started_here:
            pbx.stop()
            print("Asterisk stopped")
