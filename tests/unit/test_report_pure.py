"""The ready report's pure parts: dispositions and rates from grouped contacts, raking
weights and representativeness, per-question results, cost, the SVG chart, the workbook."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import openpyxl
import pytest

from ivr.flows.loader import parse_flow
from ivr.outcome import Outcome
from ivr.reports import costs, dispositions, weighting
from ivr.reports.model import Note
from ivr.reports.queries import AnswerGroup, ContactGroup
from ivr.reports.questions import questions
from ivr.reports.svg import Bar, bar_chart
from tests.support.results import FLOW_YAML

C = Outcome


def group(
    outcomes: set[Outcome], n: int, cell: tuple[str, str, str] = ("fi", "", "")
) -> ContactGroup:
    placed = bool(outcomes - {C.SKIPPED})
    answered = bool(outcomes & {C.COMPLETED, C.PARTIAL, C.OPTED_OUT})
    return ContactGroup(cell, frozenset(outcomes), placed, answered, n, n * max(len(outcomes), 1))


def test_dispositions_and_rates_from_groups() -> None:
    groups = [
        group({C.COMPLETED}, 6),
        group({C.NO_ANSWER, C.COMPLETED}, 2),  # an interview beats an earlier no-answer
        group({C.PARTIAL}, 2),
        group({C.BUSY, C.DECLINED}, 3),
        group({C.OPTED_OUT}, 1),
        group({C.UNALLOCATED}, 4),
        group({C.BUSY}, 1),
        group({C.BUSY, C.NO_ANSWER}, 5),
        group({C.FAILED}, 1),
        group(set(), 5),  # never called
    ]
    found = dispositions.dispositions(groups)
    by_code = {d.code: d.contacts for d in found.dispositions}
    assert by_code == {"1.1": 8, "1.2": 2, "2.10": 1, "2.11": 3, "4.31": 4, "3.12": 1,
                       "3.13": 5, "3.90": 1, "3.11": 5}  # fmt: skip
    rates = {r.key: r.value for r in found.rates}
    # I=8 P=2 R=4 UH=11 UO=1 (NE=4 in no denominator)
    assert rates["rr1"] == pytest.approx(8 / 26)
    assert rates["rr2"] == pytest.approx(10 / 26)
    assert rates["coop1"] == pytest.approx(8 / 14)
    assert rates["ref1"] == pytest.approx(4 / 26)
    assert rates["con1"] == pytest.approx(14 / 26)
    assert all(r.formula for r in found.rates)
    f = dispositions.funnel(groups)
    assert (f.contacts, f.attempted, f.answered, f.completed) == (30, 25, 11, 8)


def test_a_campaign_without_contacts_has_no_rates() -> None:
    found = dispositions.dispositions([])
    assert all(r.value is None for r in found.rates)
    assert sum(d.contacts for d in found.dispositions) == 0


def test_raking_meets_the_contact_lists_margins() -> None:
    contacts = {
        ("fi", "18-29", "A"): 300, ("fi", "65+", "A"): 200, ("sv", "18-29", "B"): 100,
        ("sv", "65+", "B"): 400, ("fi", "18-29", "B"): 100, ("sv", "65+", "A"): 100,
    }  # fmt: skip
    respondents = {
        ("fi", "18-29", "A"): 20, ("fi", "65+", "A"): 60, ("sv", "18-29", "B"): 10,
        ("sv", "65+", "B"): 90, ("fi", "18-29", "B"): 10, ("sv", "65+", "A"): 30,
    }  # fmt: skip
    found = weighting.weigh(contacts, respondents)
    assert found.summary.converged and found.summary.margins == ("language", "age_group", "area")
    assert found.summary.notes == ()
    total = sum(respondents.values())
    weighted = sum(respondents[c] * w for c, w in found.cell_weights.items())
    assert weighted == pytest.approx(total)  # weights average 1
    for dim in found.representativeness.dimensions:
        for share in dim.shares:
            assert share.weighted_share == pytest.approx(share.contact_share, abs=0.002)
    ages = found.representativeness.dimensions[1]
    young = next(s for s in ages.shares if s.value == "18-29")
    assert young.respondent_share == pytest.approx(40 / 220)
    assert young.difference == pytest.approx(40 / 220 - 500 / 1200)
    assert 0 < (found.summary.efficiency or 0) < 100


def test_a_group_without_respondents_is_noted_not_a_crash() -> None:
    contacts = {("fi", "18-29", ""): 50, ("fi", "65+", ""): 50, ("sv", "65+", ""): 20}
    respondents = {("fi", "65+", ""): 10, ("sv", "65+", ""): 5}
    found = weighting.weigh(contacts, respondents)
    notes = {(n.code, n.dimension, n.value) for n in found.summary.notes}
    assert ("missing_stratum", "age_group", "18-29") in notes
    assert ("no_values", "area", "") in notes
    young = next(s for s in found.representativeness.dimensions[1].shares if s.value == "18-29")
    assert young.missing and young.weighted_share == 0
    lang = found.representativeness.dimensions[0]
    assert {s.value: round(s.weighted_share or 0, 3) for s in lang.shares} == {
        "fi": 0.833,
        "sv": 0.167,
    }


def test_no_respondents_no_weights() -> None:
    found = weighting.weigh({("fi", "65+", "A"): 5}, {})
    assert found.cell_weights == {}
    assert [n.code for n in found.summary.notes] == ["no_respondents"]
    assert found.summary.minimum is None


def test_questions_use_the_flows_labels_and_order() -> None:
    flow = parse_flow(FLOW_YAML)
    cell = ("fi", "", "")
    groups = [
        AnswerGroup("recommend", "choice", "no", cell, True, 3),
        AnswerGroup("recommend", "choice", "yes", cell, True, 1),
        AnswerGroup("recommend", "choice", "yes", cell, False, 2),
        AnswerGroup("develop-area", "choice", "roads", cell, True, 1),  # not a listed value
        AnswerGroup("services", "scale", "4", cell, False, 2),
    ]
    found = {q.node_id: q for q in questions(groups, flow, "sv", {cell: 2.0})}
    assert list(found) == ["services", "develop-area", "recommend", "age-group"]
    rec = found["recommend"]
    assert [(o.label, o.count, o.respondents) for o in rec.options] == [("Ja", 3, 1), ("Nej", 3, 3)]
    assert rec.options[0].weighted == 2.0 and rec.options[1].weighted_share == pytest.approx(0.75)
    assert rec.text.startswith("Skulle du")
    assert [o.value for o in found["services"].options] == ["1", "2", "3", "4", "5"]
    assert found["develop-area"].options[-1].label == "roads"
    assert found["age-group"].answers == 0


def test_cost_by_the_rule_and_price() -> None:
    cost = costs.summary("60/60", 0.05, calls=3, talk_seconds=100.0, billable_seconds=240,
                         completed=2)  # fmt: skip
    assert cost.billable_minutes == 4 and cost.amount == 0.2 and cost.per_completed == 0.1
    unset = costs.summary("60/60", None, 3, 100.0, 240, 2)
    assert unset.amount is None and unset.per_completed is None
    assert [n.code for n in unset.notes] == ["price_not_set"]
    bad = costs.summary("minute", 0.05, 0, 0.0, 0, 2)
    assert bad.amount is None and [n.code for n in bad.notes] == ["bad_rule"]
    assert Note("bad_rule", value="minute").text().startswith("The billing rule minute")


def test_the_svg_chart_is_accessible_and_has_no_inline_style() -> None:
    svg = bar_chart(
        "chart-q1",
        "Kuinka <tyytyväinen>?",
        "Kyllä: 3 (75 %); Ei: 1",
        [Bar("Kyllä & muuta", 0.75, "75 %", 0.5, "50 %"), Bar("Ei", 0.25, "25 %", 0.5, "50 %")],
    )
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert 'aria-labelledby="chart-q1-title chart-q1-desc"' in svg
    assert '<title id="chart-q1-title">Kuinka &lt;tyytyväinen&gt;?</title>' in svg
    assert "Kyllä &amp; muuta" in svg and "style" not in svg
    widths = [
        float(w) for w in re.findall(r'class="chart-bar" x="\d+" y="\d+" width="([\d.]+)"', svg)
    ]
    assert widths[0] == pytest.approx(3 * widths[1], abs=0.2)
    assert bar_chart("empty", "t", "d", []).count("<rect") == 0


def test_the_workbook_writes_numbers_as_numbers() -> None:
    from ivr.reports.build import _themes  # noqa: F401 (the module loads)
    from ivr.reports.model import (
        Aapor,
        CampaignReport,
        Funnel,
        Representativeness,
        Themes,
        WeightsSummary,
    )  # fmt: skip
    from ivr.reports.xlsx import workbook

    found = dispositions.dispositions([group({C.COMPLETED}, 2), group({C.NO_ANSWER}, 2)])
    report = CampaignReport(
        campaign_id="c", name="Kysely", status="completed", language="fi",
        funnel=Funnel(4, 4, 2, 2, 5), aapor=Aapor(found.dispositions, found.groups, found.rates),
        questions=(), themes=Themes(0, 0, 0, ()),
        representativeness=Representativeness(4, 2, ()),
        weights_summary=WeightsSummary("raking (weightipy)", 2, (), None, None, None, True, ()),
        cost=costs.summary("60/60", None, 2, 90.0, 180, 2),
    )  # fmt: skip
    data = workbook(report, {"sheet_cost": "Kustannus"}, at=datetime(2026, 1, 1, tzinfo=UTC))
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames[-1] == "Kustannus" and len(book.sheetnames) == 7
    funnel = [row[1] for row in book.worksheets[1].iter_rows(min_row=2, values_only=True)]
    assert funnel == [4, 4, 2, 2, 5]
    cost = {row[0]: row[1] for row in book.worksheets[6].iter_rows(min_row=2, values_only=True)}
    assert cost["Cost (EUR)"] == "Price not set" and cost["Billable minutes"] == 3
