"""The ready report (ivr/web/reports.py) on SQLite and PostgreSQL: its numbers checked
against a campaign whose every outcome is known (tests/support/results.py), counted here
from the plans; the XLSX downloaded through its route and read back; who may see it."""

from __future__ import annotations

import io
import math
import re
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa

from ivr.accounts.audit import NotFound
from ivr.reports import campaign_report
from ivr.services import Services
from ivr.store import repo
from ivr.store.models import Campaign, TranscriptRow
from ivr.store.org_models import AuditEntry, InboundLine
from ivr.store.work_models import Tag, TranscriptTag
from tests.support.results import OPEN_NODE, Plan, Seeded, seed_results
from tests.web.conftest import Site, Users, text, unique

PRICE = 0.05  # euros a minute
# AAPOR's precedence, written out for the plans' outcomes (the README's table).
PRECEDENCE = (
    ("completed", "1.1"),
    ("partial", "1.2"),
    ("opted_out", "2.10"),
    ("declined", "2.11"),
    ("unallocated", "4.31"),
    ("no_answer", "3.13"),
    ("busy", "3.12"),
)
ANSWERED = {"completed", "partial", "opted_out"}


def expected_code(plan: Plan) -> str:
    for outcome, code in PRECEDENCE:
        if outcome in plan.outcomes:
            return code
    return "3.90"


def talk_seconds(plan: Plan) -> int:
    """The seed's answered call: 8 s per answer, 20 s for the open answer, 15 s for a
    callback request, 10 s to hang up (tests/support/results.py ``_play``)."""
    return 8 * len(plan.answers) + (20 if plan.words else 0) + (15 if plan.callback else 0) + 10


@pytest.fixture(scope="module")
def seeded(services: Services, users: Users, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    made = seed_results(
        services, users.a.manager.actor(), tmp_path_factory.mktemp("report"),
        count=20, name=unique("Raportti"),
    )  # fmt: skip
    with services.factory.begin() as s:
        s.execute(
            sa.update(Campaign)
            .where(Campaign.id == made.campaign_id)
            .values(price_per_minute=PRICE)
        )
        org_id = users.a.manager.org_id
        roads = Tag(org_id=org_id, name=unique("Tiet"))
        health = Tag(org_id=org_id, name=unique("Terveys"))
        s.add_all([roads, health])
        s.flush()
        first = s.get(TranscriptRow, made.transcript_ids[0])
        assert first is not None
        first.corrected_text = "Kevyen liikenteen väyliä pitää korjata."
        first.review_state = "reviewed"  # type: ignore[assignment]
        for tid in made.transcript_ids:
            row = s.get(TranscriptRow, tid)
            assert row is not None
            words = row.machine_text
            tag = roads if ("liikenteen" in words or "Tiet" in words) else health
            s.add(TranscriptTag(transcript_id=tid, tag_id=tag.id))
    return made


def funnel_of(plans: list[Plan]) -> dict[str, int]:
    return {
        "contacts": len(plans),
        "attempted": len(plans),
        "answered": sum(1 for p in plans if ANSWERED & set(p.outcomes)),
        "completed": sum(1 for p in plans if "completed" in p.outcomes),
    }


def test_the_numbers_are_the_plans(services: Services, seeded: Seeded) -> None:
    plans = seeded.plans
    with services.factory() as s:
        report = campaign_report(s, seeded.campaign_id)
    f = report.funnel
    assert {k: getattr(f, k) for k in funnel_of(plans)} == funnel_of(plans)
    assert f.calls_placed == sum(len(p.outcomes) for p in plans)
    codes = Counter(expected_code(p) for p in plans)
    assert {d.code: d.contacts for d in report.aapor.dispositions if d.contacts} == dict(codes)
    i, p_ = codes["1.1"], codes["1.2"]
    r = codes["2.10"] + codes["2.11"]
    unknown = codes["3.12"] + codes["3.13"] + codes["3.90"]
    rates = {rate.key: rate.value for rate in report.aapor.rates}
    assert rates["rr1"] == pytest.approx(i / (i + p_ + r + unknown))
    assert rates["rr2"] == pytest.approx((i + p_) / (i + p_ + r + unknown))
    assert rates["coop1"] == pytest.approx(i / (i + p_ + r))
    # Per question: each answered call's answers, counted from the plans.
    for question in report.questions:
        given = Counter(p.answers[question.node_id] for p in plans if question.node_id in p.answers)
        got = {o.value: o.count for o in question.options if o.count}
        assert got == dict(given), question.node_id
        completed = Counter(
            p.answers[question.node_id] for p in plans
            if question.node_id in p.answers and "completed" in p.outcomes
        )  # fmt: skip
        assert {o.value: o.respondents for o in question.options if o.respondents} == dict(
            completed
        )
        weighted = sum(o.weighted or 0 for o in question.options)
        assert weighted == pytest.approx(
            sum(report.weights[c] for c, p in zip(seeded.contact_ids, plans, strict=True)
                if "completed" in p.outcomes and question.node_id in p.answers)
        )  # fmt: skip
    services_q = next(q for q in report.questions if q.node_id == "services")
    assert [o.value for o in services_q.options] == ["1", "2", "3", "4", "5"]  # every point
    recommend = next(q for q in report.questions if q.node_id == "recommend")
    assert [o.label for o in recommend.options] == ["Kyllä", "Ei"]  # the flow's labels (fi)
    # Weights: one per completed contact; they average 1.
    respondents = {c for c, p in zip(seeded.contact_ids, plans, strict=True)
                   if "completed" in p.outcomes}  # fmt: skip
    assert set(report.weights) == respondents
    assert sum(report.weights.values()) == pytest.approx(len(respondents))
    # Representativeness: the 18-29s never completed (the plans' young people).
    ages = next(d for d in report.representativeness.dimensions if d.name == "age_group")
    young = next(s for s in ages.shares if s.value == "18-29")
    assert young.missing and young.respondents == 0
    assert young.contacts == sum(1 for p in plans if p.age_group == "18-29")
    assert ("missing_stratum", "age_group", "18-29") in {
        (n.code, n.dimension, n.value) for n in report.weights_summary.notes
    }
    # Cost: every answered call billed by the minute (60/60), at PRICE a minute.
    billed = [talk_seconds(p) for p in plans for o in p.outcomes if o in ANSWERED]
    minutes = sum(math.ceil(t / 60) for t in billed)
    assert report.cost.calls == len(billed)
    assert report.cost.billable_seconds == minutes * 60
    assert report.cost.amount == pytest.approx(round(minutes * PRICE, 2))
    assert report.cost.per_completed == pytest.approx(
        round(round(minutes * PRICE, 2) / funnel_of(plans)["completed"], 2)
    )
    # Themes: every open answer tagged; quotes reviewed and corrected first.
    themes = {t.name.split("-")[0]: t for t in report.themes.themes}
    with_words = [p for p in plans if p.words]
    roads = sum(1 for p in with_words if {"liikenteen", "Tiet"} & set(p.words))
    assert themes["Tiet"].count == roads
    assert themes["Terveys"].count == len(with_words) - roads
    assert report.themes.open_answers == report.themes.tagged == len(with_words)
    assert themes["Tiet"].quotes[0].text == "Kevyen liikenteen väyliä pitää korjata."
    assert themes["Tiet"].quotes[0].reviewed and themes["Tiet"].quotes[0].corrected
    data = report.to_dict()
    assert data["funnel"]["completed"] == funnel_of(plans)["completed"]
    assert "weights" not in data


def test_the_page_shows_the_numbers_with_charts_and_tables(
    module_site: Site, seeded: Seeded
) -> None:
    client = module_site.logged_in("A", "manager")
    org_id = module_site.orgs["A"]
    response = client.get(f"/o/{org_id}/campaigns/{seeded.campaign_id}/report")
    assert response.status_code == 200
    page = text(response)
    expected = funnel_of(seeded.plans)
    for key, value in expected.items():
        assert re.search(rf'data-funnel="{key}">{value}<', page), key
    assert page.count('role="img"') == page.count("<svg") >= 4
    assert page.count("chart-bar-weighted") >= 4  # weighted beside unweighted
    assert "Painotettu osuus" in page or "Weighted share" in page
    assert "<desc id=" in page and "style=" not in page.split("<main", 1)[1]
    assert re.search(r'data-code="1\.1">.*?data-count>(\d+)<', page, re.S).group(1) == str(  # type: ignore[union-attr]
        expected["completed"]
    )
    # The campaign page links to the report.
    show = text(client.get(f"/o/{org_id}/campaigns/{seeded.campaign_id}"))
    assert f"/o/{org_id}/campaigns/{seeded.campaign_id}/report" in show


def test_the_xlsx_has_the_page_numbers_and_is_audited(
    module_site: Site, services: Services, seeded: Seeded
) -> None:
    client = module_site.logged_in("A", "manager")
    org_id = module_site.orgs["A"]
    response = client.get(f"/o/{org_id}/campaigns/{seeded.campaign_id}/report.xlsx")
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    assert len(book.sheetnames) == 7
    funnel = {row[0]: row[1] for row in book.worksheets[1].iter_rows(min_row=2, values_only=True)}
    expected = funnel_of(seeded.plans)
    values = list(funnel.values())
    assert values[:4] == [expected[k] for k in ("contacts", "attempted", "answered", "completed")]
    assert all(isinstance(v, int | float) for v in values)
    aapor = {row[0]: row[3] for row in book.worksheets[2].iter_rows(min_row=2, max_row=10,
                                                                    values_only=True)}  # fmt: skip
    codes = Counter(expected_code(p) for p in seeded.plans)
    assert {k: v for k, v in aapor.items() if v} == dict(codes)
    questions = Counter()
    for row in book.worksheets[3].iter_rows(min_row=2, values_only=True):
        assert isinstance(row[2], int | float)
        questions[row[1]] += row[2]
    assert questions["Kyllä"] == sum(1 for p in seeded.plans if p.answers.get("recommend") == "yes")
    cost = [row[1] for row in book.worksheets[6].iter_rows(min_row=2, values_only=True)]
    with services.factory() as s:
        report = campaign_report(s, seeded.campaign_id)
        entries = s.scalars(
            sa.select(AuditEntry).where(
                AuditEntry.action == "report.download", AuditEntry.target_id == seeded.campaign_id
            )
        ).all()
    assert report.cost.amount in cost and isinstance(report.cost.amount, float)
    assert entries and entries[-1].actor == module_site.person("A", "manager").email


@pytest.mark.parametrize(
    ("org", "role", "status"),
    [("A", "admin", 200), ("A", "manager", 200), ("A", "reviewer", 403),
     ("B", "admin", 404), ("B", "manager", 404), ("B", "reviewer", 404)],
)  # fmt: skip
def test_who_may_see_the_report(
    module_site: Site, seeded: Seeded, org: str, role: str, status: int
) -> None:
    client = module_site.logged_in(org, role)
    base = f"/o/{module_site.orgs['A']}/campaigns/{seeded.campaign_id}"
    own = f"/o/{module_site.orgs[org]}/campaigns/{seeded.campaign_id}"
    for path in (f"{base}/report", f"{base}/report.xlsx", f"{own}/report", f"{own}/report.xlsx"):
        got = client.get(path)
        if org == "B":  # never another organisation's numbers (a reviewer: not for the role)
            assert got.status_code == (403 if role == "reviewer" and path.startswith(own) else 404)
            assert "report-funnel" not in text(got), path  # no report on the page
        else:
            assert got.status_code == status, path
    assert module_site.client().get(f"{base}/report").status_code in (302, 303)


def test_a_price_not_set_is_said_plainly(
    services: Services, users: Users, tmp_path: Path, module_site: Site
) -> None:
    made = seed_results(services, users.a.manager.actor(), tmp_path, count=3, name=unique("Hinta"))
    with services.factory() as s:
        report = campaign_report(s, made.campaign_id)
    assert report.cost.amount is None and report.cost.per_completed is None
    assert [n.code for n in report.cost.notes] == ["price_not_set"]
    client = module_site.logged_in("A", "manager")
    page = text(client.get(f"/o/{module_site.orgs['A']}/campaigns/{made.campaign_id}/report"))
    assert 'data-cost="amount">' in page
    amount = page.split('data-cost="amount">', 1)[1].split("<", 1)[0]
    assert amount and not any(ch.isdigit() for ch in amount)


def test_the_line_report(module_site: Site, services: Services, seeded: Seeded) -> None:
    org_id = module_site.orgs["A"]
    number = f"+3582{uuid.uuid4().int % 10**8:08d}"
    answers = [{"recommend": "yes", "services": "5"}, {"recommend": "no"}, {}]
    with services.factory.begin() as s:
        line = InboundLine(org_id=org_id, number=number, flow_id=seeded.flow_id)
        s.add(line)
        s.flush()
        line_id = line.id
        at = module_site.clock()
        for n, given in enumerate(answers):
            call = repo.create_call(
                s, direction="inbound", flow_id="strategy-survey", flow_version="1",
                channel_id=f"line-{uuid.uuid4()}", node_name="t", language="fi",
                line_number=number, started_at=at,
            )  # fmt: skip
            if given:
                repo.mark_answered(s, call.id, at)
            for node, value in given.items():
                kind = "scale" if node == "services" else "choice"
                repo.save_answer(s, call.id, node_id=node, kind=kind, value=value,
                                 language="fi", digits="", at=at)  # fmt: skip
            if n == 0:  # answered again: the latest answer counts
                later = at + timedelta(seconds=5)
                repo.save_answer(s, call.id, node_id="recommend", kind="choice", value="no",
                                 language="fi", digits="", at=later)  # fmt: skip
            repo.end_call(s, call.id, "completed" if n == 0 else "partial", at=at)
    client = module_site.logged_in("A", "manager")
    response = client.get(f"/o/{org_id}/lines/{line_id}/report")
    assert response.status_code == 200
    page = text(response)
    assert 'data-funnel="calls">3<' in page
    assert 'data-funnel="answered">2<' in page
    assert 'data-funnel="completed">1<' in page
    recommend = page.split('data-value="no"', 1)[1]
    assert re.match(r">\s*<th[^>]*>Ei</th>\s*<td class=\"num\" data-count>2<", recommend)
    b_client = module_site.logged_in("B", "admin")
    assert b_client.get(f"/o/{module_site.orgs['B']}/lines/{line_id}/report").status_code == 404
    with pytest.raises(NotFound):
        services.reports.line(module_site.person("B", "admin").actor(), line_id)
    assert OPEN_NODE  # the open question has no chart: it is in the themes
