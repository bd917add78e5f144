"""Campaigns in the browser: one created from an uploaded three-question flow (a mistake on
the form first), and a contact list with bad rows, each listed with its line and reason."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.journey import (
    Journey,
    create_campaign,
    flow_file,
    log_in,
    upload_contacts,
    upload_flow,
)
from tests.support.web import Staff, WebInstance

CONTACTS = (
    "Puhelin;Kieli;Syntymävuosi;Postinumero;Kylä\n"
    "040 123 4567;fi;1950;23500;Kalanti\n"
    "+358 40 123 4567;sv;1950;23500;Kalanti\n"  # line 3: the same number, merged
    "not a number;fi;1980;23500;Pyhämaa\n"  # line 4: rejected
    "0501234567;sv;1999;23501;Pyhämaa\n"
    ";fi;1970;23500;\n"  # line 6: no number, rejected
)


def test_create_a_campaign_and_upload_contacts_with_bad_rows(
    site: WebInstance, staff: Staff, page: Page, journey: Journey, tmp_path: Path
) -> None:
    log_in(page, site.url, staff.email, staff.password)
    flow = flow_file(tmp_path, "syksy-2026", "Syyskysely 2026 / Höstenkät 2026")
    upload_flow(page, journey, site.url, staff.org_id, flow)

    # A mistake first: calling hours that end before they start.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").click()
    page.fill("#name", "Väärät tunnit")
    page.fill("#windows", "mon-fri 20-10")
    with page.expect_navigation():
        page.get_by_role("button", name="Continue").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link", name="Calling windows", exact=False)).to_have_attribute(
        "href", "#windows"
    )
    expect(summary.get_by_role("link", name="Call flow", exact=False)).to_be_visible()
    expect(page.locator("#windows")).to_have_attribute("aria-invalid", "true")
    journey.step("new campaign: errors")

    campaign_url = create_campaign(
        page,
        journey,
        name="Asukaskysely syksy 2026",
        flow_name="syksy-2026",  # the form names flows by their identifier,
        windows="mon-fri 10-20, sat 10-14",
    )
    expect(page.locator("[data-progress=status]")).to_have_text("Draft")
    expect(page.locator("[data-progress=contacts]")).to_have_text("0")

    csv = tmp_path / "asukkaat.csv"
    csv.write_text(CONTACTS, encoding="utf-8")
    report = upload_contacts(page, journey, csv)
    expect(report).to_contain_text("Accepted: 2")
    expect(report).to_contain_text("Duplicates (not added again): 1")
    expect(report).to_contain_text("Rejected rows: 2")
    rejected = page.locator("table.rejected-rows tbody tr")
    expect(rejected).to_have_count(2)
    rows = [r.locator("td").all_inner_texts() for r in rejected.all()]
    assert [line for line, _ in rows] == ["4", "6"], rows
    assert "not a phone number" in rows[0][1], rows
    expect(page.locator("main")).to_contain_text("The campaign has 2 contacts.")
    journey.step("contacts: rejected rows listed")

    # Again: nothing is added twice.
    report = upload_contacts(page, journey, csv)
    expect(report).to_contain_text("Accepted: 0")
    page.get_by_role("link", name="Back to the campaign").click()
    assert page.url == campaign_url, page.url
    expect(page.locator("[data-progress=contacts]")).to_have_text("2")
    expect(page.get_by_role("button", name="Start the campaign")).to_be_visible()
    journey.step("campaign ready to start")
    page.get_by_role("link", name="All campaigns").click()
    row = page.locator("table.campaign-list tr", has_text="Asukaskysely syksy 2026")
    expect(row).to_contain_text("Draft")
    journey.step("campaign list")


def _press(page: Page, button: str) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name=button).click()


def test_change_start_pause_resume_and_stop_a_campaign(
    site: WebInstance, staff: Staff, page: Page, journey: Journey, tmp_path: Path
) -> None:
    """Without a telephony worker nothing is dialled: the page's actions and what it says."""
    log_in(page, site.url, staff.email, staff.password)
    flow = flow_file(tmp_path, "kevat-2027", "Kevätkysely 2027 / Vårenkät 2027")
    upload_flow(page, journey, site.url, staff.org_id, flow)
    campaign_url = create_campaign(
        page, journey, name="Kevät 2027", flow_name="kevat-2027", caller_id="+7 495 123 4567"
    )
    # A foreign caller ID is allowed, with a warning beside the settings.
    expect(page.locator(".warning").first).to_contain_text("Russia")
    csv = tmp_path / "kevat.csv"
    csv.write_text("puhelin\n040 765 4321\n050 765 4321\n", encoding="utf-8")
    upload_contacts(page, journey, csv)
    page.get_by_role("link", name="Back to the campaign").click()

    page.get_by_role("link", name="Change the settings").click()
    expect(page.locator("h1")).to_have_text("Change the campaign")
    page.fill("#caller_id", "029 123 4567")
    page.fill("#max_attempts", "2")
    journey.step("change the settings")
    _press(page, "Save changes")
    assert page.url.split("?")[0] == campaign_url, page.url
    expect(page.locator("table.summary")).to_contain_text("+358291234567")
    expect(page.locator(".warning", has_text="Russia")).to_have_count(0)

    _press(page, "Start the campaign")
    status = page.locator('.status[data-progress="status"]')
    expect(status).to_have_text("Running")
    expect(page.get_by_role("link", name="Change the settings")).to_have_count(0)
    journey.step("running")
    _press(page, "Pause")
    expect(status).to_have_text("Paused")
    expect(page.locator('[data-progress="why"]')).to_contain_text("Paused")
    journey.step("paused")
    _press(page, "Resume")
    expect(status).to_have_text("Running")
    page.get_by_role("link", name="Stop the campaign…").click()
    expect(page.locator("h1")).to_have_text("Stop the campaign Kevät 2027?")
    journey.step("stop: are you sure")
    _press(page, "Yes, stop the campaign")
    expect(status).to_have_text("Stopped")
    expect(page.get_by_role("button", name="Start the campaign")).to_have_count(0)
    expect(page.get_by_role("link", name="Upload contacts")).to_have_count(0)
    journey.step("stopped")
