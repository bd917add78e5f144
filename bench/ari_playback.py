"""Benchmark: how long ARI playback operations take on the real Asterisk.

    .venv/bin/python -m bench.ari_playback [--rounds 10]

Prints figures; it is not a test (tests/integration/test_ari_ops_live.py checks that a
prompt plays to its end and that a stopped tone ends). It starts its own Asterisk on
private ports in a temporary data directory (``tests.support.instance``), places one call
to a simulated resident who stays on the line, and on that call, ``--rounds`` times:

- plays ``sound:hello-world`` (1.4 s of audio) and times the request up to its
  PlaybackFinished event (the audio plus Asterisk's and our overhead);
- plays ``tone:ring`` (which never ends by itself), waits 0.3 s, stops it and times the
  stop request up to its PlaybackFinished event.

Then it prints the fastest, median and slowest of each, and stops its Asterisk.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from ivr.bootstrap import App
from ivr.telephony.ari import AriClient, AriEvent
from ivr.telephony.personas import number_for
from tests.support.calls import CallTracker, place_call

RESIDENT = number_for(100, 1)  # answers and stays on the line


def _finished(playback_id: str):  # type: ignore[no-untyped-def]
    def match(event: AriEvent) -> bool:
        return event.type == "PlaybackFinished" and event.data["playback"]["id"] == playback_id

    return match


async def measure(ari: AriClient, channel: str, rounds: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"prompt played": [], "tone stopped": []}
    for n in range(rounds):
        done = ari.expect(_finished(f"prompt-{n}"))
        started = time.perf_counter()
        await ari.play(channel, ["sound:hello-world"], playback_id=f"prompt-{n}")
        await asyncio.wait_for(done, 10)
        figures["prompt played"].append(time.perf_counter() - started)

        tone = await ari.play(channel, ["tone:ring"])
        await asyncio.sleep(0.3)
        done = ari.expect(_finished(tone.id))
        started = time.perf_counter()
        await ari.stop_playback(tone.id)
        await asyncio.wait_for(done, 5)
        figures["tone stopped"].append(time.perf_counter() - started)
    return figures


async def run(app: App, rounds: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {}

    async def on_answer(tracker: CallTracker) -> None:
        figures.update(await measure(tracker.ari, tracker.channel_id, rounds))

    ari = app.ari()
    await ari.start()
    try:
        await place_call(ari, RESIDENT, on_answer=on_answer, max_seconds=60 + rounds * 5)
    finally:
        await ari.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()

    from tests.support.instance import destroy, make_instance, start_or_fail

    app, _ = make_instance(prefix="ivr-bench-ari-")
    try:
        start_or_fail(app)
        figures = asyncio.run(run(app, args.rounds))
    finally:
        destroy(app)
    if not figures:
        raise SystemExit("the call ended before the measurements were done")
    print(f"ARI playback on the real Asterisk, {args.rounds} rounds on one call (seconds)")
    print(f"{'':<16} {'fastest':>8} {'median':>8} {'slowest':>8}")
    for name, values in figures.items():
        print(f"{name:<16} {min(values):8.3f} {statistics.median(values):8.3f} {max(values):8.3f}")


if __name__ == "__main__":
    main()
