"""Place one outbound call through ARI and follow it to its end."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ivr.outcome import Outcome, classify
from ivr.telephony.ari import AriClient, AriEvent

AnswerHandler = Callable[["CallTracker"], Awaitable[None]]


@dataclass
class CallResult:
    number: str
    channel_id: str
    outcome: Outcome
    cause: int | None
    cause_txt: str
    sip_code: int | None
    ring_seconds: float
    talk_seconds: float
    digits: str = ""


@dataclass
class CallTracker:
    """The events of one channel, as they arrive."""

    ari: AriClient
    channel_id: str
    events: asyncio.Queue[AriEvent] = field(default_factory=asyncio.Queue)
    digits: str = ""
    started: float = field(default_factory=time.monotonic)
    answered_at: float | None = None
    ended_at: float | None = None
    cause: int | None = None
    cause_txt: str = ""
    sip_code: int | None = None
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def feed(self, event: AriEvent) -> None:
        if event.channel_id != self.channel_id:
            return
        if event.type == "StasisStart" and self.answered_at is None:
            self.answered_at = time.monotonic()
            self.answered.set()
        elif event.type == "ChannelDtmfReceived" and event.digit:
            self.digits += event.digit
        elif event.type == "ChannelDestroyed":
            self.cause = event.data.get("cause")
            self.cause_txt = event.data.get("cause_txt", "")
            tech = str(event.data.get("tech_cause", "") or "")
            if tech.isdigit():
                self.sip_code = int(tech)
            self.ended_at = time.monotonic()
            self.ended.set()
        self.events.put_nowait(event)

    async def next_digit(self, timeout: float) -> str | None:
        """The next DTMF digit, or None on timeout or hang-up."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.ended.is_set():
                return None
            try:
                event = await asyncio.wait_for(self.events.get(), remaining)
            except TimeoutError:
                return None
            if event.type == "ChannelDtmfReceived":
                return event.digit
            if event.type in ("ChannelDestroyed", "StasisEnd", "ChannelHangupRequest"):
                return None

    def result(self, number: str) -> CallResult:
        answered = self.answered_at is not None
        end = self.ended_at or time.monotonic()
        ring_end = self.answered_at if answered else end
        assert ring_end is not None
        return CallResult(
            number=number,
            channel_id=self.channel_id,
            outcome=classify(answered, self.cause, self.sip_code),
            cause=self.cause,
            cause_txt=self.cause_txt,
            sip_code=self.sip_code,
            ring_seconds=round(ring_end - self.started, 3),
            talk_seconds=round(end - self.answered_at, 3) if self.answered_at else 0.0,
            digits=self.digits,
        )


async def place_call(
    ari: AriClient,
    number: str,
    *,
    trunk: str = "trunk",
    on_answer: AnswerHandler | None = None,
    ring_timeout: int = 30,
    caller_id: str | None = None,
    max_seconds: float = 120.0,
) -> CallResult:
    """Originate ``number`` through ``trunk`` into our Stasis app and wait until it ends.

    ``on_answer`` runs once the callee answers; when it returns, the call is hung up.
    """
    channel_id = f"out-{uuid.uuid4().hex}"
    tracker = CallTracker(ari, channel_id)
    remove = ari.add_listener(tracker.feed)
    try:
        await ari.originate(
            f"PJSIP/{number}@{trunk}",
            app_args=["outbound", number],
            caller_id=caller_id,
            timeout=ring_timeout,
            channel_id=channel_id,
        )
        answered = asyncio.create_task(tracker.answered.wait())
        ended = asyncio.create_task(tracker.ended.wait())
        await asyncio.wait(
            {answered, ended}, timeout=ring_timeout + 10, return_when=asyncio.FIRST_COMPLETED
        )
        answered.cancel()
        if tracker.answered.is_set() and not tracker.ended.is_set():
            try:
                if on_answer is not None:
                    await asyncio.wait_for(on_answer(tracker), max_seconds)
            finally:
                if not tracker.ended.is_set():
                    with contextlib.suppress(Exception):  # it may be gone already
                        await ari.hangup(channel_id)
        await asyncio.wait_for(ended, 15)
        return tracker.result(number)
    finally:
        remove()
