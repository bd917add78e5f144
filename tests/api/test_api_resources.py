"""The resources over a seeded, completed campaign (tests/support/results.py): another
organisation's token finds nothing; every list walks every row exactly once with its
cursors; ``updated_since``; idempotent POST; problem details naming the field; 429."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ivr.api.ratelimit import RateLimiter
from ivr.clock import MovableClock
from ivr.store.models import Answer, Call, Campaign
from ivr.store.org_models import AuditEntry
from tests.api.conftest import Api, MakeApi, Site
from tests.support.results import Seeded, seed_results
from tests.web.conftest import Users, unique

COUNT = 13  # residents: the ten plans, then three again


@pytest.fixture(scope="module")
def seeded(module_site: Site, users: Users, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    tmp: Path = tmp_path_factory.mktemp("api-seed")
    return seed_results(
        module_site.services, users.a.manager.actor(), tmp, count=COUNT, name=unique("Api")
    )


@pytest.fixture(scope="module")
def api(make_api: MakeApi) -> Api:
    return make_api("a", "write", "Asianhallinta")


def _answered(seeded: Seeded) -> int:
    return sum(1 for p in seeded.plans for o in p.outcomes
               if o in ("completed", "partial", "opted_out"))  # fmt: skip


def test_another_organisations_token_finds_none_of_its_objects(
    seeded: Seeded, make_api: MakeApi, api: Api
) -> None:
    other = make_api("b", "write", "Betalan järjestelmä")
    call_id = api.walk("/calls", campaign_id=seeded.campaign_id)[0]["id"]
    cid, tid, rid = seeded.campaign_id, seeded.transcript_ids[0], seeded.callback_ids[0]
    for path in (f"/campaigns/{cid}", f"/campaigns/{cid}/contacts", f"/campaigns/{cid}/answers",
                 f"/campaigns/{cid}/report", f"/calls/{call_id}", f"/calls/{call_id}/answers",
                 f"/transcripts/{tid}", f"/callback_requests/{rid}"):  # fmt: skip
        got = other.get(path)
        assert got.status_code == 404, path
        assert got.mimetype == "application/problem+json"
        assert api.get(path).status_code == 200, path
    for path in (f"/campaigns/{cid}/start", f"/campaigns/{cid}/stop",
                 f"/campaigns/{cid}/contacts", f"/callback_requests/{rid}"):  # fmt: skip
        body: dict[str, Any] = {"contacts": [{"phone": "0401234567"}]} if "contacts" in path else {}
        if "callback" in path:
            body = {"action": "contacted"}
        assert other.post(path, body).status_code == 404, path
    assert other.get("/calls", campaign_id=cid).status_code == 404
    ids = {r["id"] for r in other.walk("/calls")} | {r["id"] for r in other.walk("/transcripts")}
    assert call_id not in ids and tid not in ids
    assert cid not in {c["id"] for c in other.walk("/campaigns")}


@pytest.mark.parametrize("limit", [1, 4, 100])
def test_every_list_walks_every_row_exactly_once(
    module_site: Site, seeded: Seeded, api: Api, limit: int
) -> None:
    cid = seeded.campaign_id
    calls = api.walk("/calls", campaign_id=cid, limit=limit)
    assert len(calls) == len({c["id"] for c in calls}) == _answered(seeded)
    contacts = api.walk(f"/campaigns/{cid}/contacts", limit=limit)
    assert sorted(c["id"] for c in contacts) == sorted(seeded.contact_ids)
    answers = api.walk(f"/campaigns/{cid}/answers", limit=limit)
    with module_site.services.factory() as s:
        stored = set(s.scalars(sa.select(Answer.id).join(Call).where(Call.campaign_id == cid)))
    planned = sum(len(p.answers) + bool(p.words) for p in seeded.plans
                  if "completed" in p.outcomes or "partial" in p.outcomes)  # fmt: skip
    assert [a["id"] for a in answers] == sorted(stored, key=lambda i: (
        next(a["created_at"] for a in answers if a["id"] == i), i))  # fmt: skip
    assert len(answers) == len(stored) == planned
    transcripts = api.walk("/transcripts", campaign_id=cid, limit=limit)
    assert sorted(t["id"] for t in transcripts) == sorted(seeded.transcript_ids)
    callbacks = api.walk("/callback_requests", campaign_id=cid, limit=limit)
    assert sorted(r["id"] for r in callbacks) == sorted(seeded.callback_ids)
    for rows in (calls, contacts, answers, transcripts, callbacks):
        keys = [(r.get("created_at") or r.get("started_at"), str(r["id"])) for r in rows]
        assert [k[0] for k in keys] == sorted(k[0] for k in keys)  # oldest first


def test_transcripts_have_machine_and_corrected_text_and_reading_them_is_audited(
    module_site: Site, seeded: Seeded, api: Api, users: Users
) -> None:
    first = seeded.transcript_ids[0]
    module_site.services.review.save(
        users.a.reviewer.actor(), first, corrected="Korjattu teksti", state="reviewed",
        tag_ids=set(),
    )  # fmt: skip
    got = api.get(f"/transcripts/{first}").get_json()
    assert got["machine_text"] == " ".join(seeded.plans[0].words)
    assert (got["corrected_text"], got["text"]) == ("Korjattu teksti", "Korjattu teksti")
    assert got["review_state"] == "reviewed"
    reviewed = api.walk("/transcripts", campaign_id=seeded.campaign_id, review_state="reviewed")
    assert [t["id"] for t in reviewed] == [first]
    with module_site.services.factory() as s:
        actions = list(s.scalars(
            sa.select(AuditEntry.action).where(AuditEntry.actor == "token:Asianhallinta")
        ))  # fmt: skip
    assert "api.transcript.read" in actions and "api.transcripts.list" in actions


def test_updated_since_keeps_the_rows_changed_since(
    seeded: Seeded, api: Api, clock: MovableClock
) -> None:
    cid = seeded.campaign_id
    everything = api.walk("/callback_requests", campaign_id=cid)
    assert len(everything) == len(seeded.callback_ids)
    clock.advance(timedelta(hours=1))
    since = clock().isoformat()
    assert api.walk("/callback_requests", campaign_id=cid, updated_since=since) == []
    assert api.walk("/calls", campaign_id=cid, updated_since=since) == []
    target = seeded.callback_ids[1]
    changed = api.post(f"/callback_requests/{target}", {"action": "contacted"})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["status"] == "contacted"
    later = api.walk("/callback_requests", campaign_id=cid, updated_since=since)
    assert [r["id"] for r in later] == [target]
    old = (clock() - timedelta(days=30)).isoformat()
    assert len(api.walk("/calls", campaign_id=cid, updated_since=old)) == _answered(seeded)


def test_bad_list_parameters_are_400_naming_the_parameter(seeded: Seeded, api: Api) -> None:
    other_cursor = api.get("/calls", limit=1).get_json()["next_cursor"]
    for query, field in (
        ({"limit": "0"}, "limit"),
        ({"limit": "1000"}, "limit"),
        ({"starting_after": "!!!"}, "starting_after"),
        ({"starting_after": other_cursor}, "starting_after"),
        ({"updated_since": "2026-12-01T08:00:00"}, "updated_since"),
        ({"updated_since": "eilen"}, "updated_since"),
    ):
        got = api.get("/transcripts", **query)
        assert got.status_code == 400, query
        assert got.mimetype == "application/problem+json"
        assert [e["field"] for e in got.get_json()["errors"]] == [field]


def test_problem_details_name_each_field(api: Api) -> None:
    ours = api.post("/campaigns", {"name": "Kysely", "flow": "/etc/passwd",
                                   "max_attempts": "kolme", "colour": "red"})  # fmt: skip
    assert ours.status_code == 422
    body = ours.get_json()
    assert body["status"] == 422 and body["title"] and body["detail"]
    assert {e["field"] for e in body["errors"]} == {"flow", "max_attempts", "colour"}
    service = api.post("/campaigns", {"name": " ", "flow": "example:strategy-survey.yaml",
                                      "max_attempts": 0, "timezone": "Mars/Olympus"})  # fmt: skip
    assert service.status_code == 422
    assert {e["field"] for e in service.get_json()["errors"]} == {
        "name",
        "max_attempts",
        "timezone",
    }
    not_json = api.client.post("/api/v1/campaigns", data="{", headers={
        **api.headers(), "Content-Type": "application/json"})  # fmt: skip
    assert not_json.status_code == 400 and not_json.get_json()["errors"][0]["field"] == "body"


def _create(api: Api, key: str, name: str) -> Any:
    return api.post("/campaigns", {"name": name, "flow": "example:strategy-survey.yaml"},
                    headers={"Idempotency-Key": key})  # fmt: skip


def test_a_post_with_an_idempotency_key_is_done_once(
    module_site: Site, api: Api, make_api: MakeApi
) -> None:
    key, name = unique("avain"), unique("Kertaalleen")
    first = _create(api, key, name)
    assert first.status_code == 201
    again = _create(api, key, name)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    with module_site.services.factory() as s:
        assert s.scalar(sa.select(sa.func.count()).where(Campaign.name == name)) == 1
    reused = _create(api, key, unique("Toinen"))
    assert reused.status_code == 422
    assert reused.get_json()["errors"][0]["field"] == "Idempotency-Key"
    # A refusal is kept too: the same retry gets the same answer, not a second attempt.
    taken = _create(api, unique("avain"), name)
    assert taken.status_code == 422 and taken.get_json()["errors"][0]["field"] == "name"
    # The key is the organisation's: another organisation's same key is another request.
    other = make_api("b", "write", "Betala")
    assert _create(other, key, name).status_code == 201


@pytest.fixture()
def tight_limit(module_site: Site) -> Iterator[None]:
    state = module_site.app.extensions["ivr_api"]
    kept = state.limiter
    state.limiter = RateLimiter(rate=0.5, burst=3)
    yield
    state.limiter = kept


def test_too_many_requests_are_429_with_retry_after(
    make_api: MakeApi, clock: MovableClock, tight_limit: None
) -> None:
    api = make_api(scope="read", name=unique("kiireinen"))
    assert [api.get("/campaigns").status_code for _ in range(3)] == [200, 200, 200]
    refused = api.get("/campaigns")
    assert refused.status_code == 429 and refused.mimetype == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 2
    other = make_api(scope="read", name=unique("toinen"))
    assert other.get("/campaigns").status_code == 200  # per token
    clock.advance(timedelta(seconds=int(refused.headers["Retry-After"])))
    assert api.get("/campaigns").status_code == 200
