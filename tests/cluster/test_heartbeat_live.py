"""The cluster heartbeat of a real telephony worker on a real Asterisk.

1. `ivr telephony` (its own process) writes its row: up, Asterisk's own version, one call
   in progress during a real softphone call (baresip) and none after it; `ivr cluster
   status` shows it; a clean stop (SIGTERM) leaves it "stopped", a SIGKILL leaves it to
   become "down" once the node timeout has passed.
2. A draining node's dialer claims no campaign attempt (the heartbeat hands it the flag);
   undrained, it dials the campaign to the end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from ivr.accounts.audit import Actor
from ivr.bootstrap import App
from ivr.campaigns.admin import CampaignSettings
from ivr.cluster import nodes
from ivr.cluster.node_rules import NodeState
from ivr.softphone import accounts
from ivr.store.cluster_models import ClusterNode
from ivr.store.db import make_engine, make_session_factory, session_scope
from ivr.store.models import Attempt, AttemptState
from ivr.telephony.personas import number_for
from tests.support.baresip import Baresip
from tests.support.cli import run_ivr
from tests.support.instance import destroy, make_instance, start_or_fail
from tests.support.telephony import ServiceThread
from tests.support.worker import Worker

pytestmark = pytest.mark.pbx

NODE = "node-live"
HEARTBEAT = 0.5  # seconds between heartbeats
TIMEOUT = 5.0  # a node silent this long is down
FLOW = Path(__file__).parents[1] / "e2e" / "flows" / "mini-survey.yaml"
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Europe/Helsinki"))


@pytest.fixture(scope="module")
def pbx() -> Iterator[tuple[App, dict[str, str]]]:
    app, env = make_instance(
        prefix="ivr-beat-",
        extra=lambda base: {
            "IVR_CLUSTER_HEARTBEAT_SECONDS": str(HEARTBEAT),
            "IVR_CLUSTER_NODE_TIMEOUT_SECONDS": str(TIMEOUT),
            "IVR_TELEPHONY_NODE_NAME": NODE,
        },
    )
    try:
        start_or_fail(app)
        yield app, env
    finally:
        destroy(app)


def _row(app: App) -> ClusterNode | None:
    engine = make_engine(app.settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as s:
            row = s.get(ClusterNode, NODE)
            if row is not None:
                s.expunge(row)
            return row
    finally:
        engine.dispose()


def _wait_row(
    app: App, check: Callable[[ClusterNode], bool], what: str, timeout: float = 15
) -> ClusterNode:
    deadline = time.monotonic() + timeout
    row = _row(app)
    while row is None or not check(row):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for the heartbeat: {what}; last row {_show(row)}"
            )
        time.sleep(0.1)
        row = _row(app)
    return row


def _show(row: ClusterNode | None) -> str:
    if row is None:
        return "none"
    return str({c.name: getattr(row, c.name) for c in ClusterNode.__table__.columns})


def _ari_connected(log: Path) -> bool:
    """The worker's log says ARI connected again after it was lost."""
    text = log.read_text(errors="replace")
    return "ARI events connected" in text.rsplit("ARI events disconnected", 1)[-1]


def _asterisk_version(app: App) -> str:
    """The version Asterisk itself prints (``core show version``: "Asterisk 22.… built by …")."""
    out = app.pbx().cli("core show version")
    return out.split("Asterisk ", 1)[1].split()[0]


def test_a_real_worker_heartbeats_its_version_and_calls(
    pbx: tuple[App, dict[str, str]], tmp_path: Path
) -> None:
    app, env = pbx
    version = _asterisk_version(app)
    account = next(a for a in accounts(app.settings, app.credentials) if a.username == "softphone1")
    log = tmp_path / "worker.log"
    worker = Worker(env, log)
    try:
        row = _wait_row(app, lambda r: r.asterisk_version is not None, "the Asterisk version")
        assert row.asterisk_version == version
        assert row.calls_in_progress == 0 and row.stopped_at is None and not row.draining
        first = row.heartbeat_at
        row = _wait_row(app, lambda r: r.heartbeat_at > first, "a second heartbeat")

        with Baresip(account.baresip_line(), lifetime=60) as phone:
            phone.wait_registered(10)
            phone.dial("100")
            phone.wait_event("CALL_ESTABLISHED", 10)
            _wait_row(app, lambda r: r.calls_in_progress == 1, "one call in progress")
            status = run_ivr(env, "cluster", "status", "--json")
            assert status.returncode == 0, status.stderr
            (node,) = json.loads(status.stdout)["nodes"]
            assert (node["name"], node["state"], node["calls_in_progress"]) == (NODE, "up", 1)
            assert node["asterisk_version"] == version
            assert node["heartbeat_age_seconds"] <= TIMEOUT
            phone.hangup()
            phone.wait_event("CALL_CLOSED", 10)
        _wait_row(app, lambda r: r.calls_in_progress == 0, "no call in progress after the hang-up")
        table = run_ivr(env, "cluster", "status")
        assert table.returncode == 0, table.stderr
        line = next(x for x in table.stdout.splitlines() if x.startswith(NODE))
        assert line.split()[1] == "up" and version in line

        # Asterisk goes away: the worker goes on heartbeating, with the error and its time.
        app.pbx().stop()
        row = _wait_row(app, lambda r: "ARI disconnected" in (r.last_error or ""), "the error")
        assert row.last_error_at is not None and row.stopped_at is None
        lost_at = row.heartbeat_at
        _wait_row(app, lambda r: r.heartbeat_at > lost_at, "a heartbeat during the outage")
        start_or_fail(app)  # back: the worker reconnects and reads the version again
        _wait(lambda: _ari_connected(log), "the worker to reconnect to ARI", 30)
        assert _row(app).asterisk_version == version  # type: ignore[union-attr]

        assert worker.stop() == 0, log.read_text()[-3000:]  # SIGTERM: a clean shutdown
        row = _wait_row(app, lambda r: r.stopped_at is not None, "the stopped mark", 5)
        table = run_ivr(env, "cluster", "status")
        assert next(x for x in table.stdout.splitlines() if x.startswith(NODE)).split()[1] == (
            "stopped"
        )

        worker = Worker(env, log)  # back again: up, the stopped mark cleared
        row = _wait_row(app, lambda r: r.stopped_at is None, "a heartbeat after the restart")
        worker.kill()  # dies without a word: no stopped mark
        row = _row(app)
        assert row is not None and row.stopped_at is None
        engine = make_engine(app.settings.database_url)
        try:
            with session_scope(make_session_factory(engine)) as s:
                silent_for = row.heartbeat_at + timedelta(seconds=TIMEOUT + 1)
                (view,) = nodes.node_views(s, silent_for, TIMEOUT)
                assert view.state is NodeState.DOWN
                assert nodes.down_nodes(s, silent_for, TIMEOUT) == [NODE]
        finally:
            engine.dispose()
    finally:
        worker.kill()


def test_a_draining_node_claims_nothing_until_undrained(
    pbx: tuple[App, dict[str, str]], tmp_path: Path
) -> None:
    app, _ = pbx
    admin = app.campaigns()
    cli = Actor.cli()
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("phone\n" + "".join(number_for(701, n) + "\n" for n in range(1, 5)))
    admin.create(cli, "drain-test", FLOW, CampaignSettings(calls_per_second=5, max_concurrent=4))
    assert admin.import_contacts(cli, "drain-test", contacts)["accepted"] == 4

    with ServiceThread(app, dial=True) as svc:
        svc.set_time(MONDAY_10.astimezone(UTC))
        dialer, heartbeat = svc.parts.dialer, svc.parts.heartbeat
        assert heartbeat is not None
        with admin.factory.begin() as s:
            nodes.set_draining(s, NODE, True, svc.now())
        _wait(lambda: dialer.draining, "the heartbeat to hand the dialer the draining flag")
        admin.start(cli, "drain-test")
        _wait(lambda: len(dialer.campaigns) == 1, "the dialer to see the running campaign")
        beats = heartbeat.beats
        _wait(lambda: heartbeat.beats >= beats + 4, "four more heartbeats (many dialer passes)")
        row = _row(app)
        assert row is not None and row.draining and row.draining_since is not None
        assert (row.pacing, row.campaigns_running) == (0.0, 1)  # draining: allows nothing
        with admin.factory() as s:
            states = s.scalars(sa.select(Attempt.state)).all()
        assert states and set(states) == {AttemptState.DUE}, states
        assert dialer.placed == 0

        with admin.factory.begin() as s:
            nodes.set_draining(s, NODE, False, svc.now())
        _wait(lambda: not dialer.draining, "the heartbeat to clear the flag")
        _wait_row(app, lambda r: r.pacing == 5.0, "the campaign's pacing in the heartbeat")
        _wait(
            lambda: admin.status(cli, "drain-test")["status"] == "completed",
            "the campaign to complete",
            timeout=120,
        )
        final = admin.status(cli, "drain-test")
    assert final["completed"] == 4 and dialer.placed == 4
    row = _row(app)
    assert row is not None and row.stopped_at is not None  # ServiceThread closed it cleanly


def _wait(check: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
