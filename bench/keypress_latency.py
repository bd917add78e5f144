"""Benchmark: key press to next prompt, as Asterisk timestamps it, under concurrent calls.

    .venv/bin/python -m bench.keypress_latency [--calls 20,100,250] [--db sqlite|postgresql|both]
        [--slow-commit-ms 0,200] [--seconds 60] [--out FILE]

Prints figures; it is not a test. Everything runs on loopback in private data directories
with their own Asterisk (and PostgreSQL) on free ports, and everything it starts it stops.

For each database (SQLite, PostgreSQL), each commit delay and each call count:

- The worker under test is the real telephony service (``App.telephony()``, as ``ivr
  telephony`` builds it, without the campaign dialer) run in a subprocess of its own
  (``--worker``), so that its CPU is measured alone and nothing of this benchmark shares
  its interpreter. With ``--slow-commit-ms N`` every commit of the worker's engine is
  delayed by N ms (a SQLAlchemy ``commit`` listener: it sleeps in the database writer's
  thread, before the commit, so SQLite's write lock is held that much longer too).
- Load: the worker places outbound calls (``TelephonyService.call``, as the dialer does)
  through the loopback trunk to simulated residents of persona 901, which run the script
  of the SIP header ``X-Sim-Script``: a key every 2-3 s (random per step). The flow
  ``bench/flows/keypress.yaml`` is ten ``choice`` questions in a loop; key 1 or 2
  answers (the answer is stored), key ``*`` repeats the question (nothing is stored).
  Every ``--repeaters``-th call keys only ``*``: those key presses write nothing. Calls
  are placed at ``--rate`` per second up to ``--calls`` concurrent answered calls, and a
  call that ends is replaced, so the count is held.
- The probe: this process connects a second ARI application (``kp-probe``) with
  ``subscribeAll=true`` and an event filter of its own (ChannelDtmfReceived,
  PlaybackStarted; a filter belongs to one application, the worker's is untouched). Each
  key press (Asterisk's ``timestamp`` of ChannelDtmfReceived) is paired with the next
  PlaybackStarted of a question on the same channel (its Asterisk timestamp); a
  re-prompt after no input (it starts with "En kuullut.") answers no key and is not a
  pair. Key presses are taken from ``--settle`` s after the count was first held, for
  ``--seconds`` s.

Figures: samples, p50/p95/p99 (ms) of all key presses; the same for the ``*`` presses
alone ("other calls": key presses that write nothing, whose prompt can only be delayed by
other calls' writes); held = the fewest concurrent answered calls during the window;
worker and Asterisk CPU (percent of one core; this machine has ``nproc`` cores).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.campaign_load import (
    CLK_TCK,
    Children,
    cpu_ticks,
    loadavg,
    machine_ticks,
    own_ticks,
    sigterm_as_interrupt,
)

ROOT = Path(__file__).resolve().parent.parent
FLOW = ROOT / "bench" / "flows" / "keypress.yaml"
PROBE_APP = "kp-probe"
PERSONA = 901  # answers and runs the X-Sim-Script header
LANGUAGE = "fi"
MAX_KEYS_PER_CALL = 90  # then the resident hangs up and the worker places a new call
PAIR_LIMIT_S = 10.0  # a key press with no prompt within this long counts as unanswered

# Goals of the issue, reported against.
GOAL_P99_MS = 100.0
GOAL_P99_CALLS = 250
GOAL_SLOW_ADDED_MS = 20.0


# --------------------------------------------------------------------------- the worker
def resident_steps(rng: random.Random, keys: list[str], seconds: float) -> list[Any]:
    """A 901 resident's steps: listen to the first prompt a little, then a key every 2-3 s
    (cycling through ``keys``) for about ``seconds`` (at most MAX_KEYS_PER_CALL keys), then
    hang up."""
    from ivr.telephony import personas as P

    steps = [P.wait(round(rng.uniform(1.5, 3.0), 1))]
    t = 0.0
    n = 0
    while t < seconds and n < MAX_KEYS_PER_CALL:
        steps.append(P.dtmf(keys[n % len(keys)]))
        gap = round(rng.uniform(2.0, 3.0), 1)
        steps.append(P.wait(gap))
        t += gap + 0.25
        n += 1
    steps.append(P.HANGUP)
    return steps


async def worker_main(cfg: dict[str, Any]) -> None:
    """The worker process: the real telephony service, placing and holding the calls.

    Prints ``MEDIA {json}`` (the question and re-prompt media), ``READY``, then once a
    second ``S <wall time> <placed> <answered> <ended> <failed>``; SIGTERM ends it (its
    live calls are hung up) and it prints ``DONE``."""
    import logging

    import sqlalchemy as sa

    from ivr.bootstrap import load_app
    from ivr.flows.loader import load_flow
    from ivr.telephony import personas as P

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = load_app()
    parts = app.telephony(node_name="bench-keypress")
    slow = float(cfg["slow_commit_ms"]) / 1000.0
    if slow > 0:
        # Runs in the database writer's thread, before each commit: every commit is late.
        sa.event.listen(parts.engine, "commit", lambda conn: time.sleep(slow))
    flow = load_flow(Path(cfg["flow"]))
    parts.prompts.prerender(flow)
    media: dict[str, list[str]] = {"question": [], "no_input": [], "invalid": []}
    for node in flow.nodes.values():
        if node.kind == "choice" and node.prompt is not None:
            media["question"].append(await parts.prompts.media(flow, node.prompt, LANGUAGE))
            if node.no_input is not None:
                media["no_input"].append(await parts.prompts.media(flow, node.no_input, LANGUAGE))
            if node.invalid is not None:
                media["invalid"].append(await parts.prompts.media(flow, node.invalid, LANGUAGE))
    print("MEDIA " + json.dumps(media), flush=True)
    await parts.start(dial=False)
    service = parts.service
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("READY", flush=True)

    target = int(cfg["calls"])
    rate = float(cfg["rate"])
    call_seconds = float(cfg["call_seconds"])
    repeaters = int(cfg["repeaters"])
    rng = random.Random(int(cfg.get("seed", 1)))
    counts = Counter[str]()
    live: set[asyncio.Task[None]] = set()

    async def one(serial: int) -> None:
        keys = ["*"] if repeaters and serial % repeaters == repeaters - 1 else ["1", "2"]
        steps = resident_steps(rng, keys, call_seconds)
        try:
            out = await service.call(
                P.number_for(PERSONA, serial % 10000),
                flow,
                LANGUAGE,
                caller_id="+358291234567",
                variables=P.script_variables(steps),
            )
            status = await out.done
            counts["ended"] += 1
            if status == "failed" or not out.placed:
                counts["failed"] += 1
        except Exception:
            counts["failed"] += 1
            counts["ended"] += 1
            logging.getLogger("bench").exception("a call failed")

    t0 = time.monotonic()
    placed = 0
    next_report = t0
    while not stop.is_set():
        now = time.monotonic()
        allowed = int((now - t0) * rate) + 1
        while len(live) < target and placed < allowed:
            task = asyncio.create_task(one(placed))
            live.add(task)
            task.add_done_callback(live.discard)
            placed += 1
        if now >= next_report:
            print(
                f"S {time.time():.3f} {placed} {len(service.sessions)} {counts['ended']} "
                f"{counts['failed']}",
                flush=True,
            )
            next_report += 1.0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)
    await service.end_live_calls()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*live, return_exceptions=True), 15)
    await parts.close()
    print("DONE", flush=True)


# --------------------------------------------------------------------------- the probe
def _ts(text: str) -> float:
    """Asterisk's event timestamp (``2025-01-31T12:00:00.123+0000``) as epoch seconds."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


@dataclass
class Probe:
    """The independent observer: its own ARI application, subscribed to every channel."""

    host: str
    port: int
    user: str
    password: str
    events: list[tuple[float, int, str, str, str]] = field(default_factory=list)
    # (asterisk time, arrival index, channel, "D" or "P", digit or first media uri)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    messages: int = 0

    async def run(self) -> None:
        import httpx
        import websockets

        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        url = f"ws://{self.host}:{self.port}/ari/events?app={PROBE_APP}&subscribeAll=true"
        async with websockets.connect(
            url, additional_headers={"Authorization": f"Basic {token}"}, max_size=None
        ) as ws:
            async with httpx.AsyncClient(auth=(self.user, self.password), timeout=10) as http:
                resp = await http.put(
                    f"http://{self.host}:{self.port}/ari/applications/{PROBE_APP}/eventFilter",
                    json={
                        "allowed": [{"type": "ChannelDtmfReceived"}, {"type": "PlaybackStarted"}],
                        "disallowed": [],
                    },
                )
                if resp.status_code >= 400:
                    print(f"  note: probe event filter not set ({resp.status_code}): all events")
            self.connected.set()
            async for message in ws:
                self.messages += 1
                data = json.loads(message)
                kind = data.get("type")
                if kind == "ChannelDtmfReceived":
                    channel = data.get("channel", {}).get("id", "")
                    self.events.append(
                        (_ts(data["timestamp"]), self.messages, channel, "D", data.get("digit", ""))
                    )
                elif kind == "PlaybackStarted":
                    pb = data.get("playback", {})
                    target = str(pb.get("target_uri", ""))
                    if target.startswith("channel:"):
                        self.events.append(
                            (
                                _ts(data["timestamp"]),
                                self.messages,
                                target.split(":", 1)[1],
                                "P",
                                str(pb.get("media_uri", "")),
                            )
                        )


@dataclass
class Pairs:
    """Key presses paired with the prompt that answered them."""

    latencies: list[tuple[float, float, str]] = field(default_factory=list)  # (key time, ms, digit)
    counts: Counter[str] = field(default_factory=Counter)


def pair(events: list[tuple[float, int, str, str, str]], media: dict[str, list[str]]) -> Pairs:
    """Per channel, in Asterisk's time order: each key press waits in a queue; a question's
    PlaybackStarted answers the oldest waiting key (a key answers with one prompt: the next
    question, or the same one again for ``*``); an "invalid" re-prompt answers it too but
    is no pair; a "no input" re-prompt answers no key."""
    questions = set(media["question"])
    no_input = set(media["no_input"])
    invalid = set(media["invalid"])
    by_channel: dict[str, list[tuple[float, int, str, str]]] = defaultdict(list)
    for ts, idx, channel, kind, value in events:
        by_channel[channel].append((ts, idx, kind, value))
    out = Pairs()
    for evs in by_channel.values():
        evs.sort()
        waiting: list[tuple[float, str]] = []
        for ts, _idx, kind, value in evs:
            if kind == "D":
                out.counts["keys"] += 1
                waiting.append((ts, value))
                continue
            # A prompt started: keys waiting too long are given up.
            while waiting and ts - waiting[0][0] > PAIR_LIMIT_S:
                waiting.pop(0)
                out.counts["key without prompt"] += 1
            if value in no_input:
                out.counts["no-input re-prompt"] += 1
                continue
            if not waiting:
                out.counts["prompt without key"] += 1  # the first question of a call
                continue
            key_ts, digit = waiting.pop(0)
            if value in invalid:
                out.counts["invalid re-prompt"] += 1
            elif value in questions:
                out.latencies.append((key_ts, 1000.0 * (ts - key_ts), digit))
            else:
                out.counts["other prompt"] += 1
        out.counts["key without prompt"] += len(waiting)
    return out


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


# --------------------------------------------------------------------------- one run
@dataclass
class Result:
    calls: int
    db: str
    slow_ms: int
    samples: int = 0
    p: dict[str, float | None] = field(default_factory=dict)
    other_samples: int = 0
    other_p: dict[str, float | None] = field(default_factory=dict)
    held_min: int | None = None
    held_mean: float | None = None
    reached_at: float | None = None  # seconds after the first call
    worker_cpu: float | None = None
    asterisk_cpu: float | None = None
    machine_busy: float | None = None
    others: float | None = None  # CPU of processes not ours (other people's work)
    counts: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    log_problems: int = 0
    note: str = ""


class Instance:
    """A data directory, its Asterisk and database (SQLite in it, or a PostgreSQL one)."""

    def __init__(self, db: str, rtp_ports: int, pg: Any) -> None:
        from ivr.bootstrap import init
        from ivr.config import load_settings
        from ivr.pbx import tree
        from tests.support.instance import instance_env

        self.db = db
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"ivr-bench-kp-{db}-"))
        env = instance_env(self.data_dir, rtp_size=rtp_ports)
        env["IVR_TELEPHONY_NODE_NAME"] = "bench-keypress"
        if db == "postgresql":
            from tests.support.postgres import create_database

            env["IVR_DATABASE_URL"] = create_database(pg.url(), f"ivr_kp_{os.getpid()}")
        self.env = env
        self.app: Any = None
        self.app, _ = init(load_settings(environ=env))
        tree.build(self.app.settings, lambda line: None)
        pbx = self.app.pbx()
        pbx.start()
        self.asterisk_pid = pbx.pid()

    def child_env(self) -> dict[str, str]:
        full = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
        full.update(self.env)
        return full

    def channels(self) -> list[str]:
        import httpx

        pbx, creds = self.app.settings.pbx, self.app.credentials
        resp = httpx.get(
            f"http://{pbx.bind_address}:{pbx.ari_port}/ari/channels",
            auth=(creds.ari_username, creds.ari_password),
            timeout=10,
        )
        resp.raise_for_status()
        return [c["id"] for c in resp.json()]

    def hang_up_all(self, wait: float = 30.0) -> int:
        """Wait for Asterisk to have no channel (hanging up what is left after ``wait``)."""
        import httpx

        pbx, creds = self.app.settings.pbx, self.app.credentials
        deadline = time.monotonic() + wait
        left = self.channels()
        while left and time.monotonic() < deadline:
            time.sleep(1.0)
            left = self.channels()
        for channel in left:
            with contextlib.suppress(httpx.HTTPError):
                httpx.delete(
                    f"http://{pbx.bind_address}:{pbx.ari_port}/ari/channels/{channel}",
                    auth=(creds.ari_username, creds.ari_password),
                    timeout=10,
                )
        return len(left)

    def close(self, keep: bool) -> None:
        if self.app is not None:
            with contextlib.suppress(Exception):
                self.app.pbx().stop()
        if keep:
            print(f"kept the data directory {self.data_dir}")
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)


async def run_one(
    inst: Instance, children: Children, args: argparse.Namespace, calls: int, slow_ms: int
) -> Result:
    res = Result(calls, inst.db, slow_ms)
    tag = f"{inst.db}-{calls}-{slow_ms}"
    pbx, creds = inst.app.settings.pbx, inst.app.credentials
    probe = Probe(pbx.bind_address, pbx.ari_port, creds.ari_username, creds.ari_password)
    probe_task = asyncio.create_task(probe.run())
    await asyncio.wait_for(probe.connected.wait(), 15)

    ramp = calls / args.rate
    call_seconds = ramp + args.hold_timeout + args.settle + args.seconds + 30
    cfg = {
        "calls": calls,
        "rate": args.rate,
        "slow_commit_ms": slow_ms,
        "flow": str(FLOW),
        "call_seconds": call_seconds,
        "repeaters": args.repeaters,
        "seed": calls * 1000 + slow_ms,
    }
    cfg_path = inst.data_dir / f"worker-{tag}.json"
    cfg_path.write_text(json.dumps(cfg))
    log = inst.data_dir / f"worker-{tag}.log"
    worker: subprocess.Popen[bytes] = children.start(
        [sys.executable, "-m", "bench.keypress_latency", "--worker", str(cfg_path)],
        inst.child_env(),
        log,
        stdout=subprocess.PIPE,
        stderr=log.open("ab"),
    )
    status: list[tuple[float, int, int, int, int]] = []  # (wall, placed, answered, ended, failed)
    media: dict[str, list[str]] = {}
    ready = threading.Event()
    done = threading.Event()

    def read() -> None:
        assert worker.stdout is not None
        for raw in worker.stdout:
            line = raw.decode(errors="replace").strip()
            if line.startswith("MEDIA "):
                media.update(json.loads(line[6:]))
            elif line == "READY":
                ready.set()
            elif line.startswith("S "):
                _, wall, placed, answered, ended, failed = line.split()
                status.append((float(wall), int(placed), int(answered), int(ended), int(failed)))
            elif line == "DONE":
                done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not await asyncio.to_thread(ready.wait, 120):
            raise RuntimeError("the worker did not start:\n" + log.read_text()[-3000:])
        t_first = time.time()
        print(f"  [{tag}] worker pid {worker.pid}: ramping to {calls} calls", flush=True)
        # Ramp: until the count is held (or the hold timeout passes).
        deadline = time.monotonic() + ramp + args.hold_timeout
        while time.monotonic() < deadline:
            if status and status[-1][2] >= calls:
                break
            if worker.poll() is not None:
                raise RuntimeError("the worker exited:\n" + log.read_text()[-3000:])
            await asyncio.sleep(0.5)
        reached = status[-1][2] if status else 0
        res.reached_at = time.time() - t_first
        if reached < calls:
            res.note = f"held {reached} of {calls} after {res.reached_at:.0f} s"
            print(
                f"  [{tag}] only {reached} answered calls after {res.reached_at:.0f} s", flush=True
            )
        await asyncio.sleep(args.settle)

        def ticks() -> tuple[float, int | None, int | None, tuple[int, int, int]]:
            """(monotonic, worker CPU, Asterisk CPU, machine CPU) now."""
            return (
                time.monotonic(),
                cpu_ticks(worker.pid),
                cpu_ticks(inst.asterisk_pid, False),
                machine_ticks(),
            )

        w0 = time.time()
        o0 = own_ticks()
        m0, a0, k0, s0 = ticks()
        next_print = time.monotonic() + 10
        while time.time() < w0 + args.seconds:
            await asyncio.sleep(0.5)
            if worker.poll() is not None:
                raise RuntimeError("the worker exited:\n" + log.read_text()[-3000:])
            if time.monotonic() >= next_print and status:
                next_print += 10
                s = status[-1]
                print(
                    f"  [{tag}] t={time.time() - w0:5.0f}s answered={s[2]} placed={s[1]} "
                    f"ended={s[3]} keys seen={sum(1 for e in probe.events if e[3] == 'D')} "
                    f"load={loadavg()[0]:.2f}",
                    flush=True,
                )
        w1 = time.time()
        o1 = own_ticks()
        m1, a1, k1, s1 = ticks()
        # Prompts answering the last keys of the window come a moment later.
        await asyncio.sleep(2.0)
    finally:
        children.stop(worker, timeout=40)
        probe_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await probe_task
        reader.join(5)
    dt = m1 - m0
    if a0 is not None and a1 is not None:
        res.worker_cpu = 100.0 * (a1 - a0) / CLK_TCK / dt
    if k0 is not None and k1 is not None:
        res.asterisk_cpu = 100.0 * (k1 - k0) / CLK_TCK / dt
    res.machine_busy = 100.0 * ((s1[0] - s0[0]) + (s1[1] - s0[1])) / CLK_TCK / dt
    if None not in (a0, a1, k0, k1):
        ours = (a1 - a0) + (k1 - k0) + (o1 - o0)  # type: ignore[operator]
        res.others = 100.0 * (s1[0] - s0[0] - ours) / CLK_TCK / dt
    during = [s[2] for s in status if w0 <= s[0] <= w1]
    if during:
        res.held_min = min(during)
        res.held_mean = sum(during) / len(during)
    res.failed = status[-1][4] if status else 0
    pairs = pair(probe.events, media)
    res.counts = pairs.counts
    window = [(ms, d) for ts, ms, d in pairs.latencies if w0 <= ts < w1]
    all_ms = [ms for ms, _ in window]
    other_ms = [ms for ms, d in window if d == "*"]
    res.samples, res.other_samples = len(all_ms), len(other_ms)
    for q in (50, 95, 99):
        res.p[f"p{q}"] = percentile(all_ms, q)
        res.other_p[f"p{q}"] = percentile(other_ms, q)
    text = log.read_text(errors="replace")
    res.log_problems = sum(
        1 for ln in text.splitlines() if " ERROR " in ln or " WARNING " in ln or "Traceback" in ln
    )
    left = await asyncio.to_thread(inst.hang_up_all)
    if left:
        print(f"  [{tag}] hung up {left} channel(s) left after the worker stopped", flush=True)
    return res


# --------------------------------------------------------------------------- report
def _f(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(results: list[Result]) -> list[str]:
    out = [
        f"{'calls':>5} {'held':>9} {'db':>10} {'slow':>5} | {'samples':>7} {'p50':>5} "
        f"{'p95':>5} {'p99':>5} | {'other':>5} {'p50':>5} {'p95':>5} {'p99':>5} | "
        f"{'worker':>6} {'ast.':>5} {'mach.':>5} {'others':>6}",
        f"{'':>5} {'min/mean':>9} {'':>10} {'ms':>5} | {'(all keys, ms)':>25} | "
        f"{'(* keys: no write, ms)':>23} | {'CPU % of one core':>25}",
    ]
    for r in results:
        held = f"{_f(r.held_min)}/{_f(r.held_mean)}"
        out.append(
            f"{r.calls:>5} {held:>9} {r.db:>10} {r.slow_ms:>5} | {r.samples:>7} "
            f"{_f(r.p.get('p50')):>5} {_f(r.p.get('p95')):>5} {_f(r.p.get('p99')):>5} | "
            f"{r.other_samples:>5} {_f(r.other_p.get('p50')):>5} {_f(r.other_p.get('p95')):>5} "
            f"{_f(r.other_p.get('p99')):>5} | {_f(r.worker_cpu):>6} {_f(r.asterisk_cpu):>5} "
            f"{_f(r.machine_busy):>5} {_f(r.others):>6}"
        )
    return out


def goals(results: list[Result]) -> list[str]:
    out = []
    for r in results:
        if r.calls >= GOAL_P99_CALLS and r.slow_ms == 0:
            p99 = r.p.get("p99")
            ok = p99 is not None and p99 <= GOAL_P99_MS
            out.append(
                f"  p99 <= {GOAL_P99_MS:g} ms at {r.calls} calls ({r.db}): "
                f"{'MET' if ok else 'NOT MET'} (p99 {_f(p99)} ms)"
            )
    for r in results:
        if r.slow_ms == 0:
            continue
        base = next(
            (b for b in results if b.slow_ms == 0 and b.calls == r.calls and b.db == r.db), None
        )
        if base is None:
            continue
        for label, a, b in (
            ("all keys", base.p.get("p99"), r.p.get("p99")),
            ("* keys (no write)", base.other_p.get("p99"), r.other_p.get("p99")),
        ):
            if a is None or b is None:
                continue
            ok = b - a <= GOAL_SLOW_ADDED_MS
            out.append(
                f"  {r.slow_ms} ms slower commits add <= {GOAL_SLOW_ADDED_MS:g} ms to the p99 "
                f"({label}), {r.calls} calls, {r.db}: {'MET' if ok else 'NOT MET'} "
                f"({b - a:+.0f} ms: {a:.0f} -> {b:.0f})"
            )
    return out


# --------------------------------------------------------------------------- main
def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=_ints, default=[20, 100, 250], help="20,100,250")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--slow-commit-ms", type=_ints, default=[0, 200], help="commit delays to run (0,200)"
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window (60)")
    parser.add_argument("--rate", type=float, default=10.0, help="calls placed per second (10)")
    parser.add_argument("--settle", type=float, default=5.0, help="after the count is held (5)")
    parser.add_argument(
        "--hold-timeout", type=float, default=30.0, help="extra wait for the count to be held"
    )
    parser.add_argument(
        "--repeaters", type=int, default=5, help="every Nth call keys only * (5; 0: none)"
    )
    parser.add_argument("--rtp-ports", type=int, default=1600)
    parser.add_argument("--out", type=Path, help="also write the report here")
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        asyncio.run(worker_main(json.loads(args.worker.read_text())))
        return 0
    if max(args.calls) * 4 > args.rtp_ports:
        print(f"note: {args.rtp_ports} RTP ports hold at most {args.rtp_ports // 4} calls")
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    children = Children()
    results: list[Result] = []
    pg: Any = None
    started = time.monotonic()
    code = 0
    header = [
        f"key press -> next prompt (ChannelDtmfReceived -> PlaybackStarted, Asterisk's "
        f"timestamps); window {args.seconds:g} s after {args.settle:g} s settle; calls placed "
        f"at {args.rate:g}/s; every {args.repeaters}th call keys * only",
        f"machine: {os.cpu_count()} cores; load at start "
        + " ".join(f"{x:.2f}" for x in loadavg()),
    ]
    print("\n".join(header), flush=True)
    with sigterm_as_interrupt():
        try:
            if "postgresql" in dbs:
                from tests.support.postgres import start_postgres

                pg = start_postgres()
            for db in dbs:
                print(f"{db}: starting Asterisk ...", flush=True)
                inst = Instance(db, args.rtp_ports, pg)
                try:
                    for slow in args.slow_commit_ms:
                        for calls in args.calls:
                            res = asyncio.run(run_one(inst, children, args, calls, slow))
                            results.append(res)
                            print("\n".join(table([res])[2:]), flush=True)
                finally:
                    inst.close(args.keep)
        except KeyboardInterrupt:
            print("\ninterrupted: stopping everything this benchmark started", flush=True)
            code = 130
        finally:
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                children.stop_all()
                if pg is not None:
                    with contextlib.suppress(Exception):
                        pg.stop()
            finally:
                signal.signal(signal.SIGINT, previous)
    lines = ["", "=" * 100, *header, "=" * 100, *table(results), ""]
    for r in results:
        extra = dict(r.counts)
        lines.append(
            f"  {r.calls} calls {r.db} slow {r.slow_ms}: reached the count "
            f"{_f(r.reached_at)} s after the first call; failed calls {r.failed}; worker log "
            f"warnings/errors {r.log_problems}; probe: {extra}" + (f"; {r.note}" if r.note else "")
        )
    lines += ["", "goals:", *goals(results)]
    lines.append(f"\ntotal {time.monotonic() - started:.0f} s; load at end "
                 + " ".join(f"{x:.2f}" for x in loadavg()))  # fmt: skip
    text = "\n".join(lines)
    print(text, flush=True)
    if args.out:
        args.out.write_text(text + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
