"""Events from the real writers reach the sample receiver on loopback, signed, exactly once
from its point of view; retries after 500 and timeouts; dead-letter; disabling with an
e-mail to admins (aiosmtpd); private addresses; secret rotation; rollback."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from sqlalchemy.orm import Session, sessionmaker

from ivr.accounts.audit import Actor
from ivr.clock import MovableClock
from ivr.config import SmtpSettings, WebhookSettings
from ivr.outcome import Outcome
from ivr.store import repo
from ivr.store.models import Call, Direction
from ivr.store.org_models import Role
from ivr.store.webhook_models import DeliveryState, WebhookDelivery, WebhookEndpoint
from ivr.webhooks import events
from ivr.webhooks.delivery import SCHEDULE, TRIES, Deliverer
from ivr.webhooks.service import WebhookInvalid, Webhooks
from tests.support.ports import free_port
from tests.webhooks.conftest import count, load_receiver

SETTINGS = WebhookSettings(allow_private=True, timeout_seconds=0.5, disable_after_hours=72)


def admin(org_id: str) -> Actor:
    return Actor("admin@uki.fi", org_id=org_id, role=Role.ADMIN)


@pytest.fixture()
def receiver(clock: MovableClock) -> Iterator[Any]:
    module = load_receiver()
    rec = module.Receiver([], now=lambda: clock().timestamp())
    server = rec.serve()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield rec
    server.shutdown()


def endpoint(
    sessions: sessionmaker[Session], clock: MovableClock, org: str, rec: Any, kinds: list[str]
) -> tuple[Webhooks, str]:
    hooks = Webhooks(sessions, clock, SETTINGS)
    view, secret = hooks.create(admin(org), rec.url, kinds, "CRM")
    rec.secrets.append(secret)
    return hooks, view.id


def finished_call(sessions: sessionmaker[Session], clock: MovableClock, org: str | None,
                  status: Outcome = Outcome.COMPLETED) -> str:  # fmt: skip
    with sessions.begin() as s:
        call = repo.create_call(
            s, direction=Direction.INBOUND, flow_id="f", flow_version="1",
            channel_id=uuid.uuid4().hex, node_name="n", language="fi", started_at=clock(),
        )  # fmt: skip
        s.execute(sa.update(Call).where(Call.id == call.id).values(org_id=org))
        call_id = call.id
    with sessions.begin() as s:
        repo.end_call(s, call_id, status, at=clock())
        repo.save_callback(s, call_id, channel="phone", consent_version="1", language="fi",
                           phone_number="+358401234567", at=clock())  # fmt: skip
    return call_id


def drain(deliverer: Deliverer) -> int:
    total = 0
    while sent := deliverer.run_once():
        total += sent
    return total


def test_every_event_arrives_signed_and_once(
    sessions: sessionmaker[Session], clock: MovableClock, org: str, receiver: Any
) -> None:
    endpoint(sessions, clock, org, receiver, list(events.EVENT_TYPES))
    call_id = finished_call(sessions, clock, org)
    finished_call(sessions, clock, None)  # no organisation: no event
    deliverer = Deliverer(sessions, clock, SETTINGS, SmtpSettings())
    assert drain(deliverer) == 3
    kinds = sorted(e["type"] for e in receiver.seen.values())
    assert kinds == ["call.finished", "callback.requested", "survey.completed"]
    assert all(e["data"]["call_id"] == call_id for e in receiver.seen.values())
    assert receiver.rejected == 0 and receiver.repeats == 0
    assert drain(deliverer) == 0  # nothing sent twice
    assert count(sessions, "SELECT count(*) FROM webhook_events") == 3


def test_an_event_is_not_in_the_outbox_when_its_transaction_rolls_back(
    sessions: sessionmaker[Session], clock: MovableClock, org: str
) -> None:
    with sessions.begin() as s:
        call = repo.create_call(
            s, direction=Direction.INBOUND, flow_id="f", flow_version="1",
            channel_id="c1", node_name="n", language="fi", started_at=clock(),
        )  # fmt: skip
        s.execute(sa.update(Call).where(Call.id == call.id).values(org_id=org))
    with pytest.raises(RuntimeError), sessions.begin() as s:
        assert repo.end_call(s, call.id, Outcome.PARTIAL, at=clock())
        assert count_in(s) == 1  # written, in this transaction
        raise RuntimeError("the change fails")
    assert count(sessions, "SELECT count(*) FROM webhook_events") == 0


def count_in(s: Session) -> int:
    return int(s.scalar(sa.text("SELECT count(*) FROM webhook_events")) or 0)


def test_retries_after_500_and_a_timeout_then_delivered_once(
    sessions: sessionmaker[Session], clock: MovableClock, org: str, receiver: Any
) -> None:
    endpoint(sessions, clock, org, receiver, [events.CALL_FINISHED])
    finished_call(sessions, clock, org, Outcome.PARTIAL)
    deliverer = Deliverer(sessions, clock, SETTINGS, SmtpSettings(), rng=random.Random(1))
    receiver.status = 500
    assert deliverer.run_once() == 1
    assert deliverer.run_once() == 0  # not due yet: the backoff holds it
    receiver.status, receiver.hang_seconds = 200, 1.5  # answers after the sender gave up
    clock.advance(SCHEDULE[0] * 1.3)
    assert deliverer.run_once() == 1
    assert receiver.wait_for(lambda: len(receiver.seen) == 1, 5)
    receiver.hang_seconds = 0
    assert deliverer.run_once() == 0
    clock.advance(SCHEDULE[1] * 1.3)
    assert deliverer.run_once() == 1
    assert len(receiver.seen) == 1 and receiver.repeats == 1  # the receiver deduplicated
    with sessions() as s:
        d = s.scalars(sa.select(WebhookDelivery)).one()
        assert d.state is DeliveryState.DELIVERED and d.tries == 3
    _, _, attempts = Webhooks(sessions, clock, SETTINGS).delivery(admin(org), d.id)
    assert [a.status_code for a in attempts] == [200, None, 500]
    assert "no answer" in str(attempts[1].error)
    assert attempts[0].response_snippet == '{"ok":true}'


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope)
        return "250 OK"


def test_dead_letter_after_the_schedule_and_admins_told_when_disabled(
    sessions: sessionmaker[Session], clock: MovableClock, org: str, receiver: Any
) -> None:
    inbox = Inbox()
    port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        _, endpoint_id = endpoint(sessions, clock, org, receiver, [events.CALL_FINISHED])
        finished_call(sessions, clock, org, Outcome.PARTIAL)
        mail = SmtpSettings(host="127.0.0.1", port=port, security="none",
                            from_address="ivr@uki.fi")  # fmt: skip
        deliverer = Deliverer(sessions, clock, SETTINGS, mail, rng=random.Random(2))
        receiver.status = 500
        start = clock()
        for _ in range(TRIES):
            assert deliverer.run_once() == 1
            clock.advance(timedelta(hours=17))  # past the longest delay with its jitter
            with sessions() as s:
                if not s.get(WebhookEndpoint, endpoint_id).enabled:  # type: ignore[union-attr]
                    break
        with sessions() as s:
            d = s.scalars(sa.select(WebhookDelivery)).one()
            e = s.get(WebhookEndpoint, endpoint_id)
            assert e is not None and not e.enabled
            assert d.next_at - start >= timedelta(hours=72) or d.state is DeliveryState.DEAD
        assert len(inbox.messages) == 1
        assert sorted(inbox.messages[0].rcpt_tos) == ["admin@uki.fi", "boss@uki.fi"]
        assert "disabled" in inbox.messages[0].content.decode()
        assert receiver.seen == {}
    finally:
        smtp.stop()


def test_dead_letter_after_twelve_tries(
    sessions: sessionmaker[Session], clock: MovableClock, org: str, receiver: Any
) -> None:
    endpoint(sessions, clock, org, receiver, [events.CALL_FINISHED])
    finished_call(sessions, clock, org, Outcome.PARTIAL)
    never = WebhookSettings(allow_private=True, timeout_seconds=0.5, disable_after_hours=720)
    deliverer = Deliverer(sessions, clock, never, SmtpSettings(), rng=random.Random(3))
    receiver.status = 500
    start = clock()
    tries = 0
    while (
        sent := deliverer.run_once()
        or (clock.advance(timedelta(hours=17)) or 0)
        or (deliverer.run_once())
    ):
        tries += sent
    with sessions() as s:
        d = s.scalars(sa.select(WebhookDelivery)).one()
        assert d.state is DeliveryState.DEAD and d.tries == TRIES == tries == 12
        assert timedelta(hours=60) < d.finished_at - start  # type: ignore[operator]
    hooks = Webhooks(sessions, clock, SETTINGS)
    hooks.resend(admin(pytest_org := org), d.id)
    receiver.status = 200
    assert deliverer.run_once() == 1
    assert len(receiver.seen) == 1
    assert pytest_org


def test_private_addresses_are_refused_unless_allowed(
    sessions: sessionmaker[Session], clock: MovableClock, org: str, receiver: Any
) -> None:
    strict = WebhookSettings(allow_private=False, timeout_seconds=0.5)
    with pytest.raises(WebhookInvalid) as caught:
        Webhooks(sessions, clock, strict).create(admin(org), receiver.url, [events.CALL_FINISHED])
    assert "private" in caught.value.errors["url"]
    endpoint(sessions, clock, org, receiver, [events.CALL_FINISHED])  # allowed: the tests
    finished_call(sessions, clock, org, Outcome.PARTIAL)
    assert Deliverer(sessions, clock, strict, SmtpSettings()).run_once() == 1
    assert receiver.requests == 0
    _, _, attempts = Webhooks(sessions, clock, SETTINGS).delivery(admin(org), 1)
    assert "private" in str(attempts[0].error)


def test_secret_rotation_signs_with_both_during_the_overlap(
    sessions: sessionmaker[Session], clock: MovableClock, org: str, receiver: Any
) -> None:
    hooks, endpoint_id = endpoint(sessions, clock, org, receiver, [events.CALL_FINISHED])
    old = receiver.secrets[0]
    new = hooks.rotate(admin(org), endpoint_id)
    assert new != old and new.startswith("whsec_")
    got: list[tuple[dict[str, str], bytes]] = []
    original = receiver.receive
    receiver.receive = lambda h, b: got.append((h, b)) or original(h, b)
    deliverer = Deliverer(sessions, clock, SETTINGS, SmtpSettings())
    finished_call(sessions, clock, org, Outcome.PARTIAL)
    assert deliverer.run_once() == 1
    verify = load_receiver().verify
    headers, body = got[0]
    assert len(headers["webhook-signature"].split()) == 2
    now = clock().timestamp()
    assert verify([old], headers, body, now)["type"] == "call.finished"
    assert verify([new], headers, body, now)["type"] == "call.finished"
    clock.advance(timedelta(hours=25))  # the overlap is over: the new secret only
    finished_call(sessions, clock, org, Outcome.PARTIAL)
    assert deliverer.run_once() == 1
    headers, body = got[1]
    assert len(headers["webhook-signature"].split()) == 1
    now = clock().timestamp()
    assert verify([new], headers, body, now)
    with pytest.raises(load_receiver().BadSignature):
        verify([old], headers, body, now)
    assert json.loads(body)["id"] == headers["webhook-id"]
