"""A campaign's live progress (the page and the JSON the page polls), the campaign list
(keyset pagination, counts without a query per campaign), and the command line calling
the same campaign service as the pages."""

from __future__ import annotations

from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from ivr.accounts.audit import Actor
from ivr.cli import main
from ivr.clock import MovableClock
from ivr.services import Services
from ivr.store import campaigns as cstore
from ivr.store.org_models import Role
from tests.web.campaign_support import (
    MONDAY_NOON,
    SATURDAY_NOON,
    audit_of,
    body,
    browser,
    campaign_row,
    make_campaign,
    url,
)
from tests.web.conftest import Orgs, Users, unique

FIVE = "phone;language\n" + "".join(f"040 100 000{n};fi\n" for n in range(1, 6))


@pytest.fixture(autouse=True)
def _monday(clock: MovableClock) -> None:
    clock.set(MONDAY_NOON)


def _dial(services: Services, campaign_id: str, clock: MovableClock) -> None:
    """What a dialer would have done: 4 attempts claimed, 3 calls placed 2 minutes ago, one
    completed, one busy, one still on the line; the fourth not yet placed."""
    now = clock()
    with services.factory.begin() as s:
        claimed = cstore.claim_due_attempts(
            s, node="test", now=now, limit=4, campaign_ids=[campaign_id]
        )
        assert len(claimed) == 4
        placed = now - timedelta(minutes=2)
        for attempt in claimed[:3]:
            cstore.mark_originated(s, attempt.id, channel_id=f"c-{attempt.id}", started_at=placed)
        cstore.finish_attempt(
            s, claimed[0].id, outcome="completed",
            answered_at=placed + timedelta(seconds=10), ended_at=now,
        )  # fmt: skip
        cstore.finish_attempt(s, claimed[1].id, outcome="busy", ended_at=placed)


def test_the_progress_json_is_the_stores_funnel(
    web_app: Flask, services: Services, users: Users, orgs: Orgs, clock: MovableClock,
    tmp_path: Path,
) -> None:  # fmt: skip
    manager = users.a.manager.actor()
    campaign = make_campaign(services, manager, contacts=FIVE.encode(), tmp=tmp_path)
    services.campaigns.start(manager, campaign)
    _dial(services, campaign, clock)
    client = browser(web_app, users.a.reviewer)
    path = url(web_app, "campaigns.progress_json", org_id=orgs.a.id, campaign_id=campaign)
    response = client.get(path, headers={"X-Ivr-Poll": "1"})
    assert response.status_code == 200 and response.mimetype == "application/json"
    data: dict[str, Any] = response.get_json()
    with services.factory() as s:
        funnel = cstore.funnel(s, campaign)  # a full recount: the counters must equal it
        assert cstore.recount_matches(s, campaign)
    assert data["funnel"] == {
        key: funnel[key] for key in (*cstore.FUNNEL_COUNTS, "response_rate", "outcomes")
    }
    assert data["funnel"]["contacts"] == 5 and data["funnel"]["calls_placed"] == 3
    assert data["funnel"]["outcomes"]["busy"] == 1 and data["funnel"]["completed"] == 1
    assert (data["in_progress"], data["placing"]) == (1, 1)
    assert data["calls_per_minute"] == 0.6  # 3 calls in the last 5 minutes
    assert data["status"] == "running" and data["window"]["open"] is True
    assert data["text"]["why"] == "Dialling." and data["text"]["calls_per_minute"] == "0.6"
    assert data["text"]["response_rate"] == "20.0 %"
    # The page shows the same numbers, where the script finds them.
    page = body(client.get(url(web_app, "campaigns.show", org_id=orgs.a.id, campaign_id=campaign)))
    assert '<td class="num" data-progress="calls_placed">3</td>' in page
    assert '<span class="value" data-progress="in_progress">1</span>' in page
    assert f'data-progress-url="{path}"' in page and "js/progress.js" in page
    assert 'aria-live="polite"' in page


def test_it_says_why_it_is_not_dialling_and_when_it_resumes(
    web_app: Flask, services: Services, users: Users, orgs: Orgs, clock: MovableClock,
    tmp_path: Path,
) -> None:  # fmt: skip
    manager = users.a.manager.actor()
    campaign = make_campaign(services, manager, contacts=FIVE.encode(), tmp=tmp_path)
    path = url(web_app, "campaigns.progress_json", org_id=orgs.a.id, campaign_id=campaign)

    def why() -> dict[str, Any]:
        # Logged in afresh: the clock jumps by days, past the idle timeout.
        found: dict[str, Any] = browser(web_app, users.a.reviewer).get(path).get_json()
        return found

    assert why()["text"]["why"].startswith("Not started.")
    clock.set(SATURDAY_NOON)
    services.campaigns.start(manager, campaign)
    data = why()
    assert data["window"]["open"] is False and data["window"]["reason"] == "weekend"
    monday_10 = MONDAY_NOON.replace(day=30, hour=10).astimezone(UTC)
    assert data["window"]["next_start"] == monday_10.isoformat()
    expected = "Not calling now: outside the calling windows. Calls resume 30 Nov 2026, 10:00."
    assert data["text"]["why"] == expected
    show = url(web_app, "campaigns.show", org_id=orgs.a.id, campaign_id=campaign)
    assert expected in body(browser(web_app, users.a.reviewer).get(show))
    clock.set(MONDAY_NOON.replace(month=12, day=24, hour=11))  # Christmas Eve, a Thursday
    data = why()
    assert data["window"]["holiday"] == "Jouluaatto"
    assert data["text"]["why"] == (
        "Not calling today: it is a public holiday (Jouluaatto). Calls resume 28 Dec 2026, 10:00."
    )
    services.campaigns.pause(manager, campaign)
    assert why()["text"]["why"].startswith("Paused")


def test_the_list_pages_newest_first_with_counts_in_a_fixed_number_of_queries(
    web_app: Flask, services: Services, clock: MovableClock, tmp_path: Path
) -> None:
    org = services.accounts.add_org(Actor.cli(), unique("Sivula"))
    email = f"{unique('manager')}@sivula.example"
    user, _ = services.accounts.add_user(
        Actor.cli(org.id), email, org.id, "manager", password="Salasana-sivula-2026"
    )
    manager = Actor(email, user.id, org.id, Role.MANAGER)
    made = []
    for _ in range(30):
        clock.advance(timedelta(minutes=1))
        made.append(make_campaign(services, manager))
    newest = make_campaign(services, manager, contacts=FIVE.encode(), tmp=tmp_path)
    services.campaigns.start(manager, newest)
    _dial(services, newest, clock)

    client = browser(web_app)
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    from tests.web.conftest import login

    assert login(client, email, "Salasana-sivula-2026").status_code == 302
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    first_path = url(web_app, "campaigns.index", org_id=org.id)
    sa.event.listen(services.engine, "before_cursor_execute", count)
    try:
        first = body(client.get(first_path))
        on_first = len(statements)
        older = first.split('href="')[-1]  # the last link of the page: "Older campaigns"
        assert "Older campaigns" in first and "Newer campaigns" not in first
        second_path = older.split('"')[0].replace("&amp;", "&")
        second = body(client.get(second_path))
        on_second = len(statements) - on_first
    finally:
        sa.event.remove(services.engine, "before_cursor_execute", count)
    names = [campaign_row(services, cid).name for cid in [*made, newest]]
    listed_first = [n for n in reversed(names) if n in first]
    assert listed_first == list(reversed(names))[:25]  # the 25 newest, newest first
    assert first.index(names[-1]) < first.index(names[-2])
    assert [n for n in names if n in second] == names[:6]
    assert "Newer campaigns" in second and "Older campaigns" not in second
    assert on_first == on_second  # 25 rows or 6: the same queries (no query per campaign)
    row = first.split(f">{names[-1]}</a>")[1].split("</tr>")[0]
    # Done: the completed and the busy one (no retry made here); being called: two.
    assert '<td class="num">5</td>' in row and 'value="40"' in row
    assert "40 % done" in row and "2 being called" in row


def test_the_command_line_calls_the_same_service(
    services: Services, users: Users, orgs: Orgs, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("IVR_DATA_DIR", str(services.settings.data_dir))
    monkeypatch.setenv("IVR_DATABASE_URL", services.settings.database_url)
    campaign = make_campaign(services, users.a.manager.actor(), contacts=FIVE.encode(),
                             tmp=tmp_path)  # fmt: skip
    name = campaign_row(services, campaign).name
    # Without --org the command line acts on the campaigns of no organisation only.
    assert main(["campaign", "start", name]) == 2
    assert f"no campaign named {name!r}" in capsys.readouterr().err
    assert main(["campaign", "start", name, "--org", orgs.a.name]) == 0
    assert "5 first attempt(s) scheduled" in capsys.readouterr().out
    entry = audit_of(services, campaign)[-1]
    assert entry.action == "campaign.start" and entry.actor.startswith("cli:")
    assert entry.org_id == orgs.a.id
    # Another organisation's campaign is not found by name, even with --org.
    assert main(["campaign", "status", name, "--org", orgs.b.name]) == 2
    assert "no campaign named" in capsys.readouterr().err
    # A campaign without an organisation, from a flow file, is seen by no staff user.
    flow = Path(__file__).parents[1] / "e2e" / "flows" / "mini-survey.yaml"
    loose = unique("Irrallinen")
    assert main(["campaign", "create", loose, "--flow", str(flow), "--caller-id",
                 "029 123 4567"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["campaign", "list"]) == 0
    listed = capsys.readouterr().out
    assert f"{loose}: draft" in listed and name not in listed
    assert loose not in [c["name"] for c in services.campaigns.list(users.a.admin.actor())]
    # A flow kept in the database, named flow:<id>, in its own organisation only.
    from tests.web.campaign_support import add_flow

    flow_id = add_flow(services, orgs.a.id)
    made = unique("Tietokannasta")
    args = ["campaign", "create", made, "--flow", f"flow:{flow_id}"]
    assert main([*args, "--org", orgs.b.name]) == 2
    assert "no flow" in capsys.readouterr().err
    assert main([*args, "--org", orgs.a.name]) == 0
    assert main(["campaign", "list", "--org", orgs.a.name]) == 0
    assert f"{made}: draft" in capsys.readouterr().out
