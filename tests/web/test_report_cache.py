"""The report's cached aggregates (ivr/reports/cache.py) on SQLite and PostgreSQL: a second
report reads them and runs no statement over the answers or the contacts (observed on the
engine), it equals a report counted afresh, and every change the report must show — a
contact import, a call placed, an answer given during a call, an attempt finished, the
billing rule — shows at once."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from babel.dates import format_datetime

from ivr.outcome import Outcome
from ivr.reports import cache as report_cache
from ivr.reports import campaign_report
from ivr.reports.model import CampaignReport
from ivr.services import Services
from ivr.store import campaigns as cstore
from ivr.store import repo
from ivr.store.models import Attempt, AttemptState, Campaign, Contact
from ivr.store.org_models import Organisation
from ivr.store.work_models import ReportAggregate
from ivr.web.i18n import DATETIME_PATTERNS
from tests.support.results import Seeded, seed_results
from tests.web.conftest import Site, Users, text, unique

ANSWERS = re.compile(r"\banswers\b", re.IGNORECASE)
CONTACTS = re.compile(r"\bcontacts\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def seeded(services: Services, users: Users, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return seed_results(
        services, users.a.manager.actor(), tmp_path_factory.mktemp("cache"),
        count=10, name=unique("Välimuisti"),
    )  # fmt: skip


class Statements:
    """The SQL statements run on the services' engine while ``watch`` is open."""

    def __init__(self, services: Services) -> None:
        self.engine = services.engine
        self.seen: list[str] = []

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.seen.append(statement)

    @contextmanager
    def watch(self) -> Iterator[list[str]]:
        self.seen = []
        sa.event.listen(self.engine, "before_cursor_execute", self._record)
        try:
            yield self.seen
        finally:
            sa.event.remove(self.engine, "before_cursor_execute", self._record)

    def touching(self, pattern: re.Pattern[str]) -> int:
        return sum(1 for statement in self.seen if pattern.search(statement))


def fresh(services: Services, campaign_id: str) -> CampaignReport:
    with services.factory() as s:
        return campaign_report(s, campaign_id, per_contact_weights=False)


def forget(services: Services, campaign_id: str) -> None:
    with services.factory.begin() as s:
        s.execute(sa.delete(ReportAggregate).where(ReportAggregate.campaign_id == campaign_id))


def report_of(services: Services, users: Users, seeded: Seeded) -> Callable[[], CampaignReport]:
    return lambda: services.reports.campaign(users.a.manager.actor(), seeded.campaign_id)


def test_a_second_report_reads_the_stored_counts_and_equals_a_fresh_one(
    module_site: Site, services: Services, users: Users, seeded: Seeded
) -> None:
    forget(services, seeded.campaign_id)
    statements = Statements(services)
    report = report_of(services, users, seeded)
    counted_at = module_site.clock()
    with statements.watch():
        first = report()
    assert statements.touching(ANSWERS) >= 1 and statements.touching(CONTACTS) >= 1
    assert first.as_of is not None and counted_at <= first.as_of <= module_site.clock()
    counted_at = first.as_of
    module_site.clock.advance(timedelta(minutes=5))
    with statements.watch():
        second = report()
    assert statements.touching(ANSWERS) == 0 and statements.touching(CONTACTS) == 0
    assert second.as_of == counted_at  # the figures are those counted then
    assert second == fresh(services, seeded.campaign_id) == first
    assert second.to_dict() == fresh(services, seeded.campaign_id).to_dict()
    assert second.funnel.contacts == len(seeded.plans)

    # The page and the workbook read them too, and the page says when they were counted.
    client = module_site.logged_in("A", "manager")
    path = f"/o/{users.a.manager.org_id}/campaigns/{seeded.campaign_id}/report"
    with statements.watch():
        page = client.get(path)
        workbook = client.get(path + ".xlsx")
    assert page.status_code == 200 and workbook.status_code == 200
    assert statements.touching(ANSWERS) == 0 and statements.touching(CONTACTS) == 0
    said = re.search(r'<p class="muted" id="figures-as-of">([^<]*)</p>', text(page))
    assert said is not None  # "Figures as of …", in the reader's language
    with services.factory() as s:
        zone = s.get(Organisation, users.a.manager.org_id).timezone  # type: ignore[union-attr]

    def shown(at: datetime) -> set[str]:
        return {format_datetime(at, p, tzinfo=ZoneInfo(zone)) for p in DATETIME_PATTERNS.values()}

    assert any(f" {when}." in said[1] for when in shown(counted_at))  # when it was counted
    assert not any(when in said[1] for when in shown(module_site.clock()))  # not "now"


def test_the_command_lines_json_stores_the_counts_the_page_reads(
    module_site: Site, services: Services, users: Users, seeded: Seeded
) -> None:
    forget(services, seeded.campaign_id)
    target = services.exports.target(users.a.manager.actor(), seeded.campaign_id)
    data = services.exports.report(target)  # what `ivr report CAMPAIGN` prints
    assert data == fresh(services, seeded.campaign_id).to_dict()
    with services.factory() as s:
        assert s.get(ReportAggregate, seeded.campaign_id) is not None
    statements = Statements(services)
    with statements.watch():
        report_of(services, users, seeded)()
    assert statements.touching(ANSWERS) == 0


def _csv(tmp_path: Path, numbers: list[int]) -> Path:
    path = tmp_path / "more.csv"
    rows = ["Puhelin;Kieli;Ikäryhmä;Alue", *(f"+35850{n:07d};fi;30-49;Keskusta" for n in numbers)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_every_change_the_report_must_show_shows_at_once(
    module_site: Site, services: Services, users: Users, seeded: Seeded, tmp_path: Path
) -> None:
    """Each step changes what the report counts; a report read from stale stored counts
    would keep the previous step's numbers."""
    clock = module_site.clock
    report = report_of(services, users, seeded)
    statements = Statements(services)
    before = report()
    assert report() == before  # stored

    # A contact import.
    actor = users.a.manager.actor()
    found = services.campaigns.import_contacts(actor, seeded.campaign_id, _csv(tmp_path, [1, 2]))
    assert found["accepted"] == 2
    imported = report()
    assert imported.funnel.contacts == before.funnel.contacts + 2
    assert imported == fresh(services, seeded.campaign_id)
    assert imported.as_of is not None and before.as_of is not None
    assert imported.as_of > before.as_of  # counted anew

    # One of them is called: placed, answered, an answer given while the call goes on.
    with services.factory.begin() as s:
        cstore.schedule_first_attempts(s, seeded.campaign_id, clock(), at=clock())
        contact_id = s.scalars(
            sa.select(Contact.id).where(
                Contact.campaign_id == seeded.campaign_id, Contact.phone == "+358500000001"
            )
        ).one()
        attempt = s.scalars(sa.select(Attempt).where(Attempt.contact_id == contact_id)).one()
        s.execute(
            sa.update(Attempt)
            .where(Attempt.id == attempt.id)
            .values(state=AttemptState.DIALING, claimed_by="t", claimed_at=clock())
        )
        cstore.mark_originated(s, attempt.id, channel_id=f"t-{attempt.id}", started_at=clock())
        call = repo.create_call(
            s, direction="outbound", flow_id="strategy-survey", flow_version="1",
            channel_id=f"t-{attempt.id}", node_name="t", language="fi",
            remote_number=attempt.phone, attempt_id=attempt.id, started_at=clock(),
        )  # fmt: skip
        repo.mark_answered(s, call.id, clock() + timedelta(seconds=5))
        attempt_id, call_id = attempt.id, call.id
    placed = report()
    assert placed.funnel.calls_placed == imported.funnel.calls_placed + 1
    assert placed == fresh(services, seeded.campaign_id)
    assert report() == placed  # stored again

    clock.advance(timedelta(seconds=20))
    with services.factory.begin() as s:  # the counters do not move: the call goes on
        repo.save_answer(
            s, call_id, node_id="services", kind="scale", value="5", language="fi", at=clock()
        )
    with statements.watch():
        answering = report()
    assert statements.touching(ANSWERS) >= 1  # counted again
    services_q = {q.node_id: q for q in answering.questions}["services"]
    before_q = {q.node_id: q for q in placed.questions}["services"]
    assert services_q.answers == before_q.answers + 1
    assert answering == fresh(services, seeded.campaign_id)

    # The call ends and its attempt finishes: a completed respondent more.
    clock.advance(timedelta(seconds=20))
    with services.factory.begin() as s:
        repo.end_call(s, call_id, Outcome.COMPLETED, at=clock())
        cstore.finish_attempt(
            s, attempt_id, outcome=Outcome.COMPLETED, answered_at=clock() - timedelta(seconds=35),
            ended_at=clock(), call_id=call_id,
        )  # fmt: skip
    finished = report()
    assert finished.funnel.completed == before.funnel.completed + 1
    assert {q.node_id: q for q in finished.questions}["services"].respondents == (
        services_q.respondents + 1
    )
    assert finished == fresh(services, seeded.campaign_id)
    with statements.watch():
        assert report() == finished
    assert statements.touching(ANSWERS) == 0  # nothing in flight: stored and read back

    # The billing rule (the talk time is counted under it).
    with services.factory.begin() as s:
        s.execute(
            sa.update(Campaign)
            .where(Campaign.id == seeded.campaign_id)
            .values(billing_rule="1/1", price_per_minute=0.10)
        )
    billed = report()
    assert billed.cost.billing_rule == "1/1"
    assert billed.cost.billable_seconds != finished.cost.billable_seconds
    assert billed == fresh(services, seeded.campaign_id)


def test_stored_counts_that_cannot_be_read_are_counted_again(
    services: Services, users: Users, seeded: Seeded
) -> None:
    report = report_of(services, users, seeded)
    good = report()
    with services.factory.begin() as s:
        s.execute(
            sa.update(ReportAggregate)
            .where(ReportAggregate.campaign_id == seeded.campaign_id)
            .values(data='{"format": 0}')
        )
    assert report() == good == fresh(services, seeded.campaign_id)
    with services.factory() as s:
        row = s.get(ReportAggregate, seeded.campaign_id)
        assert row is not None and row.data.startswith('{"format":1')


def test_two_that_count_at_once_both_store_without_failing(
    services: Services, seeded: Seeded
) -> None:
    with services.factory() as s:
        campaign = s.get(Campaign, seeded.campaign_id)
        assert campaign is not None
        counted = report_cache.build.count_aggregates(s, campaign)
        current = report_cache.fingerprint(s, campaign)
    at = services.clock()
    forget(services, seeded.campaign_id)
    first = report_cache.Counted(seeded.campaign_id, "0" * 64, counted, at)
    second = report_cache.Counted(seeded.campaign_id, current, counted, at)
    report_cache.save(services.factory, first)
    report_cache.save(services.factory, second)  # a conflict: the row is updated
    with services.factory() as s:
        row = s.get(ReportAggregate, seeded.campaign_id)
        assert row is not None and row.fingerprint == current
        assert report_cache.load(s, seeded.campaign_id, current) == (counted, at)
