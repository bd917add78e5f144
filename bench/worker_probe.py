"""``ivr telephony`` with timing probes, for diagnosing ``bench.campaign_load``.

    IVR_DATA_DIR=... BENCH_PROBE_OUT=/tmp/probe.jsonl .venv/bin/python -m bench.worker_probe

Runs the telephony worker exactly as ``ivr telephony`` does, with wrappers (nothing in
``ivr`` is changed) that time, for every database job, how long it waited in its queue
(the store's one-thread pool, or asyncio's default executor for the dialer), how long it
ran, and how long its ``BEGIN IMMEDIATE`` waited for SQLite's write lock; every ARI
request; the dialer's ``_place``; and the event loop's lag. Once a second it appends a JSON
line of aggregates to ``BENCH_PROBE_OUT``. ``summarise`` turns the file into a table.

The probes cost a little CPU: use it to find the bottleneck, not for the figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class Stats:
    """Per-second aggregates: name -> [count, sum, max] for each measured quantity."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.data: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])

    def add(self, name: str, value: float) -> None:
        with self.lock:
            entry = self.data[name]
            entry[0] += 1
            entry[1] += value
            entry[2] = max(entry[2], value)

    def take(self) -> dict[str, list[float]]:
        with self.lock:
            out = dict(self.data)
            self.data = defaultdict(lambda: [0, 0.0, 0.0])
        return out


STATS = Stats()
IDS = re.compile(r"/(out-)?[0-9a-f]{8}-[0-9a-f-]{27,}[^/]*|/[0-9a-f]{32}[^/]*")


SQL_WORDS = re.compile(r"\s+")


def sql_key(statement: str) -> str:
    """A statement's kind: its verb and table, and what it filters on."""
    text = SQL_WORDS.sub(" ", statement).strip()
    upper = text.upper()
    verb = upper.split(" ", 1)[0]
    table = ""
    for marker in (" FROM ", "UPDATE ", "INSERT INTO "):
        at = upper.find(marker)
        if at >= 0:
            table = text[at + len(marker) :].split(" ", 1)[0]
            break
    where = ""
    at = upper.find(" WHERE ")
    if at >= 0:
        where = " WHERE " + text[at + 7 : at + 7 + 60]
    return f"{verb} {table}{where}"[:100]


def op_name(work: Callable[..., Any]) -> str:
    """A short name for a database job: the function that made the lambda."""
    qual = getattr(work, "__qualname__", repr(work))
    parts = [p for p in qual.split(".") if p not in ("<locals>", "<lambda>")]
    return ".".join(parts[-2:])


def install() -> None:
    from ivr.campaigns import dialer as dialer_mod
    from ivr.store import call_store as cs
    from ivr.store import db as db_mod
    from ivr.telephony import ari as ari_mod

    original_begin = db_mod._sqlite_on_begin

    def timed_begin(connection: Any) -> None:
        started = time.perf_counter()
        original_begin(connection)
        waited = time.perf_counter() - started
        who = "store" if threading.current_thread().name.startswith("ivr-db") else "dialer"
        STATS.add(f"lock wait ({who} thread)", waited)

    db_mod._sqlite_on_begin = timed_begin  # make_engine looks it up when it is called

    # Every SQL statement's time in the driver (SQLite's own time, GIL released), by the
    # statement's verb, table and condition; and every COMMIT.
    import sqlalchemy as sa

    original_make_engine = db_mod.make_engine

    def make_engine(*args: Any, **kw: Any) -> Any:
        engine = original_make_engine(*args, **kw)

        @sa.event.listens_for(engine, "before_cursor_execute")
        def before(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
            conn.info.setdefault("probe_t", []).append(time.perf_counter())

        @sa.event.listens_for(engine, "after_cursor_execute")
        def after(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
            started = conn.info["probe_t"].pop()
            STATS.add("SQL " + sql_key(statement), time.perf_counter() - started)

        original_commit = engine.dialect.do_commit

        def do_commit(dbapi_connection: Any) -> None:
            started = time.perf_counter()
            original_commit(dbapi_connection)
            STATS.add("SQL COMMIT", time.perf_counter() - started)

        engine.dialect.do_commit = do_commit
        return engine

    db_mod.make_engine = make_engine

    async def through_writer(writer: Any, name: str, work: Callable[[Any], T]) -> T:
        """Run ``work`` in the database writer, timing its wait in the queue and its run
        (the commit of its batch comes after the run)."""
        queued = time.perf_counter()
        marks: dict[str, float] = {}

        def timed(session: Any) -> T:
            marks["started"] = time.perf_counter()
            try:
                return work(session)
            finally:
                marks["ended"] = time.perf_counter()

        result: T = await writer.run(timed)
        STATS.add(f"{name}: queue", marks["started"] - queued)
        STATS.add(f"{name}: run", marks["ended"] - marks["started"])
        STATS.add(f"{name}: total (to commit)", time.perf_counter() - queued)
        return result

    async def store_run(self: Any, work: Callable[[Any], T]) -> T:
        return await through_writer(self.writer, "store " + op_name(work), work)

    cs.DbCallStore._run = store_run  # type: ignore[method-assign]

    async def dialer_db(self: Any, work: Callable[[Any], object]) -> object:
        return await through_writer(self.writer, "dialer " + op_name(work), work)

    dialer_mod.Dialer._db = dialer_db  # type: ignore[method-assign]

    original_place = dialer_mod.Dialer._place

    async def timed_place(self: Any, run: Any, attempt: Any, language: str) -> None:
        started = time.perf_counter()
        await original_place(self, run, attempt, language)
        STATS.add("dialer _place (create call row + originate)", time.perf_counter() - started)

    dialer_mod.Dialer._place = timed_place  # type: ignore[method-assign]

    original_claim = dialer_mod.Dialer._claim

    def counted_claim(self: Any, s: Any, run: Any, limit: int) -> Any:
        ready = original_claim(self, s, run, limit)
        STATS.add("dialer claimed per pass", float(len(ready)))
        return ready

    dialer_mod.Dialer._claim = counted_claim  # type: ignore[method-assign]

    original_request = ari_mod.AriClient.request

    async def timed_request(self: Any, method: str, path: str, *args: Any, **kw: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original_request(self, method, path, *args, **kw)
        finally:
            STATS.add(f"ARI {method} {IDS.sub('/*', path)}", time.perf_counter() - started)

    ari_mod.AriClient.request = timed_request  # type: ignore[method-assign]

    # httpcore: the pool's time (waiting for one of the 50 connections + the exchange)
    # against one connection's exchange (request written, response headers read).
    from httpcore._async import connection as hc_connection
    from httpcore._async import connection_pool as hc_pool

    original_pool = hc_pool.AsyncConnectionPool.handle_async_request
    original_conn = hc_connection.AsyncHTTPConnection.handle_async_request

    async def timed_pool(self: Any, request: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original_pool(self, request)
        finally:
            STATS.add(
                "http: pool (wait for a connection + exchange)", time.perf_counter() - started
            )
            STATS.add("http: pool connections open", float(len(self._connections)))

    async def timed_conn(self: Any, request: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original_conn(self, request)
        finally:
            STATS.add("http: exchange on a connection (Asterisk)", time.perf_counter() - started)

    hc_pool.AsyncConnectionPool.handle_async_request = timed_pool  # type: ignore[method-assign]
    hc_connection.AsyncHTTPConnection.handle_async_request = timed_conn  # type: ignore[method-assign]

    original_connect = hc_connection.AsyncHTTPConnection._connect

    async def counted_connect(self: Any, request: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original_connect(self, request)
        finally:
            STATS.add("http: new TCP connection", time.perf_counter() - started)

    hc_connection.AsyncHTTPConnection._connect = counted_connect  # type: ignore[method-assign]


async def reporter(parts: Any, out: Path) -> None:
    loop = asyncio.get_running_loop()
    t0 = time.monotonic()
    lag_max = 0.0
    with out.open("a") as fh:
        next_report = time.monotonic() + 1.0
        while True:
            before = loop.time()
            await asyncio.sleep(0.05)
            lag = loop.time() - before - 0.05
            lag_max = max(lag_max, lag)
            STATS.add("event loop lag", lag)
            if time.monotonic() < next_report:
                continue
            next_report += 1.0
            executor = getattr(loop, "_default_executor", None)
            dialer = parts.dialer
            line = {
                "t": round(time.monotonic() - t0, 3),
                "wall": time.time(),
                "store_queue": parts.store.writer.queued,
                "writer_transactions": parts.store.writer.transactions,
                "writer_items": parts.store.writer.items,
                "default_executor_queue": executor._work_queue.qsize() if executor else 0,
                "default_executor_threads": len(executor._threads) if executor else 0,
                "sessions": len(parts.service.sessions),
                "outbound_pending": len(parts.service._outbound),
                "in_flight": sum(len(r.in_flight) for r in dialer.campaigns.values()),
                "placed": dialer.placed,
                "stats": STATS.take(),
            }
            fh.write(json.dumps(line) + "\n")
            fh.flush()


def main() -> int:
    import logging

    from ivr.bootstrap import load_app
    from ivr.cli import serve_telephony

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    out = Path(os.environ.get("BENCH_PROBE_OUT", "probe.jsonl"))
    install()
    asyncio.run(serve_telephony(load_app(), lambda parts: reporter(parts, out)))
    return 0


def summarise(path: Path, start: float = 0.0, end: float = float("inf")) -> list[str]:
    """Per operation between the wall-clock times ``start`` and ``end``: count, mean and
    max; plus a 10-s timeline (t: seconds since ``start``)."""
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    picked = [x for x in lines if start <= x["wall"] <= end]
    if not picked:
        return ["  (no probe lines in that time)"]
    for x in picked:
        x["t"] = x["wall"] - (start if start > 0 else picked[0]["wall"])
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for x in picked:
        for name, (n, total, peak) in x["stats"].items():
            entry = totals[name]
            entry[0] += n
            entry[1] += total
            entry[2] = max(entry[2], peak)
    seconds = (picked[-1]["t"] - picked[0]["t"]) if len(picked) > 1 else 1.0
    out = [f"  {'operation':58} {'per s':>7} {'mean ms':>9} {'max ms':>9} {'busy %':>7}"]
    for name, (n, total, peak) in sorted(totals.items()):
        if name.startswith(("dialer claimed per pass", "http: pool connections open")):
            out.append(f"  {name:58} {n / seconds:7.1f} {total / n if n else 0:9.2f} {peak:9.0f}")
            continue
        mean_ms = 1000 * total / n if n else 0.0
        out.append(
            f"  {name:58} {n / seconds:7.1f} {mean_ms:9.2f} {1000 * peak:9.1f} "
            f"{100 * total / seconds:7.1f}"
        )
    run = sum(v[1] for k, v in totals.items() if k.endswith(": run"))
    waited = sum(v[1] for k, v in totals.items() if k.startswith("lock wait"))
    placed = picked[-1]["placed"] - picked[0]["placed"]
    out.append(
        f"  SQLite write lock held (all transactions begin IMMEDIATE): "
        f"{100 * (run - waited) / seconds:.0f} % of the time, "
        f"{1000 * (run - waited) / placed if placed else 0:.0f} ms per placed call"
    )
    out.append("")
    out.append(
        "  t(s)  placed/s  place(mean/max ms)  create(mean ms)  POST /channels(mean/max ms)  "
        "play(mean ms)  pool(mean ms)  conns(max)  lock held%  store queue(max)  "
        "loop lag(max ms)"
    )

    def agg(chunk: list[dict[str, Any]], name: str) -> tuple[float, float, float]:
        n = total = peak = 0.0
        for x in chunk:
            v = x["stats"].get(name)
            if v:
                n += v[0]
                total += v[1]
                peak = max(peak, v[2])
        return n, total, peak

    def ms(n: float, total: float) -> float:
        return 1000 * total / n if n else 0.0

    for i in range(0, len(picked) - 1, 10):
        chunk = picked[i : i + 11]
        dt = chunk[-1]["t"] - chunk[0]["t"] or 1.0
        rate = (chunk[-1]["placed"] - chunk[0]["placed"]) / dt
        body = chunk[1:]  # the aggregates of the seconds after the first line
        pn, ps, pm = agg(body, "dialer _place (create call row + originate)")
        cn, cs, _ = agg(body, "store DbCallStore.create: total")
        on, os_, om = agg(body, "ARI POST /channels")
        yn, ys, _ = agg(body, "ARI POST /channels/*/play/*")
        hn, hs, _ = agg(body, "http: pool (wait for a connection + exchange)")
        _, _, conns = agg(body, "http: pool connections open")
        _, _, lag = agg(body, "event loop lag")
        held = sum(v[1] for x in body for k, v in x["stats"].items() if k.endswith(": run")) - sum(
            v[1] for x in body for k, v in x["stats"].items() if k.startswith("lock wait")
        )
        queue = max(x["store_queue"] for x in body) if body else 0
        out.append(
            f"  {chunk[0]['t']:4.0f}  {rate:8.1f}  {ms(pn, ps):8.0f}/{1000 * pm:<9.0f}  "
            f"{ms(cn, cs):15.0f}  {ms(on, os_):14.0f}/{1000 * om:<12.0f}  {ms(yn, ys):13.0f}  "
            f"{ms(hn, hs):13.0f}  {conns:10.0f}  {100 * held / dt:10.0f}  {queue:16d}  "
            f"{1000 * lag:16.0f}"
        )
    return out


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "summarise":
        print("\n".join(summarise(Path(sys.argv[2]))))
        sys.exit(0)
    sys.exit(main())
