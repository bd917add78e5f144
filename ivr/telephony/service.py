"""The telephony service: every channel that enters our Stasis application runs its flow.

- Inbound: the dialled number (the line) selects the flow and its default language.
- Outbound: ``call()`` places a call through the trunk; when answered, the flow runs.
- Crash safety: at start and after every ARI reconnect, channels of our application that
  no session owns are hung up, and calls the database still thinks active on this node are
  marked interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from ivr.clock import Clock
from ivr.flows.model import Flow
from ivr.telephony.ari import CONNECTED, DISCONNECTED, AriClient, AriError, AriEvent
from ivr.telephony.outcome import Outcome, classify
from ivr.telephony.session import (
    CallRecorder,
    CallSession,
    PromptResolver,
    SessionInfo,
    event_channel,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Line:
    """An inbound number: which flow answers it, in which language."""

    number: str
    flow: Flow
    language: str | None = None  # None: the flow's default (or its language menu)


class CallStore(CallRecorder, Protocol):
    async def create(
        self,
        *,
        call_id: str,
        direction: str,
        flow: Flow,
        channel_id: str,
        line_number: str | None,
        remote_number: str | None,
        language: str,
        attempt_id: str | None,
    ) -> None: ...
    async def not_answered(
        self, call_id: str, outcome: str, cause: int | None, sip_code: int | None
    ) -> None: ...
    async def interrupt_orphans(self, live_call_ids: set[str]) -> int: ...


@dataclass
class OutboundCall:
    call_id: str
    channel_id: str
    number: str
    flow: Flow
    language: str | None
    done: asyncio.Future[str] = field(repr=False)  # the final status
    started_at: datetime | None = None  # originated
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    cause: int | None = None  # Q.850
    sip_code: int | None = None


class TelephonyService:
    def __init__(
        self,
        ari: AriClient,
        store: CallStore,
        prompts: PromptResolver,
        lines: Mapping[str, Line],
        recordings_dir: Path,
        *,
        clock: Clock,
        max_call_seconds: float = 3600.0,
        trunk: str = "trunk",
    ) -> None:
        self.ari = ari
        self.store = store
        self.prompts = prompts
        self.lines = dict(lines)
        self.recordings_dir = recordings_dir
        self.clock = clock
        self.max_call_seconds = max_call_seconds
        self.trunk = trunk
        self.sessions: dict[str, CallSession] = {}  # channel id -> session
        self.bridges: dict[str, tuple[str, str]] = {}  # channel id -> (other channel, bridge)
        self._outbound: dict[str, OutboundCall] = {}  # channel id -> call placed by us
        self._tasks: set[asyncio.Task[None]] = set()
        self._remove_listener: Callable[[], None] | None = None
        self.reconciled = asyncio.Event()
        self.connection_lost = asyncio.Event()  # set while ARI is disconnected

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._remove_listener = self.ari.add_listener(self._on_event)
        await self.ari.start()
        await self.reconcile()

    async def stop(self) -> None:
        if self._remove_listener:
            self._remove_listener()
        for task in list(self._tasks):
            task.cancel()
        await self.ari.close()

    def _spawn(self, coro: object, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("telephony task %s failed", task.get_name(), exc_info=task.exception())

    async def reconcile(self) -> None:
        """Hang up channels of our app that no session owns; mark orphaned calls interrupted."""
        try:
            channels = await self.ari.request("GET", "/channels")
        except AriError as exc:
            log.warning("reconcile: cannot list channels: %s", exc)
            return
        app = self.ari.app
        present = {c["id"] for c in channels}
        # Calls whose channel vanished while we were not listening (Asterisk restarted).
        for channel_id, session in list(self.sessions.items()):
            if channel_id not in present:
                log.warning("reconcile: channel %s is gone: call interrupted", channel_id)
                session.interrupt()
        for channel_id, out in list(self._outbound.items()):
            if channel_id not in present and channel_id not in self.sessions:
                self._outbound.pop(channel_id, None)
                out.ended_at = self.clock()
                await self.store.not_answered(out.call_id, "interrupted", None, None)
                if not out.done.done():
                    out.done.set_result("interrupted")
        owned = set(self.sessions) | set(self._outbound) | set(self.bridges)
        for channel in channels:
            dialplan = channel.get("dialplan", {})
            in_app = dialplan.get("app_name") == "Stasis" and (
                str(dialplan.get("app_data", "")).split(",")[0] == app
            )
            if in_app and channel["id"] not in owned:
                log.warning("reconcile: hanging up orphaned channel %s", channel["id"])
                with contextlib.suppress(AriError):
                    await self.ari.hangup(channel["id"])
        live = {s.info.call_id for s in self.sessions.values()}
        live |= {c.call_id for c in self._outbound.values()}
        count = await self.store.interrupt_orphans(live)
        if count:
            log.warning("reconcile: %d call(s) marked interrupted", count)
        self.reconciled.set()

    # ------------------------------------------------------------------ outbound
    async def call(
        self,
        number: str,
        flow: Flow,
        language: str | None = None,
        *,
        caller_id: str | None = None,
        ring_timeout: int = 30,
        variables: Mapping[str, str] | None = None,
        attempt_id: str | None = None,
        call_id: str | None = None,
    ) -> OutboundCall:
        """Place a call; the flow runs when it is answered. Await ``.done`` for its status."""
        call_id = call_id or uuid.uuid4().hex
        channel_id = f"out-{call_id}"
        out = OutboundCall(
            call_id,
            channel_id,
            number,
            flow,
            language,
            asyncio.get_running_loop().create_future(),
            started_at=self.clock(),
        )
        await self.store.create(
            call_id=call_id,
            direction="outbound",
            flow=flow,
            channel_id=channel_id,
            line_number=None,
            remote_number=number,
            language=language or flow.default_language,
            attempt_id=attempt_id,
        )
        self._outbound[channel_id] = out
        try:
            await self.ari.originate(
                f"PJSIP/{number}@{self.trunk}",
                app_args=["outbound", call_id],
                caller_id=caller_id,
                timeout=ring_timeout,
                channel_id=channel_id,
                variables={
                    "TIMEOUT(absolute)": str(int(self.max_call_seconds) + 60),
                    **(variables or {}),
                },
            )
        except AriError as exc:
            self._outbound.pop(channel_id, None)
            await self.store.not_answered(call_id, Outcome.FAILED.value, None, None)
            out.done.set_result(Outcome.FAILED.value)
            log.warning("originate to %s failed: %s", number, exc)
        return out

    # ------------------------------------------------------------------ events
    async def _on_event(self, event: AriEvent) -> None:
        if event.type == DISCONNECTED:
            self.connection_lost.set()
            return
        if event.type == CONNECTED:
            self.connection_lost.clear()
        if event.type == CONNECTED and event.data.get("reconnect"):
            self._spawn(self.reconcile(), "reconcile")
            return
        if event.type == "StasisStart":
            await self._on_stasis_start(event)
            return
        channel = event_channel(event)
        if channel is None:
            return
        session = self.sessions.get(channel)
        if session is not None:
            session.on_ari_event(event)
        if event.type in ("StasisEnd", "ChannelDestroyed"):
            await self._unbridge(channel)
        if (
            event.type == "ChannelDestroyed"
            and channel in self._outbound
            and channel not in self.sessions  # a running session reports its own end
        ):
            out = self._outbound.pop(channel)
            if not out.done.done():
                # Never answered: busy, no answer, declined, unallocated, failed.
                cause = event.data.get("cause")
                tech = event.data.get("tech_cause")
                out.cause = cause if isinstance(cause, int) else None
                out.sip_code = tech if isinstance(tech, int) else None
                out.ended_at = self.clock()
                outcome = classify(False, out.cause, out.sip_code)
                await self.store.not_answered(out.call_id, outcome.value, out.cause, out.sip_code)
                out.done.set_result(outcome.value)

    async def _on_stasis_start(self, event: AriEvent) -> None:
        channel_id = event.channel_id or ""
        args = event.args
        kind = args[0] if args else ""
        if kind == "inbound":
            number = args[1] if len(args) > 1 else ""
            line = self.lines.get(number)
            if line is None:
                log.warning("no line configured for %s: hanging up", number)
                with contextlib.suppress(AriError):
                    await self.ari.hangup(channel_id, reason="unallocated")
                return
            caller = event.data.get("channel", {}).get("caller", {}).get("number") or None
            call_id = uuid.uuid4().hex
            remote = None if line.flow.anonymous else caller
            await self.store.create(
                call_id=call_id,
                direction="inbound",
                flow=line.flow,
                channel_id=channel_id,
                line_number=number,
                remote_number=remote,
                language=line.language or line.flow.default_language,
                attempt_id=None,
            )
            with contextlib.suppress(AriError):
                await self.ari.answer(channel_id)
            self._start_session(
                SessionInfo(
                    call_id,
                    channel_id,
                    line.flow,
                    line.language,
                    remote,
                    self.recordings_dir,
                    caller_number=caller,
                )
            )
        elif kind == "outbound":
            out = self._outbound.get(channel_id)
            if out is not None:
                out.answered_at = self.clock()
            if out is None:
                log.warning("outbound channel %s is unknown here: hanging up", channel_id)
                with contextlib.suppress(AriError):
                    await self.ari.hangup(channel_id)
                return
            self._start_session(
                SessionInfo(
                    out.call_id, channel_id, out.flow, out.language, out.number, self.recordings_dir
                )
            )
        # "transfer": the agent leg, handled by the session that placed it.

    def _start_session(self, info: SessionInfo) -> None:
        session = CallSession(
            self.ari,
            info,
            self.prompts,
            self.store,
            self.clock,
            self.max_call_seconds,
            connection_lost=self.connection_lost,
        )
        self.sessions[info.channel_id] = session
        self._spawn(self._run_session(session), f"call-{info.call_id}")

    async def _run_session(self, session: CallSession) -> None:
        channel = session.info.channel_id
        status = "failed"
        try:
            status = await session.run()
        finally:
            self.sessions.pop(channel, None)
            out = self._outbound.pop(channel, None)
            if session.bridged is not None:
                agent, bridge = session.bridged
                self.bridges[channel] = (agent, bridge)
                self.bridges[agent] = (channel, bridge)
            if out is not None and not out.done.done():
                out.ended_at = session.ended_at or self.clock()
                out.cause = session.hangup_cause
                out.done.set_result(status)

    async def _unbridge(self, channel: str) -> None:
        pair = self.bridges.pop(channel, None)
        if pair is None:
            return
        other, bridge = pair
        self.bridges.pop(other, None)
        with contextlib.suppress(AriError):
            await self.ari.hangup(other)
        await self.ari.destroy_bridge(bridge)
