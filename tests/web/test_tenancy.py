"""No organisation sees or changes another's data: every route of the app (read from
``app.url_map``, so a route added later is walked too) is requested as each role of
organisation B and as an anonymous visitor, against organisation A's campaign, contacts,
flow, prompt recording, inbound line and users; and every organisation route is requested
as each of A's own roles (the role matrix).

A route whose URL has a parameter this walker does not know fails the test, naming it:
extend ``PARAMETERS`` (and ``seed_a`` if it names a new kind of object).
"""

from __future__ import annotations

import io
import logging
import math
import struct
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import sqlalchemy as sa
from flask import url_for
from flask.testing import FlaskClient
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from ivr.accounts.audit import Actor
from ivr.campaigns.admin_checks import CampaignSettings
from ivr.store.org_models import Role
from ivr.telephony.line_admin import LineChange
from ivr.web.access import access_of
from tests.web.conftest import BASE_URL, Site, csrf_token, login

# Organisation A's data, each piece findable in a page that leaks it.
CAMPAIGN = "Alfala-salakysely-7Q"
FLOW_KEY = "alfala-salavirta"
FLOW_NAME = "Alfala-salavirta-9K"
PROMPT_TEXT = "Alfalan-salakysymys"
PHONES = ("+358401110001", "+358401110002")
LINE = "0911100099"
FLOW_YAML = f"""\
id: {FLOW_KEY}
name: {FLOW_NAME}
version: "1"
languages: [fi, sv]
default_language: fi
start: q1
fallback: thanks
keys: {{repeat: "*", switch_language: "", opt_out: ""}}
nodes:
  q1:
    kind: choice
    prompt: {{fi: "{PROMPT_TEXT}? Kyllä 1, ei 2.", sv: "Bra dag? Ja 1, nej 2."}}
    options:
      - {{key: "1", value: "yes"}}
      - {{key: "2", value: "no"}}
    next: thanks
  thanks:
    kind: end
    prompt: {{fi: Kiitos., sv: Tack.}}
"""

# Requests a reviewer may POST (none yet: the review queue and callbacks will add some).
REVIEWER_MAY_POST: frozenset[str] = frozenset({"callbacks.show", "review.item"})
# Pages that answer 200 to anyone although they name an organisation's data (a public
# campaign page, say). Each must still show nothing of A's that is not public.
PUBLIC_WITH_DATA: frozenset[str] = frozenset()


@dataclass
class Seed:
    """Organisation A's objects and what must never reach B."""

    org_id: str
    campaign_id: str
    flow_id: str
    line_id: str
    user_id: str  # A's manager: a member who is not the acting admin
    prompt_path: str
    prompt_language: str
    secrets: tuple[str, ...]
    ids: frozenset[str] = field(default_factory=frozenset)
    callback_id: str = ""  # A's callback request (from a call to A's inbound line)
    transcript_id: str = ""  # A's open answer in the review queue (ivr/web/review.py)
    tag_id: str = ""  # A's tag (ivr/web/tags.py)
    schedule_id: str = ""  # A's report schedule (ivr/web/schedules.py)
    endpoint_id: str = ""  # A's webhook endpoint (ivr/web/webhooks.py)
    delivery_id: str = ""  # a delivery of an event of A's to it


# Parameter name -> its value for A's objects. Unknown parameters fail the walk.
PARAMETERS: dict[str, Callable[[Seed], str]] = {
    "org_id": lambda seed: seed.org_id,
    "campaign_id": lambda seed: seed.campaign_id,
    "flow_id": lambda seed: seed.flow_id,
    "line_id": lambda seed: seed.line_id,
    "user_id": lambda seed: seed.user_id,
    "path": lambda seed: seed.prompt_path,  # a prompt's place in the flow
    "language": lambda seed: seed.prompt_language,
    "filename": lambda seed: "css/site.css",  # static files
    "export_format": lambda seed: "csv",  # a campaign's download (ivr/web/exports.py)
    "request_id": lambda seed: seed.callback_id,  # a callback request
    "transcript_id": lambda seed: seed.transcript_id,  # an open answer to review
    "tag_id": lambda seed: seed.tag_id,  # a tag of the organisation
    "schedule_id": lambda seed: seed.schedule_id,  # a report schedule (ivr/web/schedules.py)
    "endpoint_id": lambda seed: seed.endpoint_id,  # a webhook endpoint (ivr/web/webhooks.py)
    "delivery_id": lambda seed: seed.delivery_id,  # a delivery to it
    # The REST API (ivr/api): a token, not a session; any id of A's answers 401 without one.
    "call_id": lambda seed: seed.campaign_id,
    # A public campaign page's address: A's campaign has none published, so an unknown
    # one (404 for everyone; tests/web/test_public_pages.py covers a published page).
    "public_slug": lambda seed: "ei-julkista-sivua-0000000",
}


def _wav(tmp: Path) -> Path:
    """A second of a quiet tone: a recording to upload for a prompt."""
    target = tmp / "tervehdys.wav"
    with wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(
            b"".join(
                struct.pack("<h", int(6000 * math.sin(2 * math.pi * 440 * n / 16000)))
                for n in range(16000)
            )
        )
    return target


def seed_a(site: Site, tmp: Path) -> Seed:
    """A's campaign with contacts, flow (in the flows table) with an uploaded prompt
    recording, and inbound line, made through the services as A's manager and admin."""
    services = site.services
    org_id = site.orgs["A"]
    manager = site.person("A", "manager")
    admin = site.person("A", "admin")
    as_manager = Actor(manager.email, manager.user_id, org_id, Role.MANAGER)
    as_admin = Actor(admin.email, admin.user_id, org_id, Role.ADMIN)
    flow = services.flows.create(as_manager, FLOW_YAML)
    prompts = services.flows.prompts(as_manager, flow.id)
    first = prompts[0]
    services.flows.upload_prompt(as_manager, flow.id, first.path, "fi", _wav(tmp), "t.wav")
    created = services.campaigns.create(
        as_manager, CAMPAIGN, f"flow:{flow.id}", CampaignSettings(caller_id="+358912345678")
    )
    contacts = tmp / "contacts.csv"
    contacts.write_text("phone;language\n" + "".join(f"{p};fi\n" for p in PHONES))
    report = services.campaigns.import_contacts(as_manager, created.id, contacts)
    assert report["accepted"] == len(PHONES), report
    line = services.lines.create(as_admin, LineChange(number=LINE, flow_id=flow.id))
    people = [p for (org, _), p in site.people.items() if org == "A"]
    secrets = (
        CAMPAIGN,
        FLOW_NAME,
        PROMPT_TEXT,
        LINE,
        site_org_name(site, "A"),
        *PHONES,
        *(p.removeprefix("+358") for p in PHONES),  # 401110001: any national rendering
        *(p.email for p in people),
    )
    seed = Seed(
        org_id=org_id,
        campaign_id=created.id,
        flow_id=flow.id,
        line_id=line.id,
        user_id=manager.user_id,
        prompt_path=first.path,
        prompt_language="fi",
        secrets=secrets,
    )
    seed.ids = frozenset({org_id, created.id, flow.id, line.id, *(p.user_id for p in people)})
    seed.callback_id = _a_callback_request(site)
    seed.transcript_id, seed.tag_id = _a_review_item(site, tmp)
    seed.secrets += (REVIEW_TEXT, TAG_NAME)
    seed.schedule_id = _a_schedule(site, as_manager)
    seed.secrets += (SCHEDULE_NAME, SCHEDULE_RECIPIENT)
    seed.endpoint_id, seed.delivery_id, hook_secret = _a_webhook(site, as_admin)
    seed.secrets += (WEBHOOK_URL, hook_secret)
    seed.ids = seed.ids | {seed.endpoint_id}
    return seed


SCHEDULE_NAME = "Alfala-raporttiajo-3M"
SCHEDULE_RECIPIENT = "esihenkilo-3m@alfala.example"


def _a_schedule(site: Site, actor: Actor) -> str:
    """A's monthly report schedule (no mail server: a "send now" by B must 404 first)."""
    from ivr.schedules.service import ALL, ScheduleForm

    form = ScheduleForm(SCHEDULE_NAME, "monthly", "1", "8:00", ALL, SCHEDULE_RECIPIENT, "fi")
    return site.services.schedules.create(actor, form).id


WEBHOOK_URL = "https://93.184.215.14/alfala-koukku-8W"  # a public address: no lookup


def _a_webhook(site: Site, actor: Actor) -> tuple[str, str, str]:
    """A's webhook endpoint and a delivery to it (fanned out, never sent): id, delivery
    id, the endpoint's secret."""
    from ivr.webhooks.delivery import Deliverer
    from ivr.webhooks.outbox import emit

    hooks = site.services.webhooks
    made, secret = hooks.create(actor, WEBHOOK_URL, ["campaign.finished"])
    with site.services.factory.begin() as s:
        data = {"campaign_id": "tenancy", "status": "completed"}
        emit(s, site.orgs["A"], "campaign.finished", data, at=site.clock())
    Deliverer(site.services.factory, site.clock, hooks.settings, site.services.settings.smtp
              ).fan_out()  # fmt: skip
    (delivery,) = hooks.deliveries(actor, made.id)
    return made.id, str(delivery.id), secret


def _a_callback_request(site: Site) -> str:
    """A resident's permission-to-contact request from a call to A's inbound line."""
    from ivr.store import repo

    with site.services.factory.begin() as s:
        call = repo.create_call(
            s, direction="inbound", flow_id=FLOW_KEY, flow_version="1", channel_id="tenancy-cb",
            node_name="t", language="fi", line_number=LINE, remote_number=PHONES[0],
            started_at=site.clock(),
        )  # fmt: skip
        request = repo.save_callback(
            s, call.id, channel="phone", consent_version="2021-12-a", language="fi",
            phone_number=PHONES[0], time_window="morning", at=site.clock(),
        )  # fmt: skip
        assert request.org_id == site.orgs["A"]
        return str(request.id)


REVIEW_TEXT = "Alfalan-salavastaus"
TAG_NAME = "Alfalan-salateema"


def _a_review_item(site: Site, tmp: Path) -> tuple[str, str]:
    """An open answer (a recording and its transcript) from a call to A's inbound line,
    and a tag of A's: what the review queue and the tags page show."""
    from ivr.jobs import store_transcript
    from ivr.speech.stt.base import Segment, Transcript, Word
    from ivr.store import repo
    from ivr.store.models import TranscriptRow

    a_manager = site.person("A", "manager")
    tag = site.services.review.add_tag(a_manager.actor(), TAG_NAME, 1)
    with site.services.factory.begin() as s:
        call = repo.create_call(
            s, direction="inbound", flow_id=FLOW_KEY, flow_version="1", channel_id="tenancy-rv",
            node_name="t", language="fi", line_number=LINE, remote_number=PHONES[1],
            started_at=site.clock(),
        )  # fmt: skip
        recording = repo.save_recording(
            s, call.id, node_id="q1", path=str(_wav(tmp)), duration_seconds=1.0,
            language="fi", at=site.clock(),
        )  # fmt: skip
        word = Word(0.1, 0.9, REVIEW_TEXT)
        store_transcript(s, recording, Transcript(
            text=REVIEW_TEXT, language="fi", engine="t", model="t", confidence=0.4,
            segments=[Segment(0.1, 0.9, REVIEW_TEXT, 0.4, (word,))],
            audio_seconds=1.0, speech_seconds=0.8,
        ))  # fmt: skip
        s.flush()
        row = s.scalars(
            sa.select(TranscriptRow).where(TranscriptRow.recording_id == recording.id)
        ).one()
        assert row.org_id == site.orgs["A"]
        return str(row.id), str(tag.id)


def site_org_name(site: Site, key: str) -> str:
    from tests.web.conftest import ORG_NAMES

    return ORG_NAMES[key]


# --------------------------------------------------------------------------- the walk
def _rules(site: Site) -> list[Rule]:
    return sorted(site.app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))


def _values(rule: Rule, seed: Seed, org_id: str) -> dict[str, str]:
    unknown = sorted(set(rule.arguments) - set(PARAMETERS))
    if unknown:
        pytest.fail(
            f"the route {rule.rule} ({rule.endpoint}) has the parameter(s) {unknown}, which "
            "the tenancy walker does not know: add them to PARAMETERS in "
            "tests/web/test_tenancy.py (and make organisation A's object in seed_a)",
            pytrace=False,
        )
    values = {name: PARAMETERS[name](seed) for name in rule.arguments}
    if "org_id" in values:
        values["org_id"] = org_id
    return values


def _url(site: Site, rule: Rule, values: dict[str, str]) -> str:
    with site.app.test_request_context(base_url=BASE_URL):
        return url_for(rule.endpoint, **values)


def _methods(rule: Rule) -> list[str]:
    return [m for m in ("GET", "POST") if m in (rule.methods or ())]


class _Forms(HTMLParser):
    """The forms of a page: action -> field values, as the browser would send them."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.page = page
        self.forms: dict[str, dict[str, Any]] = {}
        self._current: dict[str, Any] | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "get").lower() == "post":
            action = urlsplit(urljoin(self.page, a.get("action") or self.page)).path
            self._current = self.forms.setdefault(action, {})
        elif self._current is None or "name" not in a:
            return
        elif tag == "input":
            kind = a.get("type", "text").lower()
            if kind == "file":
                self._current[a["name"]] = (io.BytesIO(b"phone\n+358409998887\n"), "x.csv")
            elif kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._current.setdefault(a["name"], a.get("value", "on"))
            elif kind in ("submit", "button"):
                self._current.setdefault(a["name"], a.get("value", ""))
            else:
                self._current[a["name"]] = a.get("value", "")
        elif tag == "button" and a.get("type", "submit") == "submit":
            self._current.setdefault(a["name"], a.get("value", ""))
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select:
            if "selected" in a or self._select not in self._current:
                self._current[self._select] = a.get("value", "")
        elif tag == "textarea":
            self._textarea = a["name"]
            self._current[a["name"]] = ""

    def handle_data(self, data: str) -> None:
        if self._current is not None and self._textarea:
            self._current[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def _generic_form(seed: Seed) -> dict[str, Any]:
    """For a POST route no page has a form for: plausible fields, naming A's objects."""
    return {
        "name": "Betalan testi",
        "email": "uusi@betala.example",
        "role": "admin",
        "language": "sv",
        "next": "/",
        "number": "0912340000",
        "flow": f"flow:{seed.flow_id}",
        "flow_id": seed.flow_id,
        "yaml": FLOW_YAML,
        "reason": "test",
    }


def _harvest(site: Site, seed: Seed) -> dict[str, dict[str, Any]]:
    """The forms of every page A's admin can open (action path -> fields): each POST of
    the walk sends what the real form would."""
    client = site.logged_in("A", "admin")
    forms: dict[str, dict[str, Any]] = {}
    for rule in _rules(site):
        if "GET" not in _methods(rule) or rule.endpoint == "static":
            continue
        page = _url(site, rule, _values(rule, seed, seed.org_id))
        response = client.get(page, base_url=BASE_URL)
        if response.mimetype != "text/html":
            continue
        parser = _Forms(page)
        parser.feed(response.get_data(as_text=True))
        for action, fields in parser.forms.items():
            forms.setdefault(action, fields)
    return forms


def _form_for(forms: dict[str, dict[str, Any]], path: str, seed: Seed) -> dict[str, Any]:
    found = forms.get(path)
    data = dict(found) if found is not None else _generic_form(seed)
    data.pop("csrf_token", None)
    # Files are read once: give each request its own copy.
    return {
        k: (io.BytesIO(v[0].getvalue()), v[1]) if isinstance(v, tuple) else v
        for k, v in data.items()
    }


_TABLES: dict[str, list[sa.Table]] = {}


def _snapshot(site: Site) -> dict[str, set[tuple[str, ...]]]:
    """Every row of every table in the database (read from the database itself, so tables
    added later are compared too)."""
    engine = site.services.engine
    key = str(engine.url)
    if key not in _TABLES:
        meta = sa.MetaData()
        meta.reflect(engine)
        _TABLES[key] = list(meta.sorted_tables)
    with engine.connect() as c:
        return {
            table.name: {tuple(str(v) for v in row) for row in c.execute(table.select())}
            for table in _TABLES[key]
        }


def _touches_a(
    before: dict[str, set[tuple[str, ...]]], after: dict[str, set[tuple[str, ...]]], seed: Seed
) -> list[str]:
    """Rows added, changed or removed that belong to A or point at A's objects."""
    found = []
    for table in sorted(set(before) | set(after)):
        old, new = before.get(table, set()), after.get(table, set())
        for row in (old - new) | (new - old):
            if any(any(i in value for i in seed.ids) for value in row):
                state = "removed/changed" if row in old else "added/changed"
                found.append(f"{table}: {state} {row}")
    return found


@dataclass
class Visitor:
    label: str
    client: FlaskClient
    login: tuple[str, str] | None  # e-mail and password; None: anonymous
    token: str = ""

    def ensure_logged_in(self) -> None:
        """Log in again if a request logged out (``/logout`` is a route like any other),
        and hold a CSRF token of the current session."""
        with self.client.session_transaction() as session:
            logged_in = bool(session.get("user_id"))
            has_token = "csrf_token" in session
        if self.login is not None and not logged_in:
            assert login(self.client, *self.login).status_code == 302
            has_token = False
        if not has_token or not self.token:
            self.token = csrf_token(self.client)


class _CsrfRefusals(logging.Handler):
    """flask-wtf logs each refused token: a walk whose POSTs fail the CSRF check would test
    nothing behind it, so a refusal fails the walk."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage())


@pytest.fixture()
def csrf_refusals() -> Iterator[_CsrfRefusals]:
    handler = _CsrfRefusals()
    logger = logging.getLogger("flask_wtf.csrf")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def _request(
    visitor: Visitor, method: str, url: str, data: dict[str, Any], refusals: _CsrfRefusals
) -> TestResponse:
    if method == "GET":
        return visitor.client.get(url, base_url=BASE_URL)
    form = {"csrf_token": visitor.token, **data}
    response = visitor.client.post(
        url, data=form, base_url=BASE_URL, headers={"Referer": f"{BASE_URL}{url}"}
    )
    if refusals.seen:
        reason = refusals.seen.pop()
        refusals.seen.clear()
        pytest.fail(
            f"{visitor.label}: POST {url}: the CSRF check refused the walk's token "
            f"({reason}): the walk is broken",
            pytrace=False,
        )
    return response


def _leaks(response: TestResponse, seed: Seed) -> list[str]:
    body = response.get_data().decode("utf-8", "replace")
    shown = [secret for secret in seed.secrets if secret in body]
    # Where a redirect leads (its query may carry the requested URL back as ``next``).
    location = urlsplit(response.headers.get("Location", "")).path
    shown += [f"a redirect to {location} names {i}" for i in seed.ids if i in location]
    return shown


@pytest.fixture()
def seeded(site: Site, tmp_path: Path) -> Iterator[tuple[Site, Seed]]:
    yield site, seed_a(site, tmp_path)


def test_every_route_as_another_organisation_and_anonymous(
    seeded: tuple[Site, Seed], csrf_refusals: _CsrfRefusals
) -> None:
    site, seed = seeded
    forms = _harvest(site, seed)
    # The leak checks are not vacuous: A's own pages show what B must never see.
    a_admin = site.logged_in("A", "admin")
    own = "".join(
        a_admin.get(path).get_data(as_text=True)
        for path in (
            f"/o/{seed.org_id}/campaigns/",
            f"/o/{seed.org_id}/flows/",
            f"/o/{seed.org_id}/users/",
            f"/o/{seed.org_id}/lines/",
        )
    )
    for secret in (CAMPAIGN, FLOW_NAME, LINE, site.person("A", "reviewer").email):
        assert secret in own, f"A's own pages do not show {secret!r}: the walk proves nothing"

    visitors = [
        Visitor(
            f"B's {role}",
            site.logged_in("B", role, address=f"10.0.0.{n}"),
            (site.person("B", role).email, site.person("B", role).password),
        )
        for n, role in enumerate(("admin", "manager", "reviewer"), start=1)
    ]
    visitors.append(Visitor("an anonymous visitor", site.client("192.0.2.10"), None))
    b_org = site.orgs["B"]
    failures: list[str] = []
    walked = 0
    for rule in _rules(site):
        access = access_of(site.app, rule.endpoint)
        variants = [_values(rule, seed, seed.org_id)]
        if "org_id" in rule.arguments:
            variants.append(_values(rule, seed, b_org))  # B's own org, A's objects
        for values in variants:
            url = _url(site, rule, values)
            names_a = any(v in seed.ids or v == seed.prompt_path for v in values.values())
            names_a = names_a and rule.endpoint not in PUBLIC_WITH_DATA
            for method in _methods(rule):
                for visitor in visitors:
                    visitor.ensure_logged_in()
                    before = _snapshot(site)
                    response = _request(
                        visitor, method, url, _form_for(forms, url, seed), csrf_refusals
                    )
                    walked += 1
                    what = f"{visitor.label}: {method} {url} ({rule.endpoint})"
                    status = response.status_code
                    print(f"{status} {what}")  # the walk, for a reader of -s
                    if status >= 500:
                        failures.append(f"{what} -> {status}")
                    if visitor.login is None and access != "public":
                        location = response.headers.get("Location", "")
                        if status != 302 or not location.startswith("/login"):
                            failures.append(f"{what} -> {status} {location!r}, not the login")
                    elif names_a and not 400 <= status < 500:
                        failures.append(f"{what} -> {status}: A's data answered")
                    failures += [f"{what} shows {leak!r}" for leak in _leaks(response, seed)]
                    failures += [f"{what} changed {row}" for row in _touches_a(
                        before, _snapshot(site), seed
                    )]  # fmt: skip
    assert walked > 100
    assert not failures, "\n".join(failures)


def test_role_matrix_of_the_organisations_own_users(
    seeded: tuple[Site, Seed], csrf_refusals: _CsrfRefusals
) -> None:
    site, seed = seeded
    forms = _harvest(site, seed)
    visitors = {
        role: Visitor(
            f"A's {role.value}",
            site.logged_in("A", role.value),
            (site.person("A", role.value).email, site.person("A", role.value).password),
        )
        for role in Role
    }
    failures: list[str] = []
    checked = 0
    for rule in _rules(site):
        needed = access_of(site.app, rule.endpoint)
        if not isinstance(needed, Role):
            continue
        url = _url(site, rule, _values(rule, seed, seed.org_id))
        for role, visitor in visitors.items():
            for method in _methods(rule):
                visitor.ensure_logged_in()
                allowed = role.allows(needed)
                if method == "POST" and allowed and role is not Role.REVIEWER:
                    continue  # a real change: the feature's own tests make those
                before = _snapshot(site)
                response = _request(
                    visitor, method, url, _form_for(forms, url, seed), csrf_refusals
                )
                checked += 1
                what = f"{visitor.label}: {method} {url} ({rule.endpoint}, needs {needed.value})"
                status = response.status_code
                if not allowed or (method == "POST" and rule.endpoint not in REVIEWER_MAY_POST):
                    if status != 403:
                        failures.append(f"{what} -> {status}, not 403")
                    changed = _touches_a(before, _snapshot(site), seed)
                    failures += [f"{what} changed {row}" for row in changed]
                elif status >= 400:
                    failures.append(f"{what} -> {status}")
    assert checked > 50
    assert not failures, "\n".join(failures)
