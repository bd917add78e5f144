"""`ivr webhooks deliver` killed (SIGKILL) mid-delivery loses nothing: after a restart the
event is delivered (maybe twice; the receiver deduplicates by webhook-id)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr.clock import MovableClock
from ivr.outcome import Outcome
from ivr.store import repo
from ivr.store.models import Call, Direction
from ivr.webhooks import events
from tests.webhooks.test_delivery import endpoint, receiver  # noqa: F401

IVR = Path(sys.executable).with_name("ivr")


def _start(db_url: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "IVR_DATA_DIR": str(tmp_path),
        "IVR_DATABASE_URL": db_url,
        "IVR_WEBHOOKS_ALLOW_PRIVATE": "true",
        "IVR_WEBHOOKS_TIMEOUT_SECONDS": "30",
        "IVR_WEBHOOKS_POLL_SECONDS": "0.1",
    }
    env.pop("IVR_CONFIG", None)
    return subprocess.Popen([str(IVR), "webhooks", "deliver"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def test_killed_worker_loses_nothing(
    db_url: str,
    sessions: sessionmaker[Session],
    clock: MovableClock,
    org: str,
    receiver: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    endpoint(sessions, clock, org, receiver, [events.CALL_FINISHED])
    receiver.hang_seconds = 20  # the worker is mid-POST when it is killed
    with sessions.begin() as s:
        call = repo.create_call(
            s, direction=Direction.INBOUND, flow_id="f", flow_version="1",
            channel_id=uuid.uuid4().hex, node_name="n", language="fi", started_at=clock(),
        )  # fmt: skip
        s.execute(sa.update(Call).where(Call.id == call.id).values(org_id=org))
        repo.end_call(s, call.id, Outcome.PARTIAL, at=clock())
    worker = _start(db_url, tmp_path)
    try:
        assert receiver.wait_for(lambda: receiver.requests >= 1, 30)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        with sessions() as s:
            state = s.execute(sa.text("SELECT state, claimed_by FROM webhook_deliveries")).one()
        assert state[0] == "pending" and state[1]  # claimed by the dead worker
        receiver.hang_seconds = 0
        worker = _start(db_url, tmp_path)
        assert receiver.wait_for(lambda: len(receiver.seen) == 1 and receiver.requests >= 2, 30)
        with sessions() as s:
            deadline_ok = s.execute(sa.text("SELECT state FROM webhook_deliveries")).scalar()
        assert deadline_ok in ("pending", "delivered")
    finally:
        worker.kill()
        worker.wait(10)
    assert list(receiver.seen.values())[0]["data"]["call_id"] == call.id
