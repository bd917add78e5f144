"""Benchmark: what the cluster heartbeat costs the database (figures, not a test).

    .venv/bin/python -m bench.cluster_heartbeat [--nodes 20] [--beats 500] [--postgres]

Writes ``--beats`` heartbeats (``ivr.cluster.nodes.heartbeat``: one UPDATE, or an INSERT
the first time, and the read-back of the draining flag, each in its own transaction as a
worker's heartbeat runs when the writer is idle) spread over ``--nodes`` node names, then
reads the cluster view (``node_views``, what ``ivr cluster status`` and the admin page
run) 200 times. SQLite: a temporary file; ``--postgres``: a database on a private
PostgreSQL server (tests/support/postgres.py) that is stopped afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ivr.cluster import nodes
from ivr.store.db import make_engine, make_session_factory, session_scope
from ivr.store.migrate import upgrade


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms"


def run(url: str, n_nodes: int, beats: int) -> None:
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    t0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    try:
        writes: list[float] = []
        for i in range(beats):
            beat = nodes.NodeBeat(f"node-{i % n_nodes:02d}", t0, "22.10.0", i % 50, 5.0, 1)
            started = time.perf_counter()
            with session_scope(factory) as s:
                nodes.heartbeat(s, beat, t0 + timedelta(seconds=i))
            writes.append(time.perf_counter() - started)
        reads: list[float] = []
        for _ in range(200):
            started = time.perf_counter()
            with session_scope(factory) as s:
                views = nodes.node_views(s, t0 + timedelta(seconds=beats), 30)
            reads.append(time.perf_counter() - started)
        assert len(views) == min(n_nodes, beats)
        print(
            f"{engine.dialect.name}: heartbeat write {_ms(writes)} ({beats} beats, {n_nodes} nodes)"
        )
        print(f"{engine.dialect.name}: cluster view of {len(views)} nodes {_ms(reads)}")
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--beats", type=int, default=500)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    if not args.postgres:
        with tempfile.TemporaryDirectory() as folder:
            run(f"sqlite:///{Path(folder) / 'ivr.db'}", args.nodes, args.beats)
        return
    from tests.support.postgres import create_database, start_postgres

    server = start_postgres()
    try:
        run(create_database(server.url(), f"bench_{uuid.uuid4().hex[:8]}"), args.nodes, args.beats)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
