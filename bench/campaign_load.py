"""Benchmark: an outbound campaign under load, our full stack against plain Asterisk.

    .venv/bin/python -m bench.campaign_load [--rate 20] [--minutes 5] [--contacts N]

Prints figures; it is not a test. Everything runs on loopback in a private data directory
with its own Asterisk and ports, and everything it starts it stops (also on Ctrl-C or an
error; only a SIGKILL of this process can leave its Asterisk behind).

A. Our full stack: a campaign over ``tests/e2e/flows/mini-survey.yaml`` (one question)
   whose contacts are simulated residents of persona 705 (answers, listens 12 s, keys 1:
   a ~13-14 s call), dialled by the real ``ivr telephony`` worker (a subprocess, run as an
   operator runs it) at ``--rate`` calls per second for ``--minutes``; then the campaign is
   stopped and the calls in flight are waited for.
B. Plain Asterisk: the same load without our Python. The same Asterisk (restarted, so
   that part A's memory does not carry over) gets a dialplan-only copy of the survey (the
   same rendered prompts, the same timeouts and re-prompt), and a small AMI driver
   (a subprocess, panoramisk) originates ``PJSIP/<number>@trunk`` into it with
   ``Originate`` (Async) at the same rate for the same time.

Sampled once per second on both sides: originations, concurrent answered calls (part A
from the database and from Asterisk's channel count; part B from the channel count, two
channels per loopback call), CPU of our worker or the AMI driver, of Asterisk and of this
process (from /proc/PID/stat, utime + stime, children included), and the load average.
CPU figures are percent of one core (this machine has ``nproc`` cores; 200 % is all of
two).

For a diagnosis (not for the figures: both cost the worker some CPU): ``--probe FILE``
runs the worker with timing probes (``bench/worker_probe.py``: database queue and lock
waits, ARI request and HTTP pool latencies, the event loop's lag) and prints their
summary; ``--py-spy FILE`` records the worker with py-spy (raw collapsed stacks, per
thread; ``.venv/bin/pip install py-spy`` first). ``--only ours|plain`` runs one side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FLOW = ROOT / "tests" / "e2e" / "flows" / "mini-survey.yaml"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PLAIN_CONTEXT = "bench-plain"
PLAIN_FILE = "bench-plain.conf"
CAMPAIGN = "bench-load"
RAMP_SECONDS = 20.0  # the mean concurrency and CPU "steady" figures start this long after
# the first call (a call lasts ~14 s, so concurrency has levelled off by then)

# Targets the figures are reported against.
TARGET_RATE = 20.0
TARGET_MINUTES = 5.0
TARGET_CONCURRENT = 250
# Pacing tolerance for "sustained": every 10-s window at >= 95 % of the rate (a window
# holds 200 +- a few calls at 20/s: the token bucket and 1-s sampling jitter).
WINDOW_TOLERANCE = 0.95


# --------------------------------------------------------------------------- /proc
def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _children(pid: int) -> list[int]:
    """Live descendants of ``pid`` (all threads' children, recursively)."""
    found: list[int] = []
    stack = [pid]
    while stack:
        parent = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                kids = Path(f"/proc/{parent}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for kid in kids:
                found.append(int(kid))
                stack.append(int(kid))
    return found


def cpu_ticks(pid: int | None, descendants: bool = True) -> int | None:
    """utime + stime of ``pid`` (all its threads), of its reaped children (cutime +
    cstime) and (``descendants``) of its live descendants, in clock ticks; None when it
    is gone."""
    if pid is None:
        return None
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # After the ")": state is index 0; utime, stime, cutime, cstime are 11..14.
    total = sum(int(v) for v in fields[11:15])
    for kid in _children(pid) if descendants else []:
        kf = _stat_fields(kid)
        if kf is not None:
            total += sum(int(v) for v in kf[11:15])
    return total


def own_ticks() -> int:
    """utime + stime of this process alone (its children, Asterisk among them, excluded)."""
    fields = _stat_fields(os.getpid())
    assert fields is not None
    return int(fields[11]) + int(fields[12])


def machine_ticks() -> tuple[int, int, int]:
    """All CPUs since boot, in clock ticks (/proc/stat): (time in processes: user + nice +
    system; time in interrupts: irq + softirq, e.g. loopback packet delivery, charged to
    no process; steal: taken by the hypervisor)."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return v[0] + v[1] + v[2], v[5] + v[6], v[7]


def loadavg() -> tuple[float, float, float]:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)


# --------------------------------------------------------------------------- AMI
async def ami_connect(host: str, port: int, user: str, secret: str, events: str) -> Any:
    """A logged-in panoramisk Manager (``events`` 'on' or 'off')."""
    from panoramisk import Manager

    manager = Manager(
        loop=asyncio.get_running_loop(),
        host=host,
        port=port,
        username=user,
        secret=secret,
        events=events,
        ping_delay=10,
        reconnect_timeout=1,
    )
    await asyncio.wait_for(manager.connect(), 10)
    deadline = time.monotonic() + 10
    while not manager.authenticated:
        if time.monotonic() > deadline:
            manager.close()
            raise RuntimeError(f"AMI login at {host}:{port} did not succeed")
        await asyncio.sleep(0.02)
    return manager


CHANNELS_RE = re.compile(r"(\d+) active channels?")
CALLS_RE = re.compile(r"(\d+) active calls?")
PROCESSED_RE = re.compile(r"(\d+) calls? processed")


def _output_text(message: Any) -> str:
    messages = message if isinstance(message, list) else [message]
    parts: list[str] = []
    for m in messages:
        out = m.get("Output")
        if isinstance(out, list):
            parts.extend(str(x) for x in out)
        elif out:
            parts.append(str(out))
        content = getattr(m, "content", "")
        if content:
            parts.append(str(content))
    return "\n".join(parts)


async def channel_count(manager: Any) -> tuple[int, int, int] | None:
    """(active channels, active calls, calls processed) from `core show channels count`."""
    try:
        reply = await asyncio.wait_for(manager.send_command("core show channels count"), 3)
    except (TimeoutError, OSError):
        return None
    text = _output_text(reply)
    found = [r.search(text) for r in (CHANNELS_RE, CALLS_RE, PROCESSED_RE)]
    if not all(found):
        return None
    return tuple(int(m.group(1)) for m in found)  # type: ignore[union-attr,return-value]


# --------------------------------------------------------------------------- samples
@dataclass
class Sample:
    t: float  # seconds since the side's start
    originated: int  # cumulative originations (attempts started / Originates sent)
    answered_db: int | None  # concurrent answered calls the database knows (part A)
    channels: int | None  # Asterisk's active channels
    driver_ticks: int | None  # our worker (A) or the AMI driver (B)
    asterisk_ticks: int | None
    self_ticks: int | None
    load1: float
    phase: str  # "run" or "drain"
    machine_proc: int = 0  # all CPUs' ticks in processes (/proc/stat user+nice+system)
    machine_irq: int = 0  # ... in irq + softirq
    machine_steal: int = 0


@dataclass
class SideResult:
    name: str
    samples: list[Sample]
    t_stop: float  # when originations stopped (s since start)
    t_first: float | None  # first origination
    originated: int  # during the run
    extra: dict[str, Any] = field(default_factory=dict)

    def run_samples(self) -> list[Sample]:
        return [s for s in self.samples if s.t <= self.t_stop + 1e-6]

    # ------------------------------------------------------------ derived figures
    def rate_mean(self) -> float:
        return self.originated / self.t_stop if self.t_stop > 0 else 0.0

    def rate_from_first(self) -> float:
        if self.t_first is None or self.t_stop <= self.t_first:
            return 0.0
        return self.originated / (self.t_stop - self.t_first)

    def windows(self, width: float = 10.0) -> list[tuple[float, float]]:
        """(start, calls/s) of consecutive 10-s windows from the first origination to the
        stop (a shorter last window is left out)."""
        run = self.run_samples()
        if self.t_first is None or not run:
            return []
        start_index = max((i for i, s in enumerate(run) if s.t <= self.t_first), default=0)
        out: list[tuple[float, float]] = []
        i = start_index
        while True:
            j = next(
                (k for k in range(i + 1, len(run)) if run[k].t - run[i].t >= width - 0.05),
                None,
            )
            if j is None:
                break
            a, b = run[i], run[j]
            out.append((a.t, (b.originated - a.originated) / (b.t - a.t)))
            i = j
        return out

    def concurrency(self, steady: bool = False) -> list[float]:
        """Concurrent answered calls per sample of the run (or its steady part): the
        database count on our side, channels / 2 on the plain side."""
        out: list[float] = []
        for s in self.steady() if steady else self.run_samples():
            if self.name == "ours" and s.answered_db is not None:
                out.append(float(s.answered_db))
            elif self.name != "ours" and s.channels is not None:
                out.append(s.channels / 2)
        return out

    def steady(self) -> list[Sample]:
        if self.t_first is None:
            return []
        return [s for s in self.run_samples() if s.t >= self.t_first + RAMP_SECONDS]

    def machine(self, what: str, steady: bool = False) -> float | None:
        """CPU % of the whole machine: "busy" (processes + interrupts), "irq" (irq and
        softirq), "steal", or "others" (processes that are not ours: other engineers'
        tests; our worker, driver, Asterisk and this benchmark are taken out)."""
        part = self.steady() if steady else self.run_samples()
        keys = ("driver_ticks", "asterisk_ticks", "self_ticks")
        ok = [s for s in part if all(getattr(s, k) is not None for k in keys)]
        if len(ok) < 2:
            return None
        return machine_pct(ok[0], ok[-1], what)

    def cpu(self, attr: str, steady: bool = False) -> float | None:
        """Percent of one core over the run (or its steady part)."""
        part = self.steady() if steady else self.run_samples()
        points = [(s.t, getattr(s, attr)) for s in part if getattr(s, attr) is not None]
        if len(points) < 2:
            return None
        (t0, c0), (t1, c1) = points[0], points[-1]
        return 100.0 * (c1 - c0) / CLK_TCK / (t1 - t0) if t1 > t0 else None


class Sampler:
    """Once a second: the callables' readings, CPU of the processes, load average."""

    def __init__(
        self,
        originated: Callable[[], int],
        answered_db: Callable[[], int | None],
        ami: Any,
        driver_pid: Callable[[], int | None],
        asterisk_pid: int | None,
    ) -> None:
        self.originated = originated
        self.answered_db = answered_db
        self.ami = ami
        self.driver_pid = driver_pid
        self.asterisk_pid = asterisk_pid
        self.samples: list[Sample] = []
        self.phase = "run"
        self.t0 = time.monotonic()

    async def run(self) -> None:
        tick = 0
        printed = 0.0
        while True:
            target = self.t0 + tick
            delay = target - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.sample()
            # Behind (a starved machine): skip the ticks already missed, never bunch up.
            tick = max(tick + 1, int(time.monotonic() - self.t0) + 1)
            s = self.samples[-1]
            if s.t - printed >= 10.0 - 0.5:
                printed = s.t
                conc = "-" if s.answered_db is None else str(s.answered_db)
                ch = "-" if s.channels is None else str(s.channels)
                print(
                    f"    t={s.t:6.1f}s {s.phase:5} originated={s.originated:6d} "
                    f"answered(db)={conc:>4} channels={ch:>4} load={s.load1:.2f}",
                    flush=True,
                )

    async def sample(self) -> None:
        counts = await channel_count(self.ami)
        answered = await asyncio.to_thread(self.answered_db)
        t = time.monotonic() - self.t0  # when the CPU figures below are read
        proc, irq, steal = machine_ticks()
        self.samples.append(
            Sample(
                t=t,
                originated=self.originated(),
                answered_db=answered,
                channels=counts[0] if counts else None,
                driver_ticks=cpu_ticks(self.driver_pid()),
                # Asterisk starts no processes; its ~1,000 threads need not be walked.
                asterisk_ticks=cpu_ticks(self.asterisk_pid, descendants=False),
                self_ticks=own_ticks(),
                load1=loadavg()[0],
                phase=self.phase,
                machine_proc=proc,
                machine_irq=irq,
                machine_steal=steal,
            )
        )


# --------------------------------------------------------------------------- processes
class Children:
    """Every subprocess this benchmark starts, stopped on the way out whatever happens."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self,
        argv: list[str],
        env: dict[str, str],
        log: Path,
        *,
        stdout: Any = None,
        stderr: Any = subprocess.STDOUT,
    ) -> Any:
        """Start ``argv`` in its own session; output to ``log`` unless told otherwise."""
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout if stdout is not None else log.open("ab"),
            stderr=stderr,
            start_new_session=True,
            cwd=ROOT,
        )
        self.procs.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int | None:
        """SIGTERM to its process group, SIGKILL after ``timeout``; then SIGKILL to what
        it left in its group (it ran in a session of its own, so the group is its own)."""
        if proc.poll() is not None:
            return proc.returncode
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.returncode

    def stop_all(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(Exception):
                self.stop(proc)


# --------------------------------------------------------------------------- the set-up
def contact_numbers(count: int) -> tuple[list[str], str]:
    """``count`` simulated residents: persona 705 (serials 0..9999), then, beyond 10,000,
    persona 114 (answers and stays silent 14 s: a call of the same length that ends
    ``partial``; no other 7PP script is a ~14 s call)."""
    from ivr.telephony.personas import number_for

    numbers = [number_for(705, n) for n in range(min(count, 10_000))]
    note = f"{len(numbers)} x persona 705"
    if count > 10_000:
        extra = count - 10_000
        if extra > 10_000:
            raise SystemExit("--contacts: at most 20,000 (10,000 of 705 and 10,000 of 114)")
        numbers += [number_for(114, n) for n in range(extra)]
        note += f" + {extra} x persona 114 (silent 14 s, ends partial)"
    return numbers, note


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.children = Children()
        self.data_dir = Path(tempfile.mkdtemp(prefix="ivr-bench-load-"))
        self.app: Any = None
        self.env: dict[str, str] = {}
        self.worker: subprocess.Popen[bytes] | None = None
        self.driver: subprocess.Popen[bytes] | None = None
        self.numbers, self.numbers_note = contact_numbers(args.contacts)

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        from ivr.bootstrap import init
        from ivr.config import load_settings
        from ivr.pbx import tree
        from tests.support.instance import instance_env

        env = instance_env(self.data_dir, rtp_size=self.args.rtp_ports)
        env["IVR_TELEPHONY_NODE_NAME"] = "bench-node"
        self.env = env
        self.app, _ = init(load_settings(environ=env))
        tree.build(self.app.settings, lambda line: None)
        self.start_pbx()

    def start_pbx(self) -> None:
        pbx = self.app.pbx()
        pbx.start()
        self.asterisk_pid = pbx.pid()

    def restart_pbx(self) -> None:
        pbx = self.app.pbx()
        pbx.stop()
        time.sleep(1.0)
        self.start_pbx()

    def cleanup(self) -> None:
        self.children.stop_all()
        if self.app is not None:
            with contextlib.suppress(Exception):
                self.app.pbx().stop()
        if self.args.keep:
            print(f"kept the data directory {self.data_dir}")
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def child_env(self) -> dict[str, str]:
        full = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
        full.update(self.env)
        return full

    @property
    def db_path(self) -> Path:
        from ivr.store.db import sqlite_path

        path = sqlite_path(self.app.settings.database_url)
        assert path is not None
        return path

    async def ami(self, events: str = "off") -> Any:
        pbx = self.app.settings.pbx
        creds = self.app.credentials
        return await ami_connect(
            pbx.bind_address, pbx.ami_port, creds.ami_username, creds.ami_password, events
        )

    # ------------------------------------------------------------------ part A
    def start_worker(self) -> subprocess.Popen[bytes]:
        log = self.data_dir / "worker.log"
        env = self.child_env()
        module = "ivr.cli"
        if self.args.probe:
            module = "bench.worker_probe"  # the same worker, with timing probes
            env["BENCH_PROBE_OUT"] = str(self.args.probe)
            self.args.probe.unlink(missing_ok=True)
        argv = [sys.executable, "-m", module] + ([] if self.args.probe else ["telephony"])
        proc: subprocess.Popen[bytes] = self.children.start(argv, env, log)
        deadline = time.monotonic() + 60
        while "is running" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "`ivr telephony` did not start:\n" + log.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.1)
        return proc

    async def run_ours(self) -> SideResult:
        from ivr.accounts.audit import Actor
        from ivr.campaigns.admin import CampaignSettings

        cli = Actor.cli()  # the command line: campaigns of no organisation
        args = self.args
        admin = self.app.campaigns()
        contacts_csv = self.data_dir / "contacts.csv"
        contacts_csv.write_text("phone\n" + "\n".join(self.numbers) + "\n")
        admin.create(
            cli,
            CAMPAIGN,
            FLOW,
            CampaignSettings(
                windows="mon-sun 00:00-23:59",
                allow_holidays=True,
                calls_per_second=args.rate,
                max_concurrent=args.max_concurrent,
                cross_campaign_daily_cap=False,
            ),
        )
        imported = admin.import_contacts(cli, CAMPAIGN, contacts_csv)
        assert imported["accepted"] == len(self.numbers), imported
        self.worker = worker = self.start_worker()
        print(f"  worker pid {worker.pid}, Asterisk pid {self.asterisk_pid}", flush=True)

        db = sqlite3.connect(self.db_path, timeout=5, check_same_thread=False)
        db.isolation_level = None  # autocommit: plain WAL reads, never a write lock
        db_lock = threading.Lock()

        def q(sql: str) -> int:
            with db_lock:
                return int(db.execute(sql).fetchone()[0])

        started_count = {"n": 0}

        def answered_db() -> int | None:
            try:
                started_count["n"] = q("SELECT count(*) FROM attempts WHERE started_at IS NOT NULL")
                return q(
                    "SELECT count(*) FROM calls WHERE status = 'active' AND answered_at IS NOT NULL"
                )
            except sqlite3.Error:
                return None

        ami = await self.ami()
        spy: subprocess.Popen[bytes] | None = None
        try:
            # Baseline sample, then start the campaign.
            sampler = Sampler(
                lambda: started_count["n"], answered_db, ami, lambda: worker.pid,
                self.asterisk_pid,
            )  # fmt: skip
            await asyncio.to_thread(admin.start, cli, CAMPAIGN)
            sampler.t0 = time.monotonic()
            wall_start = time.time()
            if args.py_spy:
                spy = self.children.start(
                    [
                        str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                        str(worker.pid), "--duration", str(int(args.minutes * 60)),
                        "--format", "raw", "--rate", "50", "--threads", "--nonblocking",
                        "--output", str(args.py_spy),
                    ],
                    self.child_env(),
                    self.data_dir / "py-spy.log",
                )  # fmt: skip
            task = asyncio.create_task(sampler.run())
            await asyncio.sleep(args.minutes * 60)
            await asyncio.to_thread(admin.stop, cli, CAMPAIGN, "benchmark over")
            t_stop = time.monotonic() - sampler.t0
            await asyncio.to_thread(answered_db)
            originated = started_count["n"]
            sampler.phase = "drain"
            drain_deadline = time.monotonic() + args.drain_timeout
            while time.monotonic() < drain_deadline:
                dialing = await asyncio.to_thread(
                    q, "SELECT count(*) FROM attempts WHERE state = 'dialing'"
                )
                active = await asyncio.to_thread(
                    q, "SELECT count(*) FROM calls WHERE status = 'active'"
                )
                if dialing == 0 and active == 0:
                    break
                await asyncio.sleep(1.0)
            drain_s = time.monotonic() - sampler.t0 - t_stop
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            samples = sampler.samples
        finally:
            ami.close()
            if spy is not None:
                await asyncio.to_thread(spy.wait, 60)
        # Integrity, while the worker still runs (it settles nothing more) and after.
        lost_before_stop = q("SELECT count(*) FROM attempts WHERE state = 'dialing'")
        rc = await asyncio.to_thread(Children.stop, worker)
        integrity = self.integrity(q, db)
        integrity["lost_before_worker_stop"] = lost_before_stop
        integrity["worker_exit"] = rc
        integrity["drain_seconds"] = drain_s
        integrity["wall_start"] = wall_start
        worker_log = (self.data_dir / "worker.log").read_text(errors="replace")
        integrity["worker_log_errors"] = sum(
            1 for line in worker_log.splitlines() if " ERROR " in line or "Traceback" in line
        )
        integrity["worker_log_warnings"] = sum(
            1 for line in worker_log.splitlines() if " WARNING " in line
        )
        integrity["worker_log_tail"] = worker_log.splitlines()[-5:]
        db.close()
        first = next((s.t for s in samples if s.originated > 0), None)
        # The first origination happened between the last sample without and the first with.
        return SideResult("ours", samples, t_stop, first, originated, integrity)

    @staticmethod
    def integrity(q: Callable[[str], int], db: sqlite3.Connection) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attempts": q("SELECT count(*) FROM attempts"),
            "claimed": q("SELECT count(*) FROM attempts WHERE claimed_by IS NOT NULL"),
            "started": q("SELECT count(*) FROM attempts WHERE started_at IS NOT NULL"),
            "calls_placed": q("SELECT count(*) FROM calls WHERE attempt_id IS NOT NULL"),
            "finished": q("SELECT count(*) FROM attempts WHERE state = 'done'"),
            "cancelled": q("SELECT count(*) FROM attempts WHERE state = 'cancelled'"),
            "lost": q("SELECT count(*) FROM attempts WHERE state = 'dialing'"),
            "still_due": q("SELECT count(*) FROM attempts WHERE state = 'due'"),
            "duplicates": q(
                "SELECT count(*) FROM (SELECT attempt_id FROM calls WHERE attempt_id IS NOT "
                "NULL GROUP BY attempt_id HAVING count(*) > 1)"
            ),
            "finished_without_call": q(
                "SELECT count(*) FROM attempts a WHERE a.state = 'done' AND a.outcome != "
                "'skipped' AND NOT EXISTS (SELECT 1 FROM calls c WHERE c.attempt_id = a.id)"
            ),
            "calls_active": q("SELECT count(*) FROM calls WHERE status = 'active'"),
        }
        out["outcomes"] = dict(
            db.execute(
                "SELECT coalesce(outcome, state), count(*) FROM attempts "
                "WHERE state IN ('done', 'dialing') GROUP BY 1 ORDER BY 2 DESC"
            ).fetchall()
        )
        out["call_status"] = dict(
            db.execute("SELECT status, count(*) FROM calls GROUP BY 1 ORDER BY 2 DESC").fetchall()
        )
        row = db.execute(
            "SELECT avg(ring_seconds), avg(talk_seconds), max(talk_seconds) FROM attempts "
            "WHERE state = 'done' AND answered_at IS NOT NULL"
        ).fetchone()
        out["ring_s"], out["talk_s"], out["talk_max_s"] = row
        ring = [
            r[0]
            for r in db.execute(
                "SELECT ring_seconds FROM attempts WHERE ring_seconds IS NOT NULL "
                "AND answered_at IS NOT NULL ORDER BY ring_seconds"
            )
        ]
        out["ring_p95_s"] = ring[int(0.95 * (len(ring) - 1))] if ring else None
        return out

    # ------------------------------------------------------------------ part B
    def prompt_paths(self) -> dict[str, str]:
        """The mini-survey's Finnish prompts as rendered for our worker (same audio)."""
        from ivr.flows.loader import load_flow
        from ivr.speech.prompts import PromptStore
        from ivr.telephony.prompt_media import PromptMedia

        flow = load_flow(FLOW)
        media = PromptMedia(
            PromptStore.from_settings(self.app.settings, self.app.settings.cache_dir / "prompts")
        )
        q1 = flow.nodes["q1"]
        assert q1.no_input is not None and q1.prompt is not None
        thanks = flow.nodes["thanks"].prompt
        assert thanks is not None
        paths = {
            "q1": media.render(flow, q1.prompt, "fi"),
            "no_input": media.render(flow, q1.no_input, "fi"),
            "thanks": media.render(flow, thanks, "fi"),
        }
        self.plain_timeout = q1.timeout
        self.plain_retries = q1.retries
        return {k: v.removeprefix("sound:") for k, v in paths.items()}

    def install_plain_dialplan(self) -> str:
        p = self.prompt_paths()
        timeout = f"{self.plain_timeout:g}"
        lines = [
            "; The mini survey in plain dialplan (bench/campaign_load.py): the same prompts,",
            "; timeout and re-prompts as our flow engine runs them, no Python involved.",
            f"[{PLAIN_CONTEXT}]",
            "exten => s,1,Set(TIMEOUT(absolute)=120)",
            " same => n,Set(TRY=0)",
            f" same => n(ask),Read(ANSWER,{p['q1']},1,,1,{timeout})",
            ' same => n,GotoIf($["${ANSWER}" != ""]?done)',
            " same => n,Set(TRY=$[${TRY} + 1])",
            f" same => n,GotoIf($[${{TRY}} > {self.plain_retries}]?done)",
            f" same => n,Playback({p['no_input']})",
            " same => n,Goto(ask)",
            f" same => n(done),Playback({p['thanks']})",
            " same => n,Hangup(16)",
            "",
        ]
        etc = self.data_dir / "pbx" / "etc"
        (etc / PLAIN_FILE).write_text("\n".join(lines))
        extensions = etc / "extensions.conf"
        text = extensions.read_text()
        if f"#include {PLAIN_FILE}" not in text:
            extensions.write_text(text.rstrip("\n") + f"\n\n#include {PLAIN_FILE}\n")
        pbx = self.app.pbx()
        pbx.cli("dialplan reload")
        shown = str(pbx.cli(f"dialplan show {PLAIN_CONTEXT}"))
        if "Read(ANSWER" not in shown:
            raise RuntimeError(f"`dialplan reload` did not load {PLAIN_CONTEXT}:\n{shown}")
        return shown

    async def run_plain(self) -> SideResult:
        args = self.args
        shown = self.install_plain_dialplan()
        print(
            f"  dialplan reload loaded [{PLAIN_CONTEXT}] "
            f"({sum(1 for ln in shown.splitlines() if ln.strip().startswith(chr(39)))} ext.)",
            flush=True,
        )
        pbx = self.app.settings.pbx
        creds = self.app.credentials
        seconds = args.minutes * 60
        total = int(math.ceil(args.rate * seconds)) + 5
        numbers = [self.numbers[i % len(self.numbers)] for i in range(total)]
        config = {
            "host": pbx.bind_address,
            "port": pbx.ami_port,
            "user": creds.ami_username,
            "secret": creds.ami_password,
            "rate": args.rate,
            "seconds": seconds,
            "numbers": numbers,
            "context": PLAIN_CONTEXT,
        }
        config_path = self.data_dir / "driver.json"
        config_path.write_text(json.dumps(config))
        progress = {"sent": 0}
        progress_t = {"t": 0.0}
        final: dict[str, Any] = {}
        ami = await self.ami()
        driver: subprocess.Popen[bytes] = self.children.start(
            [sys.executable, "-m", "bench.campaign_load", "--drive", str(config_path)],
            self.child_env(),
            self.data_dir / "driver.log",
            stdout=subprocess.PIPE,
            stderr=(self.data_dir / "driver.log").open("ab"),
        )
        self.driver = driver
        sampler = Sampler(
            lambda: progress["sent"], lambda: None, ami, lambda: driver.pid, self.asterisk_pid
        )
        started = threading.Event()

        def read_driver() -> None:
            assert driver is not None and driver.stdout is not None
            for raw in driver.stdout:
                line = raw.decode(errors="replace").strip()
                if line == "START":
                    started.set()
                elif line.startswith("P "):
                    _, t, sent, *_ = line.split()
                    progress["sent"] = int(sent)
                    progress_t["t"] = float(t)
                elif line.startswith("R "):
                    final.update(json.loads(line[2:]))

        reader = threading.Thread(target=read_driver, daemon=True)
        reader.start()
        try:
            if not await asyncio.to_thread(started.wait, 30):
                raise RuntimeError(
                    "the AMI driver did not start:\n"
                    + (self.data_dir / "driver.log").read_text(errors="replace")[-3000:]
                )
            sampler.t0 = time.monotonic()
            task = asyncio.create_task(sampler.run())
            # The driver stops originating after `seconds`, then waits for the answers.
            await asyncio.sleep(seconds)
            while progress_t["t"] < seconds - 0.05 and driver.poll() is None:
                await asyncio.sleep(0.1)
            t_stop = time.monotonic() - sampler.t0
            originated = progress["sent"]
            sampler.phase = "drain"
            drain_deadline = time.monotonic() + args.drain_timeout
            while time.monotonic() < drain_deadline:
                counts = await channel_count(ami)
                if counts is not None and counts[0] == 0 and driver.poll() is not None:
                    break
                await asyncio.sleep(1.0)
            drain_s = time.monotonic() - sampler.t0 - t_stop
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            left = await channel_count(ami)
        finally:
            ami.close()
        await asyncio.to_thread(Children.stop, driver)
        reader.join(5)
        final["drain_seconds"] = drain_s
        final["channels_left"] = left[0] if left else None
        first = next((s.t for s in sampler.samples if s.originated > 0), None)
        return SideResult("plain", sampler.samples, t_stop, first, originated, final)


# --------------------------------------------------------------------------- AMI driver
async def drive(config_path: Path) -> None:
    """The plain side's load: Async Originates at a fixed rate (a subprocess, so that its
    CPU is measured alone). Prints START, a progress line ``P t sent`` every second and a
    final ``R {json}``."""
    cfg = json.loads(config_path.read_text())
    manager = await ami_connect(cfg["host"], cfg["port"], cfg["user"], cfg["secret"], "on")
    # Only the events that answer our Originates (each call makes dozens of others).
    await manager.send_action(
        {"Action": "Filter", "Operation": "Add", "Filter": "Event: OriginateResponse"}
    )
    rate = float(cfg["rate"])
    seconds = float(cfg["seconds"])
    numbers: list[str] = cfg["numbers"]
    counts: Counter[str] = Counter()
    pending: set[asyncio.Future[Any]] = set()
    reasons: Counter[str] = Counter()

    def done(fut: asyncio.Future[Any]) -> None:
        pending.discard(fut)
        if fut.cancelled():
            counts["cancelled"] += 1
            return
        exc = fut.exception()
        if exc is not None:
            counts["error"] += 1
            reasons[type(exc).__name__] += 1
            return
        result = fut.result()
        messages = result if isinstance(result, list) else [result]
        last = messages[-1]
        if last.get("Response") == "Error":
            counts["error"] += 1
            reasons[str(last.get("Message"))] += 1
        elif last.get("Event") == "OriginateResponse":
            if last.get("Response") == "Success":
                counts["answered"] += 1
            else:
                counts["failed"] += 1
                reasons[f"reason {last.get('Reason')}"] += 1
        else:
            counts["queued_only"] += 1

    print("START", flush=True)
    t0 = time.monotonic()
    sent = 0

    async def report() -> None:
        while True:
            await asyncio.sleep(1.0)
            print(f"P {time.monotonic() - t0:.3f} {sent}", flush=True)

    reporter = asyncio.create_task(report())
    while True:
        now = time.monotonic() - t0
        if now >= seconds:
            break
        due = min(int(now * rate) + 1, len(numbers))
        while sent < due:
            fut = manager.send_action(
                {
                    "Action": "Originate",
                    "Channel": f"PJSIP/{numbers[sent]}@trunk",
                    "Context": cfg["context"],
                    "Exten": "s",
                    "Priority": "1",
                    "Timeout": "30000",
                    "CallerID": "bench <+358291234567>",
                    "Async": "true",
                }
            )
            sent += 1
            counts["sent"] += 1
            pending.add(fut)
            fut.add_done_callback(done)
        await asyncio.sleep(max(0.0, sent / rate - (time.monotonic() - t0)))
    print(f"P {time.monotonic() - t0:.3f} {sent}", flush=True)
    reporter.cancel()
    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    counts["unanswered_at_end"] = len(pending)
    manager.close()
    print("R " + json.dumps({**counts, "reasons": dict(reasons)}), flush=True)


# --------------------------------------------------------------------------- report
def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}"


def _yes(flag: bool) -> str:
    return "MET" if flag else "NOT MET"


def machine_pct(a: Sample, b: Sample, what: str) -> float | None:
    dt = b.t - a.t
    if dt <= 0:
        return None
    if what == "busy":
        ticks = (b.machine_proc - a.machine_proc) + (b.machine_irq - a.machine_irq)
    elif what == "irq":
        ticks = b.machine_irq - a.machine_irq
    elif what == "steal":
        ticks = b.machine_steal - a.machine_steal
    else:
        keys = ("driver_ticks", "asterisk_ticks", "self_ticks")
        if any(getattr(a, k) is None or getattr(b, k) is None for k in keys):
            return None
        ours = sum(getattr(b, k) - getattr(a, k) for k in keys)
        ticks = b.machine_proc - a.machine_proc - ours
    return 100.0 * ticks / CLK_TCK / dt


def timeline(side: SideResult) -> list[str]:
    """Every 10 s: originations/s, concurrency, CPU of the driver side and of Asterisk."""
    out = [
        f"  {side.name}: t(s)  orig/s  answered(db)  channels/2  "
        f"{'worker' if side.name == 'ours' else 'driver'}CPU%  asteriskCPU%  machine%  "
        "others%  irq%  load1"
    ]
    samples = side.samples
    # Consecutive spans of about 10 s (by time: samples can be late on a starved machine).
    bounds: list[tuple[Sample, Sample]] = []
    i = 0
    while i < len(samples) - 1:
        j = next(
            (k for k in range(i + 1, len(samples)) if samples[k].t - samples[i].t >= 9.5), None
        )
        if j is None:
            break
        bounds.append((samples[i], samples[j]))
        i = j
    for a, b in bounds:
        dt = b.t - a.t

        def pct(x: int | None, y: int | None, dt: float = dt) -> str:
            return "-" if x is None or y is None else f"{100.0 * (y - x) / CLK_TCK / dt:6.1f}"

        out.append(
            f"    {a.t:6.0f}-{b.t:<4.0f} {(b.originated - a.originated) / dt:6.1f}  "
            f"{'-' if b.answered_db is None else b.answered_db:>12}  "
            f"{'-' if b.channels is None else b.channels / 2:>10}  "
            f"{pct(a.driver_ticks, b.driver_ticks):>10}  "
            f"{pct(a.asterisk_ticks, b.asterisk_ticks):>12}  "
            f"{_f(machine_pct(a, b, 'busy')):>8}  {_f(machine_pct(a, b, 'others')):>7}  "
            f"{_f(machine_pct(a, b, 'irq')):>4}  "
            f"{b.load1:5.2f}  {b.phase}"
        )
    return out


def report(
    args: argparse.Namespace,
    ours: SideResult | None,
    plain: SideResult | None,
    context: dict[str, Any],
) -> None:
    print()
    print("=" * 96)
    print(
        f"campaign load benchmark: rate {args.rate:g}/s for {args.minutes:g} min per side, "
        f"{args.contacts} contacts ({context['numbers_note']}), max_concurrent "
        f"{args.max_concurrent}, RTP ports {args.rtp_ports}"
    )
    print(
        f"machine: {os.cpu_count()} cores; load average at start {context['load_start']}, "
        f"at end {context['load_end']}; Asterisk {context.get('asterisk_version', '?')}"
    )
    if context.get("quiet"):
        print(f"before the start: {context['quiet']}")
    print(
        "CPU: percent of one core (200 % = both cores); 'steady' = from "
        f"{RAMP_SECONDS:g} s after the first call to the stop"
    )
    print("=" * 96)

    def wmin(s: SideResult) -> float | None:
        w = s.windows()
        return min(r for _, r in w) if w else None

    def wmax(s: SideResult) -> float | None:
        w = s.windows()
        return max(r for _, r in w) if w else None

    def cmax(s: SideResult) -> float | None:
        c = s.concurrency()
        return max(c) if c else None

    def cmean_steady(s: SideResult) -> float | None:
        c = s.concurrency(steady=True)
        return statistics.fmean(c) if c else None

    def cmean(s: SideResult) -> float | None:
        c = s.concurrency()
        return statistics.fmean(c) if c else None

    def ch_max(s: SideResult) -> float | None:
        c = [x.channels / 2 for x in s.run_samples() if x.channels is not None]
        return max(c) if c else None

    def loadmean(s: SideResult) -> float | None:
        return statistics.fmean(x.load1 for x in s.run_samples()) if s.samples else None

    def per_origination(s: SideResult) -> float | None:
        cpu, rate = s.cpu("driver_ticks"), s.rate_from_first()
        return None if cpu is None or not rate else 10.0 * cpu / rate

    def per_call(s: SideResult) -> float | None:
        cpu, conc = s.cpu("asterisk_ticks", True), cmean_steady(s)
        return None if cpu is None or not conc else cpu / conc

    def drain(s: SideResult) -> float | None:
        value = s.extra.get("drain_seconds")
        return None if value is None else float(value)

    # (label, figure, digits, with the ratio ours/plain)
    spec: list[tuple[str, Callable[[SideResult], float | None], int, bool]] = [
        ("run length (s, start to stop)", lambda s: s.t_stop, 1, False),
        ("first origination after (s)", lambda s: s.t_first, 1, False),
        ("originations (during the run)", lambda s: s.originated, 0, True),
        ("originations/s, mean start->stop", SideResult.rate_mean, 2, True),
        ("originations/s, mean first call->stop", SideResult.rate_from_first, 2, True),
        ("originations/s, min of 10-s windows", wmin, 2, True),
        ("originations/s, max of 10-s windows", wmax, 2, True),
        ("concurrent answered, peak", cmax, 0, True),
        ("concurrent answered, mean (steady)", cmean_steady, 1, True),
        ("concurrent answered, mean (whole run)", cmean, 1, True),
        ("  (channels/2 peak, Asterisk's view)", ch_max, 0, True),
        ("Python CPU % (worker | AMI driver)", lambda s: s.cpu("driver_ticks"), 1, True),
        ("  steady", lambda s: s.cpu("driver_ticks", True), 1, True),
        ("Asterisk CPU %", lambda s: s.cpu("asterisk_ticks"), 1, True),
        ("  steady", lambda s: s.cpu("asterisk_ticks", True), 1, True),
        ("this benchmark's own CPU % (sampler)", lambda s: s.cpu("self_ticks"), 1, False),
        ("whole machine busy CPU % (of 200 %)", lambda s: s.machine("busy"), 1, False),
        ("  other processes (not ours; +-15 %)", lambda s: s.machine("others"), 1, False),
        ("  kernel irq + softirq (loopback packets)", lambda s: s.machine("irq"), 1, False),
        ("  steal (hypervisor)", lambda s: s.machine("steal"), 1, False),
        ("load average (1 min), mean over run", loadmean, 2, False),
        ("drain after stop (s)", drain, 1, False),
        ("Python CPU ms per origination", per_origination, 1, True),
        ("Asterisk CPU % per concurrent call (steady)", per_call, 2, True),
    ]
    rows: list[tuple[str, str, str, str]] = []
    for label, figure, digits, ratio in spec:
        a = None if ours is None else figure(ours)
        b = None if plain is None else figure(plain)
        rows.append((label, _f(a, digits), _f(b, digits), _ratio(a, b) if ratio else ""))

    print(f"{'':42} {'ours':>14} {'plain':>14} {'ours/plain':>11}")
    for label, a_text, b_text, r in rows:
        print(f"{label:42} {a_text:>14} {b_text:>14} {r:>11}")

    if ours is not None:
        w = ours.cpu("driver_ticks")
        a = ours.cpu("asterisk_ticks")
        print(f"\nours: Python worker CPU / Asterisk CPU = {_ratio(w, a)} "
              f"(worker {_f(w)} %, Asterisk {_f(a)} %)")  # fmt: skip
        if plain is not None:
            pa = plain.cpu("asterisk_ticks")
            print(
                f"ours: Asterisk CPU under our worker / under the plain dialplan = {_ratio(a, pa)}"
            )
            print(
                f"ours: (worker + Asterisk) CPU / plain (driver + Asterisk) CPU = "
                f"{_ratio((w or 0) + (a or 0), (plain.cpu('driver_ticks') or 0) + (pa or 0))}"
            )
        i = ours.extra
        print("\nintegrity (ours):")
        print(
            f"  attempts claimed {i['claimed']}, started {i['started']}, calls placed "
            f"{i['calls_placed']}, attempts finished {i['finished']} "
            f"(cancelled by the stop: {i['cancelled']}, still due: {i['still_due']})"
        )
        print(
            f"  duplicates (calls per attempt > 1): {i['duplicates']}   lost (dialing after "
            f"the drain): {i['lost']} (before stopping the worker: "
            f"{i['lost_before_worker_stop']})   finished without a call: "
            f"{i['finished_without_call']}   calls still active: {i['calls_active']}"
        )
        print(f"  outcomes: {i['outcomes']}")
        print(f"  call status: {i['call_status']}")
        print(
            f"  answered calls: mean ring {_f(i['ring_s'], 3)} s (p95 {_f(i['ring_p95_s'], 3)} s),"
            f" mean talk {_f(i['talk_s'], 1)} s (max {_f(i['talk_max_s'], 1)} s)"
        )
        print(
            f"  worker exit code {i['worker_exit']}; worker log: {i['worker_log_errors']} "
            f"error line(s), {i['worker_log_warnings']} warning(s)"
        )
        if i["worker_log_errors"] or i["worker_log_warnings"]:
            for line in i["worker_log_tail"]:
                print(f"    | {line[:200]}")
    if plain is not None:
        e = plain.extra
        print("\nplain (AMI driver):")
        print(
            f"  Originates sent {e.get('sent')}, answered {e.get('answered')}, failed "
            f"{e.get('failed', 0)}, errors {e.get('error', 0)}, no reply by the end "
            f"{e.get('unanswered_at_end')}; reasons {e.get('reasons')}; channels left "
            f"after the drain {e.get('channels_left')}"
        )
        print(
            "  (OriginateResponse reasons: 0 the channel could not be created or dialled, "
            "1 hung up, 3 still ringing at the 30-s timeout, 5 busy, 8 congestion; the plain "
            "side's concurrency is channels / 2, answered or not)"
        )
        conc = cmean_steady(plain)
        rate = plain.rate_from_first()
        if conc and rate:
            print(f"  mean call length by Little's law (steady concurrency / rate): "
                  f"{conc / rate:.1f} s")  # fmt: skip
    if ours is not None:
        conc = cmean_steady(ours)
        rate = ours.rate_from_first()
        if conc and rate:
            print(f"ours: mean answered call length by Little's law: {conc / rate:.1f} s")

    for side in (ours, plain):
        peak_calls = ch_max(side) if side is not None else None
        if side is not None and peak_calls and peak_calls > args.rtp_ports / 4:
            print(
                f"note ({side.name}): {peak_calls:.0f} calls at the peak need more than the "
                f"{args.rtp_ports} RTP ports ({args.rtp_ports // 4} calls): some calls may "
                "have failed for want of ports"
            )
    print("\ntargets (our full stack):")
    if ours is None:
        print("  (part A not run)")
    else:
        i = ours.extra
        rate_min = wmin(ours) or 0.0
        long_enough = ours.t_stop >= TARGET_MINUTES * 60 - 1
        sustained = (
            ours.rate_from_first() >= TARGET_RATE * 0.98
            and rate_min >= TARGET_RATE * WINDOW_TOLERANCE
            and long_enough
        )
        print(
            f"  >= {TARGET_RATE:g} calls/s sustained for {TARGET_MINUTES:g} min (mean from the "
            f"first call >= 98 % and every 10-s window >= {WINDOW_TOLERANCE:.0%} of "
            f"{TARGET_RATE:g}/s, run >= {TARGET_MINUTES:g} min): {_yes(sustained)} "
            f"(mean {ours.rate_from_first():.2f}/s, min window {rate_min:.2f}/s, "
            f"{ours.t_stop / 60:.1f} min)"
        )
        clean = i["lost"] == 0 and i["duplicates"] == 0 and i["finished_without_call"] == 0
        print(
            f"  zero lost or duplicated attempts: {_yes(clean)} (lost {i['lost']}, "
            f"duplicates {i['duplicates']})"
        )
        peak = cmax(ours) or 0
        steady_mean = cmean_steady(ours) or 0
        print(
            f"  >= {TARGET_CONCURRENT} concurrent answered calls: peak {peak:.0f} "
            f"{_yes(peak >= TARGET_CONCURRENT)}; steady mean {steady_mean:.0f} "
            f"{_yes(steady_mean >= TARGET_CONCURRENT)}"
        )
        w = ours.cpu("driver_ticks") or 0
        a = ours.cpu("asterisk_ticks") or 0
        print(f"  our Python CPU < Asterisk CPU: {_yes(w < a)} ({w:.1f} % vs {a:.1f} %)")
    print("\ntimeline (every 10 s):")
    for side in (ours, plain):
        if side is not None:
            for line in timeline(side):
                print(line)
    sys.stdout.flush()


def write_samples(path: Path, sides: list[SideResult]) -> None:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["side", "t", "phase", "originated", "answered_db", "channels",
                      "driver_ticks", "asterisk_ticks", "self_ticks", "load1"])  # fmt: skip
        for side in sides:
            for s in side.samples:
                out.writerow([side.name, f"{s.t:.3f}", s.phase, s.originated, s.answered_db,
                              s.channels, s.driver_ticks, s.asterisk_ticks, s.self_ticks,
                              s.load1])  # fmt: skip


def wait_quiet(limit_pct: float, max_wait: float, window: float = 15.0) -> str:
    """Wait (at most ``max_wait`` s) until the machine's busy CPU over ``window`` s is below
    ``limit_pct`` (nothing of ours runs yet: this is other people's work)."""
    started = time.monotonic()
    while True:
        proc0, irq0, _ = machine_ticks()
        time.sleep(window)
        proc1, irq1, _ = machine_ticks()
        busy = 100.0 * (proc1 - proc0 + irq1 - irq0) / CLK_TCK / window
        waited = time.monotonic() - started
        if busy < limit_pct:
            return f"machine busy {busy:.0f} % before the start (waited {waited:.0f} s)"
        if waited >= max_wait:
            return f"machine still busy {busy:.0f} % after waiting {waited:.0f} s: started anyway"
        print(f"  waiting for a quieter machine: busy {busy:.0f} % (> {limit_pct:g} %)", flush=True)


# --------------------------------------------------------------------------- main
@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="calls per second (20)")
    parser.add_argument("--minutes", type=float, default=5.0, help="per side (5)")
    parser.add_argument(
        "--contacts", type=int, default=None,
        help="contacts (default: rate x minutes x 60 x 1.15, at least 100)",
    )  # fmt: skip
    parser.add_argument("--max-concurrent", type=int, default=400)
    parser.add_argument("--rtp-ports", type=int, default=2400)
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--only", choices=("ours", "plain"), help="run one side only")
    parser.add_argument("--samples-csv", type=Path, help="write every per-second sample here")
    parser.add_argument("--py-spy", type=Path, help="record the worker with py-spy (raw)")
    parser.add_argument(
        "--probe", type=Path, help="run the worker with timing probes (bench.worker_probe)"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        metavar="SECONDS",
        help="first wait up to SECONDS for other processes to use < --quiet-pct CPU",
    )
    parser.add_argument("--quiet-pct", type=float, default=30.0)
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--drive", type=Path, help=argparse.SUPPRESS)  # the AMI driver
    args = parser.parse_args()

    if args.drive:
        asyncio.run(drive(args.drive))
        return 0
    if args.contacts is None:
        args.contacts = max(100, int(math.ceil(args.rate * args.minutes * 60 * 1.15)))
    if args.rtp_ports < 4 * args.max_concurrent:
        print(f"note: {args.rtp_ports} RTP ports hold at most {args.rtp_ports // 4} calls")

    quiet = wait_quiet(args.quiet_pct, args.wait_quiet) if args.wait_quiet else None
    bench = Bench(args)
    context: dict[str, Any] = {
        "quiet": quiet,
        "load_start": " ".join(f"{x:.2f}" for x in loadavg()),
        "numbers_note": bench.numbers_note,
    }
    ours = plain = None
    code = 0
    with sigterm_as_interrupt():
        try:
            print(f"data directory {bench.data_dir}; starting Asterisk ...", flush=True)
            bench.setup()
            with contextlib.suppress(Exception):
                context["asterisk_version"] = bench.app.pbx().cli("core show version").split()[1]
            if args.only in (None, "ours"):
                print(
                    f"A. our full stack: campaign at {args.rate:g}/s for {args.minutes:g} min",
                    flush=True,
                )
                ours = asyncio.run(bench.run_ours())
            if args.only in (None, "plain"):
                if ours is not None:
                    print(
                        "  restarting Asterisk (a fresh process for the baseline) ...", flush=True
                    )
                    bench.restart_pbx()
                print(
                    f"B. plain Asterisk: AMI Originate at {args.rate:g}/s for {args.minutes:g} min",
                    flush=True,
                )
                plain = asyncio.run(bench.run_plain())
            context["load_end"] = " ".join(f"{x:.2f}" for x in loadavg())
            report(args, ours, plain, context)
            if args.probe and ours is not None and args.probe.exists():
                from bench.worker_probe import summarise

                print(f"\nworker probes ({args.probe}), during the run:")
                wall0 = ours.extra["wall_start"]
                print("\n".join(summarise(args.probe, wall0, wall0 + ours.t_stop)))
            if args.samples_csv:
                write_samples(args.samples_csv, [s for s in (ours, plain) if s is not None])
        except KeyboardInterrupt:
            print("\ninterrupted: stopping everything this benchmark started", flush=True)
            code = 130
        finally:
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                bench.cleanup()
            finally:
                signal.signal(signal.SIGINT, previous)
    return code


if __name__ == "__main__":
    sys.exit(main())
