"""The database writer: in order, many items per transaction, one failure rolled back alone."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr.clock import system_clock
from ivr.outcome import Outcome
from ivr.store import repo
from ivr.store.models import Call
from ivr.store.writer import DbWriter, WriterClosed
from tests.integration.test_store import new_call


def test_concurrent_work_is_batched_in_order_and_a_failure_stays_alone(
    sessions: sessionmaker[Session],
) -> None:
    writer = DbWriter(sessions)
    order: list[int] = []

    def create(i: int) -> object:
        def work(s: Session) -> str:
            order.append(i)
            if i == 7:
                new_call(s, call_id="call-0")  # the same primary key as item 0: refused
                s.flush()
            return new_call(s, call_id=f"call-{i}").id

        return work

    async def main() -> list[object]:
        return await asyncio.gather(
            *(writer.run(create(i)) for i in range(40)), return_exceptions=True
        )

    async def more() -> list[object]:
        return await asyncio.gather(*(writer.run(create(i)) for i in range(100, 140)))

    try:
        results = asyncio.run(main())
        stored, commits, first_round = writer.items, writer.transactions, list(order)
        asyncio.run(more())
    finally:
        writer.close()
    # Run in the order submitted; the batch holding the failure ran again item by item.
    first = first_round.index(7)
    assert first_round[: first + 1] == list(range(first + 1))
    assert sorted(set(first_round)) == list(range(40)) and first_round[-1] == 39
    assert isinstance(results[7], sa.exc.IntegrityError)
    assert [r for i, r in enumerate(results) if i != 7] == [
        f"call-{i}" for i in range(40) if i != 7
    ]
    with sessions() as s:
        ids = set(s.scalars(sa.select(Call.id)))
    assert ids - {f"call-{i}" for i in range(100, 140)} == {
        f"call-{i}" for i in range(40) if i != 7
    }  # nothing of item 7, all others
    assert stored == 39
    assert writer.items - stored == 40
    assert writer.transactions - commits < 40  # grouped: fewer commits than items


def test_an_awaited_write_is_committed_when_the_await_returns(
    sessions: sessionmaker[Session],
) -> None:
    writer = DbWriter(sessions)

    async def main() -> None:
        await writer.run(lambda s: new_call(s, call_id="seen"))
        with sessions() as other:  # another connection sees it at once
            assert other.get(Call, "seen") is not None
        await writer.run(lambda s: repo.end_call(s, "seen", Outcome.COMPLETED, at=system_clock()))

    try:
        asyncio.run(main())
    finally:
        writer.close()
    with pytest.raises(WriterClosed):
        writer.submit(lambda s: None)


def test_sqlite_busy_from_another_process_is_waited_out(tmp_path: Path) -> None:
    from ivr.store.db import make_engine, make_session_factory
    from ivr.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'ivr.db'}"
    upgrade(url)
    engine = make_engine(url)
    writer = DbWriter(make_session_factory(engine))
    # Another connection (as another process would) holds the write lock for 0.5 s.
    locker = sqlite3.connect(tmp_path / "ivr.db", isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN IMMEDIATE")
    released = threading.Timer(0.5, lambda: locker.execute("COMMIT"))
    released.start()
    started = time.monotonic()

    async def main() -> list[object]:
        return await asyncio.gather(
            *(writer.run(lambda s, i=i: new_call(s, call_id=f"w{i}").id) for i in range(5))
        )

    try:
        assert asyncio.run(main()) == [f"w{i}" for i in range(5)]
    finally:
        released.join()
        writer.close()
        locker.close()
        engine.dispose()
    assert time.monotonic() - started >= 0.4  # it waited for the lock, then wrote
