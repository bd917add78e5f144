"""The staff UI in a real browser: Debian's chromium driven by Playwright (never a downloaded
browser) against the real `ivr web` (gunicorn) of a test instance.

Scope: the browser and the site live as long as the worker runs this package's tests in a
row (``scope="package"``: torn down when the next test is elsewhere). Not the whole session:
Playwright's sync API leaves its event loop marked as running in the main thread between
calls, and a later test of another package calling ``asyncio.run`` would be refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from ivr.bootstrap import init
from ivr.clock import MovableClock
from ivr.config import load_settings
from ivr.services import Services
from tests.browser.journey import AXE, Journey
from tests.support.web import Staff, WebInstance, web_instance

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The journeys press play on prompts with Playwright's synthetic input.
    "--autoplay-policy=no-user-gesture-required",
]
ACTION_TIMEOUT_MS = 5_000  # a click, a fill, an expect(): the page is on loopback
NAVIGATION_TIMEOUT_MS = 15_000  # a page load: 4 test workers share 2 cores


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests drive Debian's chromium (never a "
            "downloaded one); install it with `bash scripts/setup.sh` or "
            "`apt-get install chromium`",
            pytrace=False,
        )
    if not AXE.exists():
        pytest.fail(
            f"{AXE.relative_to(AXE.parents[2])} is missing: run `npm ci` (or "
            "`bash scripts/setup.sh`) for the pinned axe-core",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="package")
def site() -> Iterator[WebInstance]:
    """`ivr web` for a fresh data directory, shared by this package's tests on a worker
    (what a journey makes has a name of its own)."""
    with web_instance() as instance:
        yield instance


@pytest.fixture(scope="package")
def staff(site: WebInstance) -> Staff:
    """The organisation and its administrator, made with the real CLI (`ivr org add`,
    `ivr user add --json`) once per site: each `ivr` command costs a second or more of CPU
    on a loaded machine, so the journeys share them and name what they make uniquely."""
    org = site.add_org("Suonenjoki")
    return site.add_user("paakayttaja@suonenjoki.fi", org, "admin")


@pytest.fixture()
def services(site: WebInstance) -> Iterator[Services]:
    """The services over the served instance's database, for seeding results
    (tests/support/results.py) through them; their clock starts three hours back, since the
    seed moves it on and its calls should lie in the past."""
    clock = MovableClock()
    clock.advance(-timedelta(hours=3))
    instance, _ = init(load_settings(environ=site.env), clock=clock)
    made = instance.services()
    try:
        yield made
    finally:
        made.close()


def open_context(browser: Browser, locale: str = "en-GB") -> BrowserContext:
    """A fresh browser profile (no cookies) with axe-core in every page.

    axe-core is added as an init script (``add_init_script``: injected by the browser
    before the page's own scripts, outside the page's Content-Security-Policy) rather than
    with ``add_script_tag``, which the CSP (script-src 'self') refuses; so the context
    needs no ``bypass_csp`` and the journeys run under the CSP users get, which they check
    (``Journey``: a CSP refusal fails the step)."""
    context = browser.new_context(
        locale=locale,
        timezone_id="Europe/Helsinki",
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    context.add_init_script(path=str(AXE))
    return context


@pytest.fixture()
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = open_context(browser)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture()
def page(context: BrowserContext) -> Page:
    return context.new_page()


_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if report.when == "call" and report.failed:  # type: ignore[attr-defined]
        item.stash[_FAILED] = True
    return report


@pytest.fixture()
def journey(page: Page, request: pytest.FixtureRequest) -> Iterator[Journey]:
    """The test's journey; when the test fails, the page as it was (``failure.png``) and
    the end of `ivr web`'s log are kept with its screenshots."""
    made = Journey(page, request.node.name)
    yield made
    if request.node.stash.get(_FAILED, False):
        logs = [
            request.getfixturevalue(name).server.log_tail()
            for name in ("site", "calling_site")
            if name in request.fixturenames
        ]
        made.failed("\n".join(logs))
