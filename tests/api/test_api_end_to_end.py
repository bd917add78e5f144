"""End to end through the API alone: create a campaign, add contacts (a bad row rejected
with its index and reason), start it; the residents' calls are played out with the store's
own writers (as tests/support/results.py does: no Asterisk here); then the results are
read back page by page with cursors, and the report's numbers are the report page's."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from ivr.clock import MovableClock
from ivr.store.models import Contact
from tests.api.conftest import MakeApi, Site
from tests.support.results import PLANS, Seeded, _play
from tests.web.conftest import Users, unique

# One attempt each (the plans whose first attempt ends the story).
RESIDENTS = [p for p in PLANS if len(p.outcomes) == 1]


def test_create_add_start_and_read_the_results_back(
    module_site: Site, users: Users, make_api: MakeApi, clock: MovableClock, tmp_path: Path
) -> None:
    api = make_api("a", "write", unique("e2e"))
    made = api.post("/campaigns", {
        "name": unique("Asukaskysely"), "flow": "example:strategy-survey.yaml",
        "caller_id": "029 123 4567", "windows": "mon-sun 00:00-24:00", "allow_holidays": True,
    }, headers={"Idempotency-Key": unique("luo")})  # fmt: skip
    assert made.status_code == 201, made.get_json()
    cid = made.get_json()["id"]
    phones = [f"+35840{9000000 + n:07d}" for n in range(len(RESIDENTS))]
    rows = [{"phone": phone, "language": plan.language, "age_group": plan.age_group,
             "area": plan.area, "attributes": {"asiakasnumero": f"A-{n}"}}
            for n, (phone, plan) in enumerate(zip(phones, RESIDENTS, strict=True))]  # fmt: skip
    rows.insert(2, {"phone": "12", "language": "klingon"})
    added = api.post(f"/campaigns/{cid}/contacts", {"contacts": rows})
    assert added.status_code == 200, added.get_json()
    report = added.get_json()
    assert (report["accepted"], report["duplicates"]) == (len(RESIDENTS), 0)
    assert [(r["index"], r["field"]) for r in report["rejected"]] == [(2, "contacts[2]")]
    assert "phone number" in report["rejected"][0]["detail"]
    assert "language" in report["rejected"][0]["detail"]
    contacts = api.walk(f"/campaigns/{cid}/contacts", limit=2)
    assert sorted(c["phone"] for c in contacts) == sorted(phones)
    assert {c["attributes"]["asiakasnumero"] for c in contacts} == {
        f"A-{n}" for n in range(len(RESIDENTS))
    }
    started = api.post(f"/campaigns/{cid}/start", headers={"Idempotency-Key": unique("aloita")})
    assert started.status_code == 200 and started.get_json()["status"] == "running"

    with module_site.services.factory() as s:
        ids = dict(s.execute(sa.select(Contact.phone, Contact.id).where(
            Contact.campaign_id == cid)).tuples().all())  # fmt: skip
    seeded = Seeded(cid, "", [ids[p] for p in phones], list(RESIDENTS), [], [], [])
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    for index in range(len(RESIDENTS)):
        _play(module_site.services, seeded, index, 1, recordings, 30)

    answered = [p for p in RESIDENTS if p.outcomes[0] in ("completed", "partial", "opted_out")]
    calls = api.walk("/calls", campaign_id=cid, limit=2)
    assert len(calls) == len(answered)
    assert sorted(c["status"] for c in calls) == sorted(p.outcomes[0] for p in answered)
    answers = api.walk(f"/campaigns/{cid}/answers", limit=3)
    expected = sorted((n, v) for p in answered for n, v in p.answers.items())
    assert sorted((a["node_id"], a["value"]) for a in answers if a["kind"] != "open") == expected
    transcripts = api.walk("/transcripts", campaign_id=cid, limit=1)
    assert sorted(t["machine_text"] for t in transcripts) == sorted(
        " ".join(p.words) for p in answered if p.words
    )
    callbacks = api.walk("/callback_requests", campaign_id=cid, limit=1)
    assert sorted(r["channel"] for r in callbacks) == sorted(
        p.callback for p in answered if p.callback
    )
    ended = api.post(f"/callback_requests/{callbacks[0]['id']}", {"action": "resolve"})
    assert ended.status_code == 422 and ended.get_json()["errors"][0]["field"] == "resolution"
    done = api.post(f"/callback_requests/{callbacks[0]['id']}",
                    {"action": "resolve", "resolution": "Soitettu ja neuvottu"})  # fmt: skip
    assert done.status_code == 200 and done.get_json()["status"] == "resolved"

    numbers = api.get(f"/campaigns/{cid}/report")
    assert numbers.status_code == 200
    page = module_site.services.reports.campaign(users.a.manager.actor(), cid).to_dict()
    got = numbers.get_json()
    assert {k: got[k] for k in page} == json.loads(json.dumps(page, default=str))
    assert got["funnel"]["completed"] == sum(1 for p in answered if p.outcomes[0] == "completed")

    paused = api.post(f"/campaigns/{cid}/pause", {"reason": "tauko"})
    assert paused.status_code == 200 and paused.get_json()["status"] == "paused"
    stopped = api.post(f"/campaigns/{cid}/stop")
    assert stopped.status_code == 200 and stopped.get_json()["status"] == "stopped"
    again = api.post(f"/campaigns/{cid}/start")
    assert again.status_code == 409 and again.get_json()["type"].endswith("/final")
