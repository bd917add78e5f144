"""An administrator's pages: a colleague added in the browser logs in with the password
shown once and sees what a reviewer may; an inbound line for a flow; the audit log."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import open_context
from tests.browser.journey import Journey, flow_file, log_in, upload_flow
from tests.support.web import Staff, WebInstance


def test_an_admin_adds_a_reviewer_and_an_inbound_line_and_reads_the_audit_log(
    site: WebInstance,
    staff: Staff,
    page: Page,
    journey: Journey,
    browser: Browser,
    tmp_path: Path,
) -> None:
    log_in(page, site.url, staff.email, staff.password)
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Users").click()
    expect(page.locator("h1")).to_have_text("Users")
    journey.step("users")
    page.get_by_role("link", name="Add a user").click()
    page.fill("#email", "arvioija@suonenjoki.fi")
    page.fill("#name", "Aino Arvioija")
    page.select_option("#role", "reviewer")
    journey.step("add a user")
    with page.expect_navigation():
        page.get_by_role("button", name="Add user").click()
    expect(page.locator("h1")).to_have_text("User added")
    password = page.locator(".password code").inner_text().strip()
    assert len(password) >= 12, password
    journey.step("user added: the password shown once")

    # The reviewer, in a browser of their own.
    other = open_context(browser)
    try:
        reviewer = other.new_page()
        log_in(reviewer, site.url, "arvioija@suonenjoki.fi", password)
        expect(reviewer.locator("h1")).to_have_text("Campaigns")
        expect(reviewer.get_by_role("link", name="New campaign")).to_have_count(0)
        reviewer_nav = reviewer.get_by_role("navigation", name="Main")
        expect(reviewer_nav.get_by_role("link", name="Users")).to_have_count(0)
        response = reviewer.goto(f"{site.url}/o/{staff.org_id}/users/")
        assert response is not None and response.status == 403, response
        Journey(reviewer, "test_admin_reviewer_view").step("reviewer: forbidden page")
    finally:
        other.close()

    upload_flow(page, journey, site.url, staff.org_id, flow_file(tmp_path, "neuvonta", "Neuvonta"))
    nav.get_by_role("link", name="Inbound lines").click()
    page.get_by_role("link", name="Add a line").click()
    page.fill("#number", "0201234567")
    page.select_option("#flow", label="neuvonta")
    page.select_option("#language", "sv")
    journey.step("add an inbound line")
    with page.expect_navigation():
        page.get_by_role("button", name="Add line").click()
    expect(page.get_by_role("status").filter(has_text="The line has been added.")).to_be_visible()
    row = page.locator("tr", has_text="neuvonta")
    expect(row).to_contain_text("In use")
    journey.step("inbound lines")

    nav.get_by_role("link", name="Users").click()
    page.get_by_role("link", name="Audit log").click()
    log = page.locator("table.audit-log")
    for action in ("User added", "Logged in", "Call flow uploaded", "Inbound line added"):
        expect(log).to_contain_text(action)
    expect(log).to_contain_text("arvioija@suonenjoki.fi")
    journey.step("audit log")
