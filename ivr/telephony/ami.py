"""AMI adapter (panoramisk) for health: boot state, PJSIP endpoints and registrations, calls."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from panoramisk import Manager

from ivr.config import Settings
from ivr.credentials import Credentials

log = logging.getLogger(__name__)


class AmiError(Exception):
    pass


@dataclass(frozen=True)
class EndpointState:
    name: str
    device_state: str  # "Not in use", "Unavailable", "In use", ...
    contacts: str


@dataclass(frozen=True)
class RegistrationState:
    name: str
    server_uri: str
    status: str  # "Registered", "Unregistered", "Rejected", ...


@dataclass(frozen=True)
class AmiHealth:
    fully_booted: bool
    version: str
    channels: int
    endpoints: list[EndpointState] = field(default_factory=list)
    registrations: list[RegistrationState] = field(default_factory=list)

    def endpoint(self, name: str) -> EndpointState | None:
        return next((e for e in self.endpoints if e.name == name), None)


def _as_list(result: Any) -> list[Any]:
    return result if isinstance(result, list) else [result]


class AmiClient:
    """A logged-in AMI session. Create with ``await AmiClient.connect(...)``."""

    def __init__(self, manager: Manager) -> None:
        self._manager = manager
        self.fully_booted = asyncio.Event()
        manager.register_event("FullyBooted", self._on_fully_booted)

    async def _on_fully_booted(self, _manager: Manager, _event: Any) -> None:
        self.fully_booted.set()

    @classmethod
    async def connect(
        cls, host: str, port: int, username: str, secret: str, timeout: float = 5.0
    ) -> AmiClient:
        loop = asyncio.get_running_loop()
        manager = Manager(
            loop=loop,
            host=host,
            port=port,
            username=username,
            secret=secret,
            ping_delay=10,
            reconnect_timeout=1,
            log=log,
        )
        client = cls(manager)
        deadline = loop.time() + timeout
        connecting = manager.connect()
        try:
            await asyncio.wait_for(asyncio.shield(connecting), timeout)
        except (OSError, TimeoutError) as exc:
            manager.close()
            raise AmiError(f"AMI at {host}:{port} does not answer: {exc}") from None
        while not manager.authenticated:
            remaining = deadline - loop.time()
            if remaining <= 0:
                manager.close()
                raise AmiError(f"AMI at {host}:{port}: no login answer within {timeout} s")
            pending = manager.authenticated_future
            if pending is not None:
                try:
                    resp = await asyncio.wait_for(asyncio.shield(pending), remaining)
                except TimeoutError:
                    continue
                if not resp.success:
                    manager.close()
                    raise AmiError(f"AMI login as {username!r} refused: {resp.get('Message')}")
            await asyncio.sleep(0.01)
        return client

    async def action(self, action: dict[str, str], timeout: float = 5.0) -> list[Any]:
        result = await asyncio.wait_for(self._manager.send_action(action), timeout)
        messages = _as_list(result)
        if messages and messages[0].get("Response") == "Error":
            raise AmiError(f"AMI {action['Action']}: {messages[0].get('Message')}")
        return messages

    async def health(self, timeout: float = 5.0) -> AmiHealth:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.fully_booted.wait(), min(timeout, 2.0))
        core = (await self.action({"Action": "CoreStatus"}, timeout))[0]
        settings = (await self.action({"Action": "CoreSettings"}, timeout))[0]
        endpoints = [
            EndpointState(m.get("ObjectName", ""), m.get("DeviceState", ""), m.get("Contacts", ""))
            for m in await self.action({"Action": "PJSIPShowEndpoints"}, timeout)
            if m.get("Event") == "EndpointList"
        ]
        registrations = [
            RegistrationState(m.get("ObjectName", ""), m.get("ServerUri", ""), m.get("Status", ""))
            for m in await self.action({"Action": "PJSIPShowRegistrationsOutbound"}, timeout)
            if m.get("Event") == "OutboundRegistrationDetail"
        ]
        return AmiHealth(
            fully_booted=self.fully_booted.is_set(),
            version=settings.get("AsteriskVersion", ""),
            channels=int(core.get("CoreCurrentCalls", "0") or 0),
            endpoints=endpoints,
            registrations=registrations,
        )

    def close(self) -> None:
        self._manager.close()


async def ami_health(settings: Settings, creds: Credentials, timeout: float = 5.0) -> AmiHealth:
    client = await AmiClient.connect(
        settings.pbx.bind_address,
        settings.pbx.ami_port,
        creds.ami_username,
        creds.ami_password,
        timeout,
    )
    try:
        return await client.health(timeout)
    finally:
        client.close()
