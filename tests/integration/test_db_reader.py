"""Staff pages read through ``reader_for``: on SQLite a long read holds no lock, so the
telephony worker's writes never wait behind a report (they would behind BEGIN IMMEDIATE)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import sqlalchemy as sa

from ivr.store.db import make_engine, make_session_factory, reader_for
from ivr.store.migrate import upgrade
from ivr.store.org_models import Organisation


def test_a_read_in_progress_does_not_hold_back_a_write(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ivr.db'}"
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    reader = reader_for(factory)
    with factory.begin() as s:
        s.add(Organisation(name="Kunta A"))
    wrote = threading.Event()
    with reader() as r:
        # The read transaction is open and has read: it holds its snapshot now.
        assert r.scalar(sa.select(sa.func.count()).select_from(Organisation)) == 1

        def write() -> None:
            with factory.begin() as s:
                s.add(Organisation(name="Kunta B"))
            wrote.set()

        writer = threading.Thread(target=write)
        started = time.monotonic()
        writer.start()
        # The writer takes the write lock at once (busy timeout is 10 s: a wait would show).
        assert wrote.wait(5.0), "the write waited for the read transaction"
        assert time.monotonic() - started < 5.0
        # The reader keeps its consistent snapshot until it ends.
        assert r.scalar(sa.select(sa.func.count()).select_from(Organisation)) == 1
        writer.join()
    with reader() as r:
        assert r.scalar(sa.select(sa.func.count()).select_from(Organisation)) == 2
    engine.dispose()
