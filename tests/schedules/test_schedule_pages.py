"""The report schedule pages through the test client: create with field errors, create,
send now (to a real SMTP server) and the history; reviewers are refused."""

from __future__ import annotations

from flask import Flask

from tests.schedules.conftest import MailServer
from tests.web.conftest import Orgs, Users, login, post, text, unique


def _client(web_app: Flask, person: object) -> object:
    client = web_app.test_client()
    client.environ_base.update({"HTTP_REFERER": "https://localhost/", "wsgi.url_scheme": "https"})
    response = login(client, person.email, person.password)  # type: ignore[attr-defined]
    assert response.status_code == 302
    assert post(client, "/language", {"language": "en"}).status_code in (302, 303)  # type: ignore[arg-type]
    return client


def test_create_with_errors_then_send_now_and_see_the_history(
    web_app: Flask, orgs: Orgs, users: Users, mail_server: MailServer
) -> None:
    client = _client(web_app, users.a.manager)
    base = f"/o/{orgs.a.id}/schedules"
    bad = post(client, f"{base}/new", {"name": "", "frequency": "monthly", "day": "1",
                                        "time": "25:99", "scope": "all", "language": "fi",
                                        "recipients": "esihenkilo@kunta.example, ei-osoite"})  # type: ignore[arg-type]  # fmt: skip
    assert bad.status_code == 400
    page = text(bad)
    assert "There is a problem" in page
    assert "Enter a name for the schedule." in page
    assert "These are not e-mail addresses: ei-osoite" in page
    assert "for example 8:00" in page and 'aria-invalid="true"' in page
    name = unique("Kuukausiraportti")
    made = post(client, f"{base}/new", {"name": name, "frequency": "weekly", "weekday": "0",
                                         "day": "1", "time": "7:30", "scope": "all",
                                         "language": "en",
                                         "recipients": "esihenkilo@kunta.example"})  # type: ignore[arg-type]  # fmt: skip
    assert made.status_code == 302, text(made)
    show = made.headers["Location"]
    page = text(client.get(show, base_url="https://localhost"))  # type: ignore[attr-defined]
    assert name in page and "Every Monday, 07:30" in page and "Nothing sent yet." in page
    sent = post(client, f"{show}/send")  # type: ignore[arg-type]
    assert sent.status_code == 302
    mail_server.inbox.wait_for(1)
    page = text(client.get(show, base_url="https://localhost"))  # type: ignore[attr-defined]
    assert "The report was sent to 1 recipients." in page
    assert 'data-status="sent"' in page and "sent by hand" in page
    listing = text(client.get(f"{base}/", base_url="https://localhost"))  # type: ignore[attr-defined]
    assert name in listing


def test_reviewers_and_other_organisations_are_refused(
    web_app: Flask, orgs: Orgs, users: Users
) -> None:
    reviewer = _client(web_app, users.a.reviewer)
    refused = reviewer.get(f"/o/{orgs.a.id}/schedules/", base_url="https://localhost")  # type: ignore[attr-defined]
    assert refused.status_code == 403
    from ivr.schedules.service import ALL, ScheduleForm

    services = web_app.extensions["ivr"]
    made = services.schedules.create(
        users.a.manager.actor(),
        ScheduleForm(unique("A"), "monthly", "31", "8:00", ALL, "a@kunta.example", "fi"),
    )
    other = _client(web_app, users.b.admin)
    for path in (f"/o/{orgs.b.id}/schedules/{made.id}", f"/o/{orgs.a.id}/schedules/{made.id}"):
        assert other.get(path, base_url="https://localhost").status_code == 404  # type: ignore[attr-defined]
    assert post(other, f"/o/{orgs.b.id}/schedules/{made.id}/send").status_code == 404  # type: ignore[arg-type]
