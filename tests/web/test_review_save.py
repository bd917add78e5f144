"""Saving a review (SQLite and PostgreSQL): the corrected text is stored beside the
machine text (which never changes), with the state, the tags, a change log entry per
changed field and one audit entry, all in one transaction; "Save and next" opens the
next answer of the same queue; another organisation's reviewer gets 404."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from ivr.review.words import QueueFilter
from ivr.services import Services
from ivr.store.models import TranscriptRow
from ivr.store.org_models import AuditEntry
from ivr.store.work_models import TranscriptEdit, TranscriptTag
from tests.support.results import Seeded, seed_results
from tests.web.campaign_support import browser
from tests.web.conftest import BASE_URL, Users, post, unique


@pytest.fixture(scope="module")
def seeded(services: Services, users: Users, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    tmp = tmp_path_factory.mktemp("review-save")
    return seed_results(services, users.a.manager.actor(), tmp, count=10, name=unique("Tallenna"))


@pytest.fixture(scope="module")
def tag_ids(services: Services, users: Users) -> dict[str, int]:
    manager = users.a.manager.actor()
    made = [
        services.review.add_tag(manager, unique(name), key)
        for name, key in (("Liikenne", None), ("Palvelut", None))
    ]
    return {"traffic": made[0].id, "services": made[1].id}


def test_save_and_next_stores_the_correction_beside_the_machine_text(
    web_app: Flask, services: Services, users: Users, seeded: Seeded, tag_ids: dict[str, int]
) -> None:
    reviewer = users.a.reviewer
    client = browser(web_app, reviewer)
    first, second = seeded.transcript_ids[:2]
    with services.factory() as s:
        machine = s.get(TranscriptRow, first).machine_text  # type: ignore[union-attr]
    query = f"campaign={seeded.campaign_id}"
    response = post(
        client,
        f"/o/{reviewer.org_id}/review/{first}?{query}",
        {
            "corrected_text": "Kevyen liikenteen väyliä pitäisi korjata heti",
            "tags": [str(tag_ids["traffic"])],
            "action": "reviewed",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/o/{reviewer.org_id}/review/{second}?{query}"
    with services.factory() as s:
        row = s.get(TranscriptRow, first)
        assert row is not None
        assert row.machine_text == machine  # never edited
        assert row.corrected_text == "Kevyen liikenteen väyliä pitäisi korjata heti"
        assert row.review_state.value == "reviewed"
        assert row.reviewed_by == reviewer.user_id and row.reviewed_at is not None
        tags = set(
            s.scalars(sa.select(TranscriptTag.tag_id).where(TranscriptTag.transcript_id == first))
        )
        assert tags == {tag_ids["traffic"]}
        edits = s.scalars(
            sa.select(TranscriptEdit)
            .where(TranscriptEdit.transcript_id == first)
            .order_by(TranscriptEdit.id)
        ).all()
        assert [(e.field, e.old) for e in edits] == [
            ("corrected_text", None), ("review_state", "new"), ("tags", ""),
        ]  # fmt: skip
        assert {e.actor for e in edits} == {reviewer.email}
        entry = s.scalars(
            sa.select(AuditEntry).where(
                AuditEntry.action == "transcript.review", AuditEntry.target_id == str(first)
            )
        ).one()
        detail = json.loads(entry.detail)
        assert detail["changed"] == ["corrected_text", "review_state", "tags"]
        assert detail["campaign_id"] == seeded.campaign_id and entry.org_id == reviewer.org_id
    # The change log is on the page.
    page = client.get(f"/o/{reviewer.org_id}/review/{first}", base_url=BASE_URL).get_data(
        as_text=True
    )
    assert "korjata heti" in page and "Change log" in page
    # The queue of new answers no longer holds it; the reviewed one does.
    queue = services.review.queue(reviewer.actor(), QueueFilter(campaign=seeded.campaign_id), None)
    assert first not in [r.id for r in queue.page.rows]
    assert queue.counts["reviewed"] == 1
    tagged = QueueFilter(campaign=seeded.campaign_id, state="reviewed", tag=tag_ids["traffic"])
    assert [r.id for r in services.review.queue(reviewer.actor(), tagged, None).page.rows] == [
        first
    ]


def test_an_unchanged_text_is_no_correction_and_a_second_look_is_a_state(
    web_app: Flask, services: Services, users: Users, seeded: Seeded
) -> None:
    reviewer = users.a.reviewer
    client = browser(web_app, reviewer)
    target = seeded.transcript_ids[2]
    with services.factory() as s:
        machine = s.get(TranscriptRow, target).machine_text  # type: ignore[union-attr]
    response = post(
        client,
        f"/o/{reviewer.org_id}/review/{target}",
        {"corrected_text": machine + "\r\n", "action": "second_look"},
    )
    assert response.status_code == 302
    with services.factory() as s:
        row = s.get(TranscriptRow, target)
        assert row is not None and row.corrected_text is None
        assert row.review_state.value == "second_look"
        fields = s.scalars(
            sa.select(TranscriptEdit.field).where(TranscriptEdit.transcript_id == target)
        ).all()
        assert fields == ["review_state"]
    # Saving again with nothing changed writes nothing.
    before = _audit_count(services, target)
    post(
        client,
        f"/o/{reviewer.org_id}/review/{target}",
        {"corrected_text": machine, "action": "save"},
    )
    assert _audit_count(services, target) == before


def _audit_count(services: Services, transcript_id: int) -> int:
    with services.factory() as s:
        return int(
            s.scalar(
                sa.select(sa.func.count()).where(
                    AuditEntry.action == "transcript.review",
                    AuditEntry.target_id == str(transcript_id),
                )
            )
            or 0
        )


def test_another_organisations_reviewer_gets_404_and_changes_nothing(
    web_app: Flask, services: Services, users: Users, seeded: Seeded, tag_ids: dict[str, int]
) -> None:
    target = seeded.transcript_ids[3]
    a_org, b = users.a.reviewer.org_id, users.b.reviewer
    client = browser(web_app, b)
    for org in (a_org, b.org_id):
        assert client.get(f"/o/{org}/review/{target}", base_url=BASE_URL).status_code == 404
        assert client.get(f"/o/{org}/review/{target}/next", base_url=BASE_URL).status_code == 404
        response = post(
            client, f"/o/{org}/review/{target}", {"corrected_text": "x", "action": "reviewed"}
        )
        assert response.status_code == 404
    # A's own reviewer cannot give another organisation's tag (B's tag id): 404, no change.
    b_tag = services.review.add_tag(users.b.manager.actor(), unique("Beta"), None)
    own = browser(web_app, users.a.reviewer)
    response = post(
        own,
        f"/o/{a_org}/review/{target}",
        {"corrected_text": "x", "tags": [str(b_tag.id)], "action": "reviewed"},
    )
    assert response.status_code == 404
    with services.factory() as s:
        row = s.get(TranscriptRow, target)
        assert row is not None and row.corrected_text is None and row.review_state.value == "new"


def test_the_last_answer_of_a_queue_leads_back_to_the_queue(
    web_app: Flask, services: Services, users: Users, tmp_path: Path
) -> None:
    one = seed_results(services, users.a.manager.actor(), tmp_path, count=1, name=unique("Yksi"))
    reviewer = users.a.reviewer
    client = browser(web_app, reviewer)
    [only] = one.transcript_ids
    response = post(
        client,
        f"/o/{reviewer.org_id}/review/{only}?campaign={one.campaign_id}",
        {"corrected_text": "Korjattu", "action": "reviewed"},
    )
    assert (
        response.headers["Location"] == f"/o/{reviewer.org_id}/review/?campaign={one.campaign_id}"
    )
    page = client.get(response.headers["Location"], base_url=BASE_URL).get_data(as_text=True)
    assert "There are no more answers in this queue." in page
    assert re.search(r'data-state-count="reviewed">1<', page)
