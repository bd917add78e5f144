"""Who may open which flow page: every route of the flows blueprint, as an anonymous
visitor, as each role of the organisation and of another organisation, and with another
organisation's flow id in the address (404 everywhere, the audio included)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from ivr.accounts.audit import Actor
from ivr.bootstrap import App
from ivr.flows.library import FlowRecord
from ivr.services import Services
from ivr.store.org_models import Role
from ivr.web import create_app
from tests.support.instance import initialised_instance

# --------------------------------------------------------------------------- the site
# The flow pages' own fixtures (the shared tests/web/conftest.py was being rewritten while
# these were written): one instance per test module (SQLite, or PostgreSQL with
# IVR_TEST_DATABASE=postgresql), organisations A and B with a user of each role, Flask's
# test client over https://localhost with a same-site Referer. Other flow test modules
# import ``fsite`` and the helpers from here.
BASE = "https://localhost"
_TOKEN = re.compile(r'name="csrf_token"\s+value="([^"]+)"')
PASSWORD = "Kulkija-Salasana-2026"


@dataclass(frozen=True)
class Who:
    org_id: str
    role: Role
    email: str
    user_id: str

    def actor(self) -> Actor:
        return Actor(actor=self.email, user_id=self.user_id, org_id=self.org_id, role=self.role)


@dataclass
class FlowSite:
    instance: App
    services: Services
    web: Flask
    orgs: dict[str, str] = field(default_factory=dict)
    people: dict[tuple[str, str], Who] = field(default_factory=dict)

    def who(self, org: str, role: str) -> Who:
        return self.people[(org, role)]

    def actor(self, org: str, role: str) -> Actor:
        return self.who(org, role).actor()

    def client(self, org: str | None = None, role: str | None = None) -> FlaskClient:
        """A browser asking for English pages; logged in as ``role`` of ``org`` when given."""
        client = self.web.test_client()
        # English pages: the assertions read the English texts (the catalogues translate).
        client.environ_base.update(
            {"HTTP_REFERER": f"{BASE}/", "HTTP_ACCEPT_LANGUAGE": "en", "wsgi.url_scheme": "https"}
        )
        if org is not None and role is not None:
            response = client.post(
                "/login",
                data={
                    "csrf_token": token(client),
                    "email": self.who(org, role).email,
                    "password": PASSWORD,
                },
                base_url=BASE,
            )
            assert response.status_code == 302, response.status
        return client

    def url(self, endpoint: str, **values: Any) -> str:
        with self.web.test_request_context():
            return url_for(endpoint, **values)


def make_flow_site() -> FlowSite:
    instance, _env = initialised_instance("ivr-flows-")
    services = instance.services()
    web = create_app(services=services, testing=True)
    web.config["PREFERRED_URL_SCHEME"] = "https"
    site = FlowSite(instance, services, web)
    for key, name in (("A", "Alfalan kunta"), ("B", "Betalan kaupunki")):
        org = services.accounts.add_org(Actor.cli(), name)
        site.orgs[key] = org.id
        for role in ("admin", "manager", "reviewer"):
            email = f"{role}.{key.lower()}@flows.example"
            user, _ = services.accounts.add_user(
                Actor.cli(org.id), email, org.id, role, password=PASSWORD
            )
            site.people[(key, role)] = Who(org.id, Role(role), email, user.id)
    return site


@pytest.fixture(scope="module")
def fsite() -> Iterator[FlowSite]:
    site = make_flow_site()
    try:
        yield site
    finally:
        site.services.close()
        shutil.rmtree(site.instance.settings.data_dir, ignore_errors=True)


def token(client: FlaskClient) -> str:
    page = client.get("/login", base_url=BASE)
    found = _TOKEN.search(page.get_data(as_text=True))
    assert found, "no CSRF token on the login page"
    return found.group(1)


def post(client: FlaskClient, path: str, data: Any = None, **kwargs: Any) -> TestResponse:
    """POST a form with the session's CSRF token, as the page's own form would."""
    if isinstance(data, list):
        form: Any = MultiDict([("csrf_token", token(client)), *data])
    else:
        form = {"csrf_token": token(client), **(data or {})}
    return client.post(path, data=form, base_url=BASE, **kwargs)


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def unique(prefix: str) -> str:
    import uuid

    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def tone(folder: Path, name: str = "tone.wav", seconds: float = 1.5) -> Path:
    """A real recording made with sox: a 440 Hz tone, 44.1 kHz stereo (or as ``name`` says:
    ``.ogg`` is Ogg Vorbis)."""
    target = folder / name
    subprocess.run(
        ["sox", "-n", "-r", "44100", "-c", "2", str(target), "synth", str(seconds), "sine", "440"],
        check=True,
        capture_output=True,
    )
    return target


READ, MANAGE = "reviewer", "manager"
NONE, FLOW, PROMPT = "none", "flow", "prompt"
# endpoint -> (the role it needs, what its address names, whether it takes a POST)
ROUTES: dict[str, tuple[str, str, bool]] = {
    "flows.index": (READ, NONE, False),
    "flows.new": (MANAGE, NONE, True),
    "flows.upload": (MANAGE, NONE, True),
    "flows.view": (READ, FLOW, False),
    "flows.yaml_file": (READ, FLOW, False),
    "flows.upload_version": (MANAGE, FLOW, True),
    "flows.delete": (MANAGE, FLOW, True),
    "flows.edit": (MANAGE, FLOW, True),
    "flows.prompts": (READ, FLOW, False),
    "flows.prompt": (READ, PROMPT, True),
    "flows.recording": (READ, PROMPT, False),
    "flows.preview": (READ, FLOW, False),
    "flows.preview_audio": (READ, PROMPT, False),
}

FLOW_YAML = """\
id: {key}
name: Kulkuoikeus
version: "1"
languages: [fi, sv]
start: hello
nodes:
  hello:
    kind: say
    prompt: {{fi: Hei!, sv: Hej!}}
    next: bye
  bye:
    kind: end
    prompt: {{fi: Kiitos., sv: Tack.}}
"""


@dataclass(frozen=True)
class Flows:
    a: FlowRecord
    b: FlowRecord


@pytest.fixture(scope="module")
def flows(fsite: FlowSite, tmp_path_factory: pytest.TempPathFactory) -> Flows:
    """A flow in each organisation, each with an uploaded recording and a rendered preview
    (so that every audio route has something to serve to the right people)."""
    made = []
    for org in ("A", "B"):
        manager = fsite.actor(org, "manager")
        library = fsite.services.flows
        record = library.create(manager, FLOW_YAML.format(key=unique("access")))
        folder = tmp_path_factory.mktemp("tone")
        library.upload_prompt(
            manager, record.id, "nodes.hello.prompt", "fi", tone(folder), "tervehdys.wav"
        )
        library.preview(manager, record.id)
        made.append(library.get(manager, record.id))
    return Flows(*made)


def address(fsite: FlowSite, endpoint: str, org_id: str, flow_id: str) -> str:
    names = ROUTES[endpoint][1]
    values: dict[str, str] = {"org_id": org_id}
    if names in (FLOW, PROMPT):
        values["flow_id"] = flow_id
    if names == PROMPT:
        values.update(path="nodes.hello.prompt", language="fi")
    return fsite.url(endpoint, **values)


def allowed(role: str, needed: str) -> bool:
    return Role(role).allows(Role(needed))


def test_every_flow_route_is_in_the_table(fsite: FlowSite) -> None:
    rules = [r for r in fsite.web.url_map.iter_rules() if r.endpoint.startswith("flows.")]
    assert {r.endpoint for r in rules} == set(ROUTES)
    for rule in rules:
        assert ("POST" in (rule.methods or set())) == ROUTES[rule.endpoint][2], rule.endpoint


def test_anonymous_visitors_are_sent_to_log_in(fsite: FlowSite, flows: Flows) -> None:
    client = fsite.client()
    for endpoint, (_role, _names, posts) in ROUTES.items():
        path = address(fsite, endpoint, flows.a.org_id, flows.a.id)
        response = client.get(path, base_url=BASE)
        assert response.status_code == 302, (endpoint, response.status)
        assert "/login" in response.headers["Location"]
        if posts:
            response = post(client, path)
            assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("role", ["admin", "manager", "reviewer"])
def test_another_organisations_members_find_nothing(
    fsite: FlowSite, flows: Flows, role: str
) -> None:
    """A member of B in A's addresses: 404 on every route, GET and POST (neither A's flows
    nor A itself are revealed)."""
    client = fsite.client("B", role)
    for endpoint, (_needed, _names, posts) in ROUTES.items():
        path = address(fsite, endpoint, flows.a.org_id, flows.a.id)
        assert client.get(path, base_url=BASE).status_code == 404, endpoint
        if posts:
            assert post(client, path).status_code == 404, endpoint


@pytest.mark.parametrize("role", ["admin", "manager", "reviewer"])
def test_another_organisations_flow_id_is_not_found(
    fsite: FlowSite, flows: Flows, role: str
) -> None:
    """A member of A with B's flow id in A's address: 404 on every route that names a flow,
    the recording and the preview audio included, GET and POST (a reviewer is refused a
    manager's page first: 403, which says nothing about the flow)."""
    client = fsite.client("A", role)
    for endpoint, (needed, names, posts) in ROUTES.items():
        if names == NONE:
            continue
        path = address(fsite, endpoint, flows.a.org_id, flows.b.id)
        expected = 404 if allowed(role, needed) else 403
        assert client.get(path, base_url=BASE).status_code == expected, endpoint
        if posts:
            response = post(client, path)
            assert response.status_code == expected, (endpoint, response.status)


@pytest.mark.parametrize("role", ["admin", "manager", "reviewer"])
def test_each_role_in_its_own_organisation(fsite: FlowSite, flows: Flows, role: str) -> None:
    """Readers open every reading page and hear the audio; only managers (and admins) open
    the pages that change a flow, and only they may post a recording."""
    client = fsite.client("A", role)
    for endpoint, (needed, _names, posts) in ROUTES.items():
        path = address(fsite, endpoint, flows.a.org_id, flows.a.id)
        response = client.get(path, base_url=BASE)
        assert response.status_code == (200 if allowed(role, needed) else 403), endpoint
        if endpoint in ("flows.recording", "flows.preview_audio"):
            assert response.mimetype == "audio/wav" and response.data[:4] == b"RIFF"
        if posts and not allowed(role, MANAGE):
            assert post(client, path).status_code == 403, endpoint


def test_a_form_without_its_token_is_refused(fsite: FlowSite, flows: Flows) -> None:
    client = fsite.client("A", "manager")
    path = address(fsite, "flows.delete", flows.a.org_id, flows.a.id)
    assert client.post(path, data={}, base_url=BASE).status_code == 400
    view = address(fsite, "flows.view", flows.a.org_id, flows.a.id)
    assert client.get(view, base_url=BASE).status_code == 200
