"""Shared fixtures of the staff web UI tests.

``site``: an initialised instance (``initialised_instance``: its own data directory and database,
a ``MovableClock``), its ``Services`` from ``App.services()``, the Flask app from
``create_app(services=..., testing=True)``, and two organisations, ``A`` and ``B``, each
with an admin, a manager and a reviewer whose passwords are known (``site.person("A",
"admin")``). Requests go to ``https://localhost`` with a same-site Referer, as a browser
sends them (flask-wtf checks the Referer over HTTPS).

Helpers: ``login(client, email, password)``, ``csrf_token(client)``, ``post(client, path,
data)`` (adds a valid CSRF token), ``site.client()`` (anonymous) and ``site.logged_in("A",
"manager")``. Another setting for one test: ``make_site({"IVR_WEB_IDLE_MINUTES": "5"})``.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ivr.accounts.audit import Actor
from ivr.bootstrap import App, init
from ivr.clock import MovableClock
from ivr.config import load_settings
from ivr.services import Services
from ivr.store.org_models import Role
from ivr.web import create_app
from tests.support.instance import initialised_instance, instance_env
from tests.support.postgres import create_database, drop_database

BASE_URL = "https://localhost"
ORG_NAMES = {"A": "Alfalan kunta", "B": "Betalan kaupunki"}
EMAIL_DOMAINS = {"A": "alfala.example", "B": "betala.example"}
ROLES = ("admin", "manager", "reviewer")
_TOKEN = re.compile(r'name="csrf_token"\s+value="([^"]+)"')


@dataclass(frozen=True)
class Person:
    org: str  # "A" or "B"
    org_id: str
    role: Role
    email: str
    password: str
    user_id: str
    name: str

    def actor(self) -> Actor:
        """This user as the service layer sees them (as ``@requires`` makes it)."""
        return Actor(actor=self.email, user_id=self.user_id, org_id=self.org_id, role=self.role)


Member = Person  # the name the module-scoped fixtures below use


@dataclass
class Site:
    instance: App
    services: Services
    clock: MovableClock
    app: Flask
    orgs: dict[str, str] = field(default_factory=dict)  # "A" -> the organisation's id
    people: dict[tuple[str, str], Person] = field(default_factory=dict)

    def person(self, org: str, role: str) -> Person:
        return self.people[(org, role)]

    def client(self, address: str = "127.0.0.1") -> FlaskClient:
        """An anonymous browser at ``address``."""
        client = self.app.test_client()
        client.environ_base.update(
            {"HTTP_REFERER": f"{BASE_URL}/", "REMOTE_ADDR": address, "wsgi.url_scheme": "https"}
        )
        return client

    def logged_in(self, org: str, role: str, address: str = "127.0.0.1") -> FlaskClient:
        who = self.person(org, role)
        client = self.client(address)
        response = login(client, who.email, who.password)
        assert response.status_code == 302, f"{who.email} could not log in: {response.status}"
        return client

    def close(self) -> None:
        self.services.close()
        shutil.rmtree(self.instance.settings.data_dir, ignore_errors=True)


def make_site(env: dict[str, str] | None = None) -> Site:
    """A new instance with organisations A and B and their users; ``env`` adds settings
    (``IVR_WEB_LOGIN_FAILURES_PER_ADDRESS`` ...).

    On SQLite the organisations and users are made once per test process and each site gets
    a copy of that data directory (hashing six passwords with argon2 takes seconds); on
    PostgreSQL (``IVR_TEST_DATABASE=postgresql``) every site is built afresh."""
    if os.environ.get("IVR_TEST_DATABASE") == "postgresql":
        instance, _ = initialised_instance("ivr-web-", (lambda base: env) if env else None)
        site = _site(instance)
        _add_people(site)
        return site
    global _TEMPLATE
    if _TEMPLATE is None:
        made, _ = initialised_instance("ivr-web-template-")
        template = _site(made)
        _add_people(template)
        template.services.close()
        _TEMPLATE = (made.settings.data_dir, dict(template.orgs), dict(template.people))
        atexit.register(shutil.rmtree, made.settings.data_dir, True)
    source, orgs, people = _TEMPLATE
    data_dir = Path(tempfile.mkdtemp(prefix="ivr-web-"))
    shutil.copytree(source, data_dir, dirs_exist_ok=True)
    environ = instance_env(data_dir)
    environ.update(env or {})
    instance, _ = init(load_settings(environ=environ), clock=MovableClock())
    site = _site(instance)
    site.orgs.update(orgs)
    site.people.update(people)
    return site


_TEMPLATE: tuple[Path, dict[str, str], dict[tuple[str, str], Person]] | None = None


def _site(instance: App) -> Site:
    services = instance.services()
    app = create_app(services=services, testing=True)
    app.config["PREFERRED_URL_SCHEME"] = "https"  # the test client's default base URL
    return Site(instance, services, cast(MovableClock, instance.clock), app)


def _add_people(site: Site) -> None:
    accounts = site.services.accounts
    for key, org_name in ORG_NAMES.items():
        org = accounts.add_org(Actor.cli(), org_name)
        site.orgs[key] = org.id
        for role in ROLES:
            email = f"{role}.{key.lower()}@{EMAIL_DOMAINS[key]}"
            password = f"Salasana-{key}-{role}-2026"
            name = f"{role.title()} {org_name.split()[0]}"
            user, _given = accounts.add_user(
                Actor.cli(org.id), email, org.id, role, name=name, password=password
            )
            site.people[(key, role)] = Person(
                key, org.id, Role(role), email, password, user.id, name
            )


@pytest.fixture()
def site() -> Iterator[Site]:
    made = make_site()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture()
def client(site: Site) -> FlaskClient:
    """An anonymous browser."""
    return site.client()


def login(
    client: FlaskClient, email: str, password: str, *, next: str | None = None
) -> TestResponse:
    """Log in through the login form (a real CSRF token, HTTPS, a same-site Referer)."""
    token = csrf_token(client)
    path = "/login" if next is None else f"/login?next={next}"
    return client.post(
        path,
        data={"csrf_token": token, "email": email, "password": password},
        base_url=BASE_URL,
        headers={"Referer": f"{BASE_URL}/login"},
    )


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token of this browser's session, read from a form on ``path``."""
    response = client.get(path, base_url=BASE_URL)
    found = _TOKEN.search(response.get_data(as_text=True))
    assert found, f"no CSRF token in the page {path} ({response.status})"
    return found.group(1)


def post(
    client: FlaskClient, path: str, data: dict[str, Any] | None = None, **kwargs: Any
) -> TestResponse:
    """POST a form with this session's CSRF token (as the page's own form would)."""
    form = {"csrf_token": csrf_token(client), **(data or {})}
    headers = {"Referer": f"{BASE_URL}{path}", **kwargs.pop("headers", {})}
    return client.post(path, data=form, base_url=BASE_URL, headers=headers, **kwargs)


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


# ------------------------------------------------------------------ one site per module
# For tests that share one instance per module (a service's tests, the flow and campaign
# pages): ``module_site`` is built once per module, on SQLite and on a real PostgreSQL
# (the session's server from tests/conftest.py), so every such module runs on both.
# ``services``, ``web_app``, ``clock``, ``orgs`` (``orgs.a.id``) and ``users``
# (``users.a.manager``, a ``Person``) are its parts. Make names unique (``unique``).


@dataclass(frozen=True)
class Org:
    id: str
    name: str


@dataclass(frozen=True)
class Orgs:
    a: Org
    b: Org


@dataclass(frozen=True)
class OrgUsers:
    admin: Person
    manager: Person
    reviewer: Person

    def __getitem__(self, role: str) -> Person:
        found: Person = getattr(self, role)
        return found

    def all(self) -> list[Person]:
        return [self.admin, self.manager, self.reviewer]


@dataclass(frozen=True)
class Users:
    a: OrgUsers
    b: OrgUsers


def unique(prefix: str = "x") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_site(request: pytest.FixtureRequest) -> Iterator[Site]:
    database = server = ""
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres_url")
        database = f"ivr_web_{uuid.uuid4().hex[:12]}"
        url = create_database(server, database)
        instance, _ = initialised_instance("ivr-web-", lambda base: {"IVR_DATABASE_URL": url})
        made = _site(instance)
        _add_people(made)
    else:
        made = make_site()
    try:
        yield made
    finally:
        made.close()
        if database:
            drop_database(server, database)


@pytest.fixture(scope="module")
def services(module_site: Site) -> Services:
    return module_site.services


@pytest.fixture(scope="module")
def web_app(module_site: Site) -> Flask:
    return module_site.app


@pytest.fixture(scope="module")
def clock(module_site: Site) -> MovableClock:
    return module_site.clock


@pytest.fixture(scope="module")
def orgs(module_site: Site) -> Orgs:
    return Orgs(*(Org(module_site.orgs[key], ORG_NAMES[key]) for key in ("A", "B")))


@pytest.fixture(scope="module")
def users(module_site: Site) -> Users:
    def of(key: str) -> OrgUsers:
        return OrgUsers(*(module_site.person(key, role) for role in ROLES))

    return Users(of("A"), of("B"))
