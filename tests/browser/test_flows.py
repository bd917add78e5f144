"""Call flows in the browser: a three-question flow built in the form editor and heard in
the preview; a recording uploaded for a prompt and played back."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.journey import Journey, check_audio, flow_file, log_in, upload_flow
from tests.support.audio_files import FORMATS, encode, speech_file
from tests.support.web import Staff, WebInstance

PREVIEW_TIMEOUT_MS = 60_000

# The questions added to the new flow's yes-or-no one: (kind, Finnish, Swedish).
ADDED = (
    ("scale", "Arvosana yhdestä viiteen.", "Betyg från ett till fem."),
    ("number", "Montako vuotta olet asunut täällä?", "Hur många år har du bott här?"),
)


def test_build_a_three_question_flow_in_the_editor_and_hear_its_preview(
    site: WebInstance, staff: Staff, page: Page, journey: Journey
) -> None:
    log_in(page, site.url, staff.email, staff.password)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Call flows").click()
    expect(page.locator("h1")).to_have_text("Call flows")
    journey.step("call flows")
    page.get_by_role("link", name="New flow").click()
    page.fill("#name", "Asukaskysely kolmella kysymyksellä")
    journey.step("new flow")
    with page.expect_navigation():
        page.get_by_role("button", name="Create the flow").click()
    expect(page.locator("h1")).to_have_text("Edit Asukaskysely kolmella kysymyksellä")
    # The new flow's own question (a yes-or-no choice), in both languages side by side.
    question = page.locator('fieldset.flow-step:has(input[name$="-kind"][value="choice"])')
    prefix = question.get_attribute("id")
    page.fill(f"#{prefix}-text-fi", "Oletko tyytyväinen? Kyllä 1, ei 2.")
    page.fill(f"#{prefix}-text-sv", "Är du nöjd? Ja 1, nej 2.")
    journey.step("editor: the first question")
    for kind, finnish, swedish in ADDED:
        page.select_option("#add_kind", kind)
        with page.expect_navigation():
            page.get_by_role("button", name="Add the step").click()
        step = page.locator(f'fieldset.flow-step:has(input[name$="-kind"][value="{kind}"])')
        expect(step).to_have_count(1)
        prefix = step.get_attribute("id")
        expect(step).to_be_focused()  # the added step has the focus (flow_editor.js)
        page.fill(f"#{prefix}-text-fi", finnish)
        page.fill(f"#{prefix}-text-sv", swedish)
        journey.step(f"editor: {kind} added")
    with page.expect_navigation():
        page.get_by_role("button", name="Save").first.click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    kinds = page.locator('fieldset.flow-step input[name$="-kind"]')
    assert [k.get_attribute("value") for k in kinds.all()] == [
        "say",
        "choice",
        "scale",
        "number",
        "end",
    ]
    journey.step("editor: saved")

    # The preview synthesises every prompt it has not heard before: seconds on a loaded
    # machine, longer than a click waits.
    with page.expect_navigation(timeout=PREVIEW_TIMEOUT_MS):
        page.get_by_role("link", name="Listen to the saved prompts").click(no_wait_after=True)
    expect(page.locator("h1")).to_have_text("Listen to Asukaskysely kolmella kysymyksellä")
    table = page.locator("table.prompt-list")
    for _, finnish, swedish in ADDED:
        expect(table).to_contain_text(finnish)
        expect(table).to_contain_text(swedish)
    journey.step("preview")
    # Every prompt of the three questions plays, in both languages.
    for text in ("Oletko tyytyväinen? Kyllä 1, ei 2.", ADDED[0][1], ADDED[1][1]):
        row = table.locator("tr", has_text=text)
        audios = row.locator("audio")
        expect(audios).to_have_count(2)
        for audio in audios.all():
            assert check_audio(page, audio) > 0.5
    journey.step("preview: played")


def test_upload_a_recording_for_a_prompt_and_play_it(
    site: WebInstance, staff: Staff, page: Page, journey: Journey, tmp_path: Path
) -> None:
    log_in(page, site.url, staff.email, staff.password)
    flow = flow_file(tmp_path, "tallenne", "Tallennekysely / Inspelningsenkät")
    upload_flow(page, journey, site.url, staff.org_id, flow)
    page.get_by_role("link", name="Prompts and recordings").click()
    row = page.locator("table.prompt-list tr", has_text="Oletko tyytyväinen?")
    expect(row.locator("td").first).to_contain_text("Synthetic speech")
    journey.step("prompts: all synthetic")
    row.locator("td").first.get_by_role("link", name="Upload a recording").click()
    expect(page.locator("h1")).to_contain_text("Finnish")

    # A recording as a phone or a PC makes one: MP3, stereo 44.1 kHz, a second of silence.
    wav = tmp_path / "kysymys.wav"
    speech_file(wav, text="Oletko tyytyväinen? Kyllä yksi, ei kaksi.")
    mp3 = encode(wav, tmp_path / "kysymys.mp3", FORMATS["mp3"][1])
    page.set_input_files("#file", str(mp3))
    journey.step("prompt: choose the recording")
    with page.expect_navigation():
        page.get_by_role("button", name="Upload").click()
    expect(
        page.get_by_role("status").filter(has_text="The recording was converted and saved.")
    ).to_be_visible()
    expect(page.locator("main")).to_contain_text("kysymys.mp3")
    audio = page.locator("audio")
    expect(audio).to_have_count(1)
    duration = check_audio(page, audio)
    assert 1.0 < duration < 6.0, duration  # the silence at both ends trimmed
    journey.step("prompt: recording played")
    # The prompt list now says recorded for Finnish, synthetic for Swedish.
    page.get_by_role("link", name="Back to the prompts").click()
    row = page.locator("table.prompt-list tr", has_text="Oletko tyytyväinen?")
    expect(row.locator("td").nth(0)).to_contain_text("Recorded")
    expect(row.locator("td").nth(1)).to_contain_text("Synthetic speech")
    check_audio(page, row.locator("td").nth(0).locator("audio"))
    journey.step("prompts: one recorded")
