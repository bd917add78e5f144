"""Campaign storage on both backends: SQLite (a temporary file) and a real PostgreSQL.

Every test gets an empty database migrated to head (as in test_store.py), so these tests
also prove that migration 0002 builds what ``ivr.store.campaigns`` needs.
"""

from __future__ import annotations

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.orm import Session, sessionmaker

from ivr.outcome import ATTEMPT_OUTCOMES, Outcome
from ivr.store import counters, repo
from ivr.store.campaigns import (
    AttemptNotFound,
    AttemptStateError,
    CampaignError,
    CampaignNotFound,
    ContactRow,
    add_contacts,
    add_retry,
    claim_due_attempts,
    create_campaign,
    finish_attempt,
    funnel,
    get_campaign,
    live_counts,
    mark_originated,
    mark_originated_many,
    numbers_called_today,
    recount_matches,
    release_attempt,
    return_unplaced,
    schedule_first_attempts,
    set_status,
    stale_dialing,
)
from ivr.store.db import make_engine, session_scope
from ivr.store.migrate import alembic_config, current_revision, head_revision, upgrade
from ivr.store.models import (
    Answer,
    Attempt,
    AttemptState,
    Call,
    Campaign,
    CampaignStatus,
    Contact,
    Language,
)

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # a Monday, 11:00 in Helsinki
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def phone(i: int) -> str:
    return f"+35840{1_000_000 + i}"


def contacts(n: int, *, start: int = 0, **fields: Any) -> list[ContactRow]:
    """``n`` contacts: phones ``start`` .. ``start + n - 1``."""
    rows = range(start, start + n)
    return [ContactRow(phone=phone(i), source_line=i + 2, **fields) for i in rows]


def new_campaign(s: Session, name: str = "kysely", **settings: Any) -> str:
    return create_campaign(s, name=name, flow_path="flows/kysely.yaml", **settings).id


def running_campaign(
    sessions: sessionmaker[Session], name: str, n: int, *, due_at: datetime = NOW, start: int = 0
) -> str:
    """A running campaign with ``n`` contacts, each with a due first attempt."""
    with session_scope(sessions) as s:
        campaign_id = new_campaign(s, name)
        add_contacts(s, campaign_id, contacts(n, start=start))
        schedule_first_attempts(s, campaign_id, due_at)
        set_status(s, campaign_id, CampaignStatus.RUNNING, at=NOW)
    return campaign_id


def claim(sessions: sessionmaker[Session], node: str = "node-a", **kwargs: Any) -> list[Attempt]:
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("limit", 100)
    with session_scope(sessions) as s:
        return claim_due_attempts(s, node=node, **kwargs)


def count(s: Session, model: type[Any], *where: Any) -> int:
    return int(s.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0)


# --------------------------------------------------------------------------- migrations
def test_0001_database_with_calls_upgrades_to_head_keeping_its_data(db_url: str) -> None:
    assert upgrade(db_url, "0001").after == "0001"
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as s:
            # A Core insert of the columns schema 0001 has (the ORM model has later ones).
            call_id = "call-from-before"
            s.execute(
                sa.insert(Call.__table__).values(
                    id=call_id, direction="outbound", flow_id="f", flow_version="1",
                    channel_id="chan-1", node_name="node-a", language="fi", status="active",
                    attempt_id="attempt-from-before", started_at=NOW,
                )
            )  # fmt: skip
            # (Core too: the store's save_answer also counts for campaigns, not in 0001.)
            s.execute(
                sa.insert(Answer.__table__).values(
                    call_id=call_id, seq=1, node_id="q1", kind="choice", value="1",
                    digits="", language="fi", created_at=NOW,
                )
            )  # fmt: skip
        assert not {"campaigns", "contacts", "attempts"} & set(sa.inspect(engine).get_table_names())
        result = upgrade(db_url)
        assert (result.before, result.after) == ("0001", head_revision())
        engine.dispose()  # the inspector caches the old schema
        names = set(sa.inspect(engine).get_table_names())
        assert {"campaigns", "contacts", "attempts", "calls", "answers"} <= names
        with session_scope(engine) as s:
            call = repo.get_call(s, call_id)
            assert call is not None and call.attempt_id == "attempt-from-before"
            assert [a.value for a in call.answers] == ["1"]  # nothing was lost
            campaign_id = new_campaign(s)
            assert add_contacts(s, campaign_id, contacts(3)) == (3, 0)
    finally:
        engine.dispose()


def test_0002_downgrades_to_0001_and_upgrades_again(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as s:
            new_campaign(s)
        command.downgrade(alembic_config(db_url), "0001")
        assert current_revision(db_url) == "0001"
        assert "campaigns" not in sa.inspect(engine).get_table_names()
        upgrade(db_url)
        with session_scope(engine) as s:
            assert count(s, Campaign) == 0
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- campaigns
def test_create_campaign_with_defaults_and_settings(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as s:
        plain = new_campaign(s, "  Asukaskysely 2025  ")
        tuned = new_campaign(
            s, "Nuoret", max_attempts=5, calls_per_second=0.5, default_language="sv",
            caller_id="+35891234567", timezone="Europe/Mariehamn", allow_holidays=True,
            windows="mon-sat 09:00-18:00", cross_campaign_daily_cap=False,
        )  # fmt: skip
    with session_scope(sessions) as s:
        got = get_campaign(s, "Asukaskysely 2025")
        assert got is not None and got.id == plain
        assert (got.status, got.status_reason, got.started_at) == (CampaignStatus.DRAFT, None, None)
        assert (got.timezone, got.windows, got.allow_holidays) == (
            "Europe/Helsinki",
            "mon-fri 10:00-20:00",
            False,
        )
        assert (got.max_attempts, got.retry_busy_minutes, got.retry_no_answer_minutes) == (
            3,
            30,
            120,
        )
        assert (got.retry_failed_minutes, got.calls_per_second, got.max_concurrent) == (60, 2.0, 30)
        assert got.default_language is Language.FI and got.cross_campaign_daily_cap is True
        assert (got.flow_id, got.flow_version, got.flow_snapshot, got.caller_id) == (None,) * 4
        other = get_campaign(s, tuned)  # by id
        assert other is not None and other.name == "Nuoret"
        assert (other.max_attempts, other.calls_per_second, other.default_language) == (
            5,
            0.5,
            Language.SV,
        )
        assert (other.caller_id, other.timezone, other.allow_holidays) == (
            "+35891234567",
            "Europe/Mariehamn",
            True,
        )
        assert other.cross_campaign_daily_cap is False
        assert get_campaign(s, "no such campaign") is None


def test_a_duplicate_name_is_refused_and_the_transaction_goes_on(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as s:
        new_campaign(s, "Kysely")
        with pytest.raises(CampaignError, match="a campaign named 'Kysely' exists already"):
            new_campaign(s, "Kysely")
        new_campaign(s, "Toinen")  # the savepoint kept the transaction usable
    with session_scope(sessions) as s:
        assert sorted(s.scalars(sa.select(Campaign.name))) == ["Kysely", "Toinen"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_attempts": 0}, "max_attempts: 0 is not a whole number >= 1"),
        ({"max_attempts": True}, "max_attempts: True is not a whole number"),
        ({"retry_busy_minutes": -5}, "retry_busy_minutes: -5 is not a whole number >= 0"),
        ({"calls_per_second": 0}, "calls_per_second: 0 is not a number > 0"),
        ({"default_language": "de"}, "default_language: 'de' is not one of"),
        ({"timezone": "Europe/Turku"}, "'Europe/Turku' is not a known time zone"),
        ({"caller_id": "09 123 4567"}, "caller_id: '09 123 4567' is not an E.164 number"),
        ({"allow_holidays": "yes"}, "allow_holidays: 'yes' is not true or false"),
        ({"windows": "  "}, "windows: '  ' is empty"),
        ({"colour": "red"}, "unknown campaign setting 'colour'"),
        ({"status": "running"}, "unknown campaign setting 'status'"),
    ],
)
def test_bad_settings_are_refused_by_name(
    sessions: sessionmaker[Session], settings: dict[str, Any], message: str
) -> None:
    with session_scope(sessions) as s:
        with pytest.raises(CampaignError, match=re.escape(message)):
            new_campaign(s, **settings)
        with pytest.raises(CampaignError, match="give 1 to 100 characters"):
            new_campaign(s, "x" * 101)
        with pytest.raises(CampaignError, match="give 1 to 100 characters"):
            new_campaign(s, "   ")
        assert count(s, Campaign) == 0


def test_status_changes_and_stopping_cancels_what_is_due(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as s:
        campaign_id = new_campaign(s)
        add_contacts(s, campaign_id, contacts(3))
        schedule_first_attempts(s, campaign_id, NOW)
        with pytest.raises(CampaignError, match="is draft; it cannot become paused"):
            set_status(s, campaign_id, "paused", at=NOW)
        with pytest.raises(CampaignNotFound):
            set_status(s, "no-such-campaign", "running", at=NOW)
        set_status(s, campaign_id, CampaignStatus.RUNNING, at=NOW)
        set_status(s, campaign_id, "running", "outside the calling window", at=NOW + timedelta(1))
        campaign = get_campaign(s, campaign_id)
        assert campaign is not None
        assert (campaign.status, campaign.status_reason) == (
            CampaignStatus.RUNNING,
            "outside the calling window",
        )
        assert campaign.started_at == NOW  # the first start counts
        set_status(s, campaign_id, "paused", "paused by staff", at=NOW)
        set_status(s, campaign_id, "running", at=NOW)
        assert campaign.status_reason is None
    [dialing] = claim(sessions, limit=1)
    with session_scope(sessions) as s:
        set_status(s, campaign_id, CampaignStatus.STOPPED, "the survey closed", at=NOW)
        states = dict(
            s.execute(sa.select(Attempt.state, sa.func.count()).group_by(Attempt.state)).all()
        )
        assert states == {AttemptState.CANCELLED: 2, AttemptState.DIALING: 1}
        campaign = get_campaign(s, campaign_id)
        assert campaign is not None and campaign.stopped_at == NOW
        with pytest.raises(CampaignError, match="it can become: nothing: it is final"):
            set_status(s, campaign_id, "running", at=NOW)
        # The call in progress still finishes normally.
        finish_attempt(s, dialing.id, outcome="no_answer")


# --------------------------------------------------------------------------- contacts
def test_add_contacts_counts_duplicates_and_a_reimport_adds_nothing(
    sessions: sessionmaker[Session],
) -> None:
    rows = contacts(2345)
    # Repeats inside the list, across the 1000-row chunks, are duplicates too.
    rows += [ContactRow(phone=phone(i), source_line=9000 + i) for i in (5, 999, 1000, 2001)]
    with session_scope(sessions) as s:
        campaign_id = new_campaign(s)
        other_id = new_campaign(s, "muu")
        assert add_contacts(s, campaign_id, rows) == (2345, 4)
    with session_scope(sessions) as s:
        assert add_contacts(s, campaign_id, rows) == (0, 2349)
        assert add_contacts(s, campaign_id, contacts(2350)) == (5, 2345)
        # The same number in another campaign is another contact.
        assert add_contacts(s, other_id, contacts(10)) == (10, 0)
    with session_scope(sessions) as s:
        assert count(s, Contact, Contact.campaign_id == campaign_id) == 2350
        where = (Contact.phone == phone(5), Contact.campaign_id == campaign_id)
        first = s.scalars(sa.select(Contact).where(*where)).one()
        assert first.source_line == 7  # the first one was kept, not the repeat at 9005


def test_contact_fields_and_attributes_round_trip(sessions: sessionmaker[Session]) -> None:
    row = ContactRow(
        phone="+358401234567", language="sv", age_group="65+", birth_year=1950,
        area="Östra centrum", postcode="00100",
        attributes={"skola": "Vasa övningsskola", "note": "ä ö å \" '"}, source_line=12,
    )  # fmt: skip
    with session_scope(sessions) as s:
        campaign_id = new_campaign(s)
        add_contacts(s, campaign_id, [row, ContactRow(phone="+358401234568", source_line=13)])
    with session_scope(sessions) as s:
        got, plain = s.scalars(sa.select(Contact).order_by(Contact.source_line)).all()
        assert (got.phone, got.language, got.age_group, got.birth_year) == (
            "+358401234567",
            Language.SV,
            "65+",
            1950,
        )
        assert (got.area, got.postcode, got.source_line) == ("Östra centrum", "00100", 12)
        assert json.loads(got.attributes) == row.attributes
        assert (plain.language, plain.attributes, plain.age_group) == (Language.FI, "{}", None)
        assert got.created_at.tzinfo is not None


def test_add_contacts_refuses_what_is_not_valid(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as s:
        campaign_id = new_campaign(s)
        with pytest.raises(ValueError, match=r"line 7: phone '040 123' is not E.164"):
            add_contacts(s, campaign_id, [ContactRow(phone="040 123", source_line=7)])
        with pytest.raises(ValueError, match=r"line 8: language 'de' is not one of en, fi, sv"):
            add_contacts(s, campaign_id, [ContactRow(phone=phone(1), language="de",
                                                     source_line=8)])  # fmt: skip
        with pytest.raises(CampaignNotFound):
            add_contacts(s, "no-such-campaign", contacts(1))
        assert count(s, Contact) == 0


def test_deleting_a_campaign_deletes_its_contacts_and_attempts(
    sessions: sessionmaker[Session],
) -> None:
    campaign_id = running_campaign(sessions, "a", 5)
    kept = running_campaign(sessions, "b", 2)
    with session_scope(sessions) as s:
        s.execute(sa.delete(Campaign).where(Campaign.id == campaign_id))
    with session_scope(sessions) as s:
        assert (count(s, Contact), count(s, Attempt)) == (2, 2)
        assert set(s.scalars(sa.select(Attempt.campaign_id))) == {kept}


# --------------------------------------------------------------------------- scheduling
def test_schedule_first_attempts_is_idempotent(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as s:
        campaign_id = new_campaign(s)
        add_contacts(s, campaign_id, contacts(50))
        assert schedule_first_attempts(s, campaign_id, NOW) == 50
        assert schedule_first_attempts(s, campaign_id, NOW) == 0
    with session_scope(sessions) as s:
        add_contacts(s, campaign_id, contacts(60))  # ten more
        assert schedule_first_attempts(s, campaign_id, NOW + timedelta(hours=1)) == 10
        with pytest.raises(CampaignNotFound):
            schedule_first_attempts(s, "no-such-campaign", NOW)
    with session_scope(sessions) as s:
        attempts = s.scalars(sa.select(Attempt)).all()
        assert len(attempts) == 60
        assert len({a.id for a in attempts}) == 60
        assert all(UUID.fullmatch(a.id) for a in attempts), attempts[0].id
        assert {(a.attempt_no, a.state, a.campaign_id) for a in attempts} == {
            (1, AttemptState.DUE, campaign_id)
        }
        by_phone = {a.phone: a for a in attempts}
        assert by_phone[phone(0)].due_at == NOW
        assert by_phone[phone(55)].due_at == NOW + timedelta(hours=1)
        contact = s.scalars(sa.select(Contact).where(Contact.phone == phone(55))).one()
        assert by_phone[phone(55)].contact_id == contact.id


# --------------------------------------------------------------------------- claims
def test_claim_takes_due_attempts_of_running_campaigns_earliest_first(
    sessions: sessionmaker[Session],
) -> None:
    running = running_campaign(sessions, "running", 3)
    later = running_campaign(sessions, "later", 2, due_at=NOW + timedelta(minutes=5), start=100)
    with session_scope(sessions) as s:
        draft = new_campaign(s, "draft")
        add_contacts(s, draft, contacts(2, start=200))
        schedule_first_attempts(s, draft, NOW - timedelta(days=1))
        paused = new_campaign(s, "paused")
        add_contacts(s, paused, contacts(2, start=300))
        schedule_first_attempts(s, paused, NOW - timedelta(days=1))
        set_status(s, paused, "running", at=NOW)
        set_status(s, paused, "paused", at=NOW)
        # An earlier due time within the running campaign goes first.
        first = s.scalars(sa.select(Attempt).where(Attempt.phone == phone(2))).one()
        first.due_at = NOW - timedelta(minutes=1)

    got = claim(sessions, "node-a", limit=2)
    assert [a.phone for a in got] == [phone(2), got[1].phone]
    assert got[1].campaign_id == running and got[1].due_at == NOW
    assert {(a.state, a.claimed_by, a.claimed_at) for a in got} == {
        (AttemptState.DIALING, "node-a", NOW)
    }
    rest = claim(sessions, "node-b")
    assert len(rest) == 1 and rest[0].campaign_id == running  # not later, draft or paused
    assert claim(sessions, "node-b") == []

    assert claim(sessions, "node-b", now=NOW + timedelta(minutes=5), campaign_ids=[draft]) == []
    assert claim(sessions, "node-b", now=NOW + timedelta(minutes=5), campaign_ids=[]) == []
    assert claim(sessions, "node-b", now=NOW + timedelta(minutes=5), limit=0) == []
    due_later = claim(sessions, "node-b", now=NOW + timedelta(minutes=5), campaign_ids=[later])
    assert sorted(a.phone for a in due_later) == [phone(100), phone(101)]

    with session_scope(sessions) as s:
        dialing = dict(
            s.execute(
                sa.select(Attempt.claimed_by, sa.func.count())
                .where(Attempt.state == AttemptState.DIALING)
                .group_by(Attempt.claimed_by)
            ).all()
        )
        assert dialing == {"node-a": 2, "node-b": 3}
        assert count(s, Attempt, Attempt.state == AttemptState.DUE) == 4  # draft + paused


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_claims_skip_rows_another_worker_is_claiming(
    sessions: sessionmaker[Session], db_url: str
) -> None:
    assert db_url.startswith("postgresql")  # SKIP LOCKED is PostgreSQL's
    running_campaign(sessions, "a", 10)
    with session_scope(sessions) as first:
        mine = claim_due_attempts(first, node="node-a", now=NOW, limit=4)  # locks held
        with session_scope(sessions) as second:
            # Without SKIP LOCKED this would wait for the first transaction's row locks, and
            # PostgreSQL ends a wait for a lock with an error (LockNotAvailable) after 2 s.
            second.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
            theirs = claim_due_attempts(second, node="node-b", now=NOW, limit=4)
        assert len(mine) == len(theirs) == 4
        assert not {a.id for a in mine} & {a.id for a in theirs}


def test_concurrent_workers_never_claim_the_same_attempt(
    sessions: sessionmaker[Session], db_url: str
) -> None:
    with session_scope(sessions) as s:
        campaign_id = new_campaign(s)
        add_contacts(s, campaign_id, contacts(500))
        schedule_first_attempts(s, campaign_id, NOW)
        set_status(s, campaign_id, "running", at=NOW)
    workers = 4
    barrier = threading.Barrier(workers)

    def work(index: int) -> list[tuple[str, str | None]]:
        node = f"node-{index}"
        got: list[tuple[str, str | None]] = []
        barrier.wait()
        while True:
            with session_scope(sessions) as s:
                batch = claim_due_attempts(s, node=node, now=NOW, limit=7)
                got += [(a.id, a.claimed_by) for a in batch]
                time.sleep(0.002)  # hold the claim (and its locks) a moment
            if not batch:
                return got

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(work, range(workers)))
    claimed = [attempt_id for result in results for attempt_id, _ in result]
    assert len(claimed) == 500
    assert len(set(claimed)) == 500  # nobody got an attempt twice
    assert all(node == f"node-{i}" for i, r in enumerate(results) for _, node in r)
    if db_url.startswith("postgresql"):  # SQLite's writers take turns: one may get all
        assert all(results)  # every worker claimed some, at the same time
    with session_scope(sessions) as s:
        rows = dict(s.execute(sa.select(Attempt.id, Attempt.claimed_by)).all())
        assert set(rows) == set(claimed)
        for i, result in enumerate(results):
            assert all(rows[attempt_id] == f"node-{i}" for attempt_id, _ in result)


# --------------------------------------------------------------------------- finishing
def test_finish_attempt_computes_ring_and_talk_time(sessions: sessionmaker[Session]) -> None:
    running_campaign(sessions, "a", 3)
    answered, unanswered, _ = claim(sessions)
    with session_scope(sessions) as s:
        call_id = repo.create_call(
            s, direction="outbound", flow_id="kysely", flow_version="1", channel_id="chan-1",
            node_name="node-a", language="fi", attempt_id=answered.id, started_at=NOW,
        ).id  # fmt: skip
        mark_originated(s, answered.id, channel_id="chan-1", started_at=NOW)
        done = finish_attempt(
            s, answered.id, outcome="completed", cause=16, call_id=call_id,
            answered_at=NOW + timedelta(seconds=7.5), ended_at=NOW + timedelta(seconds=97.5),
        )  # fmt: skip
        assert (done.state, done.outcome, done.cause, done.call_id) == (
            AttemptState.DONE,
            Outcome.COMPLETED,
            16,
            call_id,
        )
        assert (done.started_at, done.channel_id) == (NOW, "chan-1")  # kept from originate
        assert (done.ring_seconds, done.talk_seconds) == (7.5, 90.0)
        missed = finish_attempt(
            s, unanswered.id, outcome=Outcome.NO_ANSWER, cause=19, sip_code=480,
            started_at=NOW, ended_at=NOW + timedelta(seconds=45), detail="SIP 480",
        )  # fmt: skip
        assert (missed.ring_seconds, missed.talk_seconds, missed.answered_at) == (45.0, None, None)
    with session_scope(sessions) as s:
        again = s.get(Attempt, unanswered.id)
        assert again is not None
        assert (again.outcome, again.sip_code, again.outcome_detail) == (
            Outcome.NO_ANSWER,
            480,
            "SIP 480",
        )
        assert isinstance(again.ring_seconds, float) and again.ring_seconds == 45.0
        # Purging the call keeps the attempt (and its outcome), without the link.
        s.execute(sa.delete(Call).where(Call.id == call_id))
    with session_scope(sessions) as s:
        kept = s.get(Attempt, answered.id)
        assert kept is not None and kept.call_id is None
        assert kept.outcome is Outcome.COMPLETED


def test_an_attempt_is_finished_once(sessions: sessionmaker[Session]) -> None:
    running_campaign(sessions, "a", 3)
    [first] = claim(sessions, limit=1)
    with session_scope(sessions) as s:
        finish_attempt(s, first.id, outcome="busy", cause=17, started_at=NOW,
                       ended_at=NOW + timedelta(seconds=3))  # fmt: skip
    with session_scope(sessions) as s:
        with pytest.raises(AttemptStateError, match="is done with outcome busy; it cannot be"):
            finish_attempt(s, first.id, outcome="completed")
        with pytest.raises(AttemptStateError, match="is done"):
            finish_attempt(s, first.id, outcome="skipped")
        due = s.scalars(sa.select(Attempt).where(Attempt.state == AttemptState.DUE)).first()
        assert due is not None
        with pytest.raises(AttemptStateError, match="is due; it cannot be finished as failed"):
            finish_attempt(s, due.id, outcome="failed")
        with pytest.raises(AttemptNotFound):
            finish_attempt(s, "no-such-attempt", outcome="failed")
        with pytest.raises(ValueError):
            finish_attempt(s, due.id, outcome="vanished")
        skipped = finish_attempt(s, due.id, outcome="skipped", detail="do-not-call list")
        assert (skipped.state, skipped.outcome_detail) == (AttemptState.DONE, "do-not-call list")
        assert (skipped.ring_seconds, skipped.talk_seconds) == (None, None)
    with session_scope(sessions) as s:
        kept = s.get(Attempt, first.id)
        assert kept is not None and (kept.outcome, kept.cause) == (Outcome.BUSY, 17)


def test_concurrent_finishers_count_an_attempt_once(sessions: sessionmaker[Session]) -> None:
    running_campaign(sessions, "a", 1)
    [attempt] = claim(sessions)
    barrier = threading.Barrier(2)

    def finish(outcome: str) -> str:
        barrier.wait()
        try:
            with session_scope(sessions) as s:
                finish_attempt(s, attempt.id, outcome=outcome)
        except AttemptStateError:
            return "refused"
        except sa.exc.OperationalError:  # SQLite: the loser's snapshot was stale
            return "refused"
        return outcome

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = sorted(pool.map(finish, ["busy", "no_answer"]))
    assert results.count("refused") == 1, results
    [winner] = [r for r in results if r != "refused"]
    with session_scope(sessions) as s:
        kept = s.get(Attempt, attempt.id)
        assert kept is not None and kept.outcome == winner


def test_finish_refuses_times_out_of_order(sessions: sessionmaker[Session]) -> None:
    running_campaign(sessions, "a", 1)
    [attempt] = claim(sessions)
    with session_scope(sessions) as s:
        with pytest.raises(ValueError, match="answered at .* before it started"):
            finish_attempt(s, attempt.id, outcome="completed", started_at=NOW,
                           answered_at=NOW - timedelta(seconds=1))  # fmt: skip
        with pytest.raises(ValueError, match="ended at .* before it started or answered"):
            finish_attempt(s, attempt.id, outcome="completed", started_at=NOW,
                           answered_at=NOW + timedelta(seconds=5),
                           ended_at=NOW + timedelta(seconds=4))  # fmt: skip
        still = s.get(Attempt, attempt.id)
        assert still is not None and still.state is AttemptState.DIALING


# --------------------------------------------------------------------------- retries
def test_retries_are_numbered_and_never_duplicated(sessions: sessionmaker[Session]) -> None:
    running_campaign(sessions, "a", 1)
    [attempt] = claim(sessions)
    with session_scope(sessions) as s:
        with pytest.raises(AttemptStateError, match="only a finished attempt is retried"):
            add_retry(s, attempt, NOW + timedelta(minutes=30))
        done = finish_attempt(s, attempt.id, outcome="busy")
        retry = add_retry(s, done, NOW + timedelta(minutes=30))
        again = add_retry(s, done, NOW + timedelta(hours=5))  # a second worker, say
        assert again.id == retry.id and again.due_at == NOW + timedelta(minutes=30)
        assert (retry.attempt_no, retry.state, retry.contact_id, retry.phone) == (
            2,
            AttemptState.DUE,
            done.contact_id,
            done.phone,
        )
        assert count(s, Attempt) == 2
    # The constraint itself: no second attempt 2 for the contact, whoever inserts it.
    with pytest.raises(sa.exc.IntegrityError), session_scope(sessions) as s:
        s.add(Attempt(campaign_id=done.campaign_id, contact_id=done.contact_id, phone=done.phone,
                      attempt_no=2, due_at=NOW))  # fmt: skip
    assert [a.attempt_no for a in claim(sessions, now=NOW + timedelta(minutes=30))] == [2]


# --------------------------------------------------------------------------- release, stale
def test_release_gives_an_unoriginated_claim_back(sessions: sessionmaker[Session]) -> None:
    running_campaign(sessions, "a", 3)
    first, second, third = claim(sessions, "node-a")
    with session_scope(sessions) as s:
        released = release_attempt(s, first.id)
        assert (released.state, released.claimed_by, released.claimed_at) == (
            AttemptState.DUE,
            None,
            None,
        )
        with pytest.raises(AttemptStateError, match="only a dialing attempt is released"):
            release_attempt(s, first.id)
        mark_originated(s, second.id, channel_id="chan-2", started_at=NOW)
        with pytest.raises(AttemptStateError, match="was originated \\(channel chan-2\\)"):
            release_attempt(s, second.id)
        with pytest.raises(AttemptNotFound):
            release_attempt(s, "no-such-attempt")
    assert [a.id for a in claim(sessions, "node-b")] == [first.id]  # claimable again
    with session_scope(sessions) as s:
        assert [a.id for a in stale_dialing(s, "node-a")] == sorted([second.id, third.id])
        assert [a.id for a in stale_dialing(s, "node-b")] == [first.id]
        assert stale_dialing(s, "node-c") == []
        finish_attempt(s, second.id, outcome="interrupted")
        assert [a.id for a in stale_dialing(s, "node-a")] == [third.id]


# --------------------------------------------------------------------------- daily cap
def test_numbers_called_today_by_other_campaigns(sessions: sessionmaker[Session]) -> None:
    day_start = datetime(2025, 3, 2, 22, 0, tzinfo=UTC)  # midnight in Helsinki
    this = running_campaign(sessions, "this", 5)  # phones 0..4
    other = running_campaign(sessions, "other", 5)  # the same phones 0..4
    with session_scope(sessions) as s:
        by_phone = {
            a.phone: a for a in s.scalars(sa.select(Attempt).where(Attempt.campaign_id == other))
        }
        # phone 0: called today; 1: called yesterday; 2: being dialled (claimed today);
        # 3: skipped today (not a call); 4: only this campaign calls it.
        by_phone[phone(0)].started_at = day_start + timedelta(hours=9)
        by_phone[phone(0)].state = AttemptState.DONE
        by_phone[phone(1)].started_at = day_start - timedelta(minutes=1)
        by_phone[phone(1)].state = AttemptState.DONE
        by_phone[phone(2)].state = AttemptState.DIALING
        by_phone[phone(2)].claimed_at = day_start + timedelta(hours=10)
        by_phone[phone(3)].state = AttemptState.DONE
        by_phone[phone(3)].outcome = Outcome.SKIPPED
        s.delete(by_phone[phone(4)])
        mine = s.scalars(
            sa.select(Attempt).where(Attempt.campaign_id == this, Attempt.phone == phone(4))
        ).one()
        mine.started_at = day_start + timedelta(hours=1)
    with session_scope(sessions) as s:
        wanted = [phone(i) for i in range(5)] + ["+358409999999"]
        assert numbers_called_today(s, wanted, day_start, this) == {phone(0), phone(2)}
        assert numbers_called_today(s, wanted, day_start, other) == {phone(4)}
        assert numbers_called_today(s, [], day_start, this) == set()
        many = [phone(i) for i in range(5, 1300)] + [phone(0)]  # more than one IN (...) chunk
        assert numbers_called_today(s, many, day_start, this) == {phone(0)}


# --------------------------------------------------------------------------- the funnel
def _call(s: Session, attempt: Attempt, answers: int) -> str:
    call_id = repo.create_call(
        s, direction="outbound", flow_id="kysely", flow_version="1",
        channel_id=f"chan-{attempt.id}", node_name="node-a", language="fi",
        attempt_id=attempt.id, started_at=NOW,
    ).id  # fmt: skip
    for i in range(answers):
        repo.save_answer(s, call_id, node_id=f"q{i}", kind="choice", value="1", language="fi")
    return call_id


def test_funnel_on_a_known_dataset(sessions: sessionmaker[Session]) -> None:
    rows = [
        ContactRow(phone(1), "fi", "18-29", source_line=2),
        ContactRow(phone(2), "fi", "30-49", source_line=3),
        ContactRow(phone(3), "sv", "18-29", source_line=4),
        ContactRow(phone(4), "sv", None, source_line=5),
        ContactRow(phone(5), "en", "30-49", source_line=6),
        ContactRow(phone(6), "fi", None, source_line=7),
        ContactRow(phone(7), "fi", "18-29", source_line=8),
    ]
    with session_scope(sessions) as s:
        campaign_id = new_campaign(s)
        add_contacts(s, campaign_id, rows)
        schedule_first_attempts(s, campaign_id, NOW)
        set_status(s, campaign_id, "running", at=NOW)
        empty_id = new_campaign(s, "empty")
    noise = running_campaign(sessions, "noise", 5)  # another campaign's results don't count
    for attempt in claim(sessions, campaign_ids=[noise]):
        with session_scope(sessions) as s:
            finish_attempt(s, attempt.id, outcome="completed", answered_at=NOW)

    attempts = {a.phone: a for a in claim(sessions, campaign_ids=[campaign_id])}
    answered = {"started_at": NOW, "answered_at": NOW + timedelta(seconds=5)}
    with session_scope(sessions) as s:
        one = finish_attempt(s, attempts[phone(1)].id, outcome="no_answer", started_at=NOW)
        finish_attempt(s, add_retry(s, one, NOW).id, outcome="skipped", detail="window")
        release_attempt(s, attempts[phone(6)].id)  # stays due
        # phone 7 stays dialing
        finish_attempt(s, attempts[phone(2)].id, outcome="busy", started_at=NOW)
        finish_attempt(s, attempts[phone(3)].id, outcome="opted_out",
                       call_id=_call(s, attempts[phone(3)], 1), **answered)  # fmt: skip
        finish_attempt(s, attempts[phone(4)].id, outcome="skipped", detail="do-not-call list")
        finish_attempt(s, attempts[phone(5)].id, outcome="partial",
                       call_id=_call(s, attempts[phone(5)], 0), **answered)  # fmt: skip
    [second] = claim(sessions, campaign_ids=[campaign_id], now=NOW + timedelta(hours=3))
    assert second.phone == phone(6)
    with session_scope(sessions) as s:
        # phone 6's first attempt: answered, two answers, completed.
        finish_attempt(s, second.id, outcome="completed", call_id=_call(s, second, 2), **answered)
        # Phone 1 gets attempt 3 and completes: one contact, two calls.
        where = (Attempt.phone == phone(1), Attempt.attempt_no == 2)
        [retry] = s.scalars(sa.select(Attempt).where(*where)).all()
        third = add_retry(s, retry, NOW)
    [third] = claim(sessions, campaign_ids=[campaign_id], now=NOW + timedelta(hours=4))
    with session_scope(sessions) as s:
        finish_attempt(s, third.id, outcome="completed", call_id=_call(s, third, 3), **answered)
        result = funnel(s, campaign_id)
        empty = funnel(s, empty_id)
        for checked in (campaign_id, empty_id, noise):
            assert recount_matches(s, checked)
        with pytest.raises(CampaignNotFound):
            funnel(s, "no-such-campaign")

    def block(numbers: tuple[int, ...], **outcomes: int) -> dict[str, Any]:
        """The funnel keys from (contacts, numbers attempted, calls placed, answered,
        survey started, completed, opted out) and the outcomes that are not 0."""
        keys = ("contacts", "numbers_attempted", "calls_placed", "answered",
                "survey_started", "completed", "opted_out")  # fmt: skip
        expected: dict[str, Any] = dict(zip(keys, numbers, strict=True))
        expected["response_rate"] = numbers[5] / numbers[0] if numbers[0] else 0.0
        expected["outcomes"] = dict.fromkeys([o.value for o in ATTEMPT_OUTCOMES], 0) | outcomes
        return expected

    # Attempts: phone 1 no_answer, skipped, completed (3 answers); phone 2 busy; phone 3
    # opted_out (1 answer); phone 4 skipped; phone 5 partial (no answers); phone 6
    # completed (2 answers); phone 7 dialing.
    total = block((7, 5, 6, 4, 3, 2, 1), no_answer=1, skipped=2, completed=2, busy=1,
                  opted_out=1, partial=1)  # fmt: skip
    assert {k: v for k, v in result.items() if not k.startswith("by_")} == total
    assert result["response_rate"] == pytest.approx(2 / 7)
    assert result["by_language"] == {
        "fi": block((4, 3, 4, 2, 2, 2, 0), no_answer=1, skipped=1, completed=2, busy=1),
        "sv": block((2, 1, 1, 1, 1, 0, 1), opted_out=1, skipped=1),
        "en": block((1, 1, 1, 1, 0, 0, 0), partial=1),
    }
    assert result["by_age_group"] == {
        "18-29": block((3, 2, 3, 2, 2, 1, 1), no_answer=1, skipped=1, completed=1, opted_out=1),
        "30-49": block((2, 2, 2, 1, 0, 0, 0), busy=1, partial=1),
        "unknown": block((2, 1, 1, 1, 1, 1, 0), skipped=1, completed=1),
    }
    assert {k: v for k, v in empty.items() if not k.startswith("by_")} == block(
        (0, 0, 0, 0, 0, 0, 0)
    )
    assert empty["by_age_group"] == {}
    assert set(empty["by_language"]) == {"fi", "sv", "en"}


def test_the_funnel_counts_a_call_from_the_moment_it_is_placed(
    sessions: sessionmaker[Session],
) -> None:
    running_campaign(sessions, "a", 2)
    placed, claimed_only = claim(sessions)
    with session_scope(sessions) as s:
        campaign_id = placed.campaign_id
        mark_originated(s, placed.id, channel_id="chan-x", started_at=NOW)
        report = funnel(s, campaign_id)
    # In flight: counted as attempted and placed; the claimed one, not yet originated, not.
    assert (report["numbers_attempted"], report["calls_placed"]) == (1, 1)
    with session_scope(sessions) as s:
        assert recount_matches(s, campaign_id)
    assert report["answered"] == 0 and claimed_only.channel_id is None


# --------------------------------------------------------------------------- counters
def test_every_writer_keeps_the_counters_equal_to_a_recount(
    sessions: sessionmaker[Session],
) -> None:
    """Each writer of contacts and attempts, in its own transaction; after each, the
    counters (what the live progress reads) equal the full recount."""
    campaign_id = running_campaign(sessions, "laskurit", 6)

    def check(**expected: int) -> None:
        with session_scope(sessions) as s:
            assert recount_matches(s, campaign_id)
            kept = live_counts(s, campaign_id)
            assert {k: kept[k] for k in expected} == expected

    check(contacts=6, calls_placed=0)
    with session_scope(sessions) as s:  # a re-import adds only the new contact
        assert add_contacts(s, campaign_id, contacts(7)) == (1, 6)
    check(contacts=7)
    a, b, c, d, e, f = claim(sessions, limit=6)
    with session_scope(sessions) as s:
        mark_originated_many(s, {a.id: "ch-a", b.id: "ch-b", c.id: "ch-c"}, started_at=NOW)
        mark_originated(s, d.id, channel_id="ch-d", started_at=NOW)
    check(numbers_attempted=4, calls_placed=4)
    with session_scope(sessions) as s:
        release_attempt(s, e.id)  # claimed, never placed
        assert return_unplaced(s, d.id, NOW)  # placed, but it never reached the network
        assert not return_unplaced(s, d.id)  # not dialling any more: nothing changes
    check(numbers_attempted=3, calls_placed=3)
    with session_scope(sessions) as s:
        call_a = _call(s, a, 0)  # its answers come after the attempt is finished
        done_a = finish_attempt(s, a.id, outcome="completed", call_id=call_a,
                                answered_at=NOW + timedelta(seconds=5))  # fmt: skip
        finish_attempt(s, b.id, outcome="busy")
        finish_attempt(s, c.id, outcome="opted_out", call_id=_call(s, c, 1),
                       answered_at=NOW + timedelta(seconds=5))  # fmt: skip
        finish_attempt(s, f.id, outcome="skipped", detail="window")
    check(calls_placed=3, answered=2, survey_started=1, completed=1, opted_out=1)
    with session_scope(sessions) as s:
        repo.save_answer(s, call_a, node_id="q1", kind="choice", value="1", language="fi")
        repo.save_answer(s, call_a, node_id="q2", kind="choice", value="2", language="fi")
    check(survey_started=2)
    with session_scope(sessions) as s:
        retry = add_retry(s, s.get(Attempt, b.id) or done_a, NOW)
        assert retry.attempt_no == 2
    claimed = claim(sessions, campaign_ids=[campaign_id], now=NOW + timedelta(hours=1))
    [again] = [x for x in claimed if x.attempt_no == 2]
    with session_scope(sessions) as s:
        for other in claimed:
            if other.id != again.id:
                release_attempt(s, other.id)
        mark_originated(s, again.id, channel_id="ch-b2", started_at=NOW + timedelta(hours=1))
        finish_attempt(s, again.id, outcome="no_answer")
    check(numbers_attempted=3, calls_placed=4)
    with session_scope(sessions) as s:  # a rolled back change counts nothing
        [late] = claim_due_attempts(s, node="n", now=NOW + timedelta(hours=2), limit=1)
        mark_originated(s, late.id, channel_id="ch-late", started_at=NOW)
        s.rollback()
    check(numbers_attempted=3, calls_placed=4)
    with session_scope(sessions) as s:  # stopping cancels what is due
        set_status(s, campaign_id, CampaignStatus.STOPPED, at=NOW + timedelta(hours=2))
    check(contacts=7, numbers_attempted=3, calls_placed=4, completed=1)
    with session_scope(sessions) as s:  # counted again from the rows: the same
        before = live_counts(s, campaign_id)
        assert counters.rebuild(s) > 0
        assert live_counts(s, campaign_id) == before


def test_0006_counts_the_existing_campaigns(db_url: str) -> None:
    """The migration backfills the counters of campaigns made before it."""
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        sessions = sessionmaker(engine, expire_on_commit=False)
        campaign_id = running_campaign(sessions, "ennen", 4)
        first, second, _ = claim(sessions, limit=3)
        with session_scope(sessions) as s:
            mark_originated(s, first.id, channel_id="ch-1", started_at=NOW)
            finish_attempt(s, first.id, outcome="completed", call_id=_call(s, first, 2),
                           answered_at=NOW + timedelta(seconds=3))  # fmt: skip
            finish_attempt(s, second.id, outcome="skipped", detail="window")
        command.downgrade(alembic_config(db_url), "0005")
        upgrade(db_url)
        engine.dispose()
        with session_scope(sessions) as s:
            assert recount_matches(s, campaign_id)
            assert live_counts(s, campaign_id)["survey_started"] == 1
    finally:
        engine.dispose()
