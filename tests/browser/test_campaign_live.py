"""A campaign started in the browser calls simulated residents on the real Asterisk (`ivr
telephony` in its own process, as operators run it), and its page shows the progress move
without a reload until it completes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, expect

from ivr.telephony.personas import number_for
from tests.browser.journey import (
    Journey,
    create_campaign,
    flow_file,
    log_in,
    upload_contacts,
    upload_flow,
)
from tests.support.instance import destroy, make_instance, start_or_fail
from tests.support.web import WebInstance, serving
from tests.support.worker import Worker

pytestmark = pytest.mark.pbx

# persona code -> how many residents (see ivr/telephony/personas.py)
RESIDENTS = {
    701: 6,  # answers and keys 1, 2, 3 a second apart: the three questions answered
    302: 2,  # busy
    401: 2,  # declines
    501: 2,  # unallocated number
    105: 2,  # answers, says nothing, hangs up after 5 s
}
CALLS = sum(RESIDENTS.values())


@pytest.fixture()
def calling_site(tmp_path: Path) -> Iterator[WebInstance]:
    """An instance with its Asterisk, `ivr telephony` (which dials) and `ivr web`."""
    app, env = make_instance(prefix="ivr-browser-pbx-")
    try:
        start_or_fail(app)
        worker = Worker(env, tmp_path / "telephony.log")
        try:
            with serving(env, app.settings.data_dir) as site:
                yield site
        finally:
            worker.kill()
    finally:
        destroy(app)


def _residents(path: Path) -> Path:
    rows = ["puhelin;kieli"]
    serial = 0
    for code, count in RESIDENTS.items():
        for _ in range(count):
            serial += 1
            rows.append(f"{number_for(code, serial)};{'sv' if serial % 3 == 0 else 'fi'}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _number(page: Page, key: str) -> int:
    text = page.locator(f'[data-progress="{key}"]').first.inner_text()
    return int("".join(c for c in text if c.isdigit()) or 0)


def test_start_a_campaign_and_watch_its_progress_without_reloading(
    calling_site: WebInstance, page: Page, journey: Journey, tmp_path: Path
) -> None:
    site = calling_site
    org = site.add_org("Pieksämäki")
    staff = site.add_user("kampanjat@pieksamaki.fi", org, "manager")
    log_in(page, site.url, staff.email, staff.password)
    upload_flow(page, journey, site.url, staff.org_id, flow_file(tmp_path, "puhelut", "Puhelut"))
    create_campaign(
        page,
        journey,
        name="Soitot simuloiduille asukkaille",
        flow_name="puhelut",
        windows="mon-sun 0-24",  # whenever the test runs
        holidays=True,
        pace={"max_attempts": "1", "calls_per_second": "2", "max_concurrent": "6"},
    )
    upload_contacts(page, journey, _residents(tmp_path / "asukkaat.csv"))
    expect(page.locator("#report")).to_contain_text(f"Accepted: {CALLS}")
    page.get_by_role("link", name="Back to the campaign").click()
    expect(page.locator('[data-progress="contacts"]')).to_have_text(str(CALLS))
    journey.step("ready to start")

    polls: list[Request] = []
    page.on("request", lambda r: polls.append(r) if "progress.json" in r.url else None)
    with page.expect_navigation():
        page.get_by_role("button", name="Start the campaign").click()
    expect(page.get_by_role("status").filter(has_text="The campaign has started.")).to_be_visible()
    expect(page.locator('.status[data-progress="status"]')).to_have_text("Running")
    # From here on the page is never loaded again: a marker in the window survives.
    page.evaluate("window.__sameDocument = true")
    placed_at_start = _number(page, "calls_placed")
    journey.step("started")

    deadline = time.monotonic() + 150
    seen_placed = {placed_at_start}
    shots = 0
    while page.locator('.status[data-progress="status"]').inner_text() != "Completed":
        if time.monotonic() > deadline:
            pytest.fail(
                "the campaign did not complete in 150 s; the page says: "
                + page.locator(".campaign-progress").inner_text()[:1500],
                pytrace=False,
            )
        placed = _number(page, "calls_placed")
        if placed not in seen_placed:
            seen_placed.add(placed)
            if shots < 2:  # the progress as it moves
                shots += 1
                journey.step(f"calling {placed} of {CALLS}")
        page.wait_for_timeout(500)  # the page polls every 2.5 s by itself
    journey.step("completed")

    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    assert len(seen_placed) >= 2, f"the numbers never moved on the page: {seen_placed}"
    assert _number(page, "calls_placed") == CALLS
    assert _number(page, "completed") == RESIDENTS[701]  # all three questions answered
    assert _number(page, "answered") == RESIDENTS[701] + RESIDENTS[105]
    assert _number(page, "outcome-busy") == RESIDENTS[302]
    assert _number(page, "outcome-declined") == RESIDENTS[401]
    assert _number(page, "outcome-unallocated") == RESIDENTS[501]
    assert polls, "the page never asked for its progress"
    assert all(r.headers.get("x-ivr-poll") == "1" for r in polls), "a poll without X-Ivr-Poll"
    # The list says so too.
    page.get_by_role("link", name="All campaigns").click()
    row = page.locator("table.campaign-list tr", has_text="Soitot simuloiduille asukkaille")
    expect(row).to_contain_text("Completed")
    journey.step("campaign list")
