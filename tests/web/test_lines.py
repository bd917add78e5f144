"""The inbound lines pages (``/o/<org>/lines/``) through Flask's test client: who may read
and change them, what is refused (each problem beside its field), that another
organisation's line is not found, and the audit log of every change."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from ivr.accounts.audit import Actor, Forbidden
from ivr.config import EXAMPLE_FLOWS
from ivr.store.org_models import AuditEntry, FlowDoc, InboundLine, Role
from ivr.telephony.line_admin import LineChange, LineInvalid
from tests.web.conftest import Site, post, text

SURVEY = (EXAMPLE_FLOWS / "survey-call-in.yaml").read_text(encoding="utf-8")  # fi, sv
HOUSING = (EXAMPLE_FLOWS / "housing-line.yaml").read_text(encoding="utf-8")
BROKEN = SURVEY.replace("start: ", "start: no-such-node-", 1)


def _flow(site: Site, org: str, name: str, yaml_text: str) -> str:
    """A flow of the organisation's ``flows`` table (as the flow pages store one)."""
    with site.services.factory.begin() as s:
        doc = FlowDoc(org_id=site.orgs[org], name=name, yaml=yaml_text, updated_by="test")
        s.add(doc)
        s.flush()
        return doc.id


def _lines(site: Site, org: str = "A") -> str:
    return f"/o/{site.orgs[org]}/lines"


def _english(client: FlaskClient) -> FlaskClient:
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"  # the users have chosen no language
    return client


def _admin_of(site: Site, org: str) -> Actor:
    who = site.person(org, "admin")
    return Actor(who.email, who.user_id, who.org_id, Role.ADMIN)


def _line_rows(site: Site) -> list[InboundLine]:
    with site.services.factory() as s:
        return list(s.scalars(sa.select(InboundLine).order_by(InboundLine.number)))


def _audit(site: Site, action: str) -> list[AuditEntry]:
    with site.services.factory() as s:
        return list(
            s.scalars(
                sa.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
        )


def _error_of(body: str, field: str) -> str:
    """The error message shown beside ``field`` (and linked from the summary)."""
    assert f'href="#{field}"' in body, f"no summary link to {field}"
    found = re.search(rf'<p class="error-message" id="{field}-error">([^<]*)</p>', body)
    assert found, f"no error beside {field}"
    return found.group(1)


# --------------------------------------------------------------------------- roles
def test_reviewers_and_managers_read_the_lines_but_only_an_admin_changes_them(
    site: Site,
) -> None:
    flow_id = _flow(site, "A", "kysely", SURVEY)
    line = site.services.lines.create(_admin_of(site, "A"), LineChange("0201234567", flow_id, "fi"))
    for role in ("reviewer", "manager"):
        browser = _english(site.logged_in("A", role))
        page = browser.get(f"{_lines(site)}/")
        assert page.status_code == 200
        body = text(page)
        assert "0201234567" in body and "kysely" in body and "Finnish" in body
        assert "Add a line" not in body and "/edit" not in body
        assert browser.get(f"{_lines(site)}/new").status_code == 403
        assert (
            post(browser, f"{_lines(site)}/new", {"number": "0209", "flow": flow_id}).status_code
            == 403
        )
        assert browser.get(f"{_lines(site)}/{line.id}/edit").status_code == 403
        assert post(browser, f"{_lines(site)}/{line.id}/delete").status_code == 403
    assert [r.number for r in _line_rows(site)] == ["0201234567"]
    admin = _english(site.logged_in("A", "admin"))
    body = text(admin.get(f"{_lines(site)}/"))
    assert "Add a line" in body and f"{line.id}/edit" in body
    assert admin.get(f"{_lines(site)}/new").status_code == 200
    # Nobody logged in: to the login page.
    anonymous = site.client().get(f"{_lines(site)}/")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_the_service_checks_the_role_itself(site: Site) -> None:
    flow_id = _flow(site, "A", "kysely", SURVEY)
    reviewer = site.person("A", "reviewer")
    actor = Actor(reviewer.email, reviewer.user_id, reviewer.org_id, Role.REVIEWER)
    with pytest.raises(Forbidden):
        site.services.lines.create(actor, LineChange("0201234567", flow_id))
    assert site.services.lines.list(actor) == []
    # The command line acts as an admin of the organisation it names.
    made = site.services.lines.create(Actor.cli(site.orgs["A"]), LineChange("0201", flow_id))
    assert made.number == "0201" and made.enabled and not made.anonymous


# --------------------------------------------------------------------------- changes
def test_an_admin_adds_edits_and_deletes_a_line_each_in_the_audit_log(site: Site) -> None:
    survey = _flow(site, "A", "kysely", SURVEY)
    housing = _flow(site, "A", "asuminen", HOUSING)
    site.clock.set(datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    admin = _english(site.logged_in("A", "admin"))
    form = admin.get(f"{_lines(site)}/new")
    assert 'name="number"' in text(form) and "kysely" in text(form) and "asuminen" in text(form)

    added = post(
        admin,
        f"{_lines(site)}/new",
        {"number": " 020 123 4567 ", "flow": survey, "language": "sv", "enabled": "1"},
    )
    assert added.status_code == 302, text(added)
    assert added.headers["Location"].endswith(f"{_lines(site)}/?done=added")
    (row,) = _line_rows(site)
    assert (row.number, row.flow_id, row.language, row.anonymous, row.enabled) == (
        "0201234567", survey, "sv", False, True
    )  # fmt: skip
    assert row.org_id == site.orgs["A"]
    listed = text(admin.get(f"{_lines(site)}/?done=added"))
    assert "The line has been added" in listed and "30 Nov 2026, 10:00" in listed  # Helsinki

    (created,) = _audit(site, "line.create")
    assert created.actor == site.person("A", "admin").email and created.org_id == site.orgs["A"]
    assert created.target_type == "line" and created.target_id == row.id
    detail = json.loads(created.detail)
    assert detail["number"] == "0201234567" and detail["flow"] == "kysely"
    assert detail["language"] == "sv" and detail["enabled"] is True

    edit = admin.get(f"{_lines(site)}/{row.id}/edit")
    assert edit.status_code == 200 and 'value="0201234567"' in text(edit)
    saved = post(
        admin,
        f"{_lines(site)}/{row.id}/edit",
        {"number": "0201234567", "flow": housing, "language": "", "anonymous": "1"},
    )  # "enabled" unticked: out of use
    assert saved.status_code == 302, text(saved)
    (row,) = _line_rows(site)
    assert (row.flow_id, row.language, row.anonymous, row.enabled) == (housing, "", True, False)
    (updated,) = _audit(site, "line.update")
    changed = json.loads(updated.detail)["changed"]
    assert changed == {
        "flow_id": [survey, housing],
        "language": ["sv", ""],
        "anonymous": [False, True],
        "enabled": [True, False],
    }
    listed = text(admin.get(f"{_lines(site)}/"))
    assert "asuminen" in listed and "Not stored" in listed and "Off" in listed

    # Saving without a change writes no audit entry.
    post(
        admin,
        f"{_lines(site)}/{row.id}/edit",
        {"number": "0201234567", "flow": housing, "language": "", "anonymous": "1"},
    )
    assert len(_audit(site, "line.update")) == 1

    confirm = admin.get(f"{_lines(site)}/{row.id}/delete")
    assert confirm.status_code == 200
    assert "Delete the line 0201234567?" in text(confirm) and 'method="post"' in text(confirm)
    assert _line_rows(site)  # asking is not deleting
    deleted = post(admin, f"{_lines(site)}/{row.id}/delete")
    assert deleted.status_code == 302
    assert deleted.headers["Location"].endswith("?done=deleted")
    assert _line_rows(site) == []
    (gone,) = _audit(site, "line.delete")
    assert gone.target_id == row.id and json.loads(gone.detail)["number"] == "0201234567"


def test_a_form_without_a_csrf_token_is_refused(site: Site) -> None:
    flow_id = _flow(site, "A", "kysely", SURVEY)
    admin = site.logged_in("A", "admin")
    refused = admin.post(
        f"{_lines(site)}/new",
        data={"number": "0201234567", "flow": flow_id},
        base_url="https://localhost",
        headers={"Referer": f"https://localhost{_lines(site)}/new"},
    )
    assert refused.status_code == 400
    assert _line_rows(site) == []


# --------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("12a4", "digits only"),
        ("1", "2 to 20 characters"),
        ("+" + "1" * 20, "2 to 20 characters"),
        ("0+201", "digits only"),
        ("", "digits only"),
    ],
)
def test_a_malformed_number_is_refused_beside_the_field(
    site: Site, number: str, message: str
) -> None:
    flow_id = _flow(site, "A", "kysely", SURVEY)
    admin = _english(site.logged_in("A", "admin"))
    page = post(admin, f"{_lines(site)}/new", {"number": number, "flow": flow_id})
    assert page.status_code == 400
    assert message in _error_of(text(page), "number")
    assert 'aria-invalid="true"' in text(page)
    assert _line_rows(site) == [] and _audit(site, "line.create") == []


def test_a_number_in_use_is_refused_without_saying_whose(site: Site) -> None:
    theirs = _flow(site, "B", "betala-kysely", SURVEY)
    site.services.lines.create(_admin_of(site, "B"), LineChange("0209999999", theirs))
    ours = _flow(site, "A", "kysely", SURVEY)
    mine = site.services.lines.create(_admin_of(site, "A"), LineChange("0201111111", ours))
    admin = _english(site.logged_in("A", "admin"))
    # "100" is a line of the config file's [lines]; "0209999999" organisation B's line.
    for number in ("100", "0209999999", "020 999 9999"):
        page = post(admin, f"{_lines(site)}/new", {"number": number, "flow": ours})
        assert page.status_code == 400
        body = text(page)
        assert "already in use" in _error_of(body, "number")
        assert "Betala" not in body and "betala" not in body
    # Another line of the same organisation, when editing.
    other = site.services.lines.create(_admin_of(site, "A"), LineChange("0202222222", ours))
    page = post(admin, f"{_lines(site)}/{other.id}/edit", {"number": "0201111111", "flow": ours})
    assert "already in use" in _error_of(text(page), "number")
    # Its own number is not "in use" by itself.
    kept = post(admin, f"{_lines(site)}/{mine.id}/edit", {"number": "0201111111", "flow": ours})
    assert kept.status_code == 302
    assert [r.number for r in _line_rows(site)] == ["0201111111", "0202222222", "0209999999"]
    with pytest.raises(LineInvalid) as refused:
        site.services.lines.create(Actor.cli(site.orgs["A"]), LineChange("100", ours))
    assert refused.value.errors["number"].code == "in_use"


def test_the_flow_must_be_the_organisations_own_and_valid(site: Site) -> None:
    theirs = _flow(site, "B", "betala-kysely", SURVEY)
    broken = _flow(site, "A", "rikki", BROKEN)
    survey = _flow(site, "A", "kysely", SURVEY)
    admin = _english(site.logged_in("A", "admin"))
    form = text(admin.get(f"{_lines(site)}/new"))
    assert "betala-kysely" not in form  # another organisation's flow is not offered
    assert "rikki (has errors)" in form
    for flow_id, message in (
        ("", "Choose a call flow"),
        (theirs, "Choose a call flow"),  # as if it did not exist
        ("no-such-flow", "Choose a call flow"),
        (broken, "has errors"),
    ):
        page = post(admin, f"{_lines(site)}/new", {"number": "0201234567", "flow": flow_id})
        assert page.status_code == 400
        assert message in _error_of(text(page), "flow")
    # A language the flow has no prompts in.
    page = post(
        admin, f"{_lines(site)}/new", {"number": "0201234567", "flow": survey, "language": "en"}
    )
    assert "no prompts in this language" in _error_of(text(page), "language")
    # Every problem at once, each beside its field; what was typed is kept.
    page = post(admin, f"{_lines(site)}/new", {"number": "abc", "flow": "", "language": "de"})
    body = text(page)
    for field in ("number", "flow", "language"):
        _error_of(body, field)
    assert 'value="abc"' in body
    assert _line_rows(site) == [] and _audit(site, "line.create") == []


def test_a_line_whose_flow_was_broken_later_is_flagged_in_the_list(site: Site) -> None:
    flow_id = _flow(site, "A", "kysely", SURVEY)
    site.services.lines.create(_admin_of(site, "A"), LineChange("0201234567", flow_id))
    with site.services.factory.begin() as s:
        doc = s.get(FlowDoc, flow_id)
        assert doc is not None
        doc.yaml = BROKEN
    body = text(_english(site.logged_in("A", "reviewer")).get(f"{_lines(site)}/"))
    assert "The call flow has errors: calls are not answered." in body


# --------------------------------------------------------------------------- tenancy
def test_another_organisations_line_is_not_found(site: Site) -> None:
    flow_id = _flow(site, "A", "kysely", SURVEY)
    line = site.services.lines.create(_admin_of(site, "A"), LineChange("0201234567", flow_id))
    b_admin = site.logged_in("B", "admin")
    # Through B's own organisation: the line is not there.
    for path in (f"{_lines(site, 'B')}/{line.id}/edit", f"{_lines(site, 'B')}/{line.id}/delete"):
        assert b_admin.get(path).status_code == 404
        assert post(b_admin, path, {"number": "0207777777", "flow": flow_id}).status_code == 404
    # Through A's address: B's admin is not a member there.
    assert b_admin.get(f"{_lines(site)}/").status_code == 404
    assert b_admin.get(f"{_lines(site)}/{line.id}/edit").status_code == 404
    assert "0201234567" not in text(b_admin.get(f"{_lines(site, 'B')}/"))
    (row,) = _line_rows(site)
    assert row.number == "0201234567" and row.flow_id == flow_id
    assert _audit(site, "line.update") == [] and _audit(site, "line.delete") == []
