"""The review queue on SQLite and PostgreSQL: each filter and order returns exactly the
answers the seeded plans give, keyset pages neither repeat nor skip, and the queue page
and an answer's page show them (with the question as asked and the caller's other
answers)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from ivr.review.words import QueueFilter, decode_cursor
from ivr.services import Services
from ivr.store.models import Attempt, Call, TranscriptRow
from tests.support.results import Plan, Seeded, seed_results
from tests.web.conftest import BASE_URL, Site, Users, login, unique


@pytest.fixture(scope="module")
def seeded(services: Services, users: Users, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """Twenty residents: ten open answers (plans 0, 1, 2, 8, 9 twice)."""
    tmp = tmp_path_factory.mktemp("review-queue")
    return seed_results(services, users.a.manager.actor(), tmp, count=20, name=unique("Jono"))


def _rows(services: Services, seeded: Seeded) -> dict[int, TranscriptRow]:
    with services.factory() as s:
        found = s.scalars(
            sa.select(TranscriptRow).where(TranscriptRow.id.in_(seeded.transcript_ids))
        ).all()
        return {r.id: r for r in found}


def plans_of(services: Services, seeded: Seeded) -> dict[int, Plan]:
    """Each open answer's plan (through its call's attempt and contact)."""
    with services.factory() as s:
        found = s.execute(
            sa.select(TranscriptRow.id, Attempt.contact_id)
            .join(Call, Call.id == TranscriptRow.call_id)
            .join(Attempt, Attempt.id == Call.attempt_id)
            .where(TranscriptRow.id.in_(seeded.transcript_ids))
        ).all()
    return {t: seeded.plans[seeded.contact_ids.index(c)] for t, c in found}


def _walk(services: Services, users: Users, f: QueueFilter, limit: int = 3) -> list[int]:
    """Every page of the queue, ``limit`` rows at a time."""
    seen: list[int] = []
    cursor = None
    for _ in range(50):
        view = services.review.queue(users.a.reviewer.actor(), f, cursor, limit=limit)
        seen += [r.id for r in view.page.rows]
        if view.page.next_cursor is None:
            return seen
        cursor = decode_cursor(view.page.next_cursor, f.order)
    raise AssertionError("the pages did not end")


def test_each_order_pages_through_exactly_the_open_answers(
    services: Services, users: Users, seeded: Seeded
) -> None:
    rows = _rows(services, seeded)
    with_words = [i for i, p in enumerate(seeded.plans) if p.words]
    assert len(seeded.transcript_ids) == len(with_words) == 10
    base = QueueFilter(campaign=seeded.campaign_id)
    oldest = sorted(rows, key=lambda i: (rows[i].created_at, i))
    lowest = sorted(rows, key=lambda i: (rows[i].confidence, i))
    sample = sorted(rows, key=lambda i: (rows[i].sample_key, i))
    for order, expected in (("oldest", oldest), ("confidence", lowest), ("random", sample)):
        f = QueueFilter(campaign=seeded.campaign_id, order=order)
        for limit in (1, 3, 4, 25):
            assert _walk(services, users, f, limit) == expected, (order, limit)
    assert oldest == seeded.transcript_ids  # the seed stores them in the order played
    counts = services.review.queue(users.a.reviewer.actor(), base, None).counts
    assert counts == {"new": 10, "reviewed": 0, "second_look": 0}


def test_each_filter_returns_what_the_plans_say(
    services: Services, users: Users, seeded: Seeded
) -> None:
    rows = _rows(services, seeded)
    by_id = plans_of(services, seeded)
    swedish = {i for i, p in by_id.items() if p.language == "sv"}
    assert len(swedish) == 4  # plans 2 and 9, twice
    c = seeded.campaign_id
    assert set(_walk(services, users, QueueFilter(campaign=c, language="sv"))) == swedish
    assert set(_walk(services, users, QueueFilter(campaign=c, node="develop-open"))) == set(rows)
    assert _walk(services, users, QueueFilter(campaign=c, node="services")) == []
    bands = {"low": (0.0, 0.5), "mid": (0.5, 0.8), "high": (0.8, 1.01)}
    for band, (low, high) in bands.items():
        expected = {i for i, r in rows.items() if r.confidence and low <= r.confidence < high}
        found = _walk(services, users, QueueFilter(campaign=c, band=band, order="confidence"))
        assert set(found) == expected, band
    assert _walk(services, users, QueueFilter(campaign=c, state="reviewed")) == []
    # Another organisation's reviewer sees none of it, whatever the filter.
    other = services.review.queue(users.b.reviewer.actor(), QueueFilter(campaign=c), None)
    assert other.page.rows == [] and other.counts["new"] == 0


def test_answers_without_a_confidence_come_last_and_page_across_the_boundary(
    services: Services, users: Users, tmp_path: Path
) -> None:
    seeded = seed_results(
        services, users.a.manager.actor(), tmp_path, count=10, name=unique("Null")
    )
    ids = seeded.transcript_ids
    with services.factory.begin() as s:
        s.execute(
            sa.update(TranscriptRow).where(TranscriptRow.id.in_(ids[1:3])).values(confidence=None)
        )
    rows = _rows(services, seeded)
    known = sorted(
        (i for i in ids if rows[i].confidence is not None), key=lambda i: (rows[i].confidence, i)
    )
    expected = known + sorted(ids[1:3])
    f = QueueFilter(campaign=seeded.campaign_id, order="confidence")
    for limit in (1, 2, 3, 10):
        assert _walk(services, users, f, limit) == expected, limit


def test_the_queue_and_an_answers_page_in_the_browser(
    web_app: Flask, users: Users, seeded: Seeded
) -> None:
    client = web_app.test_client()
    assert login(client, users.a.reviewer.email, users.a.reviewer.password).status_code == 302
    org = users.a.reviewer.org_id
    page = client.get(
        f"/o/{org}/review/?campaign={seeded.campaign_id}&language=sv", base_url=BASE_URL
    )
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    listed = [int(i) for i in re.findall(r'data-transcript="(\d+)"', html)]
    plans = plans_of(web_app.extensions["ivr"], seeded)
    swedish = [t for t in seeded.transcript_ids if plans[t].language == "sv"]
    assert listed == swedish
    assert 'data-state-count="new">4<' in html
    first = listed[0]
    item = client.get(
        f"/o/{org}/review/{first}?campaign={seeded.campaign_id}&language=sv", base_url=BASE_URL
    )
    body = item.get_data(as_text=True)
    assert item.status_code == 200
    assert "Vad tycker du att staden borde utveckla?" in body  # the question, in Swedish
    assert "Skulle du rekommendera Nystad" in body  # another answer's question ...
    assert "<td>Nej</td>" in body  # ... and its option's label (plan 2: recommend=no)
    spans = re.findall(
        r'<span class="word" data-start="([\d.]+)" data-end="([\d.]+)">(\w+)</span>', body
    )
    assert [w for _s, _e, w in spans] == ["Mer", "kultur", "för", "unga"]
    assert float(spans[1][0]) == pytest.approx(1.1)
    assert re.search(rf'src="/o/{org}/review/{first}/audio\?t=[\w.-]+"', body)
    # "Next" keeps the queue's filter.
    assert f'action="/o/{org}/review/{first}?campaign={seeded.campaign_id}&amp;language=sv"' in body


def test_every_queue_query_is_served_by_an_index_on_sqlite(site: Site, tmp_path: Path) -> None:
    """SQLite's plan for each page query: an index of ``transcripts`` (no full scan) and
    no sort of its own (the order is the index's): what keeps a page fast at 100,000.
    SQLite only (``site``): PostgreSQL chooses its plans by the table's statistics, which a
    test's few rows do not resemble (bench/results_pages.py measures both at scale)."""
    services = site.services
    seeded = seed_results(services, site.person("A", "manager").actor(), tmp_path, count=20)
    statements: list[tuple[str, object]] = []

    def capture(conn: object, cursor: object, sql: str, params: object, *args: object) -> None:
        if sql.lstrip().upper().startswith("SELECT") and "FROM transcripts" in sql:
            statements.append((sql, params))

    reviewer = site.person("A", "reviewer").actor()
    sa.event.listen(services.engine, "before_cursor_execute", capture)
    try:
        for order in ("oldest", "confidence", "random"):
            for f in (
                QueueFilter(order=order),
                QueueFilter(order=order, campaign=seeded.campaign_id, language="sv", band="mid"),
                QueueFilter(order=order, state="reviewed", tag=1, node="develop-open"),
            ):
                first = services.review.queue(reviewer, f, None, limit=2)
                if first.page.next_cursor:
                    services.review.queue(
                        reviewer, f, decode_cursor(first.page.next_cursor, order), limit=2
                    )
    finally:
        sa.event.remove(services.engine, "before_cursor_execute", capture)
    pages = [(sql, p) for sql, p in statements if "ORDER BY" in sql]
    assert len(pages) >= 9
    with services.engine.connect() as c:
        for sql, params in pages:
            plan = " | ".join(
                row[-1]
                for row in c.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)  # type: ignore[arg-type]
            )
            assert (
                "USING INDEX ix_transcripts_org_id" in plan
                or "USING COVERING INDEX ix_transcripts_org_id" in plan
            ), plan
            assert "TEMP B-TREE" not in plan, (sql, plan)
