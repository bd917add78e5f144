"""One database writer per process: work runs in order, many items per transaction.

The telephony worker writes a few rows per call event (call created, answered, progress,
answers, end, the attempt's outcome). One transaction per event means one commit per event,
and on SQLite every commit takes the single write lock: at a few hundred concurrent calls
the worker spent most of its time waiting for that lock. Here every piece of work goes to
one thread, which takes whatever has queued up meanwhile and runs it in ONE transaction
(group commit). If an item fails, nothing of that batch is committed and every item of it
runs again in a transaction of its own: the failing one's caller gets the exception, the
others are stored. Work must therefore only touch the database (it may run twice). The
caller's await returns only after the commit, so "awaited" still means "stored".

Order is kept: items run in the order they were submitted, so a call's rows are written in
the order its events happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ivr.store.db import in_transaction, retryable

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BATCH = 256  # items per transaction at most
# Items awaited but not yet done at most: past this, ``run`` waits for a slot (the callers
# slow down; nothing is dropped). A burst of writes from hundreds of calls fits easily.
MAX_PENDING = 10_000
BUSY_RETRIES = 8  # a transaction that finds the database busy (another process) is retried


@dataclass
class _Item:
    work: Callable[[Session], Any]
    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future[Any] | None


class WriterClosed(RuntimeError):
    """Work submitted after ``close()``."""


class DbWriter:
    """A thread that runs database work in order, batching it into transactions."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        name: str = "ivr-db",
        max_batch: int = MAX_BATCH,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.factory = factory
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._slots: asyncio.Semaphore | None = None  # made in the loop that first runs work
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._closed = False
        # Figures for benchmarks and probes.
        self.transactions = 0
        self.items = 0
        self.busy_seconds = 0.0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ submitting
    async def run(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)`` in the writer; return its result once it is committed."""
        if self._closed:
            raise WriterClosed("the database writer is closed")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_pending)
        if self._slots.locked():  # full: wait for a slot, in order
            log.warning("database writer: %d items waiting; callers wait", self.max_pending)
        await self._slots.acquire()
        try:
            loop = asyncio.get_running_loop()
            future: asyncio.Future[T] = loop.create_future()
            self._queue.put(_Item(work, loop, future))
            return await future
        finally:
            self._slots.release()

    def submit(self, work: Callable[[Session], object]) -> None:
        """Queue ``work`` without waiting for it (a failure is logged)."""
        if self._closed:
            raise WriterClosed("the database writer is closed")
        self._queue.put(_Item(work, None, None))

    @property
    def queued(self) -> int:
        """Items waiting for the writer (approximate)."""
        return self._queue.qsize()

    def close(self, timeout: float = 10.0) -> None:
        """Finish what is queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)

    # ------------------------------------------------------------------ the thread
    def _loop(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            started = time.perf_counter()
            try:
                self._run_batch(batch)
            except Exception:  # never let the thread die: its callers would wait forever
                log.exception("database writer: a batch failed")
                for item in batch:
                    _deliver(item, False, RuntimeError("the database writer failed"))
            self.busy_seconds += time.perf_counter() - started

    def _run_batch(self, batch: list[_Item]) -> None:
        if len(batch) == 1:
            self._run_alone(batch[0])
            return
        results: list[tuple[_Item, Any]] = []
        try:
            with self.factory.begin() as session:
                for item in batch:
                    results.append((item, item.work(session)))
                    # Each item starts from an empty identity map, as in a session of its
                    # own: no object loaded by an earlier item is seen stale.
                    session.expunge_all()
        except Exception as exc:
            # Nothing of the batch was committed. Run each item in a transaction of its own:
            # the one that failed gets its error, the others are stored (each retries while
            # the database is busy). Failures are rare, so the common path needs no savepoints.
            if not isinstance(exc, OperationalError):
                log.info("database writer: an item failed (%s); running %d alone", exc, len(batch))
            else:
                log.warning("database writer: batch of %d failed: %s; one by one", len(batch), exc)
            for item in batch:
                self._run_alone(item)
            return
        self.transactions += 1
        self.items += len(batch)
        for item, value in results:
            _deliver(item, True, value)

    def _run_alone(self, item: _Item) -> None:
        try:
            value = in_transaction(self.factory, item.work, BUSY_RETRIES, _is_busy)
        except Exception as exc:
            _deliver(item, False, exc)
            return
        self.transactions += 1
        self.items += 1
        _deliver(item, True, value)


def _deliver(item: _Item, ok: bool, value: Any) -> None:
    if item.future is None or item.loop is None:
        if not ok:
            log.error("database writer: work failed: %s", value)
        return
    future = item.future

    def settle() -> None:
        if future.done():  # the caller was cancelled
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    with contextlib.suppress(RuntimeError):  # the caller's loop is closed
        item.loop.call_soon_threadsafe(settle)


def _is_busy(exc: DBAPIError) -> bool:
    """SQLite busy or locked, or a PostgreSQL transaction aborted to break a deadlock (a
    staff action took the same rows in the other order): worth running again."""
    if not isinstance(exc, OperationalError):
        return False
    if retryable(exc):
        return True
    text = str(exc).lower()
    return "locked" in text or "busy" in text
