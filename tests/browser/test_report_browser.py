"""The ready report and the downloads in a real browser against `ivr web`: a manager opens
a finished campaign's report, downloads the report workbook (XLSX) and the results as SPSS
(.sav), and both files read back (openpyxl, pyreadstat) with the numbers the page shows —
which are the numbers the seeded residents' plans make. axe-core checks both pages."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import openpyxl
import pyreadstat
from playwright.sync_api import Page, expect

from ivr.accounts.audit import Actor
from ivr.services import Services
from ivr.store.org_models import Role
from tests.browser.journey import Journey, log_in
from tests.support.results import seed_results
from tests.support.web import Staff, WebInstance


def test_the_report_and_its_downloads_agree_with_the_residents(
    site: WebInstance,
    staff: Staff,
    page: Page,
    journey: Journey,
    services: Services,
    tmp_path: Path,
) -> None:
    actor = Actor(actor=staff.email, org_id=staff.org_id, role=Role.ADMIN)
    name = f"Raportti {uuid.uuid4().hex[:6]}"
    seeded = seed_results(services, actor, tmp_path, count=20, name=name)
    # What the residents did, counted from their plans (not from the code under test).
    finals = [plan.outcomes[-1] for plan in seeded.plans]
    completed = finals.count("completed")
    answered = sum(o in ("completed", "partial", "opted_out") for o in finals)
    recommend = Counter(p.answers["recommend"] for p in seeded.plans if "recommend" in p.answers)

    log_in(page, site.url, staff.email, staff.password)
    page.goto(f"{site.url}/o/{staff.org_id}/campaigns/{seeded.campaign_id}")
    page.get_by_role("link", name="Report of the results").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)
    funnel = {
        key: int(page.locator(f'[data-funnel="{key}"]').inner_text().replace("\u00a0", ""))
        for key in ("contacts", "attempted", "answered", "completed")
    }
    assert funnel == {"contacts": 20, "attempted": 20, "answered": answered,
                      "completed": completed}  # fmt: skip
    journey.step("the report")

    with page.expect_download() as made:
        page.get_by_role("link", name="Download the report (Excel, XLSX)").click()
    workbook_path = tmp_path / "report.xlsx"
    made.value.save_as(workbook_path)
    book = openpyxl.load_workbook(workbook_path, read_only=True)
    sheet = book["Funnel"]
    counts = [row[1] for row in sheet.iter_rows(min_row=2, max_row=5, values_only=True)]
    assert counts == [funnel[k] for k in ("contacts", "attempted", "answered", "completed")]
    aapor = {
        row[0]: row[3]
        for row in book["AAPOR"].iter_rows(min_row=2, values_only=True)
        if row[0] and row[3] is not None and str(row[0])[0].isdigit()
    }
    assert aapor["1.1"] == completed
    for code, count in aapor.items():
        shown = page.locator(f'#report-aapor tr[data-code="{code}"] [data-count]').inner_text()
        assert int(shown.replace("\u00a0", "")) == count, code

    page.goto(f"{site.url}/o/{staff.org_id}/campaigns/{seeded.campaign_id}")
    page.get_by_role("link", name="Download the results").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    journey.step("the downloads")
    with page.expect_download() as made:
        page.get_by_role("link", name="SPSS (.sav)").click()
    sav_path = tmp_path / "results.sav"
    made.value.save_as(sav_path)
    frame, meta = pyreadstat.read_sav(str(sav_path))
    assert len(frame) == 20
    labels = meta.variable_value_labels["q_recommend"]
    given = Counter(
        labels[value] for value in frame["q_recommend"].dropna()
    )  # codes back to their labels
    assert given == Counter({"Kyllä": recommend["yes"], "Ei": recommend["no"]})
