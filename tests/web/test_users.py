"""The users page and the audit log (admins only), through Flask's test client."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import sqlalchemy as sa

from ivr.accounts.audit import Actor
from ivr.accounts.passwords import verify_password
from ivr.store.org_models import AuditEntry, Membership, Role, User
from tests.web.conftest import Site, login, post, text

_PASSWORD = re.compile(r'<p class="password"><code[^>]*>([^<]+)</code>')


def _users(site: Site, org: str = "A") -> str:
    return f"/o/{site.orgs[org]}/users"


def test_the_list_shows_members_roles_and_last_login(site: Site) -> None:
    admin = site.logged_in("A", "admin")
    site.clock.set(datetime(2026, 11, 29, 8, 0, tzinfo=UTC))
    login(site.client(), site.person("A", "manager").email, site.person("A", "manager").password)
    page = admin.get(f"{_users(site)}/")
    assert page.status_code == 200
    body = text(page)
    for role in ("admin", "manager", "reviewer"):
        assert site.person("A", role).email in body
    assert "@betala.example" not in body  # only this organisation's members
    assert "Pääkäyttäjä" in body and "Kampanjavastaava" in body  # roles, in Finnish
    assert "29.11.2026 klo 10.00" in body  # the manager's last login, Helsinki time
    assert "Ei koskaan" in body  # the reviewer has never logged in


def test_adding_a_user_shows_the_password_once(site: Site) -> None:
    admin = site.logged_in("A", "admin")
    page = post(
        admin,
        f"{_users(site)}/new",
        {"email": " Uusi.Kayttaja@Alfala.example ", "name": "Uusi Käyttäjä", "role": "manager"},
    )
    assert page.status_code == 200
    found = _PASSWORD.search(text(page))
    assert found, text(page)
    password = found.group(1)
    assert page.headers["Cache-Control"] == "no-store"
    with site.services.factory() as s:
        user = s.scalars(sa.select(User).where(User.email == "uusi.kayttaja@alfala.example")).one()
        assert user.password_hash.startswith("$argon2id$") and password not in user.password_hash
        assert verify_password(user.password_hash, password)
        member = s.get(Membership, (user.id, site.orgs["A"]))
        assert member is not None and member.role.value == "manager"
        entry = s.scalars(
            sa.select(AuditEntry)
            .where(AuditEntry.action == "user.add")
            .order_by(AuditEntry.id.desc())
        ).first()
        assert entry is not None and entry.actor == site.person("A", "admin").email
        assert entry.target_id == user.id and password not in entry.detail
    # Never again: not on the list, not on the member's page.
    listing = text(admin.get(f"{_users(site)}/"))
    assert "uusi.kayttaja@alfala.example" in listing and password not in listing
    assert password not in text(admin.get(f"{_users(site)}/{user.id}"))
    # The new user can log in with it.
    assert login(site.client(), "uusi.kayttaja@alfala.example", password).status_code == 302


def test_adding_a_member_of_another_organisation_keeps_their_password(site: Site) -> None:
    admin = site.logged_in("A", "admin")
    other = site.person("B", "reviewer")
    page = post(admin, f"{_users(site)}/new", {"email": other.email, "role": "reviewer"})
    assert page.status_code == 200 and not _PASSWORD.search(text(page))
    assert "salasanansa ei muuttunut" in text(page)
    assert login(site.client(), other.email, other.password).status_code == 302


def test_adding_refuses_bad_input_beside_the_field(site: Site) -> None:
    admin = site.logged_in("A", "admin")
    page = post(admin, f"{_users(site)}/new", {"email": "ei-osoite", "role": "manager"})
    body = text(page)
    assert page.status_code == 200 and 'class="error-summary"' in body
    assert 'id="email-error"' in body and 'href="#email"' in body
    twice = post(
        admin, f"{_users(site)}/new", {"email": site.person("A", "manager").email, "role": "admin"}
    )
    assert "on jo organisaation jäsen" in text(twice)
    bad_role = post(admin, f"{_users(site)}/new", {"email": "x@alfala.example", "role": "boss"})
    assert 'id="role-error"' in text(bad_role)
    with site.services.factory() as s:
        assert s.scalar(sa.select(User.id).where(User.email == "x@alfala.example")) is None


def test_changing_a_role_and_removing_a_member(site: Site) -> None:
    admin = site.logged_in("A", "admin")
    reviewer = site.person("A", "reviewer")
    changed = post(admin, f"{_users(site)}/{reviewer.user_id}", {"role": "manager"})
    assert changed.status_code == 302
    listing = text(admin.get(changed.headers["Location"]))
    assert f"Käyttäjän {reviewer.email} rooli on nyt: Kampanjavastaava." in listing
    confirm = admin.get(f"{_users(site)}/{reviewer.user_id}/remove")
    assert confirm.status_code == 200 and reviewer.email in text(confirm)
    removed = post(admin, f"{_users(site)}/{reviewer.user_id}/remove")
    assert removed.status_code == 302
    assert reviewer.email not in text(admin.get(f"{_users(site)}/")).split("</h1>", 1)[0]
    with site.services.factory() as s:
        assert s.get(Membership, (reviewer.user_id, site.orgs["A"])) is None
        actions = list(
            s.scalars(
                sa.select(AuditEntry.action)
                .where(AuditEntry.target_id == reviewer.user_id)
                .order_by(AuditEntry.id)
            )
        )
    assert actions[-2:] == ["user.role", "user.remove"]
    assert admin.get(f"{_users(site)}/{reviewer.user_id}").status_code == 404


def test_an_admin_cannot_remove_or_demote_themselves(site: Site) -> None:
    me = site.person("A", "admin")
    admin = site.logged_in("A", "admin")
    own = text(admin.get(f"{_users(site)}/{me.user_id}"))
    assert 'name="role"' not in own  # no form to change it
    demoted = post(admin, f"{_users(site)}/{me.user_id}", {"role": "reviewer"})
    assert demoted.status_code == 200 and 'class="error-summary"' in text(demoted)
    assert "Et voi muuttaa omaa rooliasi" in text(demoted)
    removed = post(admin, f"{_users(site)}/{me.user_id}/remove")
    assert removed.status_code == 400
    with site.services.factory() as s:
        member = s.get(Membership, (me.user_id, site.orgs["A"]))
        assert member is not None and member.role.value == "admin"


def test_the_audit_log_pages_newest_first(site: Site) -> None:
    admin = site.logged_in("A", "admin")
    me = site.person("A", "admin")
    actor = Actor(me.email, me.user_id, site.orgs["A"], Role.ADMIN, "127.0.0.1")
    target = site.person("A", "reviewer")
    roles = ["manager", "admin", "reviewer"] * 19  # 57 role changes, the last to reviewer
    for role in roles:
        site.services.accounts.set_role(actor, target.user_id, role)
    first = text(admin.get(f"/o/{site.orgs['A']}/audit"))
    rows = re.findall(r"<tr>\s*<td>(.*?)</tr>", first, re.S)
    assert len(rows) == 50
    assert "Rooli muutettu" in rows[0] and "Jälkeen: Tarkastaja" in rows[0]  # the newest
    assert f"käyttäjä: {target.email}" in rows[0]  # the target by e-mail, not by id
    assert "Organisaatio luotu" not in first  # the oldest entry is on a later page
    older = re.search(r'href="([^"]*before=\d+)"', first)
    assert older, "no link to older entries"
    second = text(admin.get(older.group(1).replace("&amp;", "&")))
    assert "Organisaatio luotu" in second and "Käyttäjä lisätty" in second
    assert "Kirjautui sisään" in second
    assert "before=" not in second.split("Uusimmat tapahtumat")[-1]  # no page after it
    assert site.person("B", "admin").email not in first + second
    assert admin.get(f"/o/{site.orgs['A']}/audit?before=x").status_code == 404
