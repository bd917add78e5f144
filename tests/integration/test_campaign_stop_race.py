"""Stopping a campaign while a telephony worker claims its attempts, on PostgreSQL.

The worker's transaction locks attempts (the claim), then touches the campaign row (its
status reason, its counters' foreign key); the staff's stop locks the campaign row, then
cancels the due attempts. In that order the two wait on each other and PostgreSQL aborts
one (a deadlock: found in bench.cluster_kamailio, 2 stops of 4 failed). The stop runs again
and succeeds; the worker's claim stands.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from ivr.accounts.audit import Actor
from ivr.campaigns.admin import CampaignAdmin
from ivr.clock import MovableClock
from ivr.store.campaigns import claim_due_attempts
from ivr.store.db import in_transaction, make_engine, make_session_factory
from ivr.store.migrate import upgrade
from ivr.store.models import Attempt, AttemptState, Campaign, CampaignStatus
from tests.integration.test_campaign_store import NOW, running_campaign
from tests.support.postgres import create_database, drop_database


@pytest.fixture()
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    name = f"ivr_stop_{uuid.uuid4().hex[:12]}"
    url = create_database(postgres_url, name)
    upgrade(url)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
        drop_database(postgres_url, name)


def _waiting_on_a_lock(engine: Engine, timeout: float = 20) -> None:
    """Until some other backend of this database waits for a lock (the stop, blocked)."""
    deadline = time.monotonic() + timeout
    with engine.connect() as c:
        while True:
            waiting = c.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
            if waiting:
                return
            assert time.monotonic() < deadline, "the stop never waited for the claimed rows"
            time.sleep(0.02)
            c.rollback()


def test_a_stop_during_a_claim_succeeds_and_the_claim_stands(pg_engine: Engine) -> None:
    factory: sessionmaker[Session] = make_session_factory(pg_engine)
    campaign_id = running_campaign(factory, "kysely", 6)
    admin = CampaignAdmin(factory, MovableClock(NOW + timedelta(minutes=1)))
    actor = Actor.cli()  # the command line's operator (campaigns of no organisation)

    claimed_ids: list[str] = []
    claimed = threading.Event()
    stop_waits = threading.Event()
    worker_errors: list[BaseException] = []

    def worker(s: Session) -> None:
        # As the dialer's batch does: claim (locks attempts), then the campaign's reason.
        claimed_ids[:] = [a.id for a in claim_due_attempts(s, node="a", now=NOW, limit=2)]
        claimed.set()
        assert stop_waits.wait(30)
        s.execute(
            sa.update(Campaign).where(Campaign.id == campaign_id).values(status_reason="dialing")
        )

    def run_worker() -> None:
        try:
            in_transaction(factory, worker)  # the writer runs it again likewise
        except BaseException as exc:  # noqa: BLE001 - asserted below
            worker_errors.append(exc)
            claimed.set()

    thread = threading.Thread(target=run_worker)
    thread.start()
    try:
        assert claimed.wait(30)
        stopper_result: list[object] = []

        def stop() -> None:
            try:
                stopper_result.append(admin.stop(actor, campaign_id))
            except BaseException as exc:  # noqa: BLE001 - asserted below
                stopper_result.append(exc)

        stopper = threading.Thread(target=stop)
        stopper.start()
        _waiting_on_a_lock(pg_engine)  # the stop holds the campaign, waits for the attempts
        stop_waits.set()  # the worker now wants the campaign: a deadlock
        stopper.join(60)
        assert not stopper.is_alive()
    finally:
        stop_waits.set()
        thread.join(60)
    assert not worker_errors, worker_errors
    assert stopper_result == [True], stopper_result
    with factory() as s:
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None and campaign.status is CampaignStatus.STOPPED
        states = dict(s.execute(sa.select(Attempt.id, Attempt.state)).tuples().all())
    assert len(claimed_ids) == 2
    assert {states[i] for i in claimed_ids} == {AttemptState.DIALING}  # the claim stands
    rest = [state for i, state in states.items() if i not in claimed_ids]
    assert rest == [AttemptState.CANCELLED] * 4  # the rest cancelled by the stop
