"""Benchmark: the results pages at 1,000,000 answers (500,000 contacts, 100,000 open
answers with transcripts), on SQLite and PostgreSQL.

    .venv/bin/python -m bench.results_pages [--db sqlite|postgresql|both]
                                            [--contacts 500000] [--open 100000]
                                            [--requests 100] [--keep DIR]

Seeds one campaign (bench/results_data.py), then times requests through the real
application (Flask's WSGI stack in this process: routing, the login check, the queries,
the template) as a reviewer and a manager:

- the review queue: the first page (new answers, oldest first), the first page ordered by
  lowest confidence, a random sample, filtered by a tag and by language + confidence band,
  a page 50 pages deep (keyset), one answer's page and "next" — goal p95 under 100 ms;
- the campaign report page (funnel, AAPOR rates, questions, weights, cost) — goal under
  1 s: its first view (which counts the whole campaign and caches the counts, keyed by a
  fingerprint of the campaign's data) and the views after it;
- the REST API's list endpoints (answers, transcripts, calls, contacts) with a read token:
  a first page of 100 and page 51 by cursor — goal p95 under 100 ms;
- the full CSV export (one row per contact) through `ivr report --format csv` in a child
  process: rows per second and the child's peak memory (ru_maxrss) — goal at least
  50,000 rows/s under 200 MB; the same through the web route (streamed) for its rows/s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.results_data import NOW, seed
from bench.web_pages import _report, _timed, bench_instance
from ivr.accounts.audit import Actor

ROOT = Path(__file__).parents[1]


class Browser:
    """A logged-in test client of the app (HTTPS, same-site Referer, Finnish)."""

    def __init__(self, app: Any, email: str, password: str) -> None:
        self.client = app.test_client()
        self.base = {"base_url": "https://localhost"}
        self.headers = {"Referer": "https://localhost/login", "Accept-Language": "fi"}
        page = self.client.get("/login", **self.base, headers=self.headers)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        done = self.client.post(
            "/login",
            **self.base,
            headers=self.headers,
            data={"email": email, "password": password, "csrf_token": token[1]},
        )
        assert done.status_code == 302, f"{email} could not log in"

    def get(self, path: str, status: int = 200) -> Any:
        response = self.client.get(path, **self.base, headers=self.headers)
        if response.status_code != status:
            raise SystemExit(f"{path}: HTTP {response.status_code}, expected {status}")
        return response


def _next_link(page: str) -> str | None:
    found = re.search(r'href="([^"]*[?&]after=[^"]+)"', page)
    return found[1].replace("&amp;", "&") if found else None


def _csv_export(env: dict[str, str], campaign_id: str, out: Path) -> dict[str, float]:
    """`ivr report --format csv` in a child process: seconds, rows/s, peak memory."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "ivr.cli", "report", campaign_id, "--format", "csv",
         "-o", str(out), "--org", "Bench"],
        env={**os.environ, **env}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"ivr report failed: {done.stderr.strip()}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with out.open("rb") as fh:
        rows = sum(1 for _ in fh) - 1
    figures = {
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        # ru_maxrss of all children waited for: the largest one (this child, unless an
        # earlier one was larger — the first export is the only earlier child).
        "peak_mb": max(peak_kib, before) / 1024,
    }
    verdict = (
        "ok" if figures["rows_per_s"] >= 50_000 and figures["peak_mb"] < 200 else "GOAL NOT MET"
    )
    print(
        f"  CSV export (ivr report, child process)      {rows:,} rows in {seconds:.1f} s = "
        f"{figures['rows_per_s']:,.0f} rows/s, peak {figures['peak_mb']:.0f} MB  {verdict}",
        flush=True,
    )
    return figures


def _api_lists(app: Any, services: Any, org_id: str, campaign_id: str, requests: int) -> None:
    """The REST API's list endpoints with a read token: a first page and a page deep in
    the list (50 pages of 100 in, by its cursor)."""
    from ivr.api.ratelimit import RateLimiter
    from ivr.api.tokens import ApiTokens

    made = ApiTokens(services.factory, services.clock).create(Actor.cli(org_id), "bench", "read")
    # Server time is measured here, not the rate limit (it has its own tests).
    app.extensions["ivr_api"].limiter = RateLimiter(rate=10_000, burst=100_000)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {made.secret}"}

    def get(path: str) -> Any:
        response = client.get(path, base_url="https://localhost", headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code}: {response.text[:300]}")
        return response.get_json()

    for label, path in (
        ("answers of the campaign", f"/api/v1/campaigns/{campaign_id}/answers?limit=100"),
        ("transcripts", "/api/v1/transcripts?limit=100"),
        ("calls", "/api/v1/calls?limit=100"),
        ("contacts", f"/api/v1/campaigns/{campaign_id}/contacts?limit=100"),
    ):
        _report(f"{label}, first page", _timed(lambda p=path: get(p), requests), 100)
        deep = path
        for _ in range(50):
            cursor = get(deep)["next_cursor"]
            if cursor is None:
                raise SystemExit(f"{label}: fewer than 51 pages: seed more (--contacts, --open)")
            deep = f"{path}&starting_after={cursor}"
        _report(f"{label}, page 51", _timed(lambda p=deep: get(p), requests), 100)


def run(db: str, contacts: int, open_answers: int, requests: int, keep: Path | None) -> None:
    from ivr.web import create_app

    with bench_instance(db, keep, "ivr-bench-results-", "bench_results", NOW) as (
        tmp,
        env,
        services,
        clock,
    ):
        saved = Path(tmp) / "bench-results.json"
        if saved.exists():
            seeded = json.loads(saved.read_text())
            org = services.accounts.org_by_name("Bench")
            print(f"{db}: reusing the seeded database in {tmp}", flush=True)
        else:
            org = services.accounts.add_org(Actor.cli(), "Bench")
            passwords = {}
            for role in ("reviewer", "manager"):
                _, passwords[role] = services.accounts.add_user(
                    Actor.cli(org.id), f"{role}@bench.example", org.id, role
                )
            print(
                f"{db}: seeding {contacts:,} contacts, {open_answers:,} open answers …",
                flush=True,
            )
            seeded = {**seed(services.engine, org.id, contacts=contacts,
                             open_answers=open_answers), "passwords": passwords}  # fmt: skip
            print(
                f"  seeded in {seeded['seconds']:.0f} s: {seeded['answers']:,} answers, "
                f"{seeded['calls']:,} calls, {seeded['attempts']:,} attempts, "
                f"{seeded['transcripts']:,} transcripts",
                flush=True,
            )
            if keep is not None and db == "sqlite":
                saved.write_text(json.dumps(seeded))
        campaign_id = seeded["campaign_id"]
        app = create_app(services=services, clock=clock, testing=True)
        reviewer = Browser(app, "reviewer@bench.example", seeded["passwords"]["reviewer"])
        manager = Browser(app, "manager@bench.example", seeded["passwords"]["manager"])
        queue = f"/o/{org.id}/review/"
        print(f"{db}: review queue (goal p95 < 100 ms)", flush=True)
        for label, query in (
            ("first page, oldest new", ""),
            ("first page, lowest confidence", "?order=confidence"),
            ("first page, random sample", "?order=random&state=reviewed"),
            ("first page, one tag", "?tag=1001&state=reviewed"),
            ("first page, Swedish low confidence", "?language=sv&band=low"),
            ("first page, campaign and question", f"?campaign={campaign_id}&node=develop-open"),
        ):
            _report(label, _timed(lambda q=query: reviewer.get(queue + q), requests), 100)
        path: str | None = queue
        for _ in range(50):
            if path is None:
                raise SystemExit("the queue has fewer than 51 pages: seed more (--open)")
            path = _next_link(reviewer.get(path).text)
        if path is None:
            raise SystemExit("the queue has fewer than 51 pages: seed more (--open)")
        deep = path
        _report("page 51 (keyset)", _timed(lambda: reviewer.get(deep), requests), 100)
        first = re.search(rf'href="{re.escape(queue)}(\d+)', reviewer.get(queue).text)
        assert first is not None, "no answer linked from the queue"
        item = f"{queue}{first[1]}"
        _report("one answer's page", _timed(lambda: reviewer.get(item), requests), 100)
        _report(
            "next answer (redirect)",
            _timed(lambda: reviewer.get(f"{item}/next", status=302), requests),
            100,
        )
        print(f"{db}: campaign report (goal < 1 s)", flush=True)
        report = f"/o/{org.id}/campaigns/{campaign_id}/report"
        start = time.perf_counter()
        manager.get(report)  # the first view counts the campaign and fills the cache
        print(
            f"  report page, first view (counts, fills the cache) "
            f"{(time.perf_counter() - start) * 1000:9.1f} ms",
            flush=True,
        )
        _report(
            "report page (cached counts)",
            _timed(lambda: manager.get(report), max(5, requests // 10)),
            1000,
        )
        print(f"{db}: REST API lists (issue 12; goal p95 < 100 ms)", flush=True)
        _api_lists(app, services, org.id, campaign_id, requests)
        print(f"{db}: exports (goal >= 50,000 rows/s, < 200 MB)", flush=True)
        _csv_export(env, campaign_id, Path(tmp) / "export.csv")
        start = time.perf_counter()
        response = manager.client.get(
            f"/o/{org.id}/campaigns/{campaign_id}/export/csv",
            **manager.base, headers=manager.headers, buffered=False,
        )  # fmt: skip
        rows = sum(chunk.count(b"\n") for chunk in response.response) - 1
        seconds = time.perf_counter() - start
        print(
            f"  CSV export (web route, streamed)            {rows:,} rows in {seconds:.1f} s"
            f" = {rows / seconds:,.0f} rows/s",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--contacts", type=int, default=500_000)
    parser.add_argument("--open", type=int, default=100_000, dest="open_answers")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--keep", type=Path, help="SQLite: seed once into this folder, reuse")
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    for db in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
        run(db, args.contacts, args.open_answers, args.requests, args.keep)


if __name__ == "__main__":
    main()
