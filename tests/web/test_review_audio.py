"""An answer's audio (SQLite and PostgreSQL): only through a link signed for the user,
short-lived; Range requests work; a listen is audited once per playback start and a
download once; another organisation's reviewer gets 404, an expired, forged or other
user's link 403."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from ivr.clock import MovableClock
from ivr.services import Services
from ivr.store.org_models import AuditEntry
from tests.support.results import Seeded, seed_results
from tests.web.conftest import BASE_URL, Person, Users, login, unique


@pytest.fixture(scope="module")
def seeded(services: Services, users: Users, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    tmp = tmp_path_factory.mktemp("review-audio")
    return seed_results(services, users.a.manager.actor(), tmp, count=3, name=unique("Kuuntele"))


def _client(app: Flask, who: Person) -> FlaskClient:
    client = app.test_client()
    client.environ_base.update({"HTTP_REFERER": f"{BASE_URL}/", "wsgi.url_scheme": "https"})
    assert login(client, who.email, who.password).status_code == 302
    return client


def _link(client: FlaskClient, org_id: str, transcript_id: int) -> str:
    page = client.get(f"/o/{org_id}/review/{transcript_id}", base_url=BASE_URL)
    found = re.search(r'<audio[^>]* src="([^"]+)"', page.get_data(as_text=True))
    assert found, page.status
    return found.group(1).replace("&amp;", "&")


def _listens(services: Services, transcript_id: int) -> list[tuple[str, dict[str, object]]]:
    with services.factory() as s:
        rows = s.execute(
            sa.select(AuditEntry.action, AuditEntry.detail)
            .where(AuditEntry.action.in_(("recording.listen", "recording.download")))
            .order_by(AuditEntry.id)
        ).all()
    return [
        (a, d)
        for a, d in ((a, json.loads(d)) for a, d in rows)
        if d["transcript_id"] == transcript_id
    ]


def test_a_signed_link_plays_with_ranges_and_each_playback_is_audited(
    web_app: Flask, services: Services, users: Users, seeded: Seeded
) -> None:
    reviewer = users.a.reviewer
    client = _client(web_app, reviewer)
    target = seeded.transcript_ids[0]
    link = _link(client, reviewer.org_id, target)
    whole = client.get(link, base_url=BASE_URL)
    assert whole.status_code == 200 and whole.mimetype == "audio/wav"
    body = whole.get_data()
    assert body[:4] == b"RIFF" and body == seeded.recordings[0].read_bytes()
    assert (
        "no-store" in whole.headers["Cache-Control"] and "private" in whole.headers["Cache-Control"]
    )
    start = client.get(link, base_url=BASE_URL, headers={"Range": "bytes=0-99"})
    assert start.status_code == 206 and start.get_data() == body[:100]
    assert start.headers["Content-Range"] == f"bytes 0-99/{len(body)}"
    later = client.get(link, base_url=BASE_URL, headers={"Range": "bytes=100-"})
    assert later.status_code == 206 and later.get_data() == body[100:]
    listens = _listens(services, target)
    assert [a for a, _ in listens] == ["recording.listen", "recording.listen"]  # not the 3rd
    assert all(d["campaign_id"] == seeded.campaign_id for _, d in listens)
    download = client.get(link + "&download=1", base_url=BASE_URL)
    assert download.status_code == 200
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert [a for a, _ in _listens(services, target)][-1] == "recording.download"


def test_expired_forged_and_other_users_links_are_refused(
    web_app: Flask, services: Services, users: Users, seeded: Seeded, clock: MovableClock
) -> None:
    target = seeded.transcript_ids[1]
    reviewer, manager = users.a.reviewer, users.a.manager
    client = _client(web_app, reviewer)
    link = _link(client, reviewer.org_id, target)
    before = len(_listens(services, target))
    # Another user of the same organisation cannot use it.
    assert _client(web_app, manager).get(link, base_url=BASE_URL).status_code == 403
    # Nor an altered one, nor one for another answer.
    assert client.get(link[:-3] + "abc", base_url=BASE_URL).status_code == 403
    other = link.replace(f"/review/{target}/", f"/review/{seeded.transcript_ids[0]}/")
    assert client.get(other, base_url=BASE_URL).status_code == 403
    # No link at all: back to the answer's page (which gives a fresh one).
    bare = client.get(f"/o/{reviewer.org_id}/review/{target}/audio", base_url=BASE_URL)
    assert bare.status_code == 302 and bare.headers["Location"].endswith(f"/review/{target}")
    clock.advance(timedelta(seconds=services.settings.web.audio_link_seconds + 1))
    assert client.get(link, base_url=BASE_URL).status_code == 403
    assert len(_listens(services, target)) == before  # nothing served, nothing logged
    assert client.get(_link(client, reviewer.org_id, target), base_url=BASE_URL).status_code == 200


def test_another_organisations_reviewer_gets_404_for_the_audio(
    web_app: Flask, services: Services, users: Users, seeded: Seeded
) -> None:
    target = seeded.transcript_ids[2]
    a_link = _link(_client(web_app, users.a.reviewer), users.a.reviewer.org_id, target)
    b = users.b.reviewer
    client = _client(web_app, b)
    assert client.get(a_link, base_url=BASE_URL).status_code == 404
    in_b = a_link.replace(users.a.reviewer.org_id, b.org_id)
    assert client.get(in_b, base_url=BASE_URL).status_code == 404
    anonymous = web_app.test_client().get(a_link, base_url=BASE_URL)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert _listens(services, target) == []
