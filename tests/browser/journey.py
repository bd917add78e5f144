"""A journey through the staff UI in a real browser: each step is saved as a screenshot and
checked with axe-core (no serious or critical violation), and the page must not have hit a
Content-Security-Policy refusal or a JavaScript error on the way."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import ConsoleMessage, Error, Locator, Page, expect

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
BLOCKING_IMPACTS = ("serious", "critical")

# axe in the page: violations only (passes are large), each node's selector and summary.
_RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map(n => ({target: n.target.join(" "), html: n.html.slice(0, 200),
                              summary: n.failureSummary || ""})),
  }));
}"""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80].strip("-") or "step"


class Journey:
    """Screenshots under ``test-artifacts/browser/<test>/<nn>-<step>.png`` and an axe report
    (``axe.json``: every violation of every step, whatever its impact)."""

    def __init__(self, page: Page, test_name: str) -> None:
        self.page = page
        self.folder = ARTIFACTS / _slug(test_name)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.steps: list[dict[str, Any]] = []
        self.problems: list[str] = []  # CSP refusals and script errors, as they happen
        self.started = time.monotonic()
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        text = message.text
        if message.type == "error" and ("Content Security Policy" in text or "Refused to" in text):
            self.problems.append(f"CSP: {text}")

    def step(self, name: str, *, axe: bool = True) -> Path:
        """Save the page as it is now, then check it (axe: serious/critical fail)."""
        number = len(self.steps) + 1
        path = self.folder / f"{number:02d}-{_slug(name)}.png"
        self.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path.relative_to(ROOT)}", flush=True)
        violations = self.axe() if axe else []
        self.steps.append(
            {
                "step": f"{number:02d}-{_slug(name)}",
                "url": self.page.url,
                "seconds": round(time.monotonic() - self.started, 2),
                "violations": violations,
            }
        )
        (self.folder / "axe.json").write_text(json.dumps(self.steps, indent=1), encoding="utf-8")
        assert not self.problems, f"step {name!r} ({self.page.url}):\n" + "\n".join(self.problems)
        blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
        assert not blocking, (
            f"axe: serious or critical accessibility violations at step {name!r} "
            f"({self.page.url}; screenshot {path.relative_to(ROOT)}):\n" + describe(blocking)
        )
        return path

    def failed(self, server_log: str) -> None:
        """After a failure: the page as it is now and the web server's log, kept."""
        try:
            self.page.screenshot(path=str(self.folder / "failure.png"), full_page=True)
        except Error as exc:  # the page may be gone
            print(f"no failure screenshot: {exc}")
        (self.folder / "web.log").write_text(server_log, encoding="utf-8")
        print(f"failure: {self.page.url}; kept in {self.folder.relative_to(ROOT)}")
        print(f"`ivr web` log (end):\n{server_log[-3000:]}")

    def axe(self) -> list[dict[str, Any]]:
        """axe-core's violations on the page now (injected by the context's init script)."""
        try:
            found: list[dict[str, Any]] = self.page.evaluate(_RUN_AXE)
        except Error as exc:
            raise AssertionError(f"axe-core did not run in {self.page.url}: {exc}") from exc
        return found


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"][:10]:
            lines.append(f"    {node['target']}: {node['html']}")
            for detail in node["summary"].splitlines():
                lines.append(f"      {detail}")
    return "\n".join(lines)


def tab_to(page: Page, target: Locator, *, limit: int = 30) -> int:
    """Press Tab until ``target`` has the keyboard focus; the number of presses (0 when it
    had it already). Fails, naming what had the focus, when it is not reachable."""
    handle = target.element_handle()
    for presses in range(limit + 1):
        if page.evaluate("el => document.activeElement === el", handle):
            return presses
        page.keyboard.press("Tab")
    focused = page.evaluate("() => document.activeElement && document.activeElement.outerHTML")
    raise AssertionError(
        f"{target} is not reachable with Tab within {limit} presses (the focus is on "
        f"{str(focused)[:200]})"
    )


def focused_html(page: Page) -> str:
    return str(
        page.evaluate("() => document.activeElement ? document.activeElement.outerHTML : ''")
    )


def log_in(page: Page, base_url: str, email: str, password: str) -> None:
    """Through the login page (the keyboard journey is test_login's; this is the way in)."""
    page.goto(f"{base_url}/login")
    page.fill("#email", email)
    page.fill("#password", password)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/login" not in page.url, f"the login failed: {page.locator('main').inner_text()}"


# Load an <audio> element and wait for its metadata: its duration, or the media error.
_LOAD_AUDIO = """el => new Promise((done, failed) => {
  const timer = setTimeout(() => failed("no metadata within 5 s"), 5000);
  if (el.readyState >= 1) { clearTimeout(timer); done(el.duration); return; }
  el.addEventListener("loadedmetadata", () => { clearTimeout(timer); done(el.duration); });
  el.addEventListener("error", () => {
    clearTimeout(timer);
    failed("media error " + (el.error ? el.error.code + " " + el.error.message : ""));
  });
  el.preload = "auto";
  el.load();
})"""


def check_audio(page: Page, audio: Locator) -> float:
    """The <audio> element's source answers audio/wav, loads with a duration and plays
    (its time moves on); returns the duration in seconds."""
    src = audio.get_attribute("src")
    assert src, f"{audio} has no src"
    origin = page.evaluate("location.origin")
    response = page.request.get(origin + src if src.startswith("/") else src)
    assert response.status == 200, f"{src}: HTTP {response.status}"
    assert response.headers["content-type"] == "audio/wav", (src, response.headers)
    body = response.body()
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE", f"{src} is not a WAV file"
    try:
        duration = float(audio.evaluate(_LOAD_AUDIO))
    except Error as exc:
        raise AssertionError(f"{src} did not load in the page: {exc}") from exc
    assert duration > 0, f"{src}: duration {duration}"
    audio.evaluate("el => el.play()")
    page.wait_for_function("el => el.currentTime > 0", arg=audio.element_handle())
    audio.evaluate("el => el.pause()")
    return duration


FLOWS = Path(__file__).parent / "flows"


def flow_file(folder: Path, key: str, name: str, source: str = "three-questions.yaml") -> Path:
    """A copy of a flow file of tests/browser/flows with its own id and name (the journeys
    share one organisation, where a flow's id is unique)."""
    text = (FLOWS / source).read_text(encoding="utf-8")
    text = re.sub(r"(?m)^id: .*$", f"id: {key}", text, count=1)
    text = re.sub(r"(?m)^name: .*$", f"name: {name}", text, count=1)
    path = folder / f"{key}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def upload_flow(page: Page, journey: Journey, base_url: str, org_id: str, path: Path) -> str:
    """Upload a flow file on the flows' upload page; the flow's page URL."""
    page.goto(f"{base_url}/o/{org_id}/flows/upload")
    page.set_input_files("#file", str(path))
    journey.step("upload a flow file")
    with page.expect_navigation():
        page.get_by_role("button", name="Check and save").click()
    saved = page.get_by_role("status").filter(has_text="The flow file was checked and saved.")
    assert saved.count() == 1, (
        f"the flow file {path.name} was not saved: {page.locator('main').inner_text()[:1000]}"
    )
    journey.step("flow saved")
    return page.url.split("?")[0]


def create_campaign(
    page: Page,
    journey: Journey,
    *,
    name: str,
    flow_name: str,
    caller_id: str = "029 123 4567",
    windows: str | None = None,
    holidays: bool = False,
    pace: dict[str, str] | None = None,
) -> str:
    """From the campaign list: New campaign, the form, its check page, created; returns the
    campaign page's URL."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").click()
    page.fill("#name", name)
    option = page.locator("#flow option", has_text=flow_name)
    offered = page.locator("#flow option").all_inner_texts()
    assert option.count() == 1, f"the flow {flow_name!r} is not offered once on the form: {offered}"
    page.select_option("#flow", value=option.get_attribute("value"))
    page.fill("#caller_id", caller_id)
    if windows is not None:
        page.fill("#windows", windows)
    if holidays:
        page.check("#allow_holidays")
    for field, value in (pace or {}).items():
        page.fill(f"#{field}", value)
    journey.step("new campaign: the form")
    with page.expect_navigation():
        page.get_by_role("button", name="Continue").click()
    expect(page.locator("h1")).to_have_text("Check the campaign before creating it")
    journey.step("new campaign: check")
    with page.expect_navigation():
        page.get_by_role("button", name="Create the campaign").click()
    expect(page.locator("h1")).to_have_text(name)
    expect(page.get_by_role("status").filter(has_text=f"Campaign {name} created.")).to_be_visible()
    journey.step("campaign created")
    return page.url.split("?")[0]


def upload_contacts(page: Page, journey: Journey, csv: Path) -> Locator:
    """From a campaign's page (Upload contacts) or the upload page itself (again): the
    file; the report on the page."""
    if not page.locator("input#file").count():
        page.get_by_role("link", name="Upload contacts").click()
    page.set_input_files("#file", str(csv))
    journey.step("contacts: choose the file")
    with page.expect_navigation():
        page.get_by_role("button", name="Upload").click()
    report = page.locator("#report")
    expect(report).to_contain_text("The list was read")
    return report
