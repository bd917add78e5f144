"""The callback worklist through Flask's test client, on SQLite and PostgreSQL: the pilot's
counts exactly as the seeded plans say, the filters and keyset pages, assignment, a request
from new to resolved with its notes and audit entries, the answer a request must end with,
a stale form refused, overdue from the clock, and another organisation's 404."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ivr.callbacks import service as callback_service
from ivr.callbacks.service import Filters
from ivr.clock import MovableClock
from ivr.services import Services
from ivr.store.models import CallbackRequest, CallbackStatus
from ivr.store.org_models import AuditEntry
from ivr.store.work_models import CallbackNote
from tests.support.results import Seeded, seed_results
from tests.web.campaign_support import body, browser, error_of
from tests.web.conftest import Person, Users, post, unique

HELSINKI = ZoneInfo("Europe/Helsinki")
_numbers = iter(range(2_000_000, 9_000_000, 10_000))  # each seed its own phone numbers


def _seed(services: Services, users: Users, tmp_path: Path, count: int = 10) -> Seeded:
    return seed_results(
        services,
        users.a.manager.actor(),
        tmp_path,
        count=count,
        name=unique("Soittopyynnöt"),
        first_number=next(_numbers),
    )


def _planned(seeded: Seeded) -> Counter[str]:
    """The channels asked for, counted from the plans (never from the code under test)."""
    return Counter(p.callback for p in seeded.plans if p.callback)


def _listed(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr data-request="(\d+)"', page)]


def _counts(page: str, key: str) -> list[int] | None:
    """The numbers of one row of the counts table (received, contacted, resolved, could not
    reach, open, overdue), or None when the row is missing."""
    found = re.search(rf'<tr data-counts="{re.escape(key)}">(.*?)</tr>', page, re.S)
    if found is None:
        return None
    return [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', found.group(1))]


def _list_url(org_id: str, **args: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in args.items())
    return f"/o/{org_id}/callbacks/?{query}"


def _row(services: Services, request_id: int) -> CallbackRequest:
    with services.factory() as s:
        found = s.get(CallbackRequest, request_id)
        assert found is not None
        s.expunge(found)
        return found


def _version(client: FlaskClient, org_id: str, request_id: int) -> str:
    page = body(client.get(f"/o/{org_id}/callbacks/{request_id}"))
    found = re.search(r'name="version" value="(\d+)"', page)
    assert found, page
    return found.group(1)


def _act(client: FlaskClient, org_id: str, request_id: int, **form: str) -> TestResponse:
    form.setdefault("version", _version(client, org_id, request_id))
    return post(client, f"/o/{org_id}/callbacks/{request_id}", form)


# --------------------------------------------------------------------------- counts
def test_counts_exactly_as_planned_per_campaign_period_and_overdue(
    services: Services, users: Users, clock: MovableClock, web_app: Flask, tmp_path: Path
) -> None:
    seeded = _seed(services, users, tmp_path, count=20)
    reviewer = browser(web_app, users.a.reviewer)  # after the seed: it moves the clock
    org_id = users.a.reviewer.org_id
    received = sum(_planned(seeded).values())
    assert received == 6 == len(seeded.callback_ids)  # 3 per 10 plans

    page = body(reviewer.get(_list_url(org_id, campaign=seeded.campaign_id)))
    assert _counts(page, seeded.campaign_id) == [received, 0, 0, 0, received, 0]
    overall = _counts(page, "all")
    assert overall is not None and overall[0] >= received
    assert sorted(_listed(page)) == sorted(seeded.callback_ids)
    assert "Overdue" not in page.split("<table", 1)[1].split("</table>")[0]

    # Work two: one resolved, one could not be reached; then the limit passes.
    first, second, *_ = seeded.callback_ids
    assert _act(reviewer, org_id, first, action="contacted").status_code == 302
    assert (
        _act(
            reviewer, org_id, first, action="resolve", resolution="Ohjattu kotihoitoon"
        ).status_code
        == 302
    )  # noqa: E501
    assert (
        _act(
            reviewer, org_id, second, action="unreachable", resolution="Kolme yritystä"
        ).status_code
        == 302
    )  # noqa: E501
    page = body(reviewer.get(_list_url(org_id, campaign=seeded.campaign_id)))
    assert _counts(page, seeded.campaign_id) == [received, 1, 1, 1, received - 2, 0]

    clock.advance(timedelta(hours=services.settings.web.callback_overdue_hours, minutes=1))
    reviewer = browser(web_app, users.a.reviewer)  # a new session: the old one idled out
    page = body(reviewer.get(_list_url(org_id, campaign=seeded.campaign_id)))
    assert _counts(page, seeded.campaign_id) == [received, 1, 1, 1, received - 2, received - 2]
    table = page.split('<table class="callback-list">', 1)[1].split("</table>")[0]
    assert table.count('class="status status-paused overdue">Overdue<') == received - 2
    overdue = body(reviewer.get(_list_url(org_id, campaign=seeded.campaign_id, overdue="1")))
    assert sorted(_listed(overdue)) == sorted(seeded.callback_ids[2:])

    # The period: whole days in the organisation's time zone.
    today = clock().astimezone(HELSINKI).date()
    around = _list_url(
        org_id,
        campaign=seeded.campaign_id,
        **{"from": str(today - timedelta(days=5)), "to": str(today)},
    )
    assert _counts(body(reviewer.get(around)), seeded.campaign_id)[0] == received  # type: ignore[index]
    later = body(reviewer.get(_list_url(org_id, **{"from": str(today + timedelta(days=1))})))
    assert _counts(later, seeded.campaign_id) is None
    assert _counts(later, "all") == [0, 0, 0, 0, 0, 0]


def test_a_bad_period_is_named_beside_the_field_and_in_the_summary(
    users: Users, web_app: Flask
) -> None:
    reviewer = browser(web_app, users.a.reviewer)
    org_id = users.a.reviewer.org_id
    page = body(reviewer.get(_list_url(org_id, **{"from": "30.11.2026"})))
    assert "YYYY-MM-DD" in error_of(page, "from")
    page = body(reviewer.get(_list_url(org_id, **{"from": "2030-01-02", "to": "2030-01-01"})))
    assert "on or after" in error_of(page, "to")
    assert 'data-counts="all"' not in page


# --------------------------------------------------------------------------- the list
def test_filters_and_keyset_pages(
    services: Services,
    users: Users,
    web_app: Flask,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seeded = _seed(services, users, tmp_path, count=30)
    reviewer = browser(web_app, users.a.reviewer)  # after the seed: it moves the clock
    org_id = users.a.reviewer.org_id
    planned = _planned(seeded)
    asked = [p.callback for p in seeded.plans if p.callback]
    by_channel = {
        channel: {i for i, c in zip(seeded.callback_ids, asked, strict=True) if c == channel}
        for channel in planned
    }
    for channel, ids in by_channel.items():
        page = body(reviewer.get(_list_url(org_id, campaign=seeded.campaign_id, channel=channel)))
        assert set(_listed(page)) == ids and len(ids) == planned[channel] == 3

    # Mine: nothing until one is assigned to me; then that one.
    mine = _list_url(org_id, campaign=seeded.campaign_id, assignee="mine")
    assert _listed(body(reviewer.get(mine))) == []
    target = seeded.callback_ids[4]
    assert _act(reviewer, org_id, target, action="assign", assignee="me").status_code == 302
    assert _listed(body(reviewer.get(mine))) == [target]
    assert _row(services, target).assigned_to == users.a.reviewer.user_id
    unassigned = body(reviewer.get(_list_url(org_id, campaign=seeded.campaign_id, assignee="none")))
    assert set(_listed(unassigned)) == set(seeded.callback_ids) - {target}
    assigned = body(reviewer.get(_list_url(org_id, campaign=seeded.campaign_id, status="assigned")))
    assert _listed(assigned) == [target]
    assert "Reviewer Alfalan" in assigned  # the assignee's name

    # Keyset pages of 4 through the page's own "Next page" links: every request once, oldest
    # first.
    monkeypatch.setattr(callback_service, "PAGE_SIZE", 4)
    seen: list[int] = []
    link: str | None = _list_url(org_id, campaign=seeded.campaign_id, status="all")
    while link:
        page = body(reviewer.get(link))
        seen += _listed(page)
        found = re.search(r'<a href="([^"]+)" rel="next">', page)
        link = found.group(1).replace("&amp;", "&") if found else None
        assert len(seen) <= len(seeded.callback_ids)
    assert seen == seeded.callback_ids  # the seed made them in time order
    # The service gives the same order for another page size.
    actor = users.a.reviewer.actor()
    walked, after = [], ""
    while True:
        got = services.callbacks.worklist(
            actor, Filters(status="all", campaign=seeded.campaign_id), after=after, limit=5
        )
        walked += [item.id for item in got.items]
        if got.next_after is None:
            break
        after = got.next_after
    assert walked == seeded.callback_ids


def test_the_phone_number_is_shown_only_on_the_request_page(
    services: Services, users: Users, web_app: Flask, tmp_path: Path
) -> None:
    seeded = _seed(services, users, tmp_path)
    reviewer = browser(web_app, users.a.reviewer)  # after the seed: it moves the clock
    org_id = users.a.reviewer.org_id
    phone = _row(services, seeded.callback_ids[0]).phone_number
    assert phone
    listing = body(reviewer.get(_list_url(org_id, campaign=seeded.campaign_id)))
    assert str(seeded.callback_ids[0]) in listing and phone not in listing
    detail = body(reviewer.get(f"/o/{org_id}/callbacks/{seeded.callback_ids[0]}"))
    assert phone in detail
    assert "2021-12-a" in detail  # the consent wording version
    assert f"/o/{org_id}/campaigns/{seeded.campaign_id}" in detail  # the call's campaign
    assert "<code>services</code>" in detail  # the call's answers


# --------------------------------------------------------------------------- one request
def _notes(services: Services, request_id: int) -> list[CallbackNote]:
    with services.factory() as s:
        found = list(
            s.scalars(
                sa.select(CallbackNote)
                .where(CallbackNote.request_id == request_id)
                .order_by(CallbackNote.id)
            )
        )
        s.expunge_all()
        return found


def _audit(services: Services, request_id: int) -> list[AuditEntry]:
    with services.factory() as s:
        found = list(
            s.scalars(
                sa.select(AuditEntry)
                .where(
                    AuditEntry.target_type == "callback_request",
                    AuditEntry.target_id == str(request_id),
                )
                .order_by(AuditEntry.id)
            )
        )
        s.expunge_all()
        return found


def test_from_new_to_resolved_with_notes_and_audit_then_reopened(
    services: Services, users: Users, clock: MovableClock, web_app: Flask, tmp_path: Path
) -> None:
    seeded = _seed(services, users, tmp_path)
    reviewer = browser(web_app, users.a.reviewer)  # after the seed: it moves the clock
    org_id = users.a.reviewer.org_id
    rid = seeded.callback_ids[0]
    me: Person = users.a.reviewer
    assert _row(services, rid).status is CallbackStatus.NEW

    assert _act(reviewer, org_id, rid, action="assign", assignee="me").status_code == 302
    assert (
        _act(reviewer, org_id, rid, action="note", note="Soitin klo 10, ei vastausta.").status_code
        == 302
    )  # noqa: E501
    clock.advance(timedelta(minutes=10))
    assert _act(reviewer, org_id, rid, action="contacted", note="Tavoitettu.").status_code == 302
    row = _row(services, rid)
    assert row.status is CallbackStatus.CONTACTED and row.resolution is None
    assert row.updated_at is not None and abs(row.updated_at - clock()) < timedelta(seconds=5)

    # Ending needs a recorded answer: refused beside the field and in the summary.
    refused = _act(reviewer, org_id, rid, action="resolve", resolution="  ")
    assert refused.status_code == 400
    assert "recorded answer" in error_of(body(refused), "resolution")
    assert _row(services, rid).status is CallbackStatus.CONTACTED
    assert len(_notes(services, rid)) == 3

    answer = "Ohjattu kotihoidon palveluohjaukseen, tulkki venäjä."
    done = _act(reviewer, org_id, rid, action="resolve", resolution=answer)
    assert done.status_code == 302
    page = body(reviewer.get(done.headers["Location"]))
    assert answer in page and "The request is now: Resolved." in page
    row = _row(services, rid)
    assert row.status is CallbackStatus.RESOLVED and row.resolution == answer
    assert row.resolved_at is not None and abs(row.resolved_at - clock()) < timedelta(seconds=5)

    notes = _notes(services, rid)
    assert [(n.status, n.text) for n in notes] == [
        (CallbackStatus.ASSIGNED, ""),
        (None, "Soitin klo 10, ei vastausta."),
        (CallbackStatus.CONTACTED, "Tavoitettu."),
        (CallbackStatus.RESOLVED, answer),
    ]
    assert {(n.actor, n.user_id) for n in notes} == {(me.email, me.user_id)}
    audit = _audit(services, rid)
    assert [a.action for a in audit] == [
        "callback.assign", "callback.note", "callback.contacted", "callback.resolve"
    ]  # fmt: skip
    assert {a.org_id for a in audit} == {org_id} and {a.user_id for a in audit} == {me.user_id}

    # A resolved request offers no assignment, and reopens only with a note.
    assert 'value="assign"' not in page
    refused = _act(reviewer, org_id, rid, action="reopen", **{"reopen-note": ""})
    assert refused.status_code == 400
    assert error_of(body(refused), "reopen-note")
    refused = _act(reviewer, org_id, rid, action="contacted")
    assert refused.status_code == 400
    assert (
        _act(
            reviewer, org_id, rid, action="reopen", **{"reopen-note": "Soitti uudelleen."}
        ).status_code
        == 302
    )  # noqa: E501
    row = _row(services, rid)
    assert row.status is CallbackStatus.ASSIGNED  # it has an assignee
    assert row.resolution is None and row.resolved_at is None
    assert _audit(services, rid)[-1].action == "callback.reopen"


def test_assign_to_another_member_but_never_to_an_outsider(
    services: Services, users: Users, web_app: Flask, tmp_path: Path
) -> None:
    seeded = _seed(services, users, tmp_path)
    reviewer = browser(web_app, users.a.reviewer)  # after the seed: it moves the clock
    org_id = users.a.reviewer.org_id
    rid = seeded.callback_ids[1]
    page = body(reviewer.get(f"/o/{org_id}/callbacks/{rid}"))
    assert users.a.manager.user_id in page and users.b.manager.user_id not in page
    refused = _act(reviewer, org_id, rid, action="assign", assignee=users.b.manager.user_id)
    assert refused.status_code == 400
    assert error_of(body(refused), "assignee")
    assert _row(services, rid).assigned_to is None
    done = _act(reviewer, org_id, rid, action="assign", assignee=users.a.manager.user_id)
    assert done.status_code == 302
    row = _row(services, rid)
    assert row.assigned_to == users.a.manager.user_id and row.status is CallbackStatus.ASSIGNED


def test_a_stale_form_is_refused_not_applied(
    services: Services, users: Users, web_app: Flask, tmp_path: Path
) -> None:
    seeded = _seed(services, users, tmp_path)
    reviewer = browser(web_app, users.a.reviewer)  # after the seed: it moves the clock
    org_id = users.a.reviewer.org_id
    rid = seeded.callback_ids[2]
    old = _version(reviewer, org_id, rid)
    colleague = browser(web_app, users.a.manager)
    assert _act(colleague, org_id, rid, action="contacted").status_code == 302
    notes = len(_notes(services, rid))
    stale = _act(
        reviewer, org_id, rid, action="resolve", resolution="Minun vastaukseni", version=old
    )
    assert stale.status_code == 409
    page = body(stale)
    assert "Someone else changed this request" in page
    assert "Minun vastaukseni" in page  # what was written is kept in the form
    row = _row(services, rid)
    assert row.status is CallbackStatus.CONTACTED and row.resolution is None
    assert len(_notes(services, rid)) == notes


def test_another_organisations_reviewer_gets_404(
    services: Services, users: Users, web_app: Flask, tmp_path: Path
) -> None:
    seeded = _seed(services, users, tmp_path)
    a_org, b_org = users.a.reviewer.org_id, users.b.reviewer.org_id
    rid = seeded.callback_ids[0]
    phone = _row(services, rid).phone_number
    assert phone
    outsider = browser(web_app, users.b.reviewer)
    for org_id in (a_org, b_org):
        assert outsider.get(f"/o/{org_id}/callbacks/{rid}").status_code == 404
        response = post(outsider, f"/o/{org_id}/callbacks/{rid}", {"action": "note", "note": "x"})
        assert response.status_code == 404
    assert outsider.get(f"/o/{a_org}/callbacks/").status_code == 404
    own = body(outsider.get(_list_url(b_org, campaign=seeded.campaign_id, status="all")))
    assert _listed(own) == [] and phone not in own
    assert _counts(own, seeded.campaign_id) is None
    assert len(_notes(services, rid)) == 0 and _row(services, rid).status is CallbackStatus.NEW
