"""Kamailio in front of two Asterisk nodes, for real, on loopback: two Asterisks, each with
its own `ivr telephony` worker (node names a and b), one PostgreSQL database, one Kamailio
run from `ivr cluster render` output; SIPp callers dial a line through Kamailio and press 1.

One test in three phases (one set-up: the suite runs with --dist worksteal):
(a) 40 calls are spread over both nodes and each call's answer is stored once;
(b) node b's Asterisk and worker killed: the OPTIONS probes mark it inactive within
    probe_interval x failure_threshold + sip_timeout (+ one interval of phase), new calls go
    only to a; a call that Kamailio still sends to the dead node fails over to a; b
    restarted: the probes mark it active by themselves; with its worker still down it
    refuses calls (503) and Kamailio sends them to a; with the worker back calls reach it;
(c) `ivr cluster drain` of the node running a long call: no new calls reach it, the long
    call completes with its answer; `ivr cluster undrain` lets calls reach it again.
Figures (detection and recovery seconds) are printed (-s), not asserted beyond the bounds.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ivr.bootstrap import App, init
from ivr.clock import MovableClock
from ivr.cluster import kamailio as kam
from ivr.cluster import nodes as cluster_nodes
from ivr.config import load_settings
from ivr.store.db import make_engine
from ivr.store.models import Answer, Call
from tests.support.cli import run_ivr
from tests.support.instance import destroy, make_instance, start_or_fail
from tests.support.kamailio import Kamailio, SippCallers
from tests.support.ports import free_port
from tests.support.postgres import create_database, drop_database
from tests.support.worker import Worker

pytestmark = pytest.mark.pbx

FLOWS = Path(__file__).resolve().parents[1] / "e2e" / "flows"
SURVEY, LONG = "200", "201"  # mini-survey (one question) and long-question (waits a minute)
INTERVAL, FAILURES, RECOVERIES, SIP_TIMEOUT = 1, 2, 2, 1.0
PROBES = {
    "IVR_CLUSTER_PROBE_INTERVAL_SECONDS": str(INTERVAL),
    "IVR_CLUSTER_PROBE_FAILURE_THRESHOLD": str(FAILURES),
    "IVR_CLUSTER_PROBE_RECOVERY_THRESHOLD": str(RECOVERIES),
    "IVR_CLUSTER_SIP_TIMEOUT_SECONDS": str(SIP_TIMEOUT),
    "IVR_CLUSTER_HEARTBEAT_SECONDS": "1",
    "IVR_CLUSTER_NODE_TIMEOUT_SECONDS": "5",
}
# Down: the probe that fails first may be sent up to one interval after the kill, then
# FAILURES probes one interval apart, the last failing after SIP_TIMEOUT.
DETECT_BOUND = INTERVAL * (FAILURES + 1) + SIP_TIMEOUT + 1.0  # +1 s: timer and RPC slack
RECOVER_BOUND = INTERVAL * (RECOVERIES + 1) + 1.0


class Cluster:
    def __init__(self, root: Path, db_url: str) -> None:
        self.root = root
        self.db_url = db_url
        self.apps: dict[str, App] = {}
        self.envs: dict[str, dict[str, str]] = {}
        self.workers: dict[str, Worker] = {}
        self.engine = make_engine(db_url)
        self.kamailio: Kamailio | None = None
        self.kam_env: dict[str, str] = {}

    def start_worker(self, name: str) -> None:
        self.workers[name] = Worker(self.envs[name], self.root / f"worker-{name}.log")

    def kill_node(self, name: str) -> None:
        pid = self.apps[name].pbx().pid()
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        self.workers[name].kill()

    def restart_asterisk(self, name: str) -> None:
        self.apps[name].pbx().stop()
        start_or_fail(self.apps[name])

    def log_text(self, name: str) -> str:
        return (self.root / name).read_text(errors="replace")

    def ivr(self, *argv: str) -> str:
        done = run_ivr(self.kam_env, *argv, timeout=60)
        assert done.returncode == 0, f"ivr {' '.join(argv)}: {done.stdout}{done.stderr}"
        return done.stdout

    def batch(self, tag: str) -> list[Any]:
        """(id, node_name, status, remote_number) of the calls of a SIPp batch."""
        with self.engine.connect() as c:
            return list(
                c.execute(
                    sa.select(Call.id, Call.node_name, Call.status, Call.remote_number).where(
                        Call.remote_number.like(f"{tag}c%")
                    )
                ).all()
            )

    def ended(self, tag: str, count: int, timeout: float = 30) -> list[Any]:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.batch(tag)
            if len(rows) >= count and all(str(r.status) != "active" for r in rows):
                return rows
            assert time.monotonic() < deadline, f"batch {tag}: {rows}"
            time.sleep(0.2)

    def answers(self, call_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(Answer.call_id, Answer.node_id, Answer.value)
                .where(Answer.call_id.in_(call_ids))
                .order_by(Answer.call_id, Answer.seq)
            ).all()
        found: dict[str, list[tuple[str, str]]] = {i: [] for i in call_ids}
        for row in rows:
            found[row.call_id].append((row.node_id, row.value))
        return found

    def close(self) -> None:
        if self.kamailio is not None:
            self.kamailio.stop()
        for worker in self.workers.values():
            worker.kill()
        for app in self.apps.values():
            destroy(app)
        self.engine.dispose()


@pytest.fixture()
def cluster(postgres_url: str, tmp_path: Path) -> Iterator[Cluster]:
    db_name = f"ivr_kam_{uuid.uuid4().hex[:10]}"
    db_url = create_database(postgres_url, db_name)
    lines = tmp_path / "lines.toml"
    lines.write_text(
        "[lines]\n"
        f'"{SURVEY}" = {{ flow = "{FLOWS / "mini-survey.yaml"}", language = "fi" }}\n'
        f'"{LONG}" = {{ flow = "{FLOWS / "long-question.yaml"}", language = "fi" }}\n'
    )
    kam_dir = Path(tempfile.mkdtemp(prefix="ivr-kam-"))  # short: unix socket paths
    c = Cluster(tmp_path, db_url)
    try:
        base = {"IVR_DATABASE_URL": db_url, "IVR_CONFIG": str(lines), **PROBES}
        for name in ("a", "b"):
            app, env = make_instance(f"ivr-kam{name}-", lambda env: base)
            c.apps[name], c.envs[name] = app, env
        nodes = ",".join(f"{n}=127.0.0.1:{c.envs[n]['IVR_PBX_SIP_PORT']}" for n in ("a", "b"))
        cluster_env = {"IVR_CLUSTER_NODES": nodes, "IVR_CLUSTER_KAMAILIO_PORT": str(free_port())}
        for name in ("a", "b"):
            # Each node knows the cluster (its Asterisk accepts calls from Kamailio).
            c.envs[name].update(cluster_env, IVR_TELEPHONY_NODE_NAME=name)
            c.apps[name], _ = init(load_settings(environ=c.envs[name]), clock=MovableClock())
            start_or_fail(c.apps[name])
            c.start_worker(name)
        c.kam_env = {"IVR_DATA_DIR": str(kam_dir), **base, **cluster_env}
        c.kamailio = Kamailio(c.kam_env, tmp_path).start()
        yield c
    finally:
        c.close()
        shutil.rmtree(kam_dir, ignore_errors=True)
        drop_database(postgres_url, db_name)


def _spread(c: Cluster, tag: str, count: int) -> Counter[str]:
    rows = c.ended(tag, count)
    assert len(rows) == count, rows  # one call row per SIPp call
    answers = c.answers([r.id for r in rows])
    for row in rows:
        assert str(row.status) == "completed", row
        assert answers[row.id] == [("q1", "yes")], (row, answers[row.id])  # stored once
    return Counter(r.node_name for r in rows)


def test_calls_spread_fail_over_and_drain(cluster: Cluster) -> None:
    c = cluster
    assert c.kamailio is not None
    kamailio = c.kamailio
    assert "wrote" in kamailio.render_output and "kamailio.cfg" in kamailio.render_output
    assert "config file ok" in kamailio.render_output
    target = f"127.0.0.1:{c.kam_env['IVR_CLUSTER_KAMAILIO_PORT']}"
    callers = SippCallers(c.root, target)
    kamailio.wait_state("a", "active", 10)
    kamailio.wait_state("b", "active", 10)

    # (a) 40 calls through Kamailio: both nodes take a fair share, every answer stored once.
    assert callers.run("s", 40, SURVEY, timeout=90, rate=10) == 0, callers.tail("s")
    spread = _spread(c, "s", 40)
    print(f"\n40 calls through Kamailio: {dict(spread)}")
    assert spread["a"] >= 10 and spread["b"] >= 10, spread
    # Both nodes healthy: no call needed a second node, none was refused by a worker.
    assert "tried again" not in c.log_text("kamailio.log"), kamailio.log_tail()
    for name in ("a", "b"):
        assert "not stored" not in c.log_text(f"worker-{name}.log")

    # (b) node b dies: the probes take it out; new calls go to a only.
    c.kill_node("b")
    down = kamailio.wait_state("b", "inactive", DETECT_BOUND + 5)
    print(f"node b killed -> inactive in Kamailio after {down:.2f} s (bound {DETECT_BOUND} s)")
    assert down <= DETECT_BOUND, down
    assert callers.run("k", 8, SURVEY, timeout=60, rate=10) == 0, callers.tail("k")
    assert _spread(c, "k", 8) == {"a": 8}
    # Kamailio is told b is back while it is not: a call sent there gets no reply, fails
    # over to a after sip_timeout_seconds, and b is marked inactive at once.
    c.ivr("cluster", "undrain", "b")
    assert kamailio.states()["b"] in ("active", "trying")  # trying: a probe failed since
    assert callers.run("f", 4, SURVEY, timeout=60, rate=10) == 0, callers.tail("f")
    assert _spread(c, "f", 4) == {"a": 4}
    assert kamailio.states()["b"] in ("inactive", "trying")
    failovers = c.log_text("kamailio.log").count("did not answer the INVITE")
    print(f"calls that failed over from the dead node after sip_timeout_seconds: {failovers}")
    # b restarted: the probes bring it back by themselves, and calls reach it again.
    c.restart_asterisk("b")
    up = kamailio.wait_state("b", "active", RECOVER_BOUND + 10)
    print(f"node b's Asterisk booted -> active again after {up:.2f} s (bound {RECOVER_BOUND} s)")
    assert up <= RECOVER_BOUND, up
    # b's Asterisk is up but its telephony worker is not: the Stasis application is missing,
    # b refuses the call with 503 and Kamailio tries a; nothing is stored on b.
    assert callers.run("w", 6, SURVEY, timeout=60, rate=10) == 0, callers.tail("w")
    assert _spread(c, "w", 6) == {"a": 6}
    c.start_worker("b")
    kamailio.wait_state("b", "active", RECOVER_BOUND + 10)
    assert callers.run("r", 10, SURVEY, timeout=60, rate=10) == 0, callers.tail("r")
    back = _spread(c, "r", 10)
    print(f"after the restart: {dict(back)}")
    assert back["b"] >= 2, back

    # (c) drain the node that runs a long call: it finishes there, new calls go elsewhere.
    long_call = callers.start("L", 1, LONG, pause_ms=14000)
    deadline = time.monotonic() + 15
    while not c.batch("L"):
        assert time.monotonic() < deadline, "the long call was not stored"
        time.sleep(0.1)
    busy = c.batch("L")[0].node_name
    other = "b" if busy == "a" else "a"
    out = c.ivr("cluster", "drain", busy)
    assert f"node {busy} is disabled" in out and "draining" in out, out
    assert kamailio.states()[busy] == "disabled"
    with Session(c.engine) as s:
        assert cluster_nodes.is_draining(s, busy)
    assert callers.run("d", 6, SURVEY, timeout=60, rate=10) == 0, callers.tail("d")
    assert _spread(c, "d", 6) == {other: 6}
    assert c.batch("L")[0].status == "active"  # still going while the others came and went
    assert callers.wait(long_call, "L", 40) == 0, callers.tail("L")
    assert _spread(c, "L", 1) == {busy: 1}  # completed on its node, its answer stored
    out = c.ivr("cluster", "undrain", busy)
    assert kamailio.states()[busy] == "active"
    with Session(c.engine) as s:
        assert not cluster_nodes.is_draining(s, busy)
    assert callers.run("u", 10, SURVEY, timeout=60, rate=10) == 0, callers.tail("u")
    again = _spread(c, "u", 10)
    assert again[busy] >= 2, again
    assert set(kam.STATES.values()) >= set(kamailio.states().values())
