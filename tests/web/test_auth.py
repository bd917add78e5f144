"""Logging in and staying safe: the login's answers and rate limits, CSRF on every form,
the session cookie, the idle timeout, logout, redirects, security headers, and accounts
that are disabled or removed while logged in. Through Flask's test client."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ivr.store.org_models import AuditEntry, LoginFailure, User
from tests.web.conftest import BASE_URL, Site, csrf_token, login, make_site, post, text

_TOKENS = re.compile(r'name="csrf_token"\s+value="[^"]+"')


def _org_page(site: Site, org: str = "A") -> str:
    return f"/o/{site.orgs[org]}/campaigns/"


def _login_answer(response: TestResponse, email: str) -> tuple[int, str]:
    """The status and page of a refused login, without what differs by design (the CSRF
    token, the e-mail address put back in its field)."""
    body = _TOKENS.sub("", text(response)).replace(email, "EMAIL")
    return response.status_code, body


def test_login_logs_in_and_wrong_password_reads_like_an_unknown_email(site: Site) -> None:
    who = site.person("A", "manager")
    wrong = login(site.client(), who.email, "Salasana-väärin-2026")
    unknown = login(site.client(), "nobody@alfala.example", who.password)
    assert wrong.status_code == 401
    assert _login_answer(wrong, who.email) == _login_answer(unknown, "nobody@alfala.example")
    assert "Väärä sähköpostiosoite tai salasana." in text(wrong)
    client = site.client()
    ok = login(client, who.email.upper(), who.password)  # the e-mail in any case
    assert ok.status_code == 302 and ok.headers["Location"] == "/"
    assert client.get(_org_page(site)).status_code == 200


def test_the_login_limit_per_account_stops_even_the_right_password(site: Site) -> None:
    who = site.person("A", "reviewer")
    limit = site.services.settings.web.login_failures_per_account
    for n in range(limit):
        assert login(site.client(), who.email, f"Väärin-{n}-salasana").status_code == 401
    refused = login(site.client(), who.email, who.password)
    assert refused.status_code == 429
    window = site.services.settings.web.login_window_minutes * 60
    assert 0 < int(refused.headers["Retry-After"]) <= window + 1
    assert "Liian monta epäonnistunutta kirjautumista" in text(refused)
    # Another account from the same address is not affected...
    other = site.person("A", "manager")
    assert login(site.client(), other.email, other.password).status_code == 302
    # ...and the limit lifts when the window has passed.
    site.clock.advance(timedelta(seconds=window + 2))
    assert login(site.client(), who.email, who.password).status_code == 302
    with site.services.factory() as s:  # and the old failures are forgotten
        left = s.scalar(sa.select(sa.func.count()).where(LoginFailure.account == who.email))
    assert left == 0


@pytest.fixture()
def strict_site() -> object:
    made = make_site({"IVR_WEB_LOGIN_FAILURES_PER_ADDRESS": "6"})
    try:
        yield made
    finally:
        made.close()


def test_the_login_limit_per_address(strict_site: Site) -> None:
    site = strict_site
    attacker = "198.51.100.7"
    for n in range(6):  # one failure each for six different accounts: no account limit hit
        answer = login(site.client(attacker), f"guess{n}@alfala.example", "Arvaus-123456")
        assert answer.status_code == 401
    who = site.person("A", "admin")
    refused = login(site.client(attacker), who.email, who.password)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert login(site.client("203.0.113.9"), who.email, who.password).status_code == 302
    site.clock.advance(
        timedelta(minutes=site.services.settings.web.login_window_minutes, seconds=2)
    )
    assert login(site.client(attacker), who.email, who.password).status_code == 302


def test_every_post_route_refuses_a_form_without_a_csrf_token(site: Site) -> None:
    client = site.logged_in("A", "admin")
    rules = [r for r in site.app.url_map.iter_rules() if "POST" in (r.methods or ())]
    assert {"auth.login", "auth.logout", "auth.language", "users.add"} <= {
        r.endpoint for r in rules
    }
    for rule in rules:
        values = {
            arg: site.orgs["A"] if arg == "org_id" else "1" if arg.endswith("_id") else "x"
            for arg in rule.arguments
        }
        with site.app.test_request_context():
            from flask import url_for

            path = url_for(rule.endpoint, **values)
        if rule.endpoint.startswith("api."):
            # The REST API takes no cookies: a logged-in browser's session is not a
            # credential there (so no cross-site form can use it); only a Bearer token is.
            refused = client.post(path, json={}, base_url=BASE_URL)
            assert refused.status_code == 401, f"{rule.endpoint} accepted a session cookie"
            continue
        missing = client.post(path, data={"email": "a@b.fi"}, base_url=BASE_URL)
        assert missing.status_code == 400, f"{rule.endpoint} accepted a POST without a token"
        assert "lomake" in text(missing).lower()  # says why, in the user's language
        forged = client.post(path, data={"csrf_token": "forged"}, base_url=BASE_URL)
        assert forged.status_code == 400, f"{rule.endpoint} accepted a forged token"
        # A real token from another site's page (wrong Referer) is refused too.
        token = csrf_token(client)
        elsewhere = client.post(
            path,
            data={"csrf_token": token},
            base_url=BASE_URL,
            headers={"Referer": "https://evil.example/form"},
        )
        assert elsewhere.status_code == 400, f"{rule.endpoint} accepted a cross-site Referer"
    assert client.get(_org_page(site)).status_code == 200  # still logged in


def test_the_session_cookie_is_secure_httponly_and_samesite(site: Site) -> None:
    who = site.person("A", "admin")
    answer = login(site.client(), who.email, who.password)
    cookies = [c for c in answer.headers.getlist("Set-Cookie") if c.startswith("ivr_session=")]
    assert cookies, answer.headers
    flags = [part.strip().lower() for part in cookies[-1].split(";")]
    assert "secure" in flags and "httponly" in flags and "samesite=lax" in flags
    assert any(f.startswith("path=/") for f in flags)


def test_the_session_ends_after_the_idle_time_and_polling_does_not_extend_it(site: Site) -> None:
    idle = site.services.settings.web.idle_minutes
    client = site.logged_in("A", "manager")
    page = _org_page(site)
    site.clock.advance(timedelta(minutes=idle - 1))
    assert client.get(page).status_code == 200  # activity: the idle time starts again
    site.clock.advance(timedelta(minutes=idle - 1))
    poll = client.get(page, headers={"X-Ivr-Poll": "1"})
    assert poll.status_code == 200  # still within the idle time...
    site.clock.advance(timedelta(minutes=2))  # ...but the poll did not count as activity
    out = client.get(page)
    assert out.status_code == 302 and out.headers["Location"].startswith("/login?next=")
    notice = client.get(out.headers["Location"])
    assert "ei käytetty" in text(notice)  # "you were logged out because ..."
    assert client.get(page).status_code == 302  # and stays out


def test_logout_ends_the_session(site: Site) -> None:
    client = site.logged_in("A", "manager")
    out = post(client, "/logout")
    assert out.status_code == 302 and out.headers["Location"] == "/login"
    again = client.get(_org_page(site))
    assert again.status_code == 302 and again.headers["Location"].startswith("/login")


def test_a_copied_session_cookie_is_worthless_after_logout(site: Site) -> None:
    """The session is a signed cookie: logging out must void a copy of it too."""
    client = site.logged_in("A", "manager")
    copy = site.client()
    cookie = client.get_cookie("ivr_session", domain="localhost")
    assert cookie is not None
    copy.set_cookie("ivr_session", cookie.value, domain="localhost", secure=True)
    assert copy.get(_org_page(site)).status_code == 200
    post(client, "/logout")
    answer = copy.get(_org_page(site))
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/%0d%0aSet-Cookie:x=1",
    ],
)
def test_login_refuses_an_open_redirect(site: Site, target: str) -> None:
    who = site.person("A", "admin")
    answer = login(site.client(), who.email, who.password, next=target)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location == "/", f"next={target!r} redirected to {location!r}"


def test_login_follows_a_next_path_on_this_site(site: Site) -> None:
    who = site.person("A", "admin")
    client = site.client()
    page = f"/o/{site.orgs['A']}/users/"
    bounce = client.get(page)
    assert bounce.status_code == 302
    answer = login(client, who.email, who.password, next=page)
    assert answer.headers["Location"] == page


def test_security_headers(site: Site) -> None:
    client = site.logged_in("A", "admin")
    for path in ("/login", _org_page(site), "/static/css/site.css", "/no-such-page"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"
    assert client.get(_org_page(site)).headers["Cache-Control"] == "no-store"


def test_pages_have_no_inline_script_or_style(site: Site) -> None:
    client = site.logged_in("A", "admin")
    for path in ("/login", "/account", _org_page(site), f"/o/{site.orgs['A']}/users/"):
        body = text(client.get(path))
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", body), path
        assert "<style" not in body and " style=" not in body and " onclick=" not in body, path


def test_a_disabled_user_is_out_on_the_next_request(site: Site) -> None:
    client = site.logged_in("A", "manager")
    assert client.get(_org_page(site)).status_code == 200
    with site.services.factory.begin() as s:
        user = s.get(User, site.person("A", "manager").user_id)
        assert user is not None
        user.disabled = True
    out = client.get(_org_page(site))
    assert out.status_code == 302 and out.headers["Location"].startswith("/login")
    who = site.person("A", "manager")
    assert login(site.client(), who.email, who.password).status_code == 401


def test_a_removed_member_is_out_on_the_next_request(site: Site) -> None:
    member = site.logged_in("A", "manager")
    assert member.get(_org_page(site)).status_code == 200
    admin = site.logged_in("A", "admin")
    who = site.person("A", "manager")
    assert post(admin, f"/o/{site.orgs['A']}/users/{who.user_id}/remove").status_code == 302
    assert member.get(_org_page(site)).status_code == 404


def test_a_lowered_role_takes_effect_on_the_next_request(site: Site) -> None:
    manager = site.logged_in("A", "admin")
    other = site.logged_in("A", "manager")
    who = site.person("A", "manager")
    users = f"/o/{site.orgs['A']}/users/"
    assert other.get(users).status_code == 403
    post(manager, f"{users}{who.user_id}", {"role": "admin"})
    assert other.get(users).status_code == 200
    post(manager, f"{users}{who.user_id}", {"role": "reviewer"})
    assert other.get(users).status_code == 403


def test_passwords_are_stored_as_argon2_hashes(site: Site) -> None:
    with site.services.factory() as s:
        stored = dict(s.execute(sa.select(User.email, User.password_hash)).tuples().all())
    assert len(stored) == 6
    for (_org, _role), person in site.people.items():
        assert stored[person.email].startswith("$argon2id$")
        assert person.password not in stored[person.email]


def test_the_audit_log_records_logins_and_added_users(site: Site) -> None:
    admin = site.logged_in("A", "admin")
    post(
        admin,
        f"/o/{site.orgs['A']}/users/new",
        {"email": "uusi@alfala.example", "role": "reviewer"},
    )
    with site.services.factory() as s:
        rows = s.execute(
            sa.select(AuditEntry.action, AuditEntry.actor, AuditEntry.org_id, AuditEntry.address)
            .where(AuditEntry.org_id == site.orgs["A"])
            .order_by(AuditEntry.id)
        ).all()
    admin_email = site.person("A", "admin").email
    assert ("user.login", admin_email, site.orgs["A"], "127.0.0.1") in rows
    assert ("user.add", admin_email, site.orgs["A"], "127.0.0.1") in rows
    page = text(admin.get(f"/o/{site.orgs['A']}/audit"))
    assert "uusi@alfala.example" in page and "Kirjautui sisään" in page


def test_pages_need_a_login(client: FlaskClient, site: Site) -> None:
    for path in ("/", "/account", _org_page(site), f"/o/{site.orgs['A']}/users/"):
        answer = client.get(path)
        assert answer.status_code == 302, path
        assert answer.headers["Location"].startswith("/login?next=")
