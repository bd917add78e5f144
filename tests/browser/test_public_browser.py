"""The public campaign page in a real browser: a manager publishes it (a missing field
first), then an anonymous visitor reads it on a desktop and on a phone (375 px wide) —
axe-clean, no horizontal scrolling, no script — and switches it to Swedish."""

from __future__ import annotations

import uuid

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import open_context
from tests.browser.journey import Journey, create_campaign, log_in
from tests.support.web import Staff, WebInstance

PHONE = {"width": 375, "height": 740}


def _no_horizontal_scroll(page: Page) -> None:
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"the page scrolls sideways at {widths[1]} px: {widths}"


def test_publish_the_public_page_and_read_it_on_a_phone(
    site: WebInstance, staff: Staff, page: Page, journey: Journey, browser: Browser
) -> None:
    log_in(page, site.url, staff.email, staff.password)
    name = f"Julkinen kysely {uuid.uuid4().hex[:6]}"
    create_campaign(
        page, journey, name=name, flow_name="strategy-survey.yaml",
        windows="mon-fri 10-20, sat 10-14",
    )  # fmt: skip
    page.get_by_role("link", name="Public page").click()
    expect(page.locator("h1")).to_contain_text("Public page")
    expect(page.locator("main")).to_contain_text("The page is not published.")
    journey.step("public page editor")

    # Publishing without the Finnish purpose: the summary names it, the field says why.
    page.check("#enabled")
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(
        summary.get_by_role("link", name="Why we call, in Finnish", exact=False)
    ).to_have_attribute("href", "#purpose_fi")
    expect(page.locator("#purpose_fi")).to_have_attribute("aria-invalid", "true")
    journey.step("public page editor: errors")

    page.fill("#purpose_fi", "Kunta kysyy asukkaiden mielipidettä uudesta strategiasta.")
    page.fill("#purpose_sv", "Kommunen frågar invånarnas åsikt om den nya strategin.")
    page.fill("#period_start", "2027-03-01")
    page.fill("#period_end", "2027-03-31")
    page.fill("#contact", "kirjaamo@suonenjoki.example, 017 123 4567")
    page.fill("#privacy_fi", "Vastaukset käsitellään luottamuksellisesti ja nimettöminä.")
    page.fill("#privacy_sv", "Svaren behandlas konfidentiellt och anonymt.")
    page.fill("#controller", "Suonenjoen kaupunki, Virastotie 1, 77600 Suonenjoki")
    page.check("#enabled")
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    expect(
        page.get_by_role("status").filter(has_text="The public page is published.")
    ).to_be_visible()
    address = page.locator("[data-public-address]").get_attribute("href")
    assert address and "/p/" in address, address
    journey.step("public page published")

    visitor = open_context(browser)  # no cookies: not logged in
    try:
        public = visitor.new_page()
        seen = Journey(public, "public page as a resident")
        response = public.goto(address)
        assert response is not None and response.status == 200
        assert "public" in response.headers["cache-control"]
        expect(public.locator("html")).to_have_attribute("lang", "fi")
        expect(public.locator(".public-number").first).to_have_text("029 123 4567")
        expect(public.locator("main")).to_contain_text("Kuinka tyytyväinen")
        expect(public.locator("main")).to_contain_text("Hur nöjd")
        expect(public.locator("main")).to_contain_text("Maanantaista perjantaihin klo 10–20")
        assert public.locator("script").count() == 0
        seen.step("desktop")
        _no_horizontal_scroll(public)

        public.set_viewport_size(PHONE)
        seen.step("phone, 375 px")
        _no_horizontal_scroll(public)

        with public.expect_navigation():
            public.get_by_role("link", name="svenska").click()
        expect(public.locator("html")).to_have_attribute("lang", "sv")
        expect(public.locator("main")).to_contain_text("Kommunen frågar")
        expect(public.locator("main")).to_contain_text("Måndag–fredag kl. 10–20")
        seen.step("phone, in Swedish")
        _no_horizontal_scroll(public)
    finally:
        visitor.close()
