"""A real softphone (baresip) against the real Asterisk: register, call in, DTMF, hang up.

The account line is the one `ivr softphone` prints, so these tests prove that what we tell
integrators to paste into baresip actually works.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from ivr.bootstrap import App
from ivr.softphone import SoftphoneAccount, accounts
from ivr.telephony.ami import ami_health
from ivr.telephony.ari import AriEvent
from tests.support.baresip import Baresip, BaresipError

pytestmark = pytest.mark.pbx


def _account(app: App, name: str) -> SoftphoneAccount:
    found = [a for a in accounts(app.settings, app.credentials) if a.username == name]
    assert found, f"ivr.softphone.accounts() lists no {name}"
    return found[0]


def test_printed_account_line_registers(pbx_app: App) -> None:
    account = _account(pbx_app, "softphone1")
    assert account.host == "127.0.0.1"
    assert account.port == pbx_app.settings.pbx.sip_port
    with Baresip(account.baresip_line()) as phone:
        event = phone.wait_registered(10)
        assert event["param"].startswith("200")
        assert event["accountaor"] == f"sip:softphone1@127.0.0.1:{account.port}"

        health = asyncio.run(ami_health(pbx_app.settings, pbx_app.credentials))
        endpoint = health.endpoint("softphone1")
        assert endpoint is not None, [e.name for e in health.endpoints]
        # Contacts lists "<aor>/<contact uri>," per binding; baresip's contact user is
        # "softphone1-0x<pointer>", its host:port the SIP socket the harness gave it.
        assert endpoint.contacts.startswith("softphone1/sip:softphone1"), endpoint
        assert f"@127.0.0.1:{phone.sip_port}" in endpoint.contacts, endpoint
        assert endpoint.device_state == "Not in use", endpoint


def test_call_inbound_number_with_dtmf(pbx_app: App) -> None:
    account = _account(pbx_app, "softphone1")
    number = "100"
    assert number in pbx_app.settings.inbound_numbers

    async def scenario(phone: Baresip) -> None:
        ari = pbx_app.ari()
        events: asyncio.Queue[AriEvent] = asyncio.Queue()
        ari.add_listener(events.put_nowait)
        await ari.start()
        try:
            await asyncio.to_thread(phone.dial, number)
            start = await _next(events, lambda e: e.type == "StasisStart", 10)
            channel = start.channel_id
            assert channel
            assert start.args == ["inbound", number]
            assert start.data["channel"]["caller"]["number"] == account.username

            await ari.answer(channel)
            await ari.play(channel, ["sound:hello-world"])
            await asyncio.to_thread(phone.wait_event, "CALL_ESTABLISHED", 10, ("CALL_CLOSED",))

            await asyncio.to_thread(phone.send_digits, "47#")
            digits = ""
            deadline = time.monotonic() + 8
            while len(digits) < 3:
                event = await _next(
                    events,
                    lambda e: e.type == "ChannelDtmfReceived" and e.channel_id == channel,
                    max(0.1, deadline - time.monotonic()),
                    f"the digits so far: {digits!r}",
                )
                digits += event.digit or ""
            # no extra (duplicated) digits arrive after the three sent
            await asyncio.sleep(1.0)
            while not events.empty():
                late = events.get_nowait()
                if late.type == "ChannelDtmfReceived" and late.channel_id == channel:
                    digits += late.digit or ""
            assert digits == "47#"

            await ari.hangup(channel)
            closed = await asyncio.to_thread(phone.wait_event, "CALL_CLOSED", 10)
            assert closed["direction"] == "outgoing"
            await _next(events, lambda e: e.type == "StasisEnd" and e.channel_id == channel, 10)
        finally:
            await ari.close()

    with Baresip(account.baresip_line()) as phone:
        phone.wait_registered(10)
        asyncio.run(asyncio.wait_for(scenario(phone), 30))


def test_wrong_password_does_not_register(pbx_app: App) -> None:
    account = _account(pbx_app, "softphone2")
    wrong = SoftphoneAccount(
        account.username, account.password + "-wrong", account.host, account.port
    )
    with Baresip(wrong.baresip_line()) as phone:
        with pytest.raises(BaresipError, match="REGISTER_FAIL"):
            phone.wait_registered(8)
        failed = [e for e in phone.events if e.get("type") == "REGISTER_FAIL"]
        assert failed and failed[0]["param"] == "401 Unauthorized", phone.events
        assert not [e for e in phone.events if e.get("type") == "REGISTER_OK"]

        health = asyncio.run(ami_health(pbx_app.settings, pbx_app.credentials))
        endpoint = health.endpoint("softphone2")
        assert endpoint is not None
        assert f":{phone.sip_port}" not in endpoint.contacts, endpoint


async def _next(
    events: asyncio.Queue[AriEvent],
    match: Callable[[AriEvent], bool],
    timeout: float,
    note: str = "",
) -> AriEvent:
    """The next ARI event for which ``match(event)`` is true (others are dropped)."""
    seen: list[str] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        remaining = deadline - loop.time()
        try:
            if remaining <= 0:
                raise TimeoutError
            event = await asyncio.wait_for(events.get(), remaining)
        except TimeoutError:
            raise AssertionError(
                f"no matching ARI event within {timeout} s; saw {seen} {note}"
            ) from None
        if match(event):
            return event
        seen.append(event.type)
