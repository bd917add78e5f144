"""Fixtures of the scheduled-report tests: the staff site on SQLite and PostgreSQL
(``module_site`` and its parts, from tests/web/conftest.py) and a real SMTP server
(aiosmtpd) on a free loopback port, which the schedules service is pointed at."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from ivr.config import SmtpSettings
from ivr.services import Services
from tests.support.ports import free_port
from tests.web.conftest import (  # noqa: F401 - fixtures
    clock,
    module_site,
    orgs,
    services,
    users,
    web_app,
)

FROM = "raportit@kunta.example"


class Inbox:
    """What the SMTP server received: (envelope recipients, parsed message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self._cond = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        with self._cond:
            self.messages.append((list(envelope.rcpt_tos), parsed))  # type: ignore[arg-type]
            self._cond.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[list[str], EmailMessage]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.messages)} messages, expected {count}"
                self._cond.wait(left)
            return list(self.messages)


class MailServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.inbox = Inbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def smtp_to(port: int) -> SmtpSettings:
    return dataclasses.replace(
        SmtpSettings(), host="127.0.0.1", port=port, security="none", from_address=FROM, timeout=5
    )


@pytest.fixture()
def mail_server(services: Services) -> Iterator[MailServer]:  # noqa: F811
    """A running SMTP server; the schedules service sends to it (for this test)."""
    server = MailServer(free_port(also_udp=False))
    server.start()
    before = services.schedules.smtp
    services.schedules.smtp = smtp_to(server.port)
    try:
        yield server
    finally:
        services.schedules.smtp = before
        server.stop()
