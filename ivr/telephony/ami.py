"""AMI adapter (panoramisk) for health: boot state, PJSIP endpoints and registrations, calls."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from panoramisk import Manager  # type: ignore[import-untyped]

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
class ContactState:
    """A SIP contact of an endpoint: a trunk's configured far end, or a registered phone."""

    endpoint: str
    uri: str
    # "Reachable", "Unreachable" (qualified and not answering OPTIONS), "NonQualified"
    # (qualify off: never checked), "Unknown" (not checked yet), "Created"...
    status: str
    roundtrip_ms: float | None = None  # the last OPTIONS round trip, when qualified
    user_agent: str = ""  # a registered phone's User-Agent

    @property
    def reachable(self) -> bool | None:
        """True: answers OPTIONS; False: Asterisk marked it unreachable; None: not checked."""
        return {"Reachable": True, "Unreachable": False}.get(self.status)


def contacts_reachable(contacts: list[ContactState]) -> bool | None:
    """One answering contact is enough; False only when every contact is unreachable."""
    states = [c.reachable for c in contacts]
    if any(state is True for state in states):
        return True
    if states and all(state is False for state in states):
        return False
    return None


@dataclass(frozen=True)
class AmiHealth:
    fully_booted: bool
    version: str
    channels: int
    endpoints: list[EndpointState] = field(default_factory=list)
    registrations: list[RegistrationState] = field(default_factory=list)
    trunk: list[ContactState] = field(default_factory=list)  # the trunk's far end(s)
    registered: list[ContactState] = field(default_factory=list)  # phones registered now

    def endpoint(self, name: str) -> EndpointState | None:
        return next((e for e in self.endpoints if e.name == name), None)


def _roundtrip_ms(value: str) -> float | None:
    try:
        return int(value) / 1000.0
    except ValueError:  # "N/A"
        return None


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

    async def endpoint_contacts(self, endpoint: str, timeout: float = 5.0) -> list[ContactState]:
        """The contacts of one endpoint's AORs, static ones included (PJSIPShowEndpoint)."""
        messages = await self.action({"Action": "PJSIPShowEndpoint", "Endpoint": endpoint}, timeout)
        return [
            ContactState(
                m.get("EndpointName", endpoint),
                m.get("URI", ""),
                m.get("Status", ""),
                _roundtrip_ms(m.get("RoundtripUsec", "")),
            )
            for m in messages
            if m.get("Event") == "ContactStatusDetail"
        ]

    async def registered_contacts(self, timeout: float = 5.0) -> list[ContactState]:
        """Every contact registered now (phones); a trunk's static contact is not one."""
        result = await asyncio.wait_for(
            self._manager.send_action({"Action": "PJSIPShowContacts"}), timeout
        )
        messages = _as_list(result)
        if messages and messages[0].get("Response") == "Error":
            if "no contacts" in str(messages[0].get("Message", "")).lower():
                return []
            raise AmiError(f"AMI PJSIPShowContacts: {messages[0].get('Message')}")
        return [
            ContactState(
                m.get("Endpoint", ""),
                m.get("Uri", ""),
                m.get("Status", ""),
                _roundtrip_ms(m.get("RoundtripUsec", "")),
                m.get("UserAgent", ""),
            )
            for m in messages
            if m.get("Event") == "ContactList"
        ]

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
        has_trunk = any(e.name == "trunk" for e in endpoints)
        return AmiHealth(
            fully_booted=self.fully_booted.is_set(),
            version=settings.get("AsteriskVersion", ""),
            channels=int(core.get("CoreCurrentCalls", "0") or 0),
            endpoints=endpoints,
            registrations=registrations,
            trunk=await self.endpoint_contacts("trunk", timeout) if has_trunk else [],
            registered=await self.registered_contacts(timeout),
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
