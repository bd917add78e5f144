"""Helpers of the campaign page tests (test_campaign_*.py): flows in the database,
campaigns made through the service, a logged-in English-speaking browser, the audit log."""

from __future__ import annotations

import html
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Flask, url_for
from flask.testing import FlaskClient

from ivr.accounts.audit import Actor
from ivr.campaigns.admin import CampaignSettings
from ivr.services import Services
from ivr.store.models import Campaign
from ivr.store.org_models import AuditEntry, FlowDoc
from tests.web.conftest import BASE_URL, Person, login, unique

FLOW_YAML = (Path(__file__).parents[1] / "e2e" / "flows" / "mini-survey.yaml").read_text()
HELSINKI = ZoneInfo("Europe/Helsinki")
MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=HELSINKI)
SATURDAY_NOON = datetime(2026, 11, 28, 12, 0, tzinfo=HELSINKI)
# The command-line test's list: two good rows, a duplicate, two bad ones (lines 4 and 6).
CONTACTS_CSV = (
    "Puhelin;Kieli;Syntymävuosi;Postinumero;Kylä\n"
    "040 123 4567;fi;1950;23500;Kalanti\n"
    "+358 40 123 4567;sv;1950;23500;Kalanti\n"
    "not a number;fi;1980;23500;Pyhämaa\n"
    "0501234567;ruotsi;1999;23501;Pyhämaa\n"
    ";fi;1970;23500;\n"
).encode()


def browser(app: Flask, member: Person | None = None) -> FlaskClient:
    """A browser (English, HTTPS, same-site Referer), logged in as ``member`` if given."""
    client = app.test_client()
    client.environ_base.update(
        {"HTTP_REFERER": f"{BASE_URL}/", "HTTP_ACCEPT_LANGUAGE": "en", "wsgi.url_scheme": "https"}
    )
    if member is not None:
        response = login(client, member.email, member.password)
        assert response.status_code == 302, f"{member.email} could not log in"
    return client


def url(app: Flask, endpoint: str, **values: str) -> str:
    with app.test_request_context():
        return url_for(endpoint, **values)


def body(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined,no-any-return]


def add_flow(services: Services, org_id: str, yaml: str = FLOW_YAML) -> str:
    """A flow kept in the database for ``org_id``; returns its id."""
    with services.factory.begin() as s:
        doc = FlowDoc(org_id=org_id, name=unique("Kysely"), yaml=yaml, updated_by="test")
        s.add(doc)
        s.flush()
        return doc.id


def make_campaign(
    services: Services,
    who: Actor,
    *,
    flow_id: str | None = None,
    contacts: bytes | None = None,
    tmp: Path | None = None,
    settings: CampaignSettings | None = None,
) -> str:
    """A campaign of ``who``'s organisation through the service (a draft, with contacts
    when given); returns its id."""
    flow = f"flow:{flow_id or add_flow(services, str(who.org_id))}"
    made = services.campaigns.create(
        who, unique("Kampanja"), flow, settings or CampaignSettings(caller_id="029 123 4567")
    )
    if contacts is not None:
        assert tmp is not None
        path = tmp / f"{made.id}.csv"
        path.write_bytes(contacts)
        services.campaigns.import_contacts(who, made.id, path)
    return made.id


def campaign_row(services: Services, campaign_id: str) -> Campaign:
    with services.factory() as s:
        found = s.get(Campaign, campaign_id)
        assert found is not None
        s.expunge(found)
        return found


def audit_of(services: Services, campaign_id: str) -> list[AuditEntry]:
    with services.factory() as s:
        query = sa.select(AuditEntry).where(
            AuditEntry.target_type == "campaign", AuditEntry.target_id == campaign_id
        )
        return list(s.scalars(query.order_by(AuditEntry.id)))


def error_of(page: str, field: str) -> str:
    """The error shown beside ``field`` (and linked from the summary at the top)."""
    assert f'href="#{field}"' in page, f"no summary link to {field}"
    found = re.search(rf'<p class="error-message" id="{field}-error">([^<]*)</p>', page)
    assert found, f"no error beside {field}"
    return html.unescape(found.group(1))
