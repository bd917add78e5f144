"""The telephony nodes page (/o/<org>/cluster): organisation admins only; every node with
its state in words, heartbeat age, Asterisk version, calls, pacing, draining and last
error, from the same ``node_views`` as ``ivr cluster status``. On SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from ivr.clock import MovableClock
from ivr.cluster import nodes
from ivr.cluster.nodes import NodeBeat
from ivr.services import Services
from ivr.store.cluster_models import ClusterNode
from tests.web.campaign_support import MONDAY_NOON, body, browser, url
from tests.web.conftest import Users


@pytest.fixture(autouse=True)
def _no_nodes(services: Services, clock: MovableClock) -> Iterator[None]:
    clock.set(MONDAY_NOON)
    with services.factory.begin() as s:
        s.execute(sa.delete(ClusterNode))
    yield


def _text(page: str) -> str:
    """The page's visible text, tags removed and spaces folded."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _row(page: str, node: str) -> str:
    found = re.search(
        rf"<tr>\s*<th scope=\"row\"><code>{re.escape(node)}</code>.*?</tr>", page, re.S
    )
    assert found, f"no row for {node}"
    return _text(found.group(0))


def test_only_admins_open_it(web_app: Flask, users: Users) -> None:
    path = url(web_app, "cluster.index", org_id=users.a.admin.org_id)
    assert browser(web_app).get(path).status_code == 302  # to the login page
    for person in (users.a.manager, users.a.reviewer):
        page = browser(web_app, person)
        assert page.get(path).status_code == 403
        assert path not in body(page.get(url(web_app, "campaigns.index", org_id=person.org_id)))
    admin = browser(web_app, users.a.admin)
    # Another organisation's URL is not found, as everywhere.
    other = url(web_app, "cluster.index", org_id=users.b.admin.org_id)
    assert admin.get(other).status_code == 404
    response = admin.get(path)
    assert response.status_code == 200
    assert "No telephony node has reported yet" in _text(body(response))
    # The admins' navigation links to it.
    home = body(admin.get(url(web_app, "campaigns.index", org_id=users.a.admin.org_id)))
    assert f'href="{path}"' in home and "Telephony nodes" in home


def test_nodes_in_words_with_their_load_and_errors(
    web_app: Flask, services: Services, clock: MovableClock, users: Users
) -> None:
    now = clock()
    started = now - timedelta(hours=2)
    version = "22.10.0~dfsg+~cs6.15.60671435-1"
    with services.factory.begin() as s:
        nodes.heartbeat(
            s, NodeBeat("node-a:5060", started, version, 12, 2.5, 2), now - timedelta(seconds=3)
        )
        nodes.heartbeat(
            s,
            NodeBeat("node-b:5062", started, version, 4, None, 0,
                     "ARI disconnected (Asterisk unreachable)", now - timedelta(minutes=3)),
            now - timedelta(minutes=2),
        )  # fmt: skip
        nodes.heartbeat(s, NodeBeat("node-c:5064", started, version, 1, 1.0, 1), now)
        nodes.set_draining(s, "node-c:5064", True, now - timedelta(minutes=10))
        nodes.heartbeat(s, NodeBeat("node-d:5066", started, version, 0, 0.0, 0), now)
        nodes.mark_stopped(s, "node-d:5066", now - timedelta(seconds=30))

    client = browser(web_app, users.a.admin)
    before = clock()
    page = body(client.get(url(web_app, "cluster.index", org_id=users.a.admin.org_id)))
    after = clock()  # the clock runs on: the age shown is 3 s plus the time this took
    ages = {round(3 + (t - now).total_seconds()) for t in (before, after)}
    a = _row(page, "node-a:5060")
    assert "Up" in a and version in a and " 12 " in a
    assert any(f"{n} s ago" in a for n in range(min(ages), max(ages) + 1)), (ages, a)
    assert "2.5 calls/s (campaigns: 2)" in a
    b = _row(page, "node-b:5062")
    assert "Down" in b and "2 min ago" in b and "No dialer" in b
    assert "ARI disconnected (Asterisk unreachable)" in b
    c = _row(page, "node-c:5064")
    assert "Draining" in c
    assert "23 Nov 2026, 11:50" in c  # draining since (Helsinki time)
    d = _row(page, "node-d:5066")
    assert "Stopped" in d and "30 s ago" in d
    # The state is a word in a marked-up label, not a colour alone.
    assert '<span class="status status-down">Down</span>' in page
    assert '<span class="status status-paused">Draining</span>' in page
    summary = _text(page)
    assert "Calls in progress: 13." in summary  # the live nodes' calls (not the down one's)
    for state in ("Up: 1", "Draining: 1", "Down: 1", "Stopped: 1"):
        assert state in summary


def test_in_finnish_and_swedish(
    web_app: Flask, services: Services, clock: MovableClock, users: Users
) -> None:
    with services.factory.begin() as s:
        nodes.heartbeat(s, NodeBeat("node-a", clock(), "22.10.0", 0, None, 0), clock())
        nodes.set_draining(s, "node-a", True, clock())
    path = url(web_app, "cluster.index", org_id=users.a.admin.org_id)
    for language, words in (
        ("fi", ("Puhelinpalvelimet", "Tyhjenemässä", "Ei soittajaa")),
        ("sv", ("Telefoniservrar", "Töms", "Ingen uppringare")),
    ):
        client = browser(web_app, users.a.admin)
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
        page = _text(body(client.get(path)))
        for word in words:
            assert word in page, (language, word)
