"""Creating, editing and running a campaign in the browser: the form's errors beside each
field and in the summary, the "check your answers" step with the caller-ID warning, what
may change in which state, uploading contacts with their row-level report, and start,
pause, resume and stop, each in the audit log."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from flask import Flask

from ivr.campaigns.admin import CampaignSettings
from ivr.services import Services
from ivr.store.models import CampaignStatus
from tests.web.campaign_support import (
    CONTACTS_CSV,
    MONDAY_NOON,
    add_flow,
    audit_of,
    body,
    browser,
    campaign_row,
    error_of,
    make_campaign,
    url,
)
from tests.web.conftest import Orgs, Users, post, unique


@pytest.fixture(autouse=True)
def _monday(clock: object) -> None:
    clock.set(MONDAY_NOON)  # type: ignore[attr-defined]


def _form(**changes: Any) -> dict[str, Any]:
    """The new-campaign form as a manager fills it in."""
    form: dict[str, Any] = {
        "name": unique("Hyvinvointikysely"),
        "flow": "example:strategy-survey.yaml",
        "caller_id": "029 123 4567",
        "windows": "mon-fri 10-20, sat 10-14",
        "timezone": "Europe/Helsinki",
        "max_attempts": "3",
        "retry_busy_minutes": "30",
        "retry_no_answer_minutes": "120",
        "retry_failed_minutes": "60",
        "calls_per_second": "1,5",
        "max_concurrent": "20",
        "default_language": "sv",
        "cross_campaign_daily_cap": "1",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def test_bad_fields_are_named_beside_each_field_and_in_the_summary(
    web_app: Flask, users: Users, orgs: Orgs
) -> None:
    client = browser(web_app, users.a.manager)
    path = url(web_app, "campaigns.new", org_id=orgs.a.id)
    response = post(
        client,
        path,
        _form(name="  ", flow="", windows="mon-fri 25-26", max_attempts="0",
              calls_per_second="nopeasti", caller_id="soita meille", retry_busy_minutes="x"),
    )  # fmt: skip
    assert response.status_code == 400
    page = body(response)
    assert "There is a problem" in page
    assert error_of(page, "name") == "Enter a name for the campaign."
    assert error_of(page, "flow") == "Choose a call flow from the list."
    windows = error_of(page, "windows")
    assert windows.startswith("The calling windows cannot be read:") and "'25'" in windows
    assert error_of(page, "max_attempts") == "Enter a whole number of 1 or more."
    assert error_of(page, "calls_per_second") == "Enter a number, such as 2 or 0.5."
    assert error_of(page, "retry_busy_minutes") == "Enter a whole number, such as 3."
    assert "not a phone number" in error_of(page, "caller_id")
    assert 'id="windows" name="windows" type="text" value="mon-fri 25-26"' in page
    assert page.count('aria-invalid="true"') == 7
    assert "Calling windows: The calling windows cannot be read" in page  # the summary


def test_a_flow_of_another_organisation_cannot_be_chosen(
    web_app: Flask, services: Services, users: Users, orgs: Orgs
) -> None:
    theirs = add_flow(services, orgs.b.id)
    ours = add_flow(services, orgs.a.id)
    client = browser(web_app, users.a.manager)
    path = url(web_app, "campaigns.new", org_id=orgs.a.id)
    form_page = body(client.get(path))
    assert f'value="flow:{ours}"' in form_page and f"flow:{theirs}" not in form_page
    assert 'value="example:strategy-survey.yaml"' in form_page
    refused = post(client, path, _form(flow=f"flow:{theirs}", confirm="1"))
    assert refused.status_code == 400
    assert error_of(body(refused), "flow") == "Choose a call flow from the list."
    # A file on the server is no flow either (only the command line names files).
    refused = post(client, path, _form(flow="/etc/passwd", confirm="1"))
    assert error_of(body(refused), "flow") == "Choose a call flow from the list."


def test_create_checks_the_answers_warns_of_a_foreign_caller_id_then_creates(
    web_app: Flask, services: Services, users: Users, orgs: Orgs
) -> None:
    flow_id = add_flow(services, orgs.a.id)
    client = browser(web_app, users.a.manager)
    path = url(web_app, "campaigns.new", org_id=orgs.a.id)
    form = _form(flow=f"flow:{flow_id}", caller_id="+7 495 123 4567")
    check = post(client, path, form)
    assert check.status_code == 200
    page = body(check)
    assert "Check the campaign before creating it" in page and "looks foreign" in page
    assert "Russia" in page and form["name"] in page
    # "Change" brings the form back as it was.
    again = post(client, path, {**form, "change": "1"})
    assert again.status_code == 200
    assert f'value="{form["name"]}"' in body(again) and "+7 495 123 4567" in body(again)
    created = post(client, path, {**form, "confirm": "1"})
    assert created.status_code == 303
    campaign_id = created.headers["Location"].rstrip("/").rsplit("/", 1)[1]
    row = campaign_row(services, campaign_id)
    assert row.org_id == orgs.a.id and row.flow_path == f"flow:{flow_id}"
    assert row.caller_id == "+74951234567" and row.calls_per_second == 1.5
    assert row.windows == "mon-fri 10-20, sat 10-14" and row.default_language.value == "sv"
    assert not row.allow_holidays and row.cross_campaign_daily_cap
    [entry] = audit_of(services, campaign_id)
    assert (entry.action, entry.actor, entry.org_id) == (
        "campaign.create",
        users.a.manager.email,
        orgs.a.id,
    )
    shown = body(client.get(created.headers["Location"]))
    assert "created" in shown and "looks foreign" in shown and row.name in shown


def test_what_may_change_in_which_state(
    web_app: Flask, services: Services, users: Users, orgs: Orgs, tmp_path: Path
) -> None:
    manager = users.a.manager.actor()
    other_flow = add_flow(services, orgs.a.id)
    campaign = make_campaign(services, manager, contacts=CONTACTS_CSV, tmp=tmp_path)
    client = browser(web_app, users.a.manager)
    path = url(web_app, "campaigns.edit", org_id=orgs.a.id, campaign_id=campaign)
    # A draft: everything, the flow too.
    assert '<select id="flow"' in body(client.get(path))
    name = unique("Uusi nimi")
    saved = post(client, path, _form(name=name, flow=f"flow:{other_flow}", max_attempts="5"))
    assert saved.status_code == 303
    row = campaign_row(services, campaign)
    assert (row.name, row.flow_path, row.max_attempts) == (name, f"flow:{other_flow}", 5)
    changed = audit_of(services, campaign)[-1]
    assert changed.action == "campaign.update" and '"max_attempts": [3, 5]' in changed.detail
    # Running: nothing (pause it first).
    services.campaigns.start(manager, campaign)
    assert "Pause it before changing its settings" in body(client.get(path))
    refused = post(client, path, _form(name=name, max_attempts="7"))
    assert refused.status_code == 303
    shown = body(client.get(refused.headers["Location"]))
    assert "Pause the campaign before changing its settings." in shown
    assert campaign_row(services, campaign).max_attempts == 5
    # Paused: all but the flow, which was frozen at the start.
    services.campaigns.pause(manager, campaign)
    page = body(client.get(path))
    assert '<select id="flow"' not in page and "frozen" in page
    first_flow = add_flow(services, orgs.a.id)
    saved = post(client, path, _form(name=name, flow=f"flow:{first_flow}", max_attempts="4"))
    assert saved.status_code == 303
    row = campaign_row(services, campaign)
    assert row.max_attempts == 4 and row.flow_path == f"flow:{other_flow}"
    # Stopped: nothing.
    services.campaigns.stop(manager, campaign)
    assert "A stopped campaign cannot change" in body(client.get(path))


def test_upload_lists_each_rejected_row_with_its_line(
    web_app: Flask, services: Services, users: Users, orgs: Orgs, tmp_path: Path
) -> None:
    campaign = make_campaign(services, users.a.manager.actor())
    client = browser(web_app, users.a.manager)
    path = url(web_app, "campaigns.contacts", org_id=orgs.a.id, campaign_id=campaign)
    response = post(
        client, path, {"file": (io.BytesIO(CONTACTS_CSV), "asukkaat.csv")},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert response.status_code == 200
    page = body(response)
    assert "Accepted: 2" in page and "Duplicates (not added again): 1" in page
    assert "Rejected rows: 2" in page and "The campaign has 2 contacts." in page
    assert (
        '<td class="num">4</td><td>phone number &#39;not a number&#39;: not a phone number' in page
    )
    assert '<td class="num">6</td>' in page
    entry = audit_of(services, campaign)[-1]
    assert entry.action == "campaign.import_contacts"
    assert '"accepted": 2' in entry.detail and '"duplicates": 1' in entry.detail
    assert '"rejected": 2' in entry.detail and '"file": "asukkaat.csv"' in entry.detail
    # An XLSX workbook, as Excel saves it.
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["puhelin", "kieli"])
    sheet.append(["050 765 4321", "sv"])
    sheet.append(["12", "fi"])
    data = io.BytesIO()
    book.save(data)
    data.seek(0)
    response = post(
        client, path, {"file": (data, "Äänestäjät 2027.xlsx")}, content_type="multipart/form-data"
    )
    page = body(response)
    assert "Accepted: 1" in page and '<td class="num">3</td>' in page
    assert "The campaign has 3 contacts." in page
    # No file, and a file that is no contact list: said beside the field.
    missing = post(client, path, {}, content_type="multipart/form-data")
    assert missing.status_code == 400
    assert error_of(body(missing), "file") == "Choose a CSV or XLSX file."
    old_excel = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100
    broken = post(
        client, path, {"file": (io.BytesIO(old_excel), "vanha.xls")},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert broken.status_code == 400
    said = error_of(body(broken), "file")
    assert said.startswith("The file cannot be read as a contact list: vanha.xls:")
    assert "ivr-upload" not in said  # the server's temporary path is not shown


def test_start_pause_resume_stop_change_the_status_in_the_audit_log(
    web_app: Flask, services: Services, users: Users, orgs: Orgs, tmp_path: Path
) -> None:
    campaign = make_campaign(services, users.a.manager.actor())
    client = browser(web_app, users.a.admin)

    def act(action: str) -> str:
        done = post(client, url(web_app, f"campaigns.{action}", org_id=orgs.a.id,
                                campaign_id=campaign))  # fmt: skip
        assert done.status_code == 303
        return body(client.get(done.headers["Location"]))

    assert "no contacts yet" in act("start")  # refused: upload contacts first
    assert campaign_row(services, campaign).status is CampaignStatus.DRAFT
    path = tmp_path / "c.csv"
    path.write_bytes(CONTACTS_CSV)
    services.campaigns.import_contacts(users.a.manager.actor(), campaign, path)
    assert "The campaign has started." in act("start")
    assert campaign_row(services, campaign).status is CampaignStatus.RUNNING
    assert "The campaign is paused." in act("pause")
    assert campaign_row(services, campaign).status is CampaignStatus.PAUSED
    assert "The campaign is running again." in act("resume")
    assert campaign_row(services, campaign).status is CampaignStatus.RUNNING
    confirm = client.get(url(web_app, "campaigns.stop", org_id=orgs.a.id, campaign_id=campaign))
    assert confirm.status_code == 200 and "Yes, stop the campaign" in body(confirm)
    assert campaign_row(services, campaign).status is CampaignStatus.RUNNING  # asked only
    assert "The campaign has been stopped." in act("stop")
    assert campaign_row(services, campaign).status is CampaignStatus.STOPPED
    assert "A stopped campaign cannot change." in act("start")
    entries = audit_of(services, campaign)
    assert [e.action for e in entries] == [
        "campaign.create",
        "campaign.import_contacts",
        "campaign.start",
        "campaign.pause",
        "campaign.resume",
        "campaign.stop",
    ]
    assert {e.actor for e in entries[2:]} == {users.a.admin.email}
    assert all(e.org_id == orgs.a.id for e in entries)


def test_the_campaign_page_shows_the_settings_and_only_a_manager_the_actions(
    web_app: Flask, services: Services, users: Users, orgs: Orgs
) -> None:
    settings = CampaignSettings(caller_id="0600 12345", windows="mon-fri 9-17")
    campaign = make_campaign(services, users.a.manager.actor(), settings=settings)
    path = url(web_app, "campaigns.show", org_id=orgs.a.id, campaign_id=campaign)
    page = body(browser(web_app, users.a.reviewer).get(path))
    assert "mon-fri 9-17" in page and "premium-rate" in page  # the caller-ID warning
    assert 'id="actions-title"' not in page and "/contacts" not in page and "/edit" not in page
    page = body(browser(web_app, users.a.manager).get(path))
    assert 'id="actions-title"' in page and "/contacts" in page and "/edit" in page
