"""Benchmark: two Asterisk nodes behind Kamailio against one node, on this machine.

    .venv/bin/python -m bench.cluster_kamailio [--only outbound|inbound] [--rate 10]
        [--seconds 60] [--sipp-rate 20] [--sipp-calls 400] [--json] [--keep]

Prints figures; it is not a test. Everything runs on loopback: one PostgreSQL, a residents'
Asterisk (not measured), two nodes (a, b: each its own Asterisk and `ivr telephony`
worker, node names a and b, both on the one database), and Kamailio from `ivr cluster
render` (dispatcher, call-load routing, OPTIONS probing). Everything it starts it stops.

What "through Kamailio" means here. Kamailio balances INBOUND calls: a caller's INVITE
reaches Kamailio, which picks a node. A campaign's OUTBOUND calls never pass it: each
node's dialer claims attempts from the shared database (SKIP LOCKED) and its Asterisk
sends the INVITE straight to the trunk (here the residents' Asterisk, ``[pbx]
trunk_host``). So:

(a) outbound: the same campaign (persona 705: answers, listens 12 s, keys 1) at the same
    TOTAL rate, first on node a alone, then on a and b together (the campaign's pacing is
    per node, so the two-node run sets half the rate), Kamailio running in front
    throughout (it only probes). Figures: the end-to-end origination rate (attempts
    started per second from the first to the stop), per-node attempts and CPU (Asterisk +
    worker, % of one core), Kamailio's CPU, and integrity (duplicates, lost, outcomes).
(b) inbound: SIPp callers (``tests/support/kamailio.py``'s scenario: INVITE, the key 1 as
    SIP INFO, wait for the IVR's BYE) at ``--sipp-rate`` calls/s to line 200
    (mini-survey), first straight to node a's Asterisk, then through Kamailio to a and b.
    Setup time = INVITE sent -> 200 OK received (SIPp's response-time trace,
    ``-trace_rtt``), p50/p99; Kamailio's CPU during the run. Straight to a, SIPp sends from
    Kamailio's address and port (Kamailio is stopped then), so the node takes the call on
    the same ``balancer`` endpoint and dialplan: the only difference is Kamailio's hop.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.campaign_load import CLK_TCK, Children, cpu_ticks, machine_ticks
from bench.cluster_sizing import install_residents

ROOT = Path(__file__).resolve().parent.parent
SURVEY = ROOT / "tests" / "e2e" / "flows" / "mini-survey.yaml"
LINE = "200"


def pct(t0: int | None, t1: int | None, seconds: float) -> float | None:
    if t0 is None or t1 is None or seconds <= 0:
        return None
    return 100.0 * (t1 - t0) / CLK_TCK / seconds


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.children = Children()
        self.root = Path(tempfile.mkdtemp(prefix="ivr-kb-"))
        self.pg: Any = None
        self.db_url = ""
        self.res_app: Any = None
        self.apps: dict[str, Any] = {}
        self.envs: dict[str, dict[str, str]] = {}
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.kam: Any = None
        self.kam_env: dict[str, str] = {}
        self.engine: Any = None
        self.out: dict[str, Any] = {}

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        from ivr.bootstrap import init
        from ivr.config import load_settings
        from ivr.pbx import tree
        from tests.support.instance import instance_env
        from tests.support.ports import free_port, free_range
        from tests.support.postgres import create_database, start_postgres

        self.pg = start_postgres()
        self.db_url = create_database(self.pg.url(), f"ivr_kb_{uuid.uuid4().hex[:10]}")
        lines = self.root / "lines.toml"
        lines.write_text(f'[lines]\n"{LINE}" = {{ flow = "{SURVEY}", language = "fi" }}\n')
        size = 1200
        ranges = []
        start = 30000
        for _ in range(3):
            base = free_range(size, start=start)
            ranges.append(base)
            start = base + size
        res_env = instance_env(self.root / "res", rtp_size=size)
        res_env.update(IVR_PBX_RTP_START=str(ranges[0]), IVR_PBX_RTP_END=str(ranges[0] + size - 1))
        self.res_app, _ = init(load_settings(environ=res_env))
        tree.build(self.res_app.settings, lambda line: None)
        self.res_app.pbx().start()
        install_residents(self.res_app, "simulated-residents")
        kam_port = free_port()
        envs: dict[str, dict[str, str]] = {}
        for i, name in enumerate(("a", "b")):
            env = instance_env(self.root / f"node-{name}", rtp_size=size)
            env.update(
                IVR_PBX_RTP_START=str(ranges[i + 1]),
                IVR_PBX_RTP_END=str(ranges[i + 1] + size - 1),
                IVR_DATABASE_URL=self.db_url,
                IVR_CONFIG=str(lines),
                IVR_PBX_TRUNK_HOST="127.0.0.1",
                IVR_PBX_TRUNK_PORT=res_env["IVR_PBX_SIP_PORT"],
                IVR_TELEPHONY_NODE_NAME=name,
                IVR_CLUSTER_KAMAILIO_PORT=str(kam_port),
            )
            envs[name] = env
        nodes = ",".join(f"{n}=127.0.0.1:{envs[n]['IVR_PBX_SIP_PORT']}" for n in ("a", "b"))
        for name, env in envs.items():
            env["IVR_CLUSTER_NODES"] = nodes
            self.apps[name], _ = init(load_settings(environ=env))
            self.apps[name].pbx().start()
        self.envs = envs
        kam_dir = Path(tempfile.mkdtemp(prefix="ivr-kbk-"))  # short: unix socket paths
        self.kam_dir = kam_dir
        self.kam_env = {
            "IVR_DATA_DIR": str(kam_dir),
            "IVR_DATABASE_URL": self.db_url,
            "IVR_CLUSTER_NODES": nodes,
            "IVR_CLUSTER_KAMAILIO_PORT": str(kam_port),
        }
        self.kam_port = kam_port
        self.engine = sa.create_engine(self.db_url)
        self.admin = self.apps["a"].campaigns()

    def start_kamailio(self) -> None:
        from tests.support.kamailio import Kamailio

        self.kam = Kamailio(self.kam_env, self.root).start()
        deadline = time.monotonic() + 30
        while set(self.kam.states().values()) != {"active"}:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kamailio's nodes are not active: {self.kam.states()}")
            time.sleep(0.2)

    def stop_kamailio(self) -> None:
        if self.kam is not None:
            self.kam.stop()
            self.kam = None

    def start_worker(self, name: str) -> None:
        log = self.root / f"worker-{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
        env.update(self.envs[name])
        proc: subprocess.Popen[bytes] = self.children.start(
            [sys.executable, "-m", "ivr.cli", "telephony"], env, log
        )
        deadline = time.monotonic() + 60
        while "is running" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {name} did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        self.workers[name] = proc

    def cleanup(self) -> None:
        from tests.support.postgres import drop_database

        self.stop_kamailio()
        self.children.stop_all()
        for app in [*self.apps.values(), self.res_app]:
            if app is not None:
                with contextlib.suppress(Exception):
                    app.pbx().stop()
        if self.engine is not None:
            self.engine.dispose()
        if self.pg is not None:
            with contextlib.suppress(Exception):
                drop_database(self.pg.url(), self.db_url.rsplit("/", 1)[1])
            self.pg.stop()
        if self.args.keep:
            print(f"kept {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(getattr(self, "kam_dir", self.root), ignore_errors=True)

    # ------------------------------------------------------------------ CPU
    def pids(self) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for name, app in self.apps.items():
            out[f"asterisk_{name}"] = app.pbx().pid()
            w = self.workers.get(name)
            out[f"worker_{name}"] = w.pid if w is not None and w.poll() is None else None
        out["kamailio"] = self.kam.proc.pid if self.kam is not None else None
        out["residents"] = self.res_app.pbx().pid()
        return out

    def ticks(self) -> dict[str, int | None]:
        t: dict[str, int | None] = {}
        for key, pid in self.pids().items():
            # Kamailio forks its children (one process group); the workers may too.
            t[key] = cpu_ticks(pid, descendants=not key.startswith(("asterisk", "residents")))
        t["_machine"] = sum(machine_ticks()[:2])
        return t

    @staticmethod
    def cpu(t0: dict[str, int | None], t1: dict[str, int | None], secs: float) -> dict[str, Any]:
        out = {k: pct(t0.get(k), t1.get(k), secs) for k in t1 if not k.startswith("_")}
        busy = pct(t0["_machine"], t1["_machine"], secs)
        out["machine_busy_pct_of_all_cores"] = (
            None if busy is None else busy / (os.cpu_count() or 1)
        )
        return out

    # ------------------------------------------------------------------ (a) outbound
    def q(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as c:
            return c.execute(sa.text(sql), params).all()

    def campaign(self, name: str, rate: float, serial0: int) -> None:
        from ivr.accounts.audit import Actor
        from ivr.campaigns.admin import CampaignSettings
        from ivr.telephony.personas import number_for

        count = int(self.args.rate * self.args.seconds) + 50
        numbers = [number_for(705, serial0 + i) for i in range(count)]
        csv = self.root / f"{name}.csv"
        csv.write_text("phone\n" + "\n".join(numbers) + "\n")
        cli = Actor.cli()
        self.admin.create(
            cli,
            name,
            SURVEY,
            CampaignSettings(
                windows="mon-sun 00:00-23:59",
                allow_holidays=True,
                calls_per_second=rate,
                max_concurrent=1000,
                cross_campaign_daily_cap=False,
                max_attempts=1,
            ),
        )
        self.admin.import_contacts(cli, name, csv)

    def stop_campaign(self, name: str) -> int:
        """Stop the campaign; the number of tries PostgreSQL aborted as a deadlock (the
        stop's bulk cancel of due attempts against a dialer's claim: an open problem)."""
        from ivr.accounts.audit import Actor

        deadlocks = 0
        while True:
            try:
                self.admin.stop(Actor.cli(), name, "benchmark over")
                return deadlocks
            except sa.exc.DBAPIError as exc:
                if "deadlock" not in str(exc).lower() or deadlocks >= 5:
                    raise
                deadlocks += 1
                print(f"  stopping {name}: deadlock detected, trying again", flush=True)

    def run_outbound(self, nodes: list[str], serial0: int) -> dict[str, Any]:
        from ivr.accounts.audit import Actor

        name = f"kb-{len(nodes)}-nodes"
        rate = self.args.rate / len(nodes)  # pacing is per node: the same total rate
        self.campaign(name, rate, serial0)
        for n in nodes:
            if n not in self.workers:
                self.start_worker(n)
        cid = self.q("SELECT id FROM campaigns WHERE name = :n", n=name)[0][0]
        started_sql = (
            "SELECT claimed_by, count(*) FROM attempts WHERE campaign_id = :c "
            "AND started_at IS NOT NULL GROUP BY 1"
        )
        t_ticks0 = self.ticks()
        t0 = time.monotonic()
        self.admin.start(Actor.cli(), name)
        first: float | None = None
        while time.monotonic() - t0 < self.args.seconds:
            if first is None and self.q(started_sql, c=cid):
                first = time.monotonic()
            time.sleep(0.2)
        t_stop = time.monotonic()
        deadlocks = self.stop_campaign(name)
        t_ticks1 = self.ticks()
        per_node = {str(k): int(v) for k, v in self.q(started_sql, c=cid)}
        started = sum(per_node.values())
        # Drain: every dialled attempt settled, no call left active.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            busy = self.q(
                "SELECT count(*) FROM attempts WHERE campaign_id = :c AND state = 'dialing'", c=cid
            )[0][0]
            if busy == 0:
                break
            time.sleep(0.5)
        outcomes = {
            str(k): int(v)
            for k, v in self.q(
                "SELECT coalesce(outcome, state), count(*) FROM attempts "
                "WHERE campaign_id = :c AND state IN ('done', 'dialing') GROUP BY 1",
                c=cid,
            )
        }
        dup = self.q(
            "SELECT count(*) FROM (SELECT a.id FROM attempts a JOIN calls c ON c.attempt_id = a.id"
            " WHERE a.campaign_id = :c GROUP BY a.id HAVING count(*) > 1) d",
            c=cid,
        )[0][0]
        span = t_stop - (first or t0)
        return {
            "nodes": nodes,
            "rate_target_total": self.args.rate,
            "rate_per_node_setting": rate,
            "seconds": t_stop - t0,
            "attempts_started": started,
            "per_node_started": per_node,
            "origination_rate": started / span if span > 0 else None,
            "cpu": self.cpu(t_ticks0, t_ticks1, t_stop - t0),
            "outcomes": outcomes,
            "duplicates": dup,
            "stop_deadlocks": deadlocks,
            "lost_dialing": outcomes.get("dialing", 0),
        }

    # ------------------------------------------------------------------ (b) inbound
    def sipp(self, tag: str, target: str, local_port: int | None) -> dict[str, Any]:
        from tests.support.kamailio import HOST, UAC_ANSWERING_ONE_KEY
        from tests.support.ports import free_port
        from tests.support.tools import tool

        work = self.root / f"sipp-{tag}"
        work.mkdir()
        scenario = work / "uac.xml"
        scenario.write_text(UAC_ANSWERING_ONE_KEY, encoding="iso-8859-1")
        calls, rate = self.args.sipp_calls, self.args.sipp_rate
        argv = [
            tool("sipp"), target, "-sf", str(scenario), "-s", LINE, "-key", "tag", tag,
            "-i", HOST, "-p", str(local_port or free_port()), "-mi", HOST, "-mp", str(free_port()),
            "-m", str(calls), "-r", str(rate), "-l", str(calls), "-d", "1000",
            "-nostdin", "-trace_rtt", "-rtt_freq", "1",
            "-trace_err", "-error_file", str(work / "errors.log"),
        ]  # fmt: skip
        t0 = self.ticks()
        began = time.monotonic()
        with (work / "sipp.log").open("wb") as log:
            proc = subprocess.Popen(
                argv, cwd=work, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
            self.children.procs.append(proc)
            rc = proc.wait(calls / rate + 120)
        secs = time.monotonic() - began
        t1 = self.ticks()
        times: list[float] = []
        for csv in work.glob("*_rtt.csv"):
            lines = csv.read_text().splitlines()
            # Header "Date_ms;response_time_ms;rtd_no" (SIPp 3.6).
            head = lines[0].lower().split(";") if lines else []
            col = next((i for i, h in enumerate(head) if h.startswith("response_time")), 1)
            for line in lines[1:]:
                with contextlib.suppress(ValueError, IndexError):
                    times.append(float(line.split(";")[col]))
        # The calls' rows settle a moment after SIPp saw the BYE.
        deadline = time.monotonic() + 60
        while True:
            rows = self.q(
                "SELECT node_name, status, count(*) FROM calls WHERE remote_number LIKE :t "
                "GROUP BY 1, 2",
                t=f"{tag}c%",
            )
            if all(str(r[1]) != "active" for r in rows) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        return {
            "target": target,
            "sipp_exit": rc,
            "calls": calls,
            "rate": rate,
            "seconds": secs,
            "setup_ms_samples": len(times),
            "setup_ms_p50": quantile(times, 0.5),
            "setup_ms_p99": quantile(times, 0.99),
            "setup_ms_mean": statistics.fmean(times) if times else None,
            "stored_calls": {f"{n}/{s}": int(c) for n, s, c in rows},
            "cpu": self.cpu(t0, t1, secs),
        }

    def run_inbound(self) -> dict[str, Any]:
        for n in ("a", "b"):
            if n not in self.workers:
                self.start_worker(n)
        self.stop_kamailio()
        node_a = f"127.0.0.1:{self.envs['a']['IVR_PBX_SIP_PORT']}"
        direct = self.sipp("direct", node_a, self.kam_port)
        self.start_kamailio()
        through = self.sipp("kamailio", f"127.0.0.1:{self.kam_port}", None)
        added = {
            q: (through[f"setup_ms_{q}"] - direct[f"setup_ms_{q}"])
            if through[f"setup_ms_{q}"] is not None and direct[f"setup_ms_{q}"] is not None
            else None
            for q in ("p50", "p99")
        }
        return {"direct": direct, "through_kamailio": through, "added_ms": added}

    def run(self) -> dict[str, Any]:
        self.setup()
        self.start_kamailio()
        if self.args.only in (None, "outbound"):
            one = self.run_outbound(["a"], 0)
            two = self.run_outbound(["a", "b"], 5000)
            self.out["outbound"] = {"one_node": one, "two_nodes": two}
            print(json.dumps(self.out["outbound"], indent=1), flush=True)
        if self.args.only in (None, "inbound"):
            self.out["inbound"] = self.run_inbound()
            print(json.dumps(self.out["inbound"], indent=1), flush=True)
        return self.out


def _f(v: Any, d: int = 1) -> str:
    return "-" if v is None else f"{v:.{d}f}"


def report(out: dict[str, Any]) -> None:
    ob = out.get("outbound")
    if ob:
        print("\n(a) Outbound campaign, same total rate (Kamailio in front, probing only)")
        for key in ("one_node", "two_nodes"):
            r = ob[key]
            cpu = r["cpu"]
            nodes = " ".join(
                f"{n}: {r['per_node_started'].get(n, 0)} calls, Asterisk "
                f"{_f(cpu.get('asterisk_' + n))} % + worker {_f(cpu.get('worker_' + n))} %"
                for n in r["nodes"]
            )
            print(
                f"  {key:9} target {r['rate_target_total']:g}/s: originated "
                f"{_f(r['origination_rate'], 2)}/s; {nodes}; Kamailio {_f(cpu['kamailio'], 2)} %;"
                f" duplicates {r['duplicates']}, lost {r['lost_dialing']}, stop deadlocks "
                f"{r['stop_deadlocks']}, outcomes "
                f"{r['outcomes']}"
            )
    ib = out.get("inbound")
    if ib:
        print("\n(b) Inbound, SIPp: setup time INVITE -> 200 OK (ms)")
        for key in ("direct", "through_kamailio"):
            r = ib[key]
            print(
                f"  {key:16} p50 {_f(r['setup_ms_p50'])}  p99 {_f(r['setup_ms_p99'])}  "
                f"({r['setup_ms_samples']} calls, SIPp exit {r['sipp_exit']}); Kamailio CPU "
                f"{_f(r['cpu'].get('kamailio'), 2)} %; calls stored {r['stored_calls']}"
            )
        print(f"  added by Kamailio: p50 {_f(ib['added_ms']['p50'])} ms, "
              f"p99 {_f(ib['added_ms']['p99'])} ms")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", choices=("outbound", "inbound"))
    parser.add_argument("--rate", type=float, default=10.0, help="campaign calls/s in total")
    parser.add_argument("--seconds", type=float, default=60.0, help="campaign run per case")
    parser.add_argument("--sipp-rate", type=int, default=20)
    parser.add_argument("--sipp-calls", type=int, default=400)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    bench = Bench(args)
    try:
        out = bench.run()
    finally:
        bench.cleanup()
    report(out)
    if args.json:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
