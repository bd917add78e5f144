"""A scheduled report reaches a real SMTP server (aiosmtpd on loopback) when the clock
passes its next run: the HTML has the report's funnel, the attached workbook opens with
openpyxl with the same numbers as the report page; failures are recorded, retried and sent
when the server is back; two runners send once; another organisation's schedule is 404.
On SQLite and PostgreSQL (``module_site``)."""

from __future__ import annotations

import io
import re
import threading
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from ivr.accounts.audit import NotFound
from ivr.clock import MovableClock
from ivr.schedules.service import ALL, ScheduleForm
from ivr.services import Services
from ivr.store.schedule_models import ScheduleSend
from tests.schedules.conftest import MailServer, smtp_to
from tests.support.ports import free_port
from tests.support.results import seed_results
from tests.web.conftest import Users, unique

HKI = ZoneInfo("Europe/Helsinki")


def _form(scope: str, *, name: str = "", day: str = "1", recipients: str = "") -> ScheduleForm:
    return ScheduleForm(name or unique("Kuukausiraportti"), "monthly", day, "8:00", scope,
                        recipients or "esihenkilo@kunta.example", "en")  # fmt: skip


def _html(message: object) -> str:
    part = message.get_body(preferencelist=("html",))  # type: ignore[attr-defined]
    return str(part.get_content())


def _cells(html: str, attribute: str) -> dict[str, int]:
    found = re.findall(rf'{attribute}="([a-z_]+)">([0-9\s\u00a0,]+)<', html)
    return {key: int(re.sub(r"\D", "", value)) for key, value in found}


def test_the_scheduled_report_arrives_with_the_report_pages_numbers(
    services: Services, clock: MovableClock, users: Users, mail_server: MailServer,
    tmp_path: Path,
) -> None:  # fmt: skip
    manager = users.a.manager.actor()
    seeded = seed_results(services, manager, tmp_path, name=unique("Strategia"))
    made = services.schedules.create(manager, _form(seeded.campaign_id))
    assert made.next_run_at is not None and made.next_run_at > clock()
    assert made.next_run_at.astimezone(HKI).day == 1
    assert (made.next_run_at.astimezone(HKI).hour, made.next_run_at.minute) == (8, 0)
    services.schedules.run_due()  # not due yet
    assert services.schedules.history(manager, made.id) == []

    clock.set(made.next_run_at + timedelta(seconds=30))
    assert len(services.schedules.run_due()) == 1
    [(rcpt, message)] = mail_server.inbox.wait_for(1)
    assert rcpt == ["esihenkilo@kunta.example"]
    report = services.reports.campaign(manager, seeded.campaign_id, language="en")
    # The expected funnel, counted from the seed's plans, is the page's too.
    completed = sum(1 for p in seeded.plans if "completed" in p.outcomes)
    assert report.funnel.contacts == len(seeded.plans)
    assert report.funnel.completed == completed
    html = _html(message)
    funnel = _cells(html, "data-funnel")
    assert funnel == {
        "contacts": report.funnel.contacts, "attempted": report.funnel.attempted,
        "answered": report.funnel.answered, "completed": report.funnel.completed,
        "calls_placed": report.funnel.calls_placed,
    }  # fmt: skip
    for q in report.questions:
        assert f'data-question="{q.node_id}"' in html
    assert made.name in str(message["Subject"]) and report.name in html
    # The workbook: the same numbers as the report page.
    [attachment] = list(message.iter_attachments())  # type: ignore[attr-defined]
    assert attachment.get_filename().endswith(".xlsx")
    book = openpyxl.load_workbook(io.BytesIO(attachment.get_content()))
    rows = {r[0]: r[1] for r in book["Funnel"].iter_rows(min_row=2, values_only=True) if r[0]}
    assert rows["Contacts"] == report.funnel.contacts
    assert rows["Completed"] == report.funnel.completed
    assert rows["Answered"] == report.funnel.answered
    question_rows = list(book["Questions"].iter_rows(min_row=2, values_only=True))
    counts = sum(o.count for q in report.questions for o in q.options)
    answers = [r[2] for r in question_rows if isinstance(r[2], int | float)]
    assert sum(answers) == counts and counts > 0

    [send] = services.schedules.history(manager, made.id)
    assert (send.status, send.attempts, send.manual) == ("sent", 1, False)
    assert send.message_id == message["Message-ID"]
    after = services.schedules.get(manager, made.id)
    assert after.last_run_at == made.next_run_at
    assert after.next_run_at is not None and after.next_run_at.astimezone(HKI).month == (
        made.next_run_at.astimezone(HKI).month % 12 + 1
    )
    assert services.schedules.run_due() == []  # sent once


def test_a_refused_send_is_retried_then_sent_when_the_server_is_back(
    services: Services, clock: MovableClock, users: Users
) -> None:
    manager = users.a.manager.actor()
    port = free_port(also_udp=False)  # nothing listens: the connection is refused
    services.schedules.smtp = smtp_to(port)
    server = MailServer(port)
    try:
        made = services.schedules.create(manager, _form(ALL))
        first = services.schedules.send_now(manager, made.id)
        assert first.status == "retrying" and first.attempts == 1
        assert first.error and "cannot connect" in first.error
        assert first.retry_at == first.at + timedelta(minutes=5)
        assert first.id not in services.schedules.run_due()  # not yet
        clock.advance(timedelta(minutes=5))
        assert first.id in services.schedules.run_due()
        [second] = services.schedules.history(manager, made.id)
        assert (second.status, second.attempts) == ("retrying", 2)
        server.start()
        clock.advance(timedelta(minutes=15))
        assert first.id in services.schedules.run_due()
        [(_, message)] = [m for m in server.inbox.wait_for(1) if m[1]["Subject"] == made.name
                          or made.name in str(m[1]["Subject"])]  # fmt: skip
        [third] = services.schedules.history(manager, made.id)
        assert (third.status, third.attempts, third.error) == ("sent", 3, None)
        assert third.message_id == message["Message-ID"]
        assert "There are no campaigns" in _html(message) or "data-funnel" in _html(message)
    finally:
        server.stop()


def test_a_send_that_keeps_failing_ends_failed(
    services: Services, clock: MovableClock, users: Users
) -> None:
    manager = users.a.manager.actor()
    services.schedules.smtp = smtp_to(free_port(also_udp=False))
    made = services.schedules.create(manager, _form(ALL))
    send = services.schedules.send_now(manager, made.id)
    for minutes in (5, 15, 60):
        clock.advance(timedelta(minutes=minutes))
        services.schedules.run_due()
    [last] = services.schedules.history(manager, made.id)
    assert (last.status, last.attempts, last.retry_at) == ("failed", 4, None)
    clock.advance(timedelta(days=1))
    assert send.id not in services.schedules.run_due()


def test_two_runners_at_once_send_once(
    services: Services, clock: MovableClock, users: Users, mail_server: MailServer
) -> None:
    manager = users.a.manager.actor()
    made = services.schedules.create(manager, _form(ALL, recipients="yksi@kunta.example"))
    assert made.next_run_at is not None
    clock.set(made.next_run_at + timedelta(minutes=1))
    start = threading.Barrier(2)
    results: list[list[int]] = []

    def runner() -> None:
        start.wait()
        results.append(services.schedules.run_due())

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 2
    mail_server.inbox.wait_for(1)
    with services.factory() as s:
        rows = s.query(ScheduleSend).filter_by(schedule_id=made.id).all()
    assert len(rows) == 1 and rows[0].status == "sent"
    assert len([m for m in mail_server.inbox.messages if m[0] == ["yksi@kunta.example"]]) == 1


def test_another_organisations_schedule_is_not_found(services: Services, users: Users) -> None:
    made = services.schedules.create(users.a.manager.actor(), _form(ALL))
    other = users.b.admin.actor()
    for call in (
        lambda: services.schedules.get(other, made.id),
        lambda: services.schedules.history(other, made.id),
        lambda: services.schedules.send_now(other, made.id),
        lambda: services.schedules.set_enabled(other, made.id, False),
        lambda: services.schedules.update(other, made.id, _form(ALL)),
        lambda: services.schedules.delete(other, made.id),
    ):
        with pytest.raises(NotFound):
            call()
    assert made.id not in {s.id for s in services.schedules.all(other)}


def test_a_campaign_of_another_organisation_is_refused_as_the_scope(
    services: Services, users: Users, tmp_path: Path
) -> None:
    from ivr.schedules.service import ScheduleError

    theirs = seed_results(services, users.b.manager.actor(), tmp_path, count=2,
                          name=unique("B-kysely"))  # fmt: skip
    with pytest.raises(ScheduleError) as caught:
        services.schedules.create(users.a.manager.actor(), _form(theirs.campaign_id))
    assert caught.value.codes == {"scope": "choice"}


def test_disabled_schedules_are_not_sent(
    services: Services, clock: MovableClock, users: Users, mail_server: MailServer
) -> None:
    manager = users.a.manager.actor()
    made = services.schedules.create(manager, _form(ALL))
    off = services.schedules.set_enabled(manager, made.id, False)
    assert off.next_run_at is None
    clock.advance(timedelta(days=40))
    assert services.schedules.run_due() == [] or all(
        s.id != made.id for s in services.schedules.history(manager, made.id)
    )
    assert services.schedules.history(manager, made.id) == []
    on = services.schedules.set_enabled(manager, made.id, True)
    assert on.next_run_at is not None and on.next_run_at > clock()


def _now() -> datetime:  # pragma: no cover - only for debugging a failure
    return datetime.now(tz=HKI)
