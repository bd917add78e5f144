"""Who may open which campaign page: every campaign route, as each role of the campaign's
organisation, as each role of another organisation, and as an anonymous visitor. Another
organisation's campaign is not found (404) on every route, GET and POST, and nothing of it
changes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask

from ivr.services import Services
from ivr.store.models import CampaignStatus
from tests.web.campaign_support import (
    CONTACTS_CSV,
    MONDAY_NOON,
    audit_of,
    browser,
    campaign_row,
    make_campaign,
    url,
)
from tests.web.conftest import Orgs, Users, post

# endpoint -> (method, the least role, needs a campaign id)
ROUTES: dict[tuple[str, str], tuple[str, bool]] = {
    ("GET", "campaigns.index"): ("reviewer", False),
    ("GET", "campaigns.show"): ("reviewer", True),
    ("GET", "campaigns.progress_json"): ("reviewer", True),
    ("GET", "campaigns.new"): ("manager", False),
    ("POST", "campaigns.new"): ("manager", False),
    ("GET", "campaigns.edit"): ("manager", True),
    ("POST", "campaigns.edit"): ("manager", True),
    ("GET", "campaigns.contacts"): ("manager", True),
    ("POST", "campaigns.contacts"): ("manager", True),
    ("POST", "campaigns.start"): ("manager", True),
    ("POST", "campaigns.pause"): ("manager", True),
    ("POST", "campaigns.resume"): ("manager", True),
    ("GET", "campaigns.stop"): ("manager", True),
    ("POST", "campaigns.stop"): ("manager", True),
}
RANK = {"reviewer": 1, "manager": 2, "admin": 3}


@pytest.fixture(autouse=True)
def _monday(clock: object) -> None:
    clock.set(MONDAY_NOON)  # type: ignore[attr-defined]


def _plain(page: bytes) -> bytes:
    """A page without its CSRF tokens (signed with the time, they differ by the second)."""
    return re.sub(rb'name="csrf_token" value="[^"]*"', b"", page)


def _path(app: Flask, endpoint: str, org_id: str, campaign_id: str | None) -> str:
    values = {"org_id": org_id}
    if campaign_id is not None:
        values["campaign_id"] = campaign_id
    return url(app, endpoint, **values)


def test_every_campaign_route_is_in_the_table(web_app: Flask) -> None:
    found = {
        (method, rule.endpoint)
        for rule in web_app.url_map.iter_rules()
        if rule.endpoint.startswith("campaigns.")
        for method in rule.methods or ()
        if method in ("GET", "POST")
    }
    assert found == set(ROUTES)


def test_anonymous_visitors_are_sent_to_log_in(
    web_app: Flask, services: Services, users: Users, orgs: Orgs, tmp_path: Path
) -> None:
    campaign = make_campaign(services, users.a.manager.actor(), contacts=CONTACTS_CSV, tmp=tmp_path)
    client = browser(web_app)
    for (method, endpoint), (_, with_id) in ROUTES.items():
        path = _path(web_app, endpoint, orgs.a.id, campaign if with_id else None)
        response = post(client, path) if method == "POST" else client.get(path)
        assert response.status_code == 302, (method, path)
        assert response.headers["Location"].startswith("/login"), (method, path)
    assert campaign_row(services, campaign).status is CampaignStatus.DRAFT


@pytest.mark.parametrize("role", ["reviewer", "manager", "admin"])
def test_each_role_in_its_own_organisation(
    web_app: Flask, services: Services, users: Users, orgs: Orgs, tmp_path: Path, role: str
) -> None:
    member = users.a[role]
    client = browser(web_app, member)
    campaign = make_campaign(services, users.a.manager.actor(), contacts=CONTACTS_CSV, tmp=tmp_path)
    # In the order a manager would go: start, pause, resume, stop.
    for (method, endpoint), (needed, with_id) in ROUTES.items():
        path = _path(web_app, endpoint, orgs.a.id, campaign if with_id else None)
        response = post(client, path) if method == "POST" else client.get(path)
        if RANK[role] < RANK[needed]:
            assert response.status_code == 403, (role, method, path)
        else:
            # A form posted empty answers 400 with its errors; an action redirects back.
            assert response.status_code in (200, 303, 400), (role, method, path)
    after = campaign_row(services, campaign)
    actions = [e.action for e in audit_of(services, campaign)]
    if role == "reviewer":
        assert after.status is CampaignStatus.DRAFT
        assert actions == ["campaign.create", "campaign.import_contacts"]
    else:
        assert after.status is CampaignStatus.STOPPED
        assert actions[2:] == [
            "campaign.start",
            "campaign.pause",
            "campaign.resume",
            "campaign.stop",
        ]
        assert {e.actor for e in audit_of(services, campaign)[2:]} == {member.email}


@pytest.mark.parametrize("role", ["reviewer", "manager", "admin"])
def test_another_organisations_campaign_is_not_found_on_any_route(
    web_app: Flask, services: Services, users: Users, orgs: Orgs, tmp_path: Path, role: str
) -> None:
    theirs = make_campaign(services, users.b.manager.actor(), contacts=CONTACTS_CSV, tmp=tmp_path)
    client = browser(web_app, users.a[role])
    data = {"name": "Kaapattu", "flow": "example:strategy-survey.yaml"}
    for (method, endpoint), (needed, with_id) in ROUTES.items():
        if not with_id:
            continue
        # Under our organisation's address, and under theirs (where we are no member).
        for org_id in (orgs.a.id, orgs.b.id):
            path = _path(web_app, endpoint, org_id, theirs)
            response = post(client, path, data) if method == "POST" else client.get(path)
            expected = 404
            if org_id == orgs.a.id and RANK[role] < RANK[needed]:
                # Our own role is too low for the page, whatever the campaign: the same
                # answer as for a campaign that does not exist (nothing is revealed).
                expected = 403
                zero = "00000000-0000-4000-8000-000000000000"
                none = _path(web_app, endpoint, org_id, zero)
                same = post(client, none, data) if method == "POST" else client.get(none)
                assert same.status_code == 403
                assert _plain(same.data) == _plain(
                    response.data.replace(theirs.encode(), zero.encode())
                )
            assert response.status_code == expected, (role, method, path, response.status_code)
            assert b"Kaapattu" not in response.data
    # Their list does not show it to us either.
    listed = client.get(url(web_app, "campaigns.index", org_id=orgs.a.id))
    assert theirs.encode() not in listed.data
    row = campaign_row(services, theirs)
    assert row.status is CampaignStatus.DRAFT and row.name.startswith("Kampanja")
    assert [e.action for e in audit_of(services, theirs)] == [
        "campaign.create",
        "campaign.import_contacts",
    ]
