"""A reviewer works through ten open answers with the keyboard only, in a real browser
against the real `ivr web`: play (Space), speed (]), replay (r), a tag (1), the corrected
text (e, typing, Escape) and "Save and next" (Enter); then the database holds ten reviewed
answers with their corrections and tags, and every answer's listen in the audit log. The
queue and the answer's page pass axe."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from playwright.sync_api import Page, expect

from ivr.accounts.audit import Actor
from ivr.bootstrap import load_app
from ivr.clock import MovableClock
from ivr.config import load_settings
from ivr.store.models import TranscriptRow
from ivr.store.org_models import AuditEntry, User
from ivr.store.work_models import TranscriptTag
from tests.browser.journey import Journey, log_in, tab_to
from tests.support.results import seed_results
from tests.support.web import Staff, WebInstance

ANSWERS = 10


def test_review_ten_answers_with_the_keyboard_only(
    site: WebInstance, staff: Staff, page: Page, journey: Journey, tmp_path: Path
) -> None:
    services = load_app(load_settings(environ=site.env), MovableClock()).services()
    try:
        org = Actor.cli(staff.org_id)
        seeded = seed_results(services, org, tmp_path, count=2 * ANSWERS, name="Arviointi")
        assert len(seeded.transcript_ids) == ANSWERS
        theme = services.review.add_tag(org, "Liikenne", 1)
        services.review.add_tag(org, "Palvelut", 2)
        reviewer = site.add_user("jonoarvioija@suonenjoki.fi", staff.org, "reviewer")
        log_in(page, site.url, reviewer.email, reviewer.password)
        page.goto(f"{site.url}/o/{staff.org_id}/review/?campaign={seeded.campaign_id}")
        expect(page.locator('[data-state-count="new"]')).to_have_text(str(ANSWERS))
        journey.step("the review queue")
        start = page.get_by_role("link", name="Start reviewing")
        tab_to(page, start, limit=60)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        audio = page.locator("[data-review-audio]")
        for n in range(ANSWERS):
            # The focus starts on the transcript: the shortcuts work at once.
            expect(page.locator("#review-words")).to_be_focused()
            page.keyboard.press("Space")
            page.wait_for_function(
                "el => !el.paused && el.currentTime > 0", arg=audio.element_handle()
            )
            # The speed carries over from the previous answer; ] adds 0.25 (up to 3).
            rate = min(3.0, 1.0 + 0.25 * (n + 1))
            page.keyboard.press("]")
            assert audio.evaluate("el => [el.playbackRate, el.preservesPitch]") == [rate, True]
            expect(page.locator("[data-review-speed]")).to_have_text(f"{rate:.2f}")
            if n == ANSWERS - 1:  # down to the slowest: [ stops at 0.5
                for _ in range(12):
                    page.keyboard.press("[")
                assert audio.evaluate("el => el.playbackRate") == 0.5
            if n == 0:
                # The word being heard is highlighted (the first starts at 0.5 s).
                expect(page.locator(".words .word.current")).to_have_count(1, timeout=8000)
                page.keyboard.press("r")
                expect(page.locator("[data-review-live]")).to_have_text(
                    "Replaying the last 5 seconds"
                )
                journey.step("an answer playing")
            page.keyboard.press("1")
            expect(page.locator(f"#tag-{theme.id}")).to_be_checked()
            expect(page.locator("[data-review-live]")).to_have_text("Tag Liikenne given")
            page.keyboard.press("e")
            expect(page.locator("#corrected_text")).to_be_focused()
            page.keyboard.press("Control+A")
            page.keyboard.type(f"Korjattu vastaus {n}")
            assert audio.evaluate("el => el.paused"), "typing did not pause the playback"
            page.keyboard.press("Escape")
            expect(page.locator("#review-words")).to_be_focused()
            with page.expect_navigation():
                page.keyboard.press("Enter")
        expect(page.get_by_text("There are no more answers in this queue.")).to_be_visible()
        expect(page.locator('[data-state-count="reviewed"]')).to_have_text(str(ANSWERS))
        journey.step("the queue done")

        with services.factory() as s:
            user_id = s.scalar(sa.select(User.id).where(User.email == reviewer.email))
            rows = s.scalars(
                sa.select(TranscriptRow).where(TranscriptRow.id.in_(seeded.transcript_ids))
            ).all()
            tagged = set(
                s.scalars(
                    sa.select(TranscriptTag.transcript_id).where(TranscriptTag.tag_id == theme.id)
                )
            )
            listened = {
                json.loads(detail)["transcript_id"]
                for detail in s.scalars(
                    sa.select(AuditEntry.detail).where(
                        AuditEntry.action == "recording.listen", AuditEntry.user_id == user_id
                    )
                )
            }
        assert {r.review_state.value for r in rows} == {"reviewed"}
        assert {r.reviewed_by for r in rows} == {user_id}
        assert sorted(r.corrected_text or "" for r in rows) == sorted(
            f"Korjattu vastaus {n}" for n in range(ANSWERS)
        )
        assert all(r.machine_text and not r.machine_text.startswith("Korjattu") for r in rows)
        assert tagged == set(seeded.transcript_ids)
        assert listened == set(seeded.transcript_ids)
    finally:
        services.close()
