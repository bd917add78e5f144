"""Run the real telephony service (as `ivr telephony` builds it) in a background thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from datetime import datetime
from typing import Any, TypeVar

from ivr.bootstrap import App
from ivr.clock import MovableClock
from ivr.telephony.service import TelephonyService

T = TypeVar("T")


class ServiceThread:
    """The telephony service on its own event loop, driven from synchronous tests."""

    def __init__(self, app: App, *, dial: bool = False) -> None:
        self.app = app
        self.dial = dial  # run the campaign dialer too
        self.clock = app.clock  # the one clock of the app: admin, dialer, calls
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.parts = self.run(self._build())
        self.service: TelephonyService = self.parts.service

    async def _build(self) -> Any:
        parts = self.app.telephony()
        await parts.start(dial=self.dial)
        return parts

    def now(self) -> datetime:
        return self.clock()

    def set_time(self, when: datetime | None) -> None:
        """Make the app's clock read ``when`` now (and run on from there); None: real."""
        if not isinstance(self.clock, MovableClock):
            raise TypeError("set_time needs an App with a MovableClock (see make_instance)")
        if when is None:
            self.clock.reset()
        else:
            self.clock.set(when)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        try:
            self.run(self.parts.close(), timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    def __enter__(self) -> ServiceThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
