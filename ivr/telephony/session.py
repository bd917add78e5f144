"""Run one flow on one channel: ARI events in, engine actions out.

The session owns no call logic: it translates ARI events into engine events, feeds the pure
engine, and carries out the actions it returns (play, timers, record, transfer, hang up,
store answers) through the ARI client and a recorder (the database port).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import wave
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from ivr.clock import Clock
from ivr.flows import engine as fe
from ivr.flows.model import Flow, Prompt
from ivr.outcome import Outcome
from ivr.telephony.ari import AriClient, AriError, AriEvent

log = logging.getLogger(__name__)


class CallRecorder(Protocol):
    """What a call session stores (implemented over the database in ivr.telephony.recorder)."""

    async def answered(self, call_id: str) -> None: ...
    async def progress(self, call_id: str, node_id: str | None, language: str) -> None: ...
    async def answer(self, call_id: str, action: fe.SaveAnswer) -> None: ...
    async def callback(
        self, call_id: str, action: fe.SaveCallback, phone_number: str | None
    ) -> None: ...
    async def opt_out(self, call_id: str, phone_number: str) -> None: ...
    async def ended(
        self,
        call_id: str,
        status: Outcome,
        node_id: str | None,
        cause: int | None,
        reason: str | None = None,
    ) -> None: ...


class PromptResolver(Protocol):
    async def media(self, flow: Flow, prompt: Prompt, language: str) -> str:
        """An ARI media URI (``sound:/abs/path`` without extension) for the prompt; a
        prompt not rendered yet is rendered off the event loop."""
        ...

    def apology(self, language: str, inbound: bool) -> str | None:
        """The media of "a technical fault ends this call" in ``language`` (rendered at
        start), or None where none could be made."""
        ...


@dataclass
class SessionInfo:
    call_id: str
    channel_id: str
    flow: Flow
    language: str | None
    remote_number: str | None  # stored on the call; None on anonymous lines
    recordings_dir: Path
    # The caller's number even on an anonymous line: stored only where the caller asks
    # for it (a callback request, after the consent wording) or opts out.
    caller_number: str | None = None
    inbound: bool = False

    @property
    def contact_number(self) -> str | None:
        return self.remote_number or self.caller_number


def wav_seconds(path: Path) -> float:
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes() / float(wav.getframerate() or 8000)
    except (OSError, wave.Error, EOFError):
        return 0.0


def _target_channel(data: dict[str, object], key: str) -> str | None:
    obj = data.get(key)
    if isinstance(obj, dict):
        uri = str(obj.get("target_uri", ""))
        if uri.startswith("channel:"):
            return uri.split(":", 1)[1]
    return None


def event_channel(event: AriEvent) -> str | None:
    """The channel an ARI event is about (playbacks and recordings name it in target_uri)."""
    return (
        event.channel_id
        or _target_channel(event.data, "playback")
        or _target_channel(event.data, "recording")
    )


def _fault_kind(exc: BaseException) -> str:
    module = type(exc).__module__
    return "database" if module.startswith(("sqlalchemy", "sqlite3", "psycopg")) else "internal"


@dataclass(frozen=True)
class _WriteFailed:
    """A database write of this call failed (it ran beside the flow, not in its way)."""

    error: Exception


class CallSession:
    """One call running one flow. Feed it ARI events with ``on_ari_event``; await ``run``."""

    #: After the flow ends, wait this long for a recording that was cut by the hang-up.
    RECORDING_GRACE = 5.0
    # When Asterisk shuts down, the other leg's BYE can reach a call before Asterisk's own
    # (soft) hang-up does, so the cut call looks like the resident hanging up mid-flow. A
    # mid-flow hang-up is therefore final only if the ARI connection stays up this long.
    SHUTDOWN_GRACE = 2.0
    MAX_PENDING_DIGITS = 100
    #: The apology after a fault plays at most this long before the hang-up.
    APOLOGY_SECONDS = 10.0
    #: Storing the end of a failed call is retried this long while the database fails.
    END_RETRY_SECONDS = 120.0

    def __init__(
        self,
        ari: AriClient,
        info: SessionInfo,
        prompts: PromptResolver,
        recorder: CallRecorder,
        clock: Clock,
        max_call_seconds: float = 3600.0,
        connection_lost: asyncio.Event | None = None,
    ) -> None:
        self.ari = ari
        # Set while the ARI connection to Asterisk is down (the service owns it).
        self.connection_lost = connection_lost
        self.info = info
        self.prompts = prompts
        self.recorder = recorder
        self.clock = clock
        self.max_call_seconds = max_call_seconds
        self.state = fe.initial_state(info.flow)
        # Events in; bounded where the outside decides how many come: at most
        # MAX_PENDING_DIGITS key presses wait unprocessed (more are dropped and logged).
        self.events: asyncio.Queue[fe.Event | _WriteFailed] = asyncio.Queue()
        self._pending_digits = 0
        # The call's database writes, in order, beside the flow: a key press is answered
        # by the next prompt without waiting for its commit; the end of the call waits
        # for all of them (durable), and a failed one fails the call (apology, hang-up).
        self._writes: set[asyncio.Task[object]] = set()
        self._write_error: Exception | None = None  # the first write that failed
        self._playback: tuple[str, int] | None = None  # (playback id, token)
        self._recording: tuple[str, int] | None = None  # (name, token)
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._hangup_cause: int | None = None
        self._hung_up = False
        self.status: Outcome | None = None
        self.bridged: tuple[str, str] | None = None  # (agent channel, bridge) after a transfer
        self.interrupted = False  # the channel vanished (Asterisk restarted): not a hang-up
        self.ended_at: datetime | None = None
        self.failure: str | None = None  # why the call failed (an ARI or database fault)
        self._destroyed = asyncio.Event()  # Asterisk destroyed the channel (its cause known)

    @property
    def hangup_cause(self) -> int | None:
        return self._hangup_cause

    def interrupt(self) -> None:
        """The channel is gone without a hang-up event (Asterisk restarted)."""
        self.interrupted = True
        if not self._hung_up:
            self._hung_up = True
            self.events.put_nowait(fe.HungUp())

    def _write(self, work: Coroutine[object, object, object]) -> None:
        """Run a database write of this call beside the flow. Writes are queued to the
        database writer in the order they are made here (each task's first step submits
        its work), so the call's rows keep the order of its events."""
        task: asyncio.Task[object] = asyncio.ensure_future(work)
        self._writes.add(task)
        task.add_done_callback(self._write_done)

    def _write_done(self, task: asyncio.Task[object]) -> None:
        self._writes.discard(task)
        error = None if task.cancelled() else task.exception()
        if isinstance(error, Exception):
            self._write_error = self._write_error or error
            self.events.put_nowait(_WriteFailed(error))

    async def _flush_writes(self) -> None:
        """Wait for every write made so far; raise the first failure."""
        await asyncio.gather(*self._writes, return_exceptions=True)
        if self._write_error is not None:
            raise self._write_error

    async def resync(self) -> None:
        """After an ARI reconnect: a playback or recording that ended while events were not
        reaching us is finished now (Asterisk no longer knows it), so the flow goes on."""
        if self._playback is not None:
            pid, token = self._playback
            try:
                await self.ari.request("GET", f"/playbacks/{pid}")
            except AriError as exc:
                if exc.status == 404 and self._playback == (pid, token):
                    log.info("call %s: playback %s ended unseen", self.info.call_id, pid)
                    self._playback = None
                    self.events.put_nowait(fe.PromptDone(token))
        if self._recording is not None:
            name, token = self._recording
            try:
                await self.ari.request("GET", f"/recordings/live/{name}")
            except AriError as exc:
                if exc.status == 404 and self._recording == (name, token):
                    log.info("call %s: recording %s ended unseen", self.info.call_id, name)
                    self._recording = None
                    path = self.info.recordings_dir / f"{name}.wav"
                    self.events.put_nowait(fe.RecordingDone(token, str(path), wav_seconds(path)))

    # ------------------------------------------------------------------ events in
    def on_ari_event(self, event: AriEvent) -> None:
        t = event.type
        if t == "ChannelDtmfReceived" and event.digit:
            if self._pending_digits >= self.MAX_PENDING_DIGITS:
                log.warning("call %s: key press dropped (%d waiting)", self.info.call_id,
                            self._pending_digits)  # fmt: skip
            else:
                self._pending_digits += 1
                self.events.put_nowait(fe.Digit(event.digit))
        elif t in ("PlaybackFinished", "PlaybackFailed"):
            pid = event.data.get("playback", {}).get("id")
            if self._playback and pid == self._playback[0]:
                token = self._playback[1]
                self._playback = None
                self.events.put_nowait(fe.PromptDone(token))
        elif t in ("RecordingFinished", "RecordingFailed"):
            name = event.data.get("recording", {}).get("name")
            if self._recording and name == self._recording[0]:
                _, token = self._recording
                self._recording = None
                path = self.info.recordings_dir / f"{name}.wav"
                self.events.put_nowait(fe.RecordingDone(token, str(path), wav_seconds(path)))
        elif t in ("StasisEnd", "ChannelDestroyed", "ChannelHangupRequest"):
            if t == "ChannelHangupRequest" and event.data.get("soft") and not self._hung_up:
                # Not the caller hanging up (that is a hard request): Asterisk shutting
                # down, the dialplan's call limit, or an operator. The call was cut.
                self.interrupted = True
            if t == "ChannelDestroyed" or self._hangup_cause is None:
                cause = event.data.get("cause")
                self._hangup_cause = cause if isinstance(cause, int) else self._hangup_cause
            if t == "ChannelDestroyed":
                self._destroyed.set()
            if not self._hung_up:
                self._hung_up = True
                self.events.put_nowait(fe.HungUp())

    # ------------------------------------------------------------------ the loop
    async def run(self) -> Outcome:
        """Run the flow to its end; returns the call's final status.

        A fault on the way (an ARI request refused or unanswered, a database write that
        fails) never leaves the caller in silence: see ``_fail``."""
        info = self.info
        try:
            self._write(self.recorder.answered(info.call_id))
            await self._feed(fe.Answered(info.language))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.max_call_seconds
            while self.state.phase != "ended":
                remaining = deadline - loop.time()
                if remaining <= 0:
                    log.warning(
                        "call %s ran past %s s: hanging up", info.call_id, self.max_call_seconds
                    )
                    await self._hangup()
                    await self._feed(fe.HungUp())
                    break
                try:
                    event = await asyncio.wait_for(self.events.get(), remaining)
                except TimeoutError:
                    continue
                if isinstance(event, _WriteFailed):
                    raise event.error
                if isinstance(event, fe.Digit):
                    self._pending_digits -= 1
                await self._feed(event)
            if self.state.recording_token:
                await self._wait_for_cut_recording()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._fail(exc)
        finally:
            self._cancel_timer()
            for task in list(self._tasks):
                task.cancel()
        return self.status or Outcome.PARTIAL

    # ------------------------------------------------------------------ faults
    def _asterisk_gone(self, exc: BaseException) -> bool:
        lost = self.connection_lost is not None and self.connection_lost.is_set()
        return lost or (isinstance(exc, AriError) and exc.status == 0)

    async def _fail(self, exc: Exception) -> None:
        """Apologise (where the channel still exists), hang up, and end the call ``failed``
        (``interrupted`` if Asterisk went away) with the reason stored: the attempt is then
        retried by the rules. Nothing is left ``active``."""
        info = self.info
        gone = self._asterisk_gone(exc)
        reason = str(exc) if isinstance(exc, AriError) else f"{_fault_kind(exc)}: {exc!r}"
        self.failure = reason[:300]
        self.status = Outcome.INTERRUPTED if gone or self.interrupted else Outcome.FAILED
        log.error(
            "call %s failed at %s: %s; %s",
            info.call_id,
            self.state.node_id,
            reason,
            "Asterisk is gone" if gone else "apologising and hanging up",
            exc_info=not isinstance(exc, AriError),
        )
        if not gone and not self._hung_up:
            await self._apologise()
            self._hung_up = True
            await self._hangup()
        self.ended_at = self.clock()
        if not gone:
            await self._wait_destroyed()
        await self._store_end()

    async def _apologise(self) -> None:
        """Play "a technical fault ends this call" and wait (bounded) for its end."""
        media = self.prompts.apology(self.state.language or self.info.flow.default_language,
                                     self.info.inbound)  # fmt: skip
        if media is None:
            return
        if self._playback is not None:
            with contextlib.suppress(AriError):
                await self.ari.stop_playback(self._playback[0])
        self._cancel_timer()
        pid = f"{self.info.call_id}-apology"
        self._playback = (pid, -1)
        try:
            await self.ari.play(self.info.channel_id, [media], playback_id=pid)
        except AriError as exc:
            log.warning("call %s: the apology could not be played: %s", self.info.call_id, exc)
            return
        loop = asyncio.get_running_loop()
        end = loop.time() + self.APOLOGY_SECONDS
        while (left := end - loop.time()) > 0:
            try:
                event = await asyncio.wait_for(self.events.get(), left)
            except TimeoutError:
                break
            if isinstance(event, fe.HungUp) or (
                isinstance(event, fe.PromptDone) and event.token == -1
            ):
                break

    async def _store_end(self) -> None:
        """Store the failed call's end; while the database fails, retry with backoff (a
        restart's reconcile settles it if the worker stops first)."""
        info = self.info
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.END_RETRY_SECONDS
        delay = 0.2
        while True:
            try:
                await self.recorder.ended(
                    info.call_id,
                    self.status or Outcome.FAILED,
                    self.state.node_id,
                    self._hangup_cause,
                    self.failure,
                )
                return
            except Exception as exc:
                if loop.time() + delay > give_up:
                    log.error("call %s: its end could not be stored: %s", info.call_id, exc)
                    return
                log.warning("call %s: storing its end failed (%s); retrying", info.call_id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _wait_for_cut_recording(self) -> None:
        """The caller hung up while speaking: keep what Asterisk recorded."""
        loop = asyncio.get_running_loop()
        end = loop.time() + self.RECORDING_GRACE
        while self.state.recording_token and loop.time() < end:
            try:
                event = await asyncio.wait_for(self.events.get(), end - loop.time())
            except TimeoutError:
                break
            if isinstance(event, _WriteFailed):
                raise event.error
            if isinstance(event, fe.RecordingDone):
                await self._feed(event)

    async def _feed(self, event: fe.Event) -> None:
        before = (self.state.node_id, self.state.language)
        self.state, actions = fe.step(self.info.flow, self.state, event, self.clock())
        for action in actions:
            await self._do(action)
        after = (self.state.node_id, self.state.language)
        if after != before and self.state.phase != "ended":
            self._write(self.recorder.progress(self.info.call_id, *after))

    # ------------------------------------------------------------------ actions out
    async def _do(self, action: fe.Action) -> None:
        info = self.info
        ch = info.channel_id
        try:
            if isinstance(action, fe.Play):
                await self._play(action)
            elif isinstance(action, fe.StopPlayback):
                if self._playback is not None:
                    pid, _ = self._playback
                    self._playback = None
                    await self.ari.stop_playback(pid)
            elif isinstance(action, fe.StartTimer):
                self._cancel_timer()
                self._timer = asyncio.get_running_loop().call_later(
                    action.seconds, self.events.put_nowait, fe.TimerFired(action.token)
                )
            elif isinstance(action, fe.Record):
                name = f"{info.call_id}-{action.node_id}-{action.token}"
                self._recording = (name, action.token)
                await self.ari.record(
                    ch,
                    name,
                    max_duration=action.max_seconds,
                    max_silence=action.silence_seconds,
                    beep=action.beep,
                    terminate_on="#",
                )
            elif isinstance(action, fe.SaveAnswer):
                self._write(self.recorder.answer(info.call_id, action))
            elif isinstance(action, fe.SaveCallback):
                self._write(self.recorder.callback(info.call_id, action, info.contact_number))
            elif isinstance(action, fe.SetLanguage):
                pass  # stored with the progress after the step
            elif isinstance(action, fe.OptOut):
                if info.contact_number:
                    self._write(self.recorder.opt_out(info.call_id, info.contact_number))
            elif isinstance(action, fe.Transfer):
                task = asyncio.create_task(self._transfer(action))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            elif isinstance(action, fe.Hangup):
                self._cancel_timer()
                await self._hangup()
            elif isinstance(action, fe.EndCall):
                self._cancel_timer()
                if action.status is Outcome.PARTIAL and not self.interrupted:
                    self.interrupted = await self._asterisk_went_down()
                self.status = Outcome.INTERRUPTED if self.interrupted else action.status
                self.ended_at = self.clock()
                # The caller is not kept on the line for our commits: hang up, then wait
                # for the call's writes (a failed answer fails the call, not completes it).
                await self._hang_up_for_the_cause()
                await self._flush_writes()
                await self.recorder.ended(
                    info.call_id,
                    self.status,
                    self.state.node_id,
                    self._hangup_cause,
                    "Asterisk went away" if self.interrupted else None,
                )
        except AriError as exc:
            if exc.status == 404 and not exc.path.startswith("/channels/"):
                # A playback or recording that has just ended by itself: nothing to stop.
                log.info("call %s: %s", info.call_id, exc)
            elif exc.status == 404:  # the channel is gone: the hang-up event follows
                log.info("call %s: %s", info.call_id, exc)
                if not self._hung_up:
                    self._hung_up = True
                    self.events.put_nowait(fe.HungUp())
            else:
                raise

    async def _asterisk_went_down(self) -> bool:
        """Whether the ARI connection is lost now or within SHUTDOWN_GRACE seconds."""
        lost = self.connection_lost
        if lost is None:
            return False
        try:
            await asyncio.wait_for(lost.wait(), self.SHUTDOWN_GRACE)
        except TimeoutError:
            return False
        return True

    async def _play(self, action: fe.Play) -> None:
        if not action.prompts:
            self.events.put_nowait(fe.PromptDone(action.token))
            return
        media = [
            await self.prompts.media(self.info.flow, p, action.language) for p in action.prompts
        ]
        pid = f"{self.info.call_id}-p{action.token}"
        self._playback = (pid, action.token)
        await self.ari.play(self.info.channel_id, media, playback_id=pid)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    #: After our hang-up, how long to wait for Asterisk's ChannelDestroyed (its Q.850 cause).
    CAUSE_WAIT = 2.0

    async def _hang_up_for_the_cause(self) -> None:
        """The flow ended: hang up now (the Hangup action after EndCall is then a no-op) and
        wait briefly for the channel's end, so the call is stored with its Q.850 cause."""
        if self.interrupted or self.bridged is not None:
            return  # cut already, or the caller now talks with a person
        if not self._hung_up:
            self._hung_up = True  # our own request: not the caller, not Asterisk cutting it
            await self._hangup()
        await self._wait_destroyed()

    async def _wait_destroyed(self) -> None:
        if self._hangup_cause is not None and self._destroyed.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._destroyed.wait(), self.CAUSE_WAIT)

    async def _hangup(self) -> None:
        with contextlib.suppress(AriError):
            await self.ari.hangup(self.info.channel_id)

    async def _transfer(self, action: fe.Transfer) -> None:
        """Ring the endpoint; when it answers, bridge it with the caller.

        Nothing is left behind: the agent's leg is hung up if the caller hangs up while it
        rings (this task is cancelled), if it answers too late, or if bridging fails; a
        bridge that could not be used is destroyed."""
        ari, ch = self.ari, self.info.channel_id
        agent_id = f"{self.info.call_id}-agent{action.token}"
        answered = ari.expect(lambda e: e.type == "StasisStart" and e.channel_id == agent_id)
        gone = ari.expect(lambda e: e.type == "ChannelDestroyed" and e.channel_id == agent_id)
        connected = False
        bridge: str | None = None
        try:
            await ari.originate(
                action.endpoint,
                app_args=["transfer", self.info.call_id],
                timeout=action.ring_seconds,
                channel_id=agent_id,
            )
            done, _ = await asyncio.wait(
                {answered, gone},
                timeout=action.ring_seconds + 5,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if answered in done:
                bridge = await ari.create_bridge(bridge_id=f"{self.info.call_id}-bridge")
                await ari.add_to_bridge(bridge, [ch, agent_id])
                self.bridged = (agent_id, bridge)
                connected = True
        except AriError as exc:
            log.warning("transfer of %s to %s failed: %s", self.info.call_id, action.endpoint, exc)
        finally:
            for fut in (answered, gone):
                fut.cancel()
            if not connected:
                # Runs on cancellation too (the caller hung up while the agent rang).
                await asyncio.shield(self._drop_agent(agent_id, bridge))
        self.events.put_nowait(fe.TransferDone(action.token, connected))

    async def _drop_agent(self, agent_id: str, bridge: str | None) -> None:
        with contextlib.suppress(AriError):
            await self.ari.hangup(agent_id)
        if bridge is not None:
            with contextlib.suppress(AriError):
                await self.ari.destroy_bridge(bridge)
