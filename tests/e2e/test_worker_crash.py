"""The telephony worker dies mid-call (SIGKILL): when it comes back, no channel is left
hanging in Asterisk and the call is recorded as interrupted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ivr.bootstrap import App
from ivr.softphone import accounts
from ivr.store.db import make_engine
from tests.support.baresip import Baresip
from tests.support.instance import destroy, make_instance, start_or_fail
from tests.support.worker import Worker

pytestmark = pytest.mark.pbx


@pytest.fixture()
def own_pbx() -> Iterator[tuple[App, dict[str, str]]]:
    """A PBX of its own: no other telephony service may share its Stasis application."""
    app, env = make_instance(prefix="ivr-crash-")
    start_or_fail(app)
    yield app, env
    destroy(app)


def _calls(app: App) -> list[tuple[str, str | None]]:
    engine = make_engine(app.settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT status, last_node_id FROM calls")).all()
            return [(str(r[0]), r[1]) for r in rows]
    finally:
        engine.dispose()


def _channels(app: App) -> int:
    out = app.pbx().cli("core show channels count")
    return int(out.split("active channel")[0].split()[-1])


def test_killed_worker_leaves_no_channel_and_the_call_is_interrupted(
    own_pbx: tuple[App, dict[str, str]], tmp_path: Path
) -> None:
    app, env = own_pbx
    account = next(a for a in accounts(app.settings, app.credentials) if a.username == "softphone1")
    log = tmp_path / "worker.log"
    worker = Worker(env, log)
    try:
        with Baresip(account.baresip_line(), lifetime=90) as phone:
            phone.wait_registered(10)
            phone.dial("100")
            phone.wait_event("CALL_ESTABLISHED", 10)
            phone.send_digits("1", gap=1.0)  # Finnish: the flow moves on
            deadline = time.monotonic() + 10
            while _calls(app) != [("active", "welcome")] and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _calls(app) == [("active", "welcome")]

            worker.kill()  # the worker dies without a word
            time.sleep(2)
            assert _channels(app) >= 1, "the call should still be up in Asterisk"
            assert _calls(app) == [("active", "welcome")]

            worker = Worker(env, log)  # ...and comes back
            phone.wait_event("CALL_CLOSED", 15)  # it hung up the orphaned channel
        deadline = time.monotonic() + 10
        while _channels(app) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _channels(app) == 0
        while _calls(app) != [("interrupted", "welcome")] and time.monotonic() < deadline + 10:
            time.sleep(0.2)  # the worker marks the call after hanging up its channel
        assert _calls(app) == [("interrupted", "welcome")]
        while "marked interrupted" not in log.read_text() and time.monotonic() < deadline + 5:
            time.sleep(0.1)
        assert "1 call(s) marked interrupted" in log.read_text()
        exit_code = worker.stop()
    finally:
        worker.kill()  # only if it is still running: a failure above left it behind
    assert exit_code == 0, log.read_text()[-3000:]
