"""The organisation's tags (SQLite and PostgreSQL): managers add, rename, re-key and
delete them (audited); names and keys are unique in the organisation; reviewers may not
open the page; another organisation's tag is 404."""

from __future__ import annotations

import json
import re

import sqlalchemy as sa
from flask import Flask

from ivr.services import Services
from ivr.store.org_models import AuditEntry
from ivr.store.work_models import Tag
from tests.web.campaign_support import browser
from tests.web.conftest import BASE_URL, Users, post, unique


def _tag(services: Services, org_id: str, name: str) -> Tag | None:
    with services.factory() as s:
        return s.scalar(sa.select(Tag).where(Tag.org_id == org_id, Tag.name == name))


def test_a_manager_adds_renames_and_deletes_a_tag(
    web_app: Flask, services: Services, users: Users
) -> None:
    manager = users.b.manager  # organisation B: the other modules tag in A
    client = browser(web_app, manager)
    base = f"/o/{manager.org_id}/tags/"
    name = unique("Liikenne")
    response = post(client, base, {"name": f"  {name} ", "key": "4"})
    assert response.status_code == 302
    tag = _tag(services, manager.org_id, name)
    assert tag is not None and tag.key == 4
    page = client.get(base, base_url=BASE_URL).get_data(as_text=True)
    assert name in page and "<kbd>4</kbd>" in page
    # The same key or name again: refused beside the field, nothing stored.
    refused = post(client, base, {"name": unique("Muu"), "key": "4"})
    assert refused.status_code == 400
    assert "Another tag already has this key" in refused.get_data(as_text=True)
    refused = post(client, base, {"name": name.upper(), "key": ""})
    assert refused.status_code == 400
    assert "already has a tag with this name" in refused.get_data(as_text=True)
    assert post(client, base, {"name": "", "key": "10"}).status_code == 400
    renamed = unique("Tiet")
    assert post(client, f"{base}{tag.id}", {"name": renamed, "key": ""}).status_code == 302
    changed = _tag(services, manager.org_id, renamed)
    assert changed is not None and changed.id == tag.id and changed.key is None
    assert post(client, f"{base}{tag.id}/delete", {}).status_code == 302
    assert _tag(services, manager.org_id, renamed) is None
    with services.factory() as s:
        actions = s.scalars(
            sa.select(AuditEntry.action)
            .where(AuditEntry.target_type == "tag", AuditEntry.target_id == str(tag.id))
            .order_by(AuditEntry.id)
        ).all()
        detail = json.loads(
            s.scalars(
                sa.select(AuditEntry.detail).where(
                    AuditEntry.action == "tag.change", AuditEntry.target_id == str(tag.id)
                )
            ).one()
        )
    assert actions == ["tag.add", "tag.change", "tag.delete"]
    assert detail["old"] == {"name": name, "key": 4} and detail["new"]["name"] == renamed


def test_reviewers_may_not_and_another_organisation_gets_404(
    web_app: Flask, services: Services, users: Users
) -> None:
    tag = services.review.add_tag(users.a.manager.actor(), unique("Alfa"), None)
    reviewer = browser(web_app, users.a.reviewer)
    assert reviewer.get(f"/o/{users.a.reviewer.org_id}/tags/", base_url=BASE_URL).status_code == 403
    assert post(reviewer, f"/o/{users.a.reviewer.org_id}/tags/", {"name": "x"}).status_code == 403
    b = browser(web_app, users.b.admin)
    for org in (users.a.admin.org_id, users.b.admin.org_id):
        assert b.get(f"/o/{org}/tags/{tag.id}", base_url=BASE_URL).status_code == 404
        assert post(b, f"/o/{org}/tags/{tag.id}/delete", {}).status_code == 404
    assert _tag(services, users.a.admin.org_id, tag.name) is not None
    # B's own tag page does not list A's tags.
    page = b.get(f"/o/{users.b.admin.org_id}/tags/", base_url=BASE_URL).get_data(as_text=True)
    assert tag.name not in page
    assert re.search(r"<h1>Tags</h1>", page)
