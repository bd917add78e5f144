"""Logging in and out with the keyboard alone, a wrong password, the language switch."""

from __future__ import annotations

from babel.support import Translations
from playwright.sync_api import Browser, BrowserContext, Page, expect

from ivr.web.i18n import TRANSLATIONS, compile_catalogues
from tests.browser.conftest import open_context
from tests.browser.journey import Journey, focused_html, tab_to
from tests.support.web import Staff, WebInstance


def session_cookie(context: BrowserContext) -> dict[str, object] | None:
    return next((dict(c) for c in context.cookies() if c["name"] == "ivr_session"), None)


def test_log_in_and_out_with_the_keyboard_alone(
    site: WebInstance, staff: Staff, page: Page, context: BrowserContext, journey: Journey
) -> None:
    page.goto(f"{site.url}/login")
    expect(page.locator("h1")).to_have_text("Log in")
    # The e-mail field has the focus on arrival (autofocus); Tab leads to the password.
    assert tab_to(page, page.locator("#email")) == 0, "the e-mail field is not focused first"
    page.keyboard.type(staff.email)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password", focused_html(page)
    page.keyboard.type(staff.password)
    journey.step("login form filled")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    # One organisation: straight to its campaigns.
    expect(page).to_have_url(f"{site.url}/o/{staff.org_id}/campaigns/")
    expect(page.locator("header")).to_contain_text(staff.org_name)
    expect(page.locator("header")).to_contain_text(staff.email)
    # Served on http://127.0.0.1 with a Secure cookie: chromium keeps it on loopback.
    cookie = session_cookie(context)
    assert cookie is not None, f"chromium dropped the Secure session cookie: {context.cookies()}"
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax", cookie
    journey.step("logged in: campaigns")

    # From the top of the page, the skip link is the first Tab stop; then to "Log out".
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    journey.step("skip link focused")
    tab_to(page, page.get_by_role("button", name="Log out"))
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page).to_have_url(f"{site.url}/login")
    journey.step("logged out")
    # Out for real: a member page sends back to the login.
    page.goto(f"{site.url}/o/{staff.org_id}/campaigns/")
    expect(page.locator("h1")).to_have_text("Log in")
    assert "/login?next=" in page.url, page.url


def test_a_wrong_password_shows_the_error_summary_with_the_focus_on_it(
    site: WebInstance, staff: Staff, page: Page, journey: Journey
) -> None:
    page.goto(f"{site.url}/login")
    # The e-mail field has the focus when the page opens (typing before the browser has
    # applied autofocus lost the first key on a loaded machine).
    expect(page.locator("#email")).to_be_focused()
    page.keyboard.type(staff.email)
    page.keyboard.press("Tab")
    page.keyboard.type("not the password")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_have_attribute("role", "alert")
    expect(summary).to_contain_text("Wrong e-mail address or password.")
    expect(summary).to_be_focused()  # screen readers and keyboard users hear it first
    expect(page.locator("#email")).to_have_value(staff.email)  # kept; the password is not
    expect(page.locator("#password")).to_have_value("")
    journey.step("wrong password: error summary")
    # Then the right one, without the mouse.
    tab_to(page, page.locator("#password"))
    page.keyboard.type(staff.password)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page).to_have_url(f"{site.url}/o/{staff.org_id}/campaigns/")
    journey.step("then logged in")


def _translated(language: str, text: str) -> str:
    """``text`` as the committed catalogue of ``language`` has it."""
    compile_catalogues()
    return str(Translations.load(str(TRANSLATIONS), [language]).gettext(text))


def test_switching_language_changes_the_page(
    site: WebInstance, staff: Staff, browser: Browser
) -> None:
    expected = {lang: _translated(lang, "Campaigns") for lang in ("fi", "sv", "en")}
    log_out = {lang: _translated(lang, "Log out") for lang in ("fi", "sv", "en")}
    # A user of its own: the language chosen becomes the user's setting.
    user = site.add_user("kielet@suonenjoki.fi", staff.org, "manager")
    context = open_context(browser, locale="fi-FI")  # the browser asks for Finnish
    try:
        page = context.new_page()
        journey = Journey(page, "test_switching_language_changes_the_page")
        page.goto(f"{site.url}/login")
        expect(page.locator("html")).to_have_attribute("lang", "fi")
        page.fill("#email", user.email)
        page.fill("#password", user.password)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        heading = page.locator("h1")
        logout = page.locator(".user-menu button")
        expect(heading).to_have_text(expected["fi"])
        expect(logout).to_have_text(log_out["fi"])
        journey.step("fi")
        for lang, label in (("sv", "svenska"), ("en", "English")):
            button = page.locator(f'.language-switch button[value="{lang}"]')
            expect(button).to_have_text(label)
            with page.expect_navigation():
                button.click()
            expect(page.locator("html")).to_have_attribute("lang", lang)
            expect(heading).to_have_text(expected[lang])
            expect(logout).to_have_text(log_out[lang])
            expect(button).to_have_attribute("aria-current", "true")
            assert page.url == f"{site.url}/o/{user.org_id}/campaigns/", page.url  # same page
            journey.step(lang)
        # The choice is the user's setting: a new login in a fresh browser keeps English.
        context.clear_cookies()
        page.goto(f"{site.url}/login")
        page.fill("#email", user.email)
        page.fill("#password", user.password)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(heading).to_have_text("Campaigns")
    finally:
        context.close()
    # The page changed language because the catalogues say these in Finnish and Swedish.
    for lang in ("fi", "sv"):
        for text, translated in (("Campaigns", expected[lang]), ("Log out", log_out[lang])):
            assert translated != text, (
                f"the {lang} catalogue (ivr/web/translations/{lang}) does not translate {text!r}"
            )
