"""Benchmark: server time of the staff UI's campaign list and a campaign's live progress
with 1,000 campaigns and 1,000,000 contacts in the database (SQLite and PostgreSQL).

    .venv/bin/python -m bench.web_pages [--db sqlite|postgresql|both] [--contacts 1000000]
                                        [--campaigns 1000] [--requests 200]
                                        [--keep DIR]   # SQLite: seed once into DIR, reuse

Seeds one organisation with the campaigns (one large campaign of 10% of the contacts, the
rest spread evenly), every contact with a first attempt and a mix of outcomes (a third of
the contacts also a second attempt), then times requests through the real application
(Flask's WSGI stack in this process: routing, the login check, the queries, the template)
for: the first page of the campaign list, a later page (keyset), and the progress JSON of
a typical campaign and of the large one. Prints p50/p95/max in milliseconds. The goal is
p95 under 100 ms for each.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ivr.accounts.audit import Actor
from ivr.bootstrap import init
from ivr.clock import MovableClock
from ivr.config import load_settings
from ivr.store import counters
from ivr.store.models import Attempt, Campaign, Contact

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
OUTCOMES = ["completed", "completed", "partial", "no_answer", "busy", "declined", "failed"]
CHUNK = 20_000


def _chunks(rows: Iterator[dict[str, Any]], size: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def seed(engine: sa.Engine, org_id: str, campaigns: int, contacts: int) -> dict[str, Any]:
    """Insert the campaigns, contacts and attempts; returns ids to request."""
    rng = random.Random(7)
    big = contacts // 10
    rest = contacts - big
    sizes = [big] + [rest // (campaigns - 1)] * (campaigns - 1)
    sizes[-1] += contacts - sum(sizes)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(campaigns)]
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Campaign.__table__),  # type: ignore[arg-type]
            [
                {
                    "id": cid,
                    "org_id": org_id,
                    "name": f"Kysely {n:04d}",
                    "flow_path": "examples/flows/strategy-survey.yaml",
                    "timezone": "Europe/Helsinki",
                    "windows": "mon-fri 10:00-20:00",
                    "allow_holidays": False,
                    "max_attempts": 3,
                    "retry_busy_minutes": 30,
                    "retry_no_answer_minutes": 120,
                    "retry_failed_minutes": 60,
                    "calls_per_second": 2.0,
                    "max_concurrent": 30,
                    "default_language": "fi",
                    "cross_campaign_daily_cap": True,
                    "status": "running" if n % 10 == 0 else "completed",
                    "created_at": NOW - timedelta(minutes=campaigns - n),
                }
                for n, cid in enumerate(ids)
            ],
        )

    def contact_rows() -> Iterator[dict[str, Any]]:
        serial = 0
        for cid, size in zip(ids, sizes, strict=True):
            for line in range(size):
                serial += 1
                yield {
                    "id": str(uuid.UUID(int=serial)),
                    "campaign_id": cid,
                    "phone": f"+35840{serial:07d}",
                    "language": "fi" if serial % 5 else "sv",
                    "age_group": ("18-29", "30-49", "50-64", "65+")[serial % 4],
                    "birth_year": 1940 + serial % 60,
                    "area": ("Keskusta", "Itä", "Länsi")[serial % 3],
                    "postcode": None,
                    "attributes": "{}",
                    "source_line": line + 2,
                    "created_at": NOW - timedelta(days=2),
                }

    def attempt_rows() -> Iterator[dict[str, Any]]:
        serial = 0
        for cid, size in zip(ids, sizes, strict=True):
            for _ in range(size):
                serial += 1
                tries = 2 if serial % 3 == 0 else 1
                for no in range(1, tries + 1):
                    outcome = OUTCOMES[(serial + no) % len(OUTCOMES)]
                    answered = outcome in ("completed", "partial")
                    start = NOW - timedelta(hours=30, seconds=serial % 86_400)
                    yield {
                        "id": str(uuid.UUID(int=(serial << 2) + no)),
                        "campaign_id": cid,
                        "contact_id": str(uuid.UUID(int=serial)),
                        "phone": f"+35840{serial:07d}",
                        "attempt_no": no,
                        "state": "done",
                        "due_at": start,
                        "outcome": outcome,
                        "started_at": start,
                        "answered_at": start + timedelta(seconds=8) if answered else None,
                        "ended_at": start + timedelta(seconds=90 if answered else 30),
                        "ring_seconds": 8.0,
                        "talk_seconds": 82.0 if answered else None,
                        "created_at": start,
                    }

    for table, rows in ((Contact.__table__, contact_rows()), (Attempt.__table__, attempt_rows())):
        for batch in _chunks(rows):
            with engine.begin() as conn:
                conn.execute(sa.insert(table), batch)  # type: ignore[arg-type]
    with Session(engine) as s, s.begin():  # the counters the live progress reads
        counters.rebuild(s)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    return {
        "big": ids[0],
        "typical": ids[len(ids) // 2],
        "seconds": time.perf_counter() - started,
    }


def _timed(call: Callable[[], Any], n: int) -> list[float]:
    call()  # warm (templates compiled, connections opened)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _report(name: str, times: list[float], goal_ms: float = 100) -> dict[str, float]:
    """p50/p95/max of ``times`` (ms), printed with whether p95 meets ``goal_ms``."""
    ordered = sorted(times)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    figures = {"p50": statistics.median(ordered), "p95": p95, "max": ordered[-1]}
    verdict = "ok" if p95 < goal_ms else f"OVER {goal_ms:.0f} ms"
    print(
        f"  {name:<44} p50 {figures['p50']:7.1f} ms  p95 {figures['p95']:7.1f} ms  "
        f"max {figures['max']:7.1f} ms  {verdict}",
        flush=True,
    )
    return figures


@contextlib.contextmanager
def bench_instance(
    db: str, keep: Path | None, prefix: str, database: str, start: datetime
) -> Iterator[tuple[str, dict[str, str], Any, MovableClock]]:
    """A data directory (``keep`` on SQLite: reused between runs, else a temporary one), on
    SQLite or on a PostgreSQL started for the run (database ``database``), initialised with
    a clock set to ``start``: ``(folder, environment, services, clock)``. The PostgreSQL is
    stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        tmp = str(keep) if keep is not None and db == "sqlite" else scratch
        env = {"IVR_DATA_DIR": tmp, "IVR_CACHE_DIR": str(Path(tmp) / "cache")}
        server = None
        if db == "postgresql":
            from tests.support.postgres import create_database, start_postgres

            server = start_postgres()
            env["IVR_DATABASE_URL"] = create_database(server.url(), database)
        try:
            clock = MovableClock(start)
            app_, _ = init(load_settings(env), clock)
            services = app_.services()
            yield tmp, env, services, clock
            services.close()
        finally:
            if server is not None:
                server.stop()


def run(db: str, contacts: int, campaigns: int, requests: int, keep: Path | None) -> None:
    from ivr.web import create_app

    with bench_instance(db, keep, "ivr-bench-web-", "bench_web", NOW) as (tmp, _, services, clock):
        saved = Path(tmp) / "bench.json"
        if saved.exists():
            seeded = json.loads(saved.read_text())
            org = services.accounts.org_by_name("Bench")
            password = seeded["password"]
            print(f"{db}: reusing the seeded database in {tmp}", flush=True)
        else:
            org = services.accounts.add_org(Actor.cli(), "Bench")
            _, password = services.accounts.add_user(
                Actor.cli(org.id), "bench@example.fi", org.id, "manager"
            )
            print(f"{db}: seeding {campaigns:,} campaigns, {contacts:,} contacts …", flush=True)
            seeded = seed(services.engine, org.id, campaigns, contacts)
            print(f"  seeded in {seeded['seconds']:.0f} s", flush=True)
            if keep is not None and db == "sqlite":
                saved.write_text(json.dumps({**seeded, "password": password}))
        app = create_app(services=services, clock=clock, testing=True)
        client = app.test_client()
        base = {"base_url": "https://localhost"}
        headers = {"Referer": "https://localhost/login", "Accept-Language": "fi"}
        page = client.get("/login", **base, headers=headers)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        client.post(
            "/login",
            **base,
            headers=headers,
            data={"email": "bench@example.fi", "password": password, "csrf_token": token[1]},
        )
        prefix = f"/o/{org.id}/campaigns"

        def get(path: str, poll: bool = False) -> Any:
            extra = {"X-Ivr-Poll": "1"} if poll else {}
            response = client.get(path, **base, headers={**headers, **extra})
            if response.status_code != 200:
                raise SystemExit(f"{path}: HTTP {response.status_code}")
            return response

        first = get(f"{prefix}/")
        later = re.search(r'href="([^"]*(?:before|after)=[^"]+)"', first.text)
        _report("campaign list, first page", _timed(lambda: get(f"{prefix}/"), requests))
        if later:
            link = later[1].replace("&amp;", "&")
            _report("campaign list, next page", _timed(lambda: get(link), requests))
        for label, cid in (("typical", seeded["typical"]), ("large", seeded["big"])):
            path = f"{prefix}/{cid}/progress.json"
            _report(
                f"progress JSON, {label} campaign",
                _timed(lambda path=path: get(path, poll=True), requests),
            )
            page_path = f"{prefix}/{cid}"
            _report(
                f"campaign page, {label} campaign",
                _timed(lambda p=page_path: get(p), max(20, requests // 5)),
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--campaigns", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="SQLite: seed once into this folder, reuse")
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    for db in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
        run(db, args.contacts, args.campaigns, args.requests, args.keep)


if __name__ == "__main__":
    main()
