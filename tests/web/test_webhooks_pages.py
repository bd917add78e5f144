"""The admin's webhook pages through Flask's test client, on SQLite and PostgreSQL: an
endpoint added (its secret shown once, never again), field errors, a private address
refused unless the setting allows it, the secret rotated, disabled and enabled, deliveries
to the sample receiver on loopback listed with their tries on keyset pages, a re-send;
another organisation's admin gets 404 and a manager 403 on every page."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from ivr.clock import MovableClock
from ivr.services import Services
from ivr.store.org_models import AuditEntry
from ivr.store.webhook_models import DeliveryState, WebhookDelivery, WebhookEndpoint
from ivr.webhooks import events
from ivr.webhooks.delivery import Deliverer
from ivr.webhooks.history import PAGE_SIZE
from ivr.webhooks.outbox import emit
from tests.web.campaign_support import body, browser
from tests.web.conftest import Orgs, Users, post, unique
from tests.webhooks.conftest import load_receiver

SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")


@pytest.fixture()
def private_allowed(services: Services) -> Iterator[None]:
    """``[webhooks] allow_private`` on for one test (the receiver is on loopback)."""
    before = services.webhooks.settings
    services.webhooks.settings = replace(before, allow_private=True, timeout_seconds=5)
    yield
    services.webhooks.settings = before


@pytest.fixture()
def receiver(clock: MovableClock) -> Iterator[Any]:
    rec = load_receiver().Receiver([], now=lambda: clock().timestamp())
    server = rec.serve()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/{unique('hook')}"
    yield rec
    server.shutdown()


def _base(org_id: str) -> str:
    return f"/o/{org_id}/webhooks"


def _add(client: FlaskClient, org_id: str, url: str, *kinds: str, description: str = "") -> Any:
    data = {"url": url, "description": description, **{f"event-{k}": "1" for k in kinds}}
    return post(client, f"{_base(org_id)}/new", data)


def _endpoint(services: Services, url: str) -> WebhookEndpoint:
    with services.factory() as s:
        found = s.scalars(sa.select(WebhookEndpoint).where(WebhookEndpoint.url == url)).one()
        s.expunge(found)
        return found


def _added(client: FlaskClient, services: Services, org_id: str, url: str, *kinds: str) -> tuple[
    WebhookEndpoint, str
]:  # fmt: skip
    response = _add(client, org_id, url, *(kinds or (events.CALL_FINISHED,)))
    assert response.status_code == 200, body(response)
    shown = SECRET.findall(body(response))
    assert len(shown) == 1, body(response)
    return _endpoint(services, url), shown[0]


def _deliver(services: Services, clock: MovableClock) -> int:
    deliverer = Deliverer(
        services.factory, clock, services.webhooks.settings, services.settings.smtp
    )
    total = 0
    while sent := deliverer.run_once():
        total += sent
    return total


def _campaign_finished(services: Services, clock: MovableClock, org_id: str) -> None:
    with services.factory.begin() as s:
        data = {"campaign_id": unique("c"), "status": "completed"}
        emit(s, org_id, events.CAMPAIGN_FINISHED, data, at=clock())


def _pages(client: FlaskClient, org_id: str, endpoint_id: str) -> list[str]:
    base = _base(org_id)
    return [
        body(client.get(path))
        for path in (
            f"{base}/",
            f"{base}/{endpoint_id}/edit",
            f"{base}/{endpoint_id}/rotate",
            f"{base}/{endpoint_id}/deliveries",
        )
    ]


# --------------------------------------------------------------------------- endpoints
def test_an_endpoint_is_added_and_its_secret_is_shown_once(
    web_app: Flask, services: Services, orgs: Orgs, users: Users, private_allowed: None
) -> None:
    client = browser(web_app, users.a.admin)
    url = f"http://127.0.0.1:9/{unique('crm')}"
    made, secret = _added(client, services, orgs.a.id, url, events.CALL_FINISHED,
                          events.CALLBACK_REQUESTED)  # fmt: skip
    assert made.secret == secret and made.org_id == orgs.a.id and made.enabled
    assert sorted(made.events.strip("[]").replace('"', "").split(", ")) == sorted(
        [events.CALL_FINISHED, events.CALLBACK_REQUESTED]
    )
    pages = _pages(client, orgs.a.id, made.id)
    assert url in pages[0] and "A call ended" in pages[0] and "Enabled" in pages[0]
    for page in pages:
        assert secret not in page and "whsec_" not in page
    with services.factory() as s:
        entry = s.scalars(
            sa.select(AuditEntry).where(
                AuditEntry.action == "webhook.create", AuditEntry.target_id == made.id
            )
        ).one()
        assert secret not in str(entry.detail)
    # The edit form shows the events chosen, and saving changes them.
    edit = body(client.get(f"{_base(orgs.a.id)}/{made.id}/edit"))
    assert re.search(r'id="event-call.finished"[^>]*checked', edit)
    assert not re.search(r'id="event-survey.completed"[^>]*checked', edit)
    saved = post(client, f"{_base(orgs.a.id)}/{made.id}/edit",
                 {"url": url, "event-survey.completed": "1"})  # fmt: skip
    assert saved.status_code == 302
    assert _endpoint(services, url).events == '["survey.completed"]'


def test_field_errors_are_beside_the_field_and_in_the_summary(
    web_app: Flask, services: Services, orgs: Orgs, users: Users
) -> None:
    client = browser(web_app, users.a.admin)
    with services.factory() as s:
        before = s.scalar(sa.select(sa.func.count()).select_from(WebhookEndpoint))
    response = _add(client, orgs.a.id, "ftp://files.example/x", description="x" * 201)
    page = body(response)
    assert response.status_code == 400
    summary = page.split('class="error-summary"', 1)[1].split("</div>", 1)[0]
    for anchor in ("#url", "#events", "#description"):
        assert f'href="{anchor}"' in summary
    assert 'id="url-error"' in page and "starting with https://" in page
    assert 'id="events-error"' in page and "Choose at least one event." in page
    assert 'id="description-error"' in page and "under 200 characters" in page
    assert 'value="ftp://files.example/x"' in page  # what was typed is kept
    with services.factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(WebhookEndpoint)) == before


def test_a_private_address_is_refused_unless_the_setting_allows_it(
    web_app: Flask, services: Services, orgs: Orgs, users: Users
) -> None:
    assert not services.webhooks.settings.allow_private
    client = browser(web_app, users.a.admin)
    for url in (f"http://127.0.0.1:8080/{unique('x')}", f"https://10.1.2.3/{unique('x')}",
                f"http://169.254.169.254/{unique('x')}"):  # fmt: skip
        response = _add(client, orgs.a.id, url, events.CALL_FINISHED)
        page = html.unescape(body(response))
        assert response.status_code == 400
        error = re.search(r'id="url-error">([^<]*)<', page)
        assert error and "loopback, link-local or private address" in error.group(1), page
        assert "whsec_" not in page
        with services.factory() as s:
            assert not s.scalars(sa.select(WebhookEndpoint).where(WebhookEndpoint.url == url)).all()
    before = services.webhooks.settings
    services.webhooks.settings = replace(before, allow_private=True)
    try:
        url = f"http://127.0.0.1:8080/{unique('allowed')}"
        made, _secret = _added(client, services, orgs.a.id, url)
        assert made.url == url
    finally:
        services.webhooks.settings = before


def test_rotating_shows_the_new_secret_once_and_keeps_the_old_one_signing(
    web_app: Flask, services: Services, orgs: Orgs, users: Users, private_allowed: None
) -> None:
    client = browser(web_app, users.a.admin)
    made, old = _added(client, services, orgs.a.id, f"http://127.0.0.1:9/{unique('r')}")
    confirm = client.get(f"{_base(orgs.a.id)}/{made.id}/rotate")
    assert confirm.status_code == 200 and "whsec_" not in body(confirm)
    rotated = post(client, f"{_base(orgs.a.id)}/{made.id}/rotate")
    shown = SECRET.findall(body(rotated))
    assert rotated.status_code == 200 and len(shown) == 1 and shown[0] != old
    stored = _endpoint(services, made.url)
    assert stored.secret == shown[0] and stored.previous_secret == old
    pages = _pages(client, orgs.a.id, made.id)
    assert "previous secret also signs until" in pages[0]
    for page in pages:
        assert shown[0] not in page and old not in page


def test_disable_and_enable(
    web_app: Flask, services: Services, orgs: Orgs, users: Users, private_allowed: None
) -> None:
    client = browser(web_app, users.a.admin)
    made, _secret = _added(client, services, orgs.a.id, f"http://127.0.0.1:9/{unique('d')}")
    state = f"{_base(orgs.a.id)}/{made.id}/state"
    assert post(client, state, {"action": "disable"}).status_code == 302
    assert not _endpoint(services, made.url).enabled
    index = body(client.get(f"{_base(orgs.a.id)}/"))
    row = index.split(f'data-endpoint="{made.id}"', 1)[1].split("</tr>", 1)[0]
    assert "Disabled by an admin." in row and 'value="enable"' in row
    assert post(client, state, {"action": "enable"}).status_code == 302
    again = _endpoint(services, made.url)
    assert again.enabled and again.disabled_reason is None
    assert post(client, state, {"action": "delete"}).status_code == 400


# --------------------------------------------------------------------------- deliveries
def test_deliveries_with_their_tries_and_a_resend(
    web_app: Flask,
    services: Services,
    clock: MovableClock,
    orgs: Orgs,
    users: Users,
    private_allowed: None,
    receiver: Any,
) -> None:
    client = browser(web_app, users.a.admin)
    made, secret = _added(client, services, orgs.a.id, receiver.url, events.CAMPAIGN_FINISHED)
    receiver.secrets.append(secret)
    _campaign_finished(services, clock, orgs.a.id)
    _deliver(services, clock)
    assert receiver.wait_for(lambda: len(receiver.seen) == 1, 10)
    receiver.status = 500  # the second event fails once
    _campaign_finished(services, clock, orgs.a.id)
    _deliver(services, clock)
    assert receiver.wait_for(lambda: receiver.requests == 2, 10)

    with services.factory() as s:
        rows = s.scalars(
            sa.select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == made.id)
            .order_by(WebhookDelivery.id)
        ).all()
        ok, failed = rows
        assert ok.state is DeliveryState.DELIVERED and failed.state is DeliveryState.PENDING
    page = html.unescape(body(client.get(f"{_base(orgs.a.id)}/{made.id}/deliveries")))
    shown = [int(n) for n in re.findall(r'data-delivery="(\d+)"', page)]
    assert shown == [failed.id, ok.id]  # the newest first
    first = page.split(f'data-delivery="{ok.id}"', 1)[1].split("</section>", 1)[0]
    assert "Delivered" in first and "Succeeded" in first and '{"ok":true}' in first
    assert re.search(r"<td>200</td>", first) and re.search(r"<td>\d+ ms</td>", first)
    second = page.split(f'data-delivery="{failed.id}"', 1)[1].split("</section>", 1)[0]
    assert "Waiting to be sent" in second and "the endpoint answered 500" in second
    assert re.search(r"<td>500</td>", second) and '{"ok":false}' in second
    index = html.unescape(body(client.get(f"{_base(orgs.a.id)}/")))
    row = index.split(f'data-endpoint="{made.id}"', 1)[1].split("</tr>", 1)[0]
    assert "Waiting to be sent (HTTP 500)" in row

    # Re-send the delivered one: the receiver gets the same webhook-id again.
    receiver.status = 200
    detail = f"{_base(orgs.a.id)}/{made.id}/deliveries/{ok.id}"
    assert client.get(detail).status_code == 200
    resent = post(client, f"{detail}/resend")
    assert resent.status_code == 302 and resent.headers["Location"].endswith(detail)
    with services.factory() as s:
        assert s.get(WebhookDelivery, ok.id).state is DeliveryState.PENDING  # type: ignore[union-attr]
    _deliver(services, clock)
    assert receiver.wait_for(lambda: receiver.repeats == 1, 10)
    assert len(receiver.seen) == 1  # the failed one is not due yet (5 s on the clock)
    after = html.unescape(body(client.get(detail)))
    assert after.count("<tr data-attempt>") == 2 and "Delivered" in after
    assert ok_msg_id(services, ok.id) in after
    with services.factory() as s:
        assert s.scalars(
            sa.select(AuditEntry).where(
                AuditEntry.action == "webhook.resend", AuditEntry.target_id == str(ok.id)
            )
        ).one()


def ok_msg_id(services: Services, delivery_id: int) -> str:
    from ivr.store.webhook_models import WebhookEvent

    with services.factory() as s:
        return str(
            s.scalar(
                sa.select(WebhookEvent.msg_id)
                .join(WebhookDelivery, WebhookDelivery.event_id == WebhookEvent.id)
                .where(WebhookDelivery.id == delivery_id)
            )
        )


def test_deliveries_come_on_keyset_pages(
    web_app: Flask,
    services: Services,
    clock: MovableClock,
    orgs: Orgs,
    users: Users,
    private_allowed: None,
) -> None:
    client = browser(web_app, users.a.admin)
    made, _secret = _added(client, services, orgs.a.id, f"http://127.0.0.1:9/{unique('k')}",
                           events.TRANSCRIPT_READY)  # fmt: skip
    count = PAGE_SIZE + 7
    with services.factory.begin() as s:
        for n in range(count):
            data = {"transcript_id": str(n), "call_id": "c", "campaign_id": "k"}
            emit(s, orgs.a.id, events.TRANSCRIPT_READY, data, at=clock())
    Deliverer(services.factory, clock, services.webhooks.settings,
              services.settings.smtp).fan_out()  # fmt: skip
    path = f"{_base(orgs.a.id)}/{made.id}/deliveries"
    first = body(client.get(path))
    page1 = [int(n) for n in re.findall(r'data-delivery="(\d+)"', first)]
    older = re.search(r'href="([^"]+)" rel="next"', first)
    assert len(page1) == PAGE_SIZE and older
    second = body(client.get(html.unescape(older.group(1))))
    page2 = [int(n) for n in re.findall(r'data-delivery="(\d+)"', second)]
    assert 'rel="next"' not in second and "Newest" in second
    assert page1 + page2 == sorted(page1 + page2, reverse=True)
    with services.factory() as s:
        ids = s.scalars(
            sa.select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == made.id)
        ).all()
    assert sorted(page1 + page2) == sorted(ids) and len(ids) == count
    assert "Not tried yet." in second


# --------------------------------------------------------------------------- access
def _a_endpoint_and_delivery(
    web_app: Flask, services: Services, clock: MovableClock, orgs: Orgs, users: Users
) -> tuple[str, int]:
    client = browser(web_app, users.a.admin)
    made, _secret = _added(client, services, orgs.a.id, f"http://127.0.0.1:9/{unique('a')}",
                           events.CALLBACK_REQUESTED)  # fmt: skip
    with services.factory.begin() as s:
        data = {"callback_request_id": 1, "call_id": "c", "campaign_id": "k", "status": "new"}
        emit(s, orgs.a.id, events.CALLBACK_REQUESTED, data, at=clock())
    Deliverer(services.factory, clock, services.webhooks.settings,
              services.settings.smtp).fan_out()  # fmt: skip
    with services.factory() as s:
        delivery = s.scalars(
            sa.select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == made.id)
        ).one()
    return made.id, delivery


def _routes(org_id: str, endpoint_id: str, delivery_id: int) -> list[tuple[str, str]]:
    base = _base(org_id)
    one = f"{base}/{endpoint_id}"
    return [
        ("GET", f"{base}/"),
        ("GET", f"{base}/new"),
        ("POST", f"{base}/new"),
        ("GET", f"{one}/edit"),
        ("POST", f"{one}/edit"),
        ("POST", f"{one}/state"),
        ("GET", f"{one}/rotate"),
        ("POST", f"{one}/rotate"),
        ("GET", f"{one}/deliveries"),
        ("GET", f"{one}/deliveries/{delivery_id}"),
        ("POST", f"{one}/deliveries/{delivery_id}/resend"),
    ]


def _snapshot(services: Services, endpoint_id: str) -> tuple[Any, ...]:
    with services.factory() as s:
        e = s.get(WebhookEndpoint, endpoint_id)
        assert e is not None
        d = s.scalars(sa.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == e.id)).one()
        count = s.scalar(sa.select(sa.func.count()).select_from(WebhookEndpoint))
        return (e.url, e.events, e.secret, e.enabled, d.state, d.tries, d.next_at, count)


def test_another_organisations_admin_gets_404_everywhere(
    web_app: Flask,
    services: Services,
    clock: MovableClock,
    orgs: Orgs,
    users: Users,
    private_allowed: None,
) -> None:
    endpoint_id, delivery_id = _a_endpoint_and_delivery(web_app, services, clock, orgs, users)
    before = _snapshot(services, endpoint_id)
    b_admin = browser(web_app, users.b.admin)
    form = {"url": "http://127.0.0.1:9/b", "event-call.finished": "1", "action": "disable"}
    for method, path in _routes(orgs.a.id, endpoint_id, delivery_id):
        response = b_admin.get(path) if method == "GET" else post(b_admin, path, form)
        assert response.status_code == 404, f"{method} {path}: {response.status_code}"
    # B's own organisation's address with A's endpoint and delivery: 404 too.
    for method, path in _routes(orgs.b.id, endpoint_id, delivery_id)[3:]:
        response = b_admin.get(path) if method == "GET" else post(b_admin, path, form)
        assert response.status_code == 404, f"{method} {path}: {response.status_code}"
    assert _snapshot(services, endpoint_id) == before
    assert b_admin.get(f"{_base(orgs.b.id)}/").status_code == 200


def test_a_manager_gets_403_and_no_link(
    web_app: Flask,
    services: Services,
    clock: MovableClock,
    orgs: Orgs,
    users: Users,
    private_allowed: None,
) -> None:
    endpoint_id, delivery_id = _a_endpoint_and_delivery(web_app, services, clock, orgs, users)
    before = _snapshot(services, endpoint_id)
    manager = browser(web_app, users.a.manager)
    form = {"url": "http://127.0.0.1:9/m", "event-call.finished": "1", "action": "disable"}
    for method, path in _routes(orgs.a.id, endpoint_id, delivery_id):
        response = manager.get(path) if method == "GET" else post(manager, path, form)
        assert response.status_code == 403, f"{method} {path}: {response.status_code}"
    assert _snapshot(services, endpoint_id) == before
    home = body(manager.get(f"/o/{orgs.a.id}/campaigns/"))
    assert f"{_base(orgs.a.id)}/" not in home
    admin_home = body(browser(web_app, users.a.admin).get(f"/o/{orgs.a.id}/campaigns/"))
    assert f'href="{_base(orgs.a.id)}/"' in admin_home
