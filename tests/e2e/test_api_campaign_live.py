"""The REST API end to end against the real Asterisk: an integrator creates a campaign,
adds contacts and starts it through /api/v1 alone; the telephony worker calls simulated
residents; the results come back through the API, page by page with cursors, exactly as
the residents answered."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ivr.accounts.audit import Actor
from ivr.api.tokens import ApiTokens
from ivr.telephony.personas import number_for
from ivr.web import create_app
from tests.support.instance import destroy, make_instance, start_or_fail
from tests.support.telephony import ServiceThread

pytestmark = pytest.mark.pbx

FLOW = Path(__file__).parent / "flows" / "mini-survey.yaml"
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Europe/Helsinki"))
# persona code -> (contacts, the outcome of their one attempt)
PERSONAS = {701: (6, "completed"), 703: (3, "partial"), 401: (3, "declined")}


def test_a_campaign_made_through_the_api_calls_residents_and_reads_back(tmp_path: Path) -> None:
    app, _ = make_instance(prefix="ivr-api-")
    start_or_fail(app)
    services = app.services()
    try:
        org = services.accounts.add_org(Actor.cli(), "Apilan kunta")
        flow = services.flows.upload(Actor.cli(org.id), FLOW.read_text(), source=str(FLOW))
        token = ApiTokens(services.factory, services.clock).create(
            Actor.cli(org.id), "integraatio", "write"
        )
        client = create_app(services=services, clock=app.clock, testing=True).test_client()
        auth = {"Authorization": f"Bearer {token.secret}"}

        def call(method: str, path: str, body: Any = None, status: int = 200) -> Any:
            got = client.open(f"/api/v1{path}", method=method, json=body, headers=auth)
            assert got.status_code == status, (path, got.get_data(as_text=True))
            return got.get_json()

        def walk(path: str) -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = []
            cursor = ""
            while True:
                page = call("GET", f"{path}&starting_after={cursor}" if cursor else path)
                rows += page["data"]
                if not page["has_more"]:
                    return rows
                cursor = page["next_cursor"]

        made = call("POST", "/campaigns", {
            "name": "Kevään kysely", "flow": f"flow:{flow.id}", "caller_id": "029 123 4567",
            "windows": "mon-fri 10:00-20:00", "max_attempts": 1, "calls_per_second": 10,
            "max_concurrent": 20,
        }, status=201)  # fmt: skip
        cid = made["id"]
        rows = [
            {"phone": number_for(code, serial), "language": "fi"}
            for code, (count, _) in PERSONAS.items()
            for serial in range(1, count + 1)
        ]
        added = call("POST", f"/campaigns/{cid}/contacts", {"contacts": rows})
        assert (added["accepted"], added["rejected"]) == (len(rows), [])

        with ServiceThread(app, dial=True) as svc:
            svc.parts.dialer.ring_timeout = 4
            svc.set_time(MONDAY_10)
            assert call("POST", f"/campaigns/{cid}/start")["status"] == "running"
            deadline = time.monotonic() + 240
            while call("GET", f"/campaigns/{cid}")["status"] != "completed":
                assert time.monotonic() < deadline, "the campaign did not complete"
                time.sleep(0.5)

        calls = walk(f"/calls?campaign_id={cid}&limit=2")
        # Every attempt placed is a call (a declined one too: it was originated).
        assert Counter(c["status"] for c in calls) == {o: n for n, o in PERSONAS.values()}
        answers = walk(f"/campaigns/{cid}/answers?limit=2")
        # 701 presses 1 ("yes"); 703 presses an invalid key and hangs up: no answer.
        assert Counter((a["node_id"], a["value"]) for a in answers) == {("q1", "yes"): 6}
        report = call("GET", f"/campaigns/{cid}/report")
        assert report["funnel"]["contacts"] == len(rows)
        assert report["funnel"]["completed"] == 6
        codes = {d["code"]: d["contacts"] for d in report["aapor"]["dispositions"] if d["contacts"]}
        assert codes == {"1.1": 6, "1.2": 3, "2.11": 3}
    finally:
        services.close()
        destroy(app)
