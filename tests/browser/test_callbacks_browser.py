"""The callback worklist in a real browser against `ivr web`: a service advisor takes a
resident's permission-to-contact request from new to resolved with clicks and the keyboard
(a mistake first: ending without the answer), and the database then holds the request
resolved with its answer and its history. axe-core checks the list and the request page."""

from __future__ import annotations

import uuid
from pathlib import Path

import sqlalchemy as sa
from playwright.sync_api import Page, expect

from ivr.accounts.audit import Actor
from ivr.services import Services
from ivr.store.models import CallbackRequest, CallbackStatus
from ivr.store.org_models import AuditEntry, Role
from ivr.store.work_models import CallbackNote
from tests.browser.journey import Journey, log_in
from tests.support.results import Seeded, seed_results
from tests.support.web import Staff, WebInstance


def _seed(services: Services, staff: Staff, tmp_path: Path) -> Seeded:
    actor = Actor(actor=staff.email, org_id=staff.org_id, role=Role.ADMIN)
    return seed_results(
        services, actor, tmp_path, count=1, name=f"Soittopyyntö {uuid.uuid4().hex[:6]}"
    )


def test_a_callback_from_new_to_resolved(
    site: WebInstance,
    staff: Staff,
    page: Page,
    journey: Journey,
    services: Services,
    tmp_path: Path,
) -> None:
    seeded = _seed(services, staff, tmp_path)
    (request_id,) = seeded.callback_ids
    log_in(page, site.url, staff.email, staff.password)
    page.goto(f"{site.url}/o/{staff.org_id}/campaigns/")
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Callback requests"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Callback requests")
    row = page.locator(f'tr[data-request="{request_id}"]')
    expect(row).to_contain_text("New")
    expect(row).to_contain_text("Phone")
    journey.step("the worklist")

    row.get_by_role("link", name=f"Request {request_id}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Request {request_id}")
    journey.step("a new request")

    page.get_by_role("button", name="Assign to me").click()
    expect(page.locator("[data-field=status]")).to_contain_text("Assigned")
    expect(page.locator("[data-field=assignee]")).not_to_contain_text("Nobody yet")

    page.fill("#note", "Soitettu klo 10.15, sovittu kotikäynti.")
    page.get_by_role("button", name="Mark contacted").click()
    expect(page.locator("[data-field=status]")).to_contain_text("Contacted")
    expect(page.locator(".callback-history")).to_contain_text("sovittu kotikäynti")

    # Ending without the answer: refused, the summary focused and linked to the field.
    page.get_by_role("button", name="Resolved", exact=True).click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(page.locator("#resolution")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#resolution-error")).to_contain_text("recorded answer")
    journey.step("the answer is required")

    # By keyboard: the summary's link to the field, the answer typed, Tab to "Resolved".
    summary.get_by_role("link").first.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#resolution")).to_be_focused()
    answer = "Ohjattu kotihoidon palveluohjaukseen; kotikäynti sovittu."
    page.keyboard.type(answer)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Resolved", exact=True)).to_be_focused()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("[data-field=status]")).to_contain_text("Resolved")
    expect(page.locator("[data-field=resolution]")).to_have_text(answer)
    journey.step("resolved")

    with services.factory() as s:
        request = s.get(CallbackRequest, request_id)
        assert request is not None
        assert request.status is CallbackStatus.RESOLVED
        assert request.resolution == answer and request.resolved_at is not None
        notes = s.scalars(
            sa.select(CallbackNote)
            .where(CallbackNote.request_id == request_id)
            .order_by(CallbackNote.id)
        ).all()
        assert [(n.status, n.text) for n in notes] == [
            (CallbackStatus.ASSIGNED, ""),
            (CallbackStatus.CONTACTED, "Soitettu klo 10.15, sovittu kotikäynti."),
            (CallbackStatus.RESOLVED, answer),
        ]
        assert {n.actor for n in notes} == {staff.email}
        actions = s.scalars(
            sa.select(AuditEntry.action)
            .where(AuditEntry.target_id == str(request_id))
            .where(AuditEntry.target_type == "callback_request")
            .order_by(AuditEntry.id)
        ).all()
        assert list(actions) == ["callback.assign", "callback.contacted", "callback.resolve"]
