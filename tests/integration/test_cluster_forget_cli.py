"""`ivr cluster forget NODE`: a node taken out of the cluster for good leaves the view, but
only once it is down or stopped and nothing of it is left in flight."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from ivr.bootstrap import App
from ivr.cluster import nodes
from ivr.store.campaigns import claim_due_attempts
from tests.integration.test_campaign_store import NOW, running_campaign
from tests.support.cli import run_ivr
from tests.support.instance import initialised_instance


@pytest.fixture()
def instance() -> Iterator[tuple[App, dict[str, str]]]:
    app, env = initialised_instance("ivr-forget-")
    try:
        yield app, env
    finally:
        shutil.rmtree(app.settings.data_dir, ignore_errors=True)


def test_forget_only_a_node_that_is_gone_with_nothing_in_flight(
    instance: tuple[App, dict[str, str]],
) -> None:
    app, env = instance
    factory = app.services().factory
    # `ivr cluster` reads the system clock: the heartbeats are placed relative to it.
    now = datetime.now(UTC)
    long_ago = now - timedelta(minutes=10)
    with factory.begin() as s:
        nodes.heartbeat(s, nodes.NodeBeat("up-node", now), now)
        nodes.heartbeat(s, nodes.NodeBeat("gone-node", long_ago), long_ago)
        nodes.heartbeat(s, nodes.NodeBeat("gone-busy", long_ago), long_ago)
    running_campaign(factory, "kysely", 2)
    with factory.begin() as s:
        assert len(claim_due_attempts(s, node="gone-busy", now=NOW, limit=1)) == 1

    unknown = run_ivr(env, "cluster", "forget", "no-such-node")
    assert unknown.returncode == 2
    assert "no node named 'no-such-node' (known: gone-busy, gone-node, up-node)" in unknown.stderr
    up = run_ivr(env, "cluster", "forget", "up-node")
    assert up.returncode == 2 and "node up-node is up: stop its telephony worker" in up.stderr
    busy = run_ivr(env, "cluster", "forget", "gone-busy")
    assert busy.returncode == 2
    assert "still has 1 attempt(s) in flight and 0 active call(s)" in busy.stderr
    gone = run_ivr(env, "cluster", "forget", "gone-node")
    assert gone.returncode == 0, gone.stderr
    assert "node gone-node forgotten" in gone.stdout

    status = run_ivr(env, "cluster", "status", "--json")
    assert status.returncode == 0, status.stderr
    listed = {n["name"]: n["state"] for n in json.loads(status.stdout)["nodes"]}
    assert listed == {"up-node": "up", "gone-busy": "down"}
