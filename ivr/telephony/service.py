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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from ivr.clock import Clock
from ivr.flows.model import Flow
from ivr.outcome import Outcome, classify
from ivr.telephony.ari import CONNECTED, DISCONNECTED, AriClient, AriError, AriEvent
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
    anonymous: bool = False  # store no caller number (as does a flow marked anonymous)


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
        self, call_id: str, outcome: Outcome, cause: int | None, sip_code: int | None
    ) -> None: ...
    async def interrupt_orphans(self, live_call_ids: set[str]) -> int: ...
    async def discard_unplaced(self, call_id: str) -> None: ...


@dataclass
class OutboundCall:
    call_id: str
    channel_id: str
    number: str
    flow: Flow
    language: str | None
    done: asyncio.Future[Outcome] = field(repr=False)  # how the call ended
    started_at: datetime | None = None  # originated
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    cause: int | None = None  # Q.850
    sip_code: int | None = None
    detail: str | None = None  # why it failed (an ARI or database fault), for the attempt
    placed: bool = True  # False: the originate failed; the call never reached the network


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
        self._outage: asyncio.Task[None] | None = None
        # Reconcile must not touch calls set up while its snapshot was taken: each call is
        # numbered when it is registered, and calls being created are known by id.
        self._registered = 0
        self._reg_no: dict[str, int] = {}  # channel id -> registration number
        self._creating: set[str] = set()  # call ids whose row/channel is being set up
        self.refuse_new_calls = False  # shutting down: inbound calls get congestion (503)

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

    async def _channel_exists(self, channel_id: str) -> bool | None:
        """Asterisk's word on one channel (None: it did not answer)."""
        try:
            await self.ari.request("GET", f"/channels/{channel_id}")
        except AriError as exc:
            return False if exc.status == 404 else None
        return True

    def _register(self, channel_id: str) -> None:
        self._registered += 1
        self._reg_no[channel_id] = self._registered

    #: A channel of our app that no call owns is hung up only if it still has no owner
    #: this long after the snapshot (its StasisStart may be on its way to us).
    ORPHAN_GRACE = 2.0

    async def reconcile(self) -> None:
        """Hang up channels of our app that no session owns; mark orphaned calls interrupted.

        Only what existed before the ``/channels`` snapshot is judged by it: a call
        registered later or being set up is never touched. And events may still be on
        their way (a channel destroyed, a StasisStart): whatever looks wrong is judged again
        after ``ORPHAN_GRACE``, against what we know then."""
        mark = self._registered
        try:
            channels = await self.ari.request("GET", "/channels")
        except AriError as exc:
            log.warning("reconcile: cannot list channels: %s", exc)
            return
        app = self.ari.app
        present = {c["id"] for c in channels}
        stasis = {
            c["id"]
            for c in channels
            if c.get("dialplan", {}).get("app_name") == "Stasis"
            and str(c.get("dialplan", {}).get("app_data", "")).split(",")[0] == app
        }

        def before_snapshot(channel_id: str) -> bool:
            return self._reg_no.get(channel_id, mark + 1) <= mark

        def owned() -> set[str]:
            return set(self.sessions) | set(self._outbound) | set(self.bridges)

        def gone_sessions() -> list[str]:
            return [c for c in self.sessions if c not in present and before_snapshot(c)]

        def gone_outbound() -> list[str]:
            return [
                c
                for c in self._outbound
                if c not in present and c not in self.sessions and before_snapshot(c)
            ]

        def answered_unseen() -> list[str]:
            return [
                c
                for c in self._outbound
                if c in stasis and c not in self.sessions and before_snapshot(c)
            ]

        def unowned() -> list[str]:
            return [c for c in stasis if c not in owned()]

        # Events lost while we were disconnected: playbacks and recordings that ended.
        for channel_id, session in list(self.sessions.items()):
            if channel_id in present and before_snapshot(channel_id):
                self._spawn(session.resync(), f"resync-{session.info.call_id}")
        if gone_sessions() or gone_outbound() or answered_unseen() or unowned():
            await asyncio.sleep(self.ORPHAN_GRACE)
        # Calls whose channel vanished while we were not listening (Asterisk restarted).
        for channel_id in gone_sessions():
            if await self._channel_exists(channel_id) is not False:
                continue  # the list missed it: the call goes on
            gone = self.sessions.get(channel_id)
            if gone is not None:
                log.warning("reconcile: channel %s is gone: call interrupted", channel_id)
                gone.interrupt()
        for channel_id in gone_outbound():
            if await self._channel_exists(channel_id) is not False or (
                channel_id not in self._outbound
            ):
                continue  # the list missed it, or its own end came meanwhile
            log.warning("reconcile: outbound channel %s is gone: call interrupted", channel_id)
            out = self._forget_outbound(
                channel_id, "the call vanished while Asterisk was out of reach"
            )
            await self._not_answered(out, Outcome.INTERRUPTED)
        # Outbound calls answered (their StasisStart) while we were not listening.
        for channel_id in answered_unseen():
            out = self._outbound[channel_id]
            log.warning("reconcile: call %s was answered unseen: its flow starts", out.call_id)
            out.answered_at = out.answered_at or self.clock()
            self._start_session(
                SessionInfo(
                    out.call_id, channel_id, out.flow, out.language, out.number, self.recordings_dir
                )
            )
        for channel_id in unowned():
            if await self._channel_exists(channel_id) is not True or channel_id in owned():
                continue
            log.warning("reconcile: hanging up orphaned channel %s", channel_id)
            with contextlib.suppress(AriError):
                await self.ari.hangup(channel_id)
        live = {s.info.call_id for s in self.sessions.values()}
        live |= {c.call_id for c in self._outbound.values()}
        live |= self._creating
        count = await self.store.interrupt_orphans(live)
        if count:
            log.warning("reconcile: %d call(s) marked interrupted", count)
        self.reconciled.set()

    #: Asterisk gone this long: the calls it carried are ended ``interrupted`` (its channels
    #: died with it; if it was only the connection, reconcile hangs them up on reconnect).
    OUTAGE_GRACE = 10.0

    async def _end_calls_after_outage(self) -> None:
        await asyncio.sleep(self.OUTAGE_GRACE)
        if not self.connection_lost.is_set():
            return
        log.warning(
            "Asterisk unreachable for %.0f s: %d call(s) end interrupted",
            self.OUTAGE_GRACE,
            len(self.sessions) + len(self._outbound),
        )
        for session in list(self.sessions.values()):
            session.interrupt()
        for channel_id in list(self._outbound):
            if channel_id in self.sessions:
                continue
            await self._not_answered(
                self._forget_outbound(channel_id, "Asterisk unreachable"), Outcome.INTERRUPTED
            )

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
        self._creating.add(call_id)
        try:
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
        finally:
            self._creating.discard(call_id)
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
            # Numbered once the channel exists: a reconcile whose snapshot was asked for
            # before this point does not judge the call by it.
            if channel_id in self._outbound:
                self._register(channel_id)
        except AriError as exc:
            # Never placed: Asterisk unreachable (status 0) or it refused the originate
            # (e.g. 500 Allocation failed: the trunk is unreachable). Not the resident's
            # outcome: the call row goes, and the caller (the dialer) spends no attempt.
            self._outbound.pop(channel_id, None)
            self._reg_no.pop(channel_id, None)
            out.placed = False
            out.detail = str(exc)
            out.ended_at = self.clock()
            try:
                await self.store.discard_unplaced(call_id)
            except Exception:
                log.exception("the row of the unplaced call %s could not be removed", call_id)
                await self.store.not_answered(call_id, Outcome.FAILED, None, None)
            out.done.set_result(Outcome.FAILED)
            log.warning("originate to %s failed: %s", number, exc)
        return out

    # ------------------------------------------------------------------ events
    async def _on_event(self, event: AriEvent) -> None:
        if event.type == DISCONNECTED:
            self.connection_lost.set()
            if self._outage is None:
                self._outage = asyncio.create_task(self._end_calls_after_outage())
            return
        if event.type == CONNECTED:
            self.connection_lost.clear()
            if self._outage is not None:
                self._outage.cancel()
                self._outage = None
        if event.type == CONNECTED and event.data.get("reconnect"):
            self.reconciled.clear()  # set again when this reconcile is done
            self._spawn(self.reconcile(), "reconcile")
            return
        if event.type == "StasisStart":
            self._on_stasis_start(event)
            return
        channel = event_channel(event)
        if channel is None:
            return
        session = self.sessions.get(channel)
        if session is not None:
            session.on_ari_event(event)
        if event.type in ("StasisEnd", "ChannelDestroyed") and channel in self.bridges:
            self._spawn(self._unbridge(channel), f"unbridge-{channel}")
        if (
            event.type == "ChannelDestroyed"
            and channel in self._outbound
            and channel not in self.sessions  # a running session reports its own end
        ):
            out = self._forget_outbound(channel)
            if not out.done.done():
                # Never answered: busy, no answer, declined, unallocated, failed.
                cause = event.data.get("cause")
                tech = event.data.get("tech_cause")
                out.cause = cause if isinstance(cause, int) else None
                out.sip_code = tech if isinstance(tech, int) else None
                outcome = classify(False, out.cause, out.sip_code)
                self._spawn(self._not_answered(out, outcome), f"end-{out.call_id}")

    def _forget_outbound(self, channel_id: str, detail: str | None = None) -> OutboundCall:
        """Stop following an outbound call that no session runs (its end is ours to store):
        its StasisStart or end is ignored from now on."""
        out = self._outbound.pop(channel_id)
        self._reg_no.pop(channel_id, None)
        out.ended_at = self.clock()
        out.detail = detail or out.detail
        return out

    async def _not_answered(self, out: OutboundCall, outcome: Outcome) -> None:
        """Store an unanswered call's end (in its own task: a slow database delays only
        this call), then tell whoever waits for it."""
        try:
            await self.store.not_answered(out.call_id, outcome, out.cause, out.sip_code)
        except Exception:
            log.exception("call %s: its end could not be stored", out.call_id)
        finally:
            if not out.done.done():
                out.done.set_result(outcome)

    def _on_stasis_start(self, event: AriEvent) -> None:
        """A channel entered our application. Nothing here waits: the call's session is
        registered at once (so its next events find it), and whatever is slow (storing the
        call, answering) runs in the call's own task."""
        channel_id = event.channel_id or ""
        args = event.args
        kind = args[0] if args else ""
        if kind == "inbound" and self.refuse_new_calls:
            self._spawn(self._refused(channel_id), f"refuse-{channel_id}")
            return
        if kind == "inbound":
            number = args[1] if len(args) > 1 else ""
            line = self.lines.get(number)
            if line is None:
                log.warning("no line configured for %s: hanging up", number)
                self._spawn(self._hang_up(channel_id, "unallocated"), f"hangup-{channel_id}")
                return
            caller = event.data.get("channel", {}).get("caller", {}).get("number") or None
            call_id = uuid.uuid4().hex
            remote = None if line.anonymous or line.flow.anonymous else caller
            self._creating.add(call_id)

            async def prelude() -> None:
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
                    inbound=True,
                ),
                prelude,
            )
        elif kind == "outbound":
            if channel_id in self.sessions:
                return  # reconcile started its flow already (its StasisStart came late)
            out = self._outbound.get(channel_id)
            if out is None:
                log.warning("outbound channel %s is unknown here: hanging up", channel_id)
                self._spawn(self._hang_up(channel_id, "normal"), f"hangup-{channel_id}")
                return
            out.answered_at = self.clock()
            self._start_session(
                SessionInfo(
                    out.call_id, channel_id, out.flow, out.language, out.number, self.recordings_dir
                )
            )
        elif kind == "transfer":
            # The agent's leg answered: the session that placed it bridges it. If that
            # call is over (the caller hung up as the agent answered), nobody will.
            call_id = args[1] if len(args) > 1 else ""
            if not any(s.info.call_id == call_id for s in self.sessions.values()):
                log.info("agent leg %s of the ended call %s: hanging up", channel_id, call_id)
                self._spawn(self._hang_up(channel_id, "normal"), f"hangup-{channel_id}")

    async def _hang_up(self, channel_id: str, reason: str) -> None:
        with contextlib.suppress(AriError):
            await self.ari.hangup(channel_id, reason=reason)

    def _start_session(
        self, info: SessionInfo, prelude: Callable[[], Awaitable[None]] | None = None
    ) -> None:
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
        self._creating.discard(info.call_id)
        if info.channel_id not in self._reg_no:
            self._register(info.channel_id)
        self._spawn(self._run_session(session, prelude), f"call-{info.call_id}")

    async def _run_session(
        self, session: CallSession, prelude: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        channel = session.info.channel_id
        status = Outcome.FAILED
        try:
            if prelude is not None:
                try:
                    await prelude()
                except Exception:
                    # No call row: the caller hears congestion, not silence.
                    log.exception("call %s not stored: hanging up", session.info.call_id)
                    self._creating.discard(session.info.call_id)
                    await self._hang_up(channel, "congestion")
                    return
            status = await session.run()
        finally:
            self.sessions.pop(channel, None)
            self._reg_no.pop(channel, None)
            out = self._outbound.pop(channel, None)
            if session.bridged is not None:
                agent, bridge = session.bridged
                self.bridges[channel] = (agent, bridge)
                self.bridges[agent] = (channel, bridge)
            if out is not None and not out.done.done():
                out.ended_at = session.ended_at or self.clock()
                out.cause = session.hangup_cause
                out.detail = session.failure
                out.done.set_result(status)

    async def _unbridge(self, channel: str) -> None:
        pair = self.bridges.pop(channel, None)
        if pair is None:
            return
        other, bridge = pair
        self.bridges.pop(other, None)
        with contextlib.suppress(AriError):
            await self.ari.hangup(other)
        with contextlib.suppress(AriError):  # already gone with its last channel
            await self.ari.destroy_bridge(bridge)

    # ------------------------------------------------------------------ shutdown
    async def _refused(self, channel_id: str) -> bool:
        """While shutting down, an inbound call is refused with congestion (Q.850 34, SIP
        503 Service Unavailable: a proxy may try another node); True if it was."""
        if not self.refuse_new_calls:
            return False
        log.info("shutting down: refusing inbound call %s (congestion)", channel_id)
        with contextlib.suppress(AriError):
            await self.ari.hangup(channel_id, reason="congestion")
        return True

    def live_calls(self) -> int:
        """Calls in progress here: flows running, our outbound calls still ringing, and
        transferred calls bridged to a person."""
        ringing = sum(1 for channel in self._outbound if channel not in self.sessions)
        return len(self.sessions) + ringing + len(self.bridges) // 2

    async def wait_idle(self, timeout: float, hurry: asyncio.Event | None = None) -> bool:
        """Wait until no call is live here (True), or until ``timeout`` seconds pass or
        ``hurry`` is set (False)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while self.live_calls():
            left = end - loop.time()
            if left <= 0 or (hurry is not None and hurry.is_set()):
                return False
            if hurry is None:
                await asyncio.sleep(min(0.1, left))
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(hurry.wait(), min(0.1, left))
        return True

    async def end_live_calls(self) -> list[str]:
        """Hang up every live call at shutdown. A call whose flow has not reached its end
        ends ``interrupted`` (its session records it; an outbound call still ringing is
        recorded here), so a campaign retries it; a call already at its goodbye, or bridged
        to a person after a transfer, keeps the status it has. Returns the ids of the calls
        ended as interrupted."""
        interrupted: list[str] = []
        hang_up: list[str] = []
        for channel_id, session in list(self.sessions.items()):
            hang_up.append(channel_id)
            state = session.state
            if not state.completed and state.phase != "ended" and session.status is None:
                interrupted.append(session.info.call_id)
                session.interrupt()  # its flow ends now, as "interrupted"
        ringing: list[OutboundCall] = []
        for channel_id, out in list(self._outbound.items()):
            if channel_id in self.sessions or out.done.done():
                continue
            ringing.append(self._forget_outbound(channel_id))
            interrupted.append(out.call_id)
            hang_up.append(channel_id)
        # A call not stored here is settled by the next start's reconcile.
        await asyncio.gather(*(self._not_answered(o, Outcome.INTERRUPTED) for o in ringing))
        hang_up.extend(self.bridges)
        results = await asyncio.gather(
            *(self.ari.hangup(channel_id) for channel_id in hang_up), return_exceptions=True
        )
        for channel_id, result in zip(hang_up, results, strict=True):
            if isinstance(result, Exception) and not (
                isinstance(result, AriError) and result.status == 404
            ):
                log.warning("shutting down: hanging up %s failed: %s", channel_id, result)
        return interrupted
