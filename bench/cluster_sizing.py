"""Benchmark: what one concurrent call costs OUR node (the figures behind `ivr plan`).

    .venv/bin/python -m bench.cluster_sizing [--levels 20,50,100] [--window 30] [--rate 10]
        [--json] [--keep]

Prints figures; it is not a test. Two Asterisks on loopback, each in a private data
directory with its own ports, and one ``ivr telephony`` worker; everything it starts it
stops (also on Ctrl-C or an error).

- The residents' Asterisk: a second instance that is not measured. An ``anonymous``
  PJSIP endpoint takes every INVITE (our node's From user names no endpoint there) into
  the context ``sizing-resident``: answer, then speak ``sim-audio/01`` in a loop until the
  caller hangs up (a real phone sends audio all the time).
- Our node: an Asterisk whose trunk (``[pbx] trunk_host/trunk_port``) points at the
  residents' Asterisk, so each call is ONE channel on our node (as with a real SIP
  provider; the loopback trunk would make two), and the real ``ivr telephony`` worker (a
  subprocess, as an operator runs it) dialling a campaign of ``bench/flows/sizing-hold
  .yaml``: an 89-s spoken introduction (both directions carry audio), one open answer
  recorded for up to 20 s (the resident is still speaking), goodbye.
- For each level N: a campaign of N contacts at ``--rate`` calls/s. Once N calls are
  answered (our Asterisk's channel count), a ``--window`` s window: CPU of our Asterisk
  and of our worker (utime + stime from /proc/PID/stat; the worker with its children),
  resident memory (VmRSS) of both, UDP sockets bound in our RTP port range
  (/proc/net/udp), and RTP packets each way (Asterisk's per-channel RTP counters,
  ``pjsip show channelstats``, read at both ends of the window). The calls then run to
  their end; their recordings are sized (bytes per recorded minute, from the WAV header's
  duration).
- Idle baseline: the same figures with the worker running and no call, before the first
  level. Per-call figures are (level - idle) / N; the table shows each level and the
  least-squares slope over the levels.

CPU figures are percent of ONE core. Other processes on this machine (other engineers'
Asterisks and tests) do not enter the figures except through contention; the machine's
busy share is printed so a disturbed run shows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.campaign_load import (
    CLK_TCK,
    Children,
    ami_connect,
    channel_count,
    cpu_ticks,
    machine_ticks,
)

ROOT = Path(__file__).resolve().parent.parent
FLOW = ROOT / "bench" / "flows" / "sizing-hold.yaml"
FLOW_SECONDS = 115  # the flow's call: ~89 s introduction, 20 s recording, goodbye
RESIDENT_CONTEXT = "sizing-resident"
RESIDENT_FILE = "sizing-resident.conf"
# G.711 at 20 ms: 160 bytes of audio + 12 RTP + 8 UDP + 20 IPv4 = 200 bytes an IP packet;
# + 18 Ethernet header/FCS = 218 bytes (the usual "87.2 kbit/s" per direction).
RTP_PAYLOAD = 160
IP_OVERHEAD = 12 + 8 + 20
ETHERNET_OVERHEAD = 18


# --------------------------------------------------------------------------- /proc
def rss_kib(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def udp_ports_in(start: int, end: int) -> int:
    """UDP sockets bound on a local port in [start, end] (IPv4 and IPv6)."""
    count = 0
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local = line.split()[1]
            port = int(local.rsplit(":", 1)[1], 16)
            if start <= port <= end:
                count += 1
    return count


def channel_rtp_counts(text: str) -> dict[str, tuple[int, int]]:
    """(received, sent) RTP packets per channel from `pjsip show channelstats`.

    Its rows: BridgeId ChannelId ........ UpTime Codec Count Lost Pct Jitter Count Lost Pct
    Jitter RTT; the first Count is the packets received, the second the packets sent.
    """
    out: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        parts = line.split()
        # A row ends with its up time and 10 columns (codec, then the counts).
        if len(parts) < 12 or not re.fullmatch(r"\d+:\d+:\d+", parts[-11]):
            continue
        try:
            rx = int(parts[-9])
            tx = int(parts[-5])
        except ValueError:
            continue
        out[" ".join(parts[:-11])] = (rx, tx)
    return out


def install_residents(app: Any, context: str) -> None:
    """Make ``app``'s (running) Asterisk the residents' Asterisk: an ``anonymous`` endpoint
    takes every INVITE whose From user names no endpoint there (another node's trunk) into
    ``context`` (RESIDENT_CONTEXT: answers and speaks until hung up; or the simulated
    residents' "simulated-residents", where the number selects a persona)."""
    pbx = app.pbx()
    etc = app.settings.data_dir / "pbx" / "etc"
    audio = app.settings.data_dir / "pbx" / "sim-audio" / "01"
    if not audio.with_suffix(".wav").is_file():
        raise RuntimeError(f"{audio}.wav is missing: the residents would have nothing to say")
    (etc / RESIDENT_FILE).write_text(
        "; The residents of bench/cluster_sizing.py: answer, then speak until hung up.\n"
        f"[{RESIDENT_CONTEXT}]\n"
        "exten => _[+0-9].,1,Answer()\n"
        f" same => n(talk),Playback({audio})\n"
        " same => n,Goto(talk)\n"
    )
    ext = etc / "extensions.conf"
    ext.write_text(ext.read_text().rstrip("\n") + f"\n\n#include {RESIDENT_FILE}\n")
    pj = etc / "pjsip.conf"
    pj.write_text(
        pj.read_text().rstrip("\n") + f"\n\n[anonymous](endpoint-common)\ncontext = {context}\n"
    )
    pbx.cli("dialplan reload")
    pbx.cli("module reload res_pjsip.so")
    deadline = time.monotonic() + 10
    while "anonymous" not in str(pbx.cli("pjsip show endpoints")):
        if time.monotonic() > deadline:
            raise RuntimeError("the residents' Asterisk did not load its anonymous endpoint")
        time.sleep(0.2)
    if "Playback" not in str(pbx.cli(f"dialplan show {RESIDENT_CONTEXT}")):
        raise RuntimeError(f"the residents' Asterisk did not load [{RESIDENT_CONTEXT}]")


# --------------------------------------------------------------------------- figures
@dataclass
class Level:
    calls: int  # the level asked for
    held: int  # the fewest channels seen during the window
    seconds: float
    asterisk_cpu: float  # % of one core
    worker_cpu: float
    residents_cpu: float  # not ours: for the record
    machine_busy: float  # % of the whole machine (all cores = 100 * nproc)
    asterisk_rss_mib: float
    worker_rss_mib: float
    rtp_sockets: int
    rx_pps: float  # RTP packets per second received by our node, all calls
    tx_pps: float
    channels_sampled: int
    # The whole level, from the campaign's start until its last call ended, per call:
    # CPU milliseconds of the worker and of our Asterisk (set after the level).
    worker_ms_per_call: float | None = None
    asterisk_ms_per_call: float | None = None


@dataclass
class Result:
    levels: list[Level] = field(default_factory=list)
    idle: Level | None = None
    recordings: int = 0
    recorded_seconds: float = 0.0
    recorded_bytes: int = 0
    calls_placed: int = 0
    calls_answered: int = 0
    answers_stored: int = 0
    notes: list[str] = field(default_factory=list)

    def per_call(self) -> dict[str, float | None]:
        """Per-call figures: least-squares slope over (idle, levels)."""
        if self.idle is None or not self.levels:
            return {}
        points = [self.idle, *self.levels]
        xs = [float(p.held) for p in points]

        def slope(attr: str) -> float:
            ys = [float(getattr(p, attr)) for p in points]
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            sxx = sum((x - mx) ** 2 for x in xs)
            return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx

        rx = slope("rx_pps")
        tx = slope("tx_pps")
        minute = (
            self.recorded_bytes / self.recorded_seconds * 60 / 1e6
            if self.recorded_seconds
            else None
        )
        return {
            "cpu_pct_asterisk": slope("asterisk_cpu"),
            "cpu_pct_worker": slope("worker_cpu"),
            "cpu_pct_node": slope("asterisk_cpu") + slope("worker_cpu"),
            "rss_mib_asterisk": slope("asterisk_rss_mib"),
            "rss_mib_worker": slope("worker_rss_mib"),
            "rtp_ports": slope("rtp_sockets"),
            "rx_pps": rx,
            "tx_pps": tx,
            "rx_kbit_ip": rx * (RTP_PAYLOAD + IP_OVERHEAD) * 8 / 1000,
            "tx_kbit_ip": tx * (RTP_PAYLOAD + IP_OVERHEAD) * 8 / 1000,
            "kbit_ethernet_at_50pps": 50
            * (RTP_PAYLOAD + IP_OVERHEAD + ETHERNET_OVERHEAD)
            * 8
            / 1000,
            "recording_mb_per_minute": minute,
        }


# --------------------------------------------------------------------------- the bench
class Sizing:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.children = Children()
        self.res_dir = Path(tempfile.mkdtemp(prefix="ivr-size-res-"))
        self.node_dir = Path(tempfile.mkdtemp(prefix="ivr-size-node-"))
        self.res_app: Any = None
        self.app: Any = None
        self.env: dict[str, str] = {}
        self.worker: subprocess.Popen[bytes] | None = None
        self.result = Result()

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        from ivr.bootstrap import init
        from ivr.config import load_settings
        from ivr.pbx import tree
        from tests.support.instance import instance_env
        from tests.support.ports import free_range

        max_calls = max(self.args.levels)
        size = max(400, 4 * max_calls + 200)
        node_rtp = free_range(size, start=30000)
        res_rtp = free_range(size, start=node_rtp + size)
        res_env = instance_env(self.res_dir, rtp_size=size)
        res_env["IVR_PBX_RTP_START"] = str(res_rtp)
        res_env["IVR_PBX_RTP_END"] = str(res_rtp + size - 1)
        self.res_app, _ = init(load_settings(environ=res_env))
        tree.build(self.res_app.settings, lambda line: None)
        self.res_app.pbx().start()
        self.install_residents()

        env = instance_env(self.node_dir, rtp_size=size)
        taken = {res_env[k] for k in ("IVR_PBX_SIP_PORT", "IVR_PBX_AMI_PORT", "IVR_PBX_ARI_PORT")}
        if taken & {env[k] for k in ("IVR_PBX_SIP_PORT", "IVR_PBX_AMI_PORT", "IVR_PBX_ARI_PORT")}:
            raise RuntimeError("the two instances were given the same port; run again")
        env["IVR_PBX_RTP_START"] = str(node_rtp)
        env["IVR_PBX_RTP_END"] = str(node_rtp + size - 1)
        env["IVR_PBX_TRUNK_HOST"] = "127.0.0.1"
        env["IVR_PBX_TRUNK_PORT"] = res_env["IVR_PBX_SIP_PORT"]
        env["IVR_TELEPHONY_NODE_NAME"] = "sizing-node"
        self.env = env
        self.rtp_range = (node_rtp, node_rtp + size - 1)
        self.app, _ = init(load_settings(environ=env))
        # Once: the shared working tree may gain a migration while this runs.
        self.admin = self.app.campaigns()
        self.app.pbx().start()
        self.asterisk_pid = self.app.pbx().pid()
        self.res_pid = self.res_app.pbx().pid()

    def install_residents(self) -> None:
        install_residents(self.res_app, RESIDENT_CONTEXT)

    def child_env(self) -> dict[str, str]:
        full = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
        full.update(self.env)
        return full

    def start_worker(self) -> None:
        log = self.node_dir / "worker.log"
        proc: subprocess.Popen[bytes] = self.children.start(
            [sys.executable, "-m", "ivr.cli", "telephony"], self.child_env(), log
        )
        deadline = time.monotonic() + 60
        while "is running" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "`ivr telephony` did not start:\n" + log.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.1)
        self.worker = proc

    def cleanup(self) -> None:
        self.children.stop_all()
        for app in (self.app, self.res_app):
            if app is not None:
                with contextlib.suppress(Exception):
                    app.pbx().stop()
        for d in (self.node_dir, self.res_dir):
            if self.args.keep:
                print(f"kept {d}")
            else:
                shutil.rmtree(d, ignore_errors=True)

    # ------------------------------------------------------------------ measuring
    async def measure(self, ami: Any, level: int, seconds: float) -> Level:
        pbx = self.app.pbx()
        worker_pid = self.worker.pid if self.worker else None
        stats0 = channel_rtp_counts(await asyncio.to_thread(pbx.cli, "pjsip show channelstats"))
        t0 = time.monotonic()
        a0 = cpu_ticks(self.asterisk_pid, descendants=False)
        w0 = cpu_ticks(worker_pid)
        r0 = cpu_ticks(self.res_pid, descendants=False)
        m0 = machine_ticks()
        held = 10**9
        rss_a: list[int] = []
        rss_w: list[int] = []
        sockets: list[int] = []
        while time.monotonic() - t0 < seconds:
            counts = await channel_count(ami)
            if counts is not None:
                held = min(held, counts[0])
            rss_a.append(rss_kib(self.asterisk_pid) or 0)
            rss_w.append(rss_kib(worker_pid) or 0)
            sockets.append(udp_ports_in(*self.rtp_range))
            await asyncio.sleep(1.0)
        a1 = cpu_ticks(self.asterisk_pid, descendants=False)
        w1 = cpu_ticks(worker_pid)
        r1 = cpu_ticks(self.res_pid, descendants=False)
        m1 = machine_ticks()
        t1 = time.monotonic()
        stats1 = channel_rtp_counts(await asyncio.to_thread(pbx.cli, "pjsip show channelstats"))
        dt = t1 - t0
        # RTP counters of the channels present at both ends of the window.
        both = set(stats0) & set(stats1)
        rx = sum(stats1[c][0] - stats0[c][0] for c in both)
        tx = sum(stats1[c][1] - stats0[c][1] for c in both)
        scale = level / len(both) if both and level else 0.0  # to all calls held
        cores = os.cpu_count() or 1

        def pct(x0: int | None, x1: int | None) -> float:
            return 100.0 * ((x1 or 0) - (x0 or 0)) / CLK_TCK / dt

        return Level(
            calls=level,
            held=0 if held == 10**9 else held,
            seconds=dt,
            asterisk_cpu=pct(a0, a1),
            worker_cpu=pct(w0, w1),
            residents_cpu=pct(r0, r1),
            machine_busy=100.0 * ((m1[0] + m1[1]) - (m0[0] + m0[1])) / CLK_TCK / dt / cores,
            asterisk_rss_mib=sum(rss_a) / len(rss_a) / 1024,
            worker_rss_mib=sum(rss_w) / len(rss_w) / 1024,
            rtp_sockets=round(sum(sockets) / len(sockets)),
            rx_pps=rx / dt * scale,
            tx_pps=tx / dt * scale,
            channels_sampled=len(both),
        )

    async def wait_channels(self, ami: Any, want: int, timeout: float, at_least: bool) -> int:
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline:
            counts = await channel_count(ami)
            if counts is not None:
                last = counts[0]
                if (last >= want) if at_least else (last <= want):
                    return last
            await asyncio.sleep(0.5)
        return last

    async def run_level(self, ami: Any, n: int, measure: bool = True) -> Level | None:
        from ivr.accounts.audit import Actor
        from ivr.campaigns.admin import CampaignSettings

        cli = Actor.cli()
        admin = self.admin
        name = f"sizing-{n}" if measure else "sizing-warm-up"
        csv = self.node_dir / f"{name}.csv"
        base = 1000 * (len(self.result.levels) + 1) if measure else 0
        csv.write_text("phone\n" + "".join(f"+35850999{base + i:04d}\n" for i in range(n)))
        admin.create(
            cli,
            name,
            FLOW,
            CampaignSettings(
                windows="mon-sun 00:00-23:59",
                allow_holidays=True,
                calls_per_second=self.args.rate,
                max_concurrent=n,
                cross_campaign_daily_cap=False,
                max_attempts=1,
            ),
        )
        imported = admin.import_contacts(cli, name, csv)
        if imported["accepted"] != n:
            raise RuntimeError(f"{name}: {imported}")
        worker_pid = self.worker.pid if self.worker else None
        whole0 = (cpu_ticks(worker_pid), cpu_ticks(self.asterisk_pid, descendants=False))
        await asyncio.to_thread(admin.start, cli, name)
        ramp = n / self.args.rate + 30
        got = await self.wait_channels(ami, n, ramp, at_least=True)
        if got < n:
            raise RuntimeError(f"level {n}: only {got} channels after {ramp:.0f} s")
        if not measure:
            left = await self.wait_channels(ami, 0, 240, at_least=False)
            if left != 0:
                raise RuntimeError(f"warm-up: {left} channels still up 240 s later")
            return None
        await asyncio.sleep(self.args.settle)
        print(f"  level {n}: {got} calls up; measuring {self.args.window:.0f} s", flush=True)
        level = await self.measure(ami, n, self.args.window)
        print(f"    {level}", flush=True)
        left = await self.wait_channels(ami, 0, 240, at_least=False)
        if left != 0:
            self.result.notes.append(f"level {n}: {left} channels still up 240 s later")
        whole1 = (cpu_ticks(worker_pid), cpu_ticks(self.asterisk_pid, descendants=False))
        if None not in whole0 and None not in whole1:
            level.worker_ms_per_call = 1000 * (whole1[0] - whole0[0]) / CLK_TCK / n  # type: ignore[operator]
            level.asterisk_ms_per_call = 1000 * (whole1[1] - whole0[1]) / CLK_TCK / n  # type: ignore[operator]
        return level

    def db_counts(self) -> None:
        from ivr.store.db import sqlite_path

        path = sqlite_path(self.app.settings.database_url)
        assert path is not None
        db = sqlite3.connect(path)
        try:

            def q(sql: str) -> int:
                return int(db.execute(sql).fetchone()[0])

            self.result.calls_placed = q("SELECT count(*) FROM calls")
            self.result.calls_answered = q(
                "SELECT count(*) FROM calls WHERE answered_at IS NOT NULL"
            )
            self.result.answers_stored = q("SELECT count(*) FROM answers")
        finally:
            db.close()

    def size_recordings(self) -> None:
        seen: set[str] = set()
        for wav_path in self.node_dir.rglob("*.wav"):
            if (
                "sim-audio" in wav_path.parts
                or "prompts" in wav_path.parts
                or "cache" in wav_path.parts
            ):
                continue
            if wav_path.name in seen or "sounds" in wav_path.parts:
                continue
            try:
                with wave.open(str(wav_path), "rb") as w:
                    secs = w.getnframes() / w.getframerate()
            except (wave.Error, EOFError, OSError):
                continue
            if secs <= 0.5:
                continue
            seen.add(wav_path.name)
            self.result.recordings += 1
            self.result.recorded_seconds += secs
            self.result.recorded_bytes += wav_path.stat().st_size

    async def run(self) -> Result:
        pbx = self.app.settings.pbx
        creds = self.app.credentials
        ami = await ami_connect(
            pbx.bind_address, pbx.ami_port, creds.ami_username, creds.ami_password, "off"
        )
        try:
            # Warm-up: the worker's first calls load the flow, render its prompts and
            # import what calls need; that one-off memory is not a per-call figure.
            print(f"  warm-up: {self.args.warmup} calls", flush=True)
            await self.run_level(ami, self.args.warmup, measure=False)
            await asyncio.sleep(5)
            print(f"  idle: measuring {self.args.idle:.0f} s", flush=True)
            self.result.idle = await self.measure(ami, 0, self.args.idle)
            print(f"    {self.result.idle}", flush=True)
            for n in self.args.levels:
                level = await self.run_level(ami, n)
                assert level is not None
                self.result.levels.append(level)
        finally:
            ami.close()
        self.db_counts()
        self.size_recordings()
        return self.result


# --------------------------------------------------------------------------- report
def report(r: Result) -> None:
    cores = os.cpu_count()
    print(f"\nOur node only (this machine: {cores} cores; CPU in % of one core)")
    head = (
        f"{'calls':>6} {'held':>5} {'Asterisk CPU':>12} {'worker CPU':>10} {'node CPU':>9} "
        f"{'Ast RSS MiB':>11} {'wkr RSS MiB':>11} {'RTP socks':>9} {'rx pkt/s':>9} "
        f"{'tx pkt/s':>9} {'residents CPU':>13} {'machine busy':>12}"
    )
    print(head)
    rows = ([r.idle] if r.idle else []) + r.levels
    for lv in rows:
        print(
            f"{lv.calls:>6} {lv.held:>5} {lv.asterisk_cpu:>11.1f}% {lv.worker_cpu:>9.1f}% "
            f"{lv.asterisk_cpu + lv.worker_cpu:>8.1f}% {lv.asterisk_rss_mib:>11.1f} "
            f"{lv.worker_rss_mib:>11.1f} {lv.rtp_sockets:>9} {lv.rx_pps:>9.0f} {lv.tx_pps:>9.0f} "
            f"{lv.residents_cpu:>12.1f}% {lv.machine_busy:>11.0f}%"
        )
    print("\nPer concurrent call (least-squares slope over idle and the levels):")
    for lv in r.levels:
        if r.idle and lv.held:
            node = lv.asterisk_cpu + lv.worker_cpu - r.idle.asterisk_cpu - r.idle.worker_cpu
            print(
                f"  at {lv.held:>4} calls: node CPU {node / lv.held:.2f} % "
                "of a core per call ((level - idle) / calls)"
            )
    for key, value in r.per_call().items():
        print(f"  {key:<28} {'-' if value is None else f'{value:.3f}'}")
    print(
        f"\nRecordings: {r.recordings} files, {r.recorded_seconds:.0f} s, {r.recorded_bytes} bytes;"
        f" calls placed {r.calls_placed}, answered {r.calls_answered}, answers stored "
        f"{r.answers_stored}"
    )
    for lv in r.levels:
        print(
            f"  level {lv.calls}: whole calls (start to end, ~{FLOW_SECONDS} s each): worker "
            f"{lv.worker_ms_per_call or 0:.0f} ms, Asterisk {lv.asterisk_ms_per_call or 0:.0f} ms "
            "of CPU per call"
        )
    for note in r.notes:
        print(f"  NOTE {note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--levels", default="20,50,100")
    parser.add_argument("--rate", type=float, default=10.0, help="calls/s while ramping up")
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured per level")
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--idle", type=float, default=15.0)
    parser.add_argument("--warmup", type=int, default=3, help="calls before the idle baseline")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    try:
        args.levels = [int(x) for x in args.levels.split(",") if x.strip()]
    except ValueError:
        parser.error("--levels: a comma-separated list of call counts, e.g. 20,50,100")
    if not args.levels or min(args.levels) < 1:
        parser.error("--levels: every level must be at least 1 call")
    bench = Sizing(args)
    try:
        bench.setup()
        bench.start_worker()
        result = asyncio.run(bench.run())
    finally:
        bench.cleanup()
    report(result)
    if args.json:
        print(json.dumps({**asdict(result), "per_call": result.per_call()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
