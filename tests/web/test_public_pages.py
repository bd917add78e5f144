"""The public campaign page (no login) and its editor, on SQLite and PostgreSQL: a manager
publishes it, edits it and withdraws it (audited); anyone reads it at its unguessable
address — the caller number, the questions in Finnish and Swedish, the opt-out key, the
data-protection notice — and never anything about a resident; the editor is a manager's,
of their own organisation only. And the campaign's cost settings on its settings form."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from ivr.campaigns.public_info import questions
from ivr.flows.loader import parse_flow
from ivr.services import Services
from tests.support.results import FLOW_YAML, Seeded, seed_results
from tests.web.campaign_support import (
    MONDAY_NOON,
    audit_of,
    body,
    browser,
    campaign_row,
    error_of,
    make_campaign,
    url,
)
from tests.web.conftest import Orgs, Users, post, unique

FORM = {
    "enabled": "1",
    "purpose_fi": "Alfalan kunta kysyy asukkailta kunnan palveluista.",
    "purpose_sv": "Alfala kommun frågar invånarna om kommunens tjänster.",
    "period_start": "2027-03-01",
    "period_end": "2027-03-31",
    "inbound_number": "029 123 4500",
    "contact": "kirjaamo@alfala.example, 029 123 4000",
    "privacy_fi": "Vastaukset käsitellään luottamuksellisesti.\n\nTietoja säilytetään vuoden.",
    "privacy_sv": "Svaren behandlas konfidentiellt.",
    "controller": "Alfalan kunta, PL 1, 00100 Alfala, tietosuoja@alfala.example",
}


@pytest.fixture(autouse=True)
def _monday(clock: object) -> None:
    clock.set(MONDAY_NOON)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def seeded(services: Services, users: Users, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """A completed campaign of A with residents, calls, answers and transcripts."""
    tmp: Path = tmp_path_factory.mktemp("public")
    return seed_results(services, users.a.manager.actor(), tmp, name=unique("Julkinen"))


def _edit_path(web_app: Flask, org_id: str, campaign_id: str) -> str:
    return url(web_app, "public.edit", org_id=org_id, campaign_id=campaign_id)


def _address(page: str) -> str:
    found = re.search(r'<a href="https://localhost(/p/[^"]+)" data-public-address>', page)
    assert found, "no public address on the editor"
    return found.group(1)


def _resident_data(seeded: Seeded, services: Services) -> list[str]:
    """What the seed holds about residents, in every form a page could show it."""
    numbers = [f"+35840{1000000 + n:07d}" for n in range(len(seeded.plans))]
    found = []
    for number in numbers:
        national = "0" + number.removeprefix("+358")
        found += [number, national, national[:3] + " " + national[3:], number[4:]]
    found += sorted({p.area for p in seeded.plans})
    found += [" ".join(p.words) for p in seeded.plans if p.words]
    found += [f"{p.age_group}" for p in seeded.plans if p.age_group == "18-29"]
    return found


def test_published_edited_read_by_anyone_and_withdrawn(
    web_app: Flask, services: Services, users: Users, orgs: Orgs, seeded: Seeded
) -> None:
    manager = browser(web_app, users.a.manager)
    path = _edit_path(web_app, orgs.a.id, seeded.campaign_id)
    assert "The page is not published." in body(manager.get(path))
    saved = post(manager, path, FORM)
    assert saved.status_code == 303
    editor = body(manager.get(saved.headers["Location"]))
    assert "The public page is published." in editor
    address = _address(editor)
    slug = address.removeprefix("/p/")
    assert len(slug) >= 22 and campaign_row(services, seeded.campaign_id).public_slug == slug
    entry = audit_of(services, seeded.campaign_id)[-1]
    assert (entry.action, entry.actor) == ("campaign.public_page", users.a.manager.email)
    detail = json.loads(entry.detail)
    assert detail["slug"] == slug and detail["changed"]["enabled"] == [False, True]

    anyone = web_app.test_client()
    response = anyone.get(address, base_url="https://localhost")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=300"
    page = html.unescape(body(response))
    assert '<html lang="fi">' in page  # the campaign's default language
    assert f'<link rel="canonical" href="https://localhost{address}">' in page
    assert orgs.a.name in page and FORM["purpose_fi"] in page
    assert "029 123 4567" in page and 'href="tel:+358291234567"' in page  # the caller ID
    assert "029 123 4500" in page  # calling in
    assert "1.3.2027" in page and "31.3.2027" in page
    assert "Joka päivä klo 0–24" in page  # the seed's windows, in Finnish words
    flow = parse_flow(FLOW_YAML)
    asked = questions(flow)
    assert asked and all(q.text["fi"] in page and q.text["sv"] in page for q in asked)
    assert "Paina puhelun aikana 0." in page  # the flow's opt-out key, in Finnish
    assert FORM["contact"] in page and FORM["controller"] in page
    assert "Tietoja säilytetään vuoden." in page and "<script" not in page
    for secret in _resident_data(seeded, services):
        assert secret not in page, f"the public page shows resident data: {secret!r}"

    swedish = html.unescape(body(anyone.get(f"{address}?lang=sv", base_url="https://localhost")))
    assert '<html lang="sv">' in swedish and FORM["purpose_sv"] in swedish
    assert "Måndag" not in swedish and "Varje dag kl. 0–24" in swedish
    assert f'href="https://localhost{address}?lang=sv"' in swedish  # its own canonical
    english = html.unescape(body(anyone.get(f"{address}?lang=en", base_url="https://localhost")))
    assert FORM["purpose_fi"] in english  # no English text: the default language's

    # Edited: the page says the new text.
    changed = {**FORM, "purpose_fi": "Uusi tarkoitus: kysymme liikenteestä."}
    assert post(manager, path, changed).status_code == 303
    assert "Uusi tarkoitus" in body(anyone.get(address, base_url="https://localhost"))

    # Withdrawn: the address answers 404; published again, the same address.
    assert post(manager, path, {**changed, "enabled": ""}).status_code == 303
    gone = anyone.get(address, base_url="https://localhost")
    assert gone.status_code == 404 and "public" not in gone.headers.get("Cache-Control", "")
    withdrawn = json.loads(audit_of(services, seeded.campaign_id)[-1].detail)
    assert withdrawn["changed"]["enabled"] == [True, False]
    assert post(manager, path, changed).status_code == 303
    assert _address(body(manager.get(path))) == address
    assert anyone.get(address, base_url="https://localhost").status_code == 200
    assert anyone.get("/p/" + "x" * 22, base_url="https://localhost").status_code == 404


def test_a_page_to_publish_names_each_missing_field(
    web_app: Flask, services: Services, users: Users, orgs: Orgs
) -> None:
    campaign = make_campaign(services, users.a.manager.actor())
    manager = browser(web_app, users.a.manager)
    path = _edit_path(web_app, orgs.a.id, campaign)
    bad = {**FORM, "purpose_fi": "", "period_end": "2027-02-01", "inbound_number": "12ab"}
    response = post(manager, path, bad)
    assert response.status_code == 400
    page = body(response)
    assert "There is a problem" in page
    assert "A published page needs this" in error_of(page, "purpose_fi")
    assert "before the start" in error_of(page, "period_end")
    assert "not a phone number" in error_of(page, "inbound_number")
    assert FORM["privacy_fi"].split("\n")[0] in page  # what was typed is shown again
    row = campaign_row(services, campaign)
    assert row.public_slug is None and json.loads(row.public_info or "{}").get("enabled") is None
    assert not [e for e in audit_of(services, campaign) if e.action == "campaign.public_page"]
    # Not published, a draft may be saved half-written (and gets no address yet).
    draft = post(manager, path, {"purpose_fi": "Luonnos"})
    assert draft.status_code == 303
    assert campaign_row(services, campaign).public_slug is None
    assert "Luonnos" in body(manager.get(path))


def test_only_the_organisations_managers_edit_it(
    web_app: Flask, services: Services, users: Users, orgs: Orgs
) -> None:
    campaign = make_campaign(services, users.a.manager.actor())
    own = _edit_path(web_app, orgs.a.id, campaign)
    for role in ("manager", "admin"):
        assert browser(web_app, users.a[role]).get(own).status_code == 200
    reviewer = browser(web_app, users.a.reviewer)
    assert reviewer.get(own).status_code == 403
    assert post(reviewer, own, FORM).status_code == 403
    other = browser(web_app, users.b.manager)
    assert other.get(own).status_code == 404
    # B's own organisation in the address, A's campaign: not found either.
    theirs = _edit_path(web_app, orgs.b.id, campaign)
    assert other.get(theirs).status_code == 404
    assert post(other, theirs, FORM).status_code == 404
    anonymous = web_app.test_client()
    assert anonymous.get(own, base_url="https://localhost").status_code == 302
    assert campaign_row(services, campaign).public_slug is None


def _settings_form(**changes: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "name": unique("Hinta"),
        "flow": "example:strategy-survey.yaml",
        "caller_id": "029 123 4567",
        "windows": "mon-fri 10-20",
        "timezone": "Europe/Helsinki",
        "max_attempts": "3",
        "retry_busy_minutes": "30",
        "retry_no_answer_minutes": "120",
        "retry_failed_minutes": "60",
        "calls_per_second": "2",
        "max_concurrent": "20",
        "default_language": "fi",
        "price_per_minute": "0,0125",
        "billing_rule": "30/6",
    }
    form.update(changes)
    return form


def test_price_and_billing_rule_on_the_settings_form(
    web_app: Flask, services: Services, users: Users, orgs: Orgs
) -> None:
    campaign = make_campaign(services, users.a.manager.actor())
    row = campaign_row(services, campaign)
    assert (row.price_per_minute, row.billing_rule) == (None, "60/60")
    manager = browser(web_app, users.a.manager)
    path = url(web_app, "campaigns.edit", org_id=orgs.a.id, campaign_id=campaign)
    assert 'id="price_per_minute"' in body(manager.get(path))
    bad = post(manager, path, _settings_form(price_per_minute="halpa", billing_rule="per minute"))
    assert bad.status_code == 400
    page = body(bad)
    assert "Enter a number" in error_of(page, "price_per_minute")
    assert "MIN/STEP" in error_of(page, "billing_rule")
    negative = body(post(manager, path, _settings_form(price_per_minute="-0,01")))
    assert "0 or more" in error_of(negative, "price_per_minute")
    assert campaign_row(services, campaign).price_per_minute is None

    saved = post(manager, path, _settings_form(name=row.name))
    assert saved.status_code == 303
    row = campaign_row(services, campaign)
    assert (row.price_per_minute, row.billing_rule) == (0.0125, "30/6")
    entry = audit_of(services, campaign)[-1]
    assert entry.action == "campaign.update"
    changed = json.loads(entry.detail)["changed"]
    assert changed["price_per_minute"] == [None, 0.0125]
    assert changed["billing_rule"] == ["60/60", "30/6"]
    shown = body(
        manager.get(url(web_app, "campaigns.show", org_id=orgs.a.id, campaign_id=campaign))
    )
    assert "0.0125 €" in shown and "30/6" in shown  # English: a decimal point
    again = body(manager.get(path))
    assert 'value="0.0125"' in again and 'value="30/6"' in again


def test_the_command_line_sets_the_price_and_the_billing_rule(
    services: Services, orgs: Orgs, capsys: pytest.CaptureFixture[str]
) -> None:
    from ivr.accounts.audit import Actor
    from ivr.cli import _campaign_action, build_parser

    parser = build_parser()
    name = unique("Komentorivi")
    argv = ["campaign", "create", name, "--flow", "examples/flows/strategy-survey.yaml",
            "--caller-id", "029 123 4567", "--price-per-minute", "0,0125",
            "--billing-rule", "1/1"]  # fmt: skip
    args = parser.parse_args(argv)
    assert _campaign_action(args, services.campaigns, Actor.cli(orgs.a.id)) == 0
    row = next(r for r in services.campaigns.list(Actor.cli(orgs.a.id)) if r["name"] == name)
    saved = campaign_row(services, row["id"])
    assert (saved.price_per_minute, saved.billing_rule) == (0.0125, "1/1")
    with pytest.raises(SystemExit):
        parser.parse_args([*argv[:-4], "--price-per-minute", "ilmainen"])
    assert "not a price" in capsys.readouterr().err
    bad = parser.parse_args([*argv[:2], unique("Huono"), *argv[3:-1], "per minute"])
    from ivr.campaigns.errors import CampaignInvalid

    with pytest.raises(CampaignInvalid) as caught:
        _campaign_action(bad, services.campaigns, Actor.cli(orgs.a.id))
    assert "billing_rule" in caught.value.by_field()
