"""API tokens: made once-shown and kept hashed, read or write scope, last use recorded,
revoked at once, in the audit log; from the admin's page, the service and the command
line's parser alike."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import sqlalchemy as sa

from ivr.api.tokens import ApiTokens
from ivr.clock import MovableClock
from ivr.store.api_models import ApiToken
from ivr.store.org_models import AuditEntry
from tests.api.conftest import MakeApi, Site
from tests.web.campaign_support import browser
from tests.web.conftest import BASE_URL, Users, unique


def _row(site: Site, prefix: str) -> ApiToken:
    with site.services.factory() as s:
        return s.scalars(sa.select(ApiToken).where(ApiToken.prefix == prefix)).one()


def test_a_token_is_shown_once_and_kept_only_as_its_hash(
    module_site: Site, users: Users, clock: MovableClock
) -> None:
    tokens = ApiTokens(module_site.services.factory, clock)
    made = tokens.create(users.a.admin.actor(), "  Case  system ", "read")
    assert made.secret.startswith("ivr_") and len(made.secret) > 40
    row = _row(module_site, made.info.prefix)
    assert row.name == "Case system" and row.scope.value == "read"
    assert row.token_hash == hashlib.sha256(made.secret.encode()).hexdigest()
    with module_site.services.engine.connect() as c:
        stored = [str(v) for r in c.execute(sa.text("SELECT * FROM api_tokens")) for v in r]
    assert not any(made.secret in v for v in stored)
    listed = [t for t in tokens.list(users.a.admin.actor()) if t.id == made.info.id]
    assert listed and not hasattr(listed[0], "secret") and listed[0].last_used_at is None


def test_read_scope_reads_but_may_not_post_and_use_is_recorded(
    module_site: Site, make_api: MakeApi, clock: MovableClock
) -> None:
    api = make_api(scope="read", name=unique("lukija"))
    prefix = api.secret[:12]
    assert _row(module_site, prefix).last_used_at is None
    before = clock()
    assert api.get("/campaigns").status_code == 200
    first = _row(module_site, prefix).last_used_at
    assert first is not None and before <= first <= clock()
    refused = api.post("/campaigns", {"name": "x", "flow": "example:strategy-survey.yaml"})
    assert refused.status_code == 403
    assert refused.mimetype == "application/problem+json"
    assert refused.get_json()["type"].endswith("/read_only_token")
    api.get("/calls")  # within a minute: not written again
    assert _row(module_site, prefix).last_used_at == first
    clock.advance(timedelta(minutes=5))
    api.get("/calls")
    later = _row(module_site, prefix).last_used_at
    assert later is not None and later >= first + timedelta(minutes=5)


def test_no_token_a_wrong_one_and_a_revoked_one_are_401(
    module_site: Site, users: Users, make_api: MakeApi
) -> None:
    api = make_api(name=unique("poistuva"))
    client = module_site.app.test_client()
    missing = client.get("/api/v1/campaigns")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert missing.get_json()["status"] == 401
    wrong = client.get("/api/v1/campaigns", headers={"Authorization": "Bearer ivr_nope"})
    assert wrong.status_code == 401
    assert api.get("/campaigns").status_code == 200
    tokens = ApiTokens(module_site.services.factory, module_site.clock)
    token_id = _row(module_site, api.secret[:12]).id
    assert tokens.revoke(users.a.admin.actor(), token_id) is True
    assert api.get("/campaigns").status_code == 401
    assert tokens.revoke(users.a.admin.actor(), token_id) is False
    with module_site.services.factory() as s:
        actions = set(s.scalars(
            sa.select(AuditEntry.action).where(AuditEntry.target_id == token_id)
        ))  # fmt: skip
    assert actions == {"api_token.create", "api_token.revoke"}


def test_only_admins_manage_tokens_and_another_orgs_token_is_not_found(
    module_site: Site, users: Users
) -> None:
    import pytest

    from ivr.accounts.audit import Forbidden, NotFound

    tokens = ApiTokens(module_site.services.factory, module_site.clock)
    with pytest.raises(Forbidden):
        tokens.create(users.a.manager.actor(), "x", "read")
    made = tokens.create(users.a.admin.actor(), "x", "write")
    with pytest.raises(NotFound):
        tokens.revoke(users.b.admin.actor(), made.info.id)


def test_the_admins_page_creates_shows_once_lists_and_revokes(
    module_site: Site, users: Users
) -> None:
    from tests.web.conftest import csrf_token

    admin = browser(module_site.app, users.a.admin)  # in English
    page = f"/o/{users.a.admin.org_id}/tokens/"
    name = unique("Asianhallinta")
    referer = {"Referer": BASE_URL + page}
    form = {"csrf_token": csrf_token(admin, page), "name": " ", "scope": "write"}
    empty = admin.post(page, data=form, headers=referer)
    assert empty.status_code == 400 and "Enter a name" in empty.get_data(as_text=True)
    made = admin.post(page, data={**form, "name": name}, headers=referer)
    assert made.status_code == 200
    shown = made.get_data(as_text=True)
    secret = shown.split('value="ivr_', 1)[1].split('"', 1)[0]
    listing = admin.get(page).get_data(as_text=True)
    assert name in listing and secret not in listing and f"ivr_{secret[:8]}" in listing
    row = _row(module_site, f"ivr_{secret[:8]}")
    revoke = f"/o/{users.a.admin.org_id}/tokens/revoke"
    done = admin.post(revoke, data={"csrf_token": csrf_token(admin, page), "token": row.id},
                      headers={"Referer": BASE_URL + revoke})  # fmt: skip
    assert done.status_code == 302
    assert _row(module_site, row.prefix).revoked_at is not None
    assert module_site.logged_in("A", "manager").get(page).status_code == 403


def test_the_command_line_parses_token_commands() -> None:
    from ivr.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["token", "add", "--org", "Kunta", "--scope", "read", "--json"])
    assert (args.action, args.scope, args.json) == ("add", "read", True)
    args = parser.parse_args(["token", "revoke", "abc", "--org", "Kunta"])
    assert (args.action, args.token_id) == ("revoke", "abc")
