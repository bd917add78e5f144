"""The journeys' own checks catch what they are for: axe-core runs in the page under its
Content-Security-Policy and a serious or critical violation fails the step with the rule,
its impact and the nodes; a script the CSP refuses fails it too."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.browser.journey import Journey
from tests.support.web import WebInstance


def test_a_critical_violation_fails_the_step_naming_rule_and_nodes(
    site: WebInstance, page: Page, journey: Journey
) -> None:
    page.goto(f"{site.url}/login")
    assert journey.axe() == []  # the login page as served
    # A field without a label and an image without a text (both critical in axe-core).
    page.evaluate(
        """() => {
        const main = document.querySelector("main");
        main.insertAdjacentHTML("beforeend",
          '<input id="nameless" type="text"><img id="wordless" src="data:,">');
      }"""
    )
    with pytest.raises(AssertionError) as failed:
        journey.step("made inaccessible")
    message = str(failed.value)
    assert "- label (critical)" in message and "#nameless" in message, message
    assert "- image-alt (critical)" in message and "#wordless" in message, message


def test_a_script_the_csp_refuses_fails_the_step(
    site: WebInstance, page: Page, journey: Journey
) -> None:
    page.goto(f"{site.url}/login")
    with page.expect_console_message(lambda m: "Content Security Policy" in m.text):
        page.evaluate(
            """() => {
        const script = document.createElement("script");
        script.textContent = "window.inlineRan = true";
        document.body.appendChild(script);
      }"""
        )
    assert page.evaluate("window.inlineRan === undefined")  # refused by script-src 'self'
    with pytest.raises(AssertionError, match="CSP: .*Content Security Policy"):
        journey.step("inline script refused", axe=False)
