"""Run the real telephony service (as `ivr telephony` builds it) in a background thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from ivr.bootstrap import App
from ivr.telephony.service import TelephonyService

T = TypeVar("T")


class ServiceThread:
    """The telephony service on its own event loop, driven from synchronous tests."""

    def __init__(self, app: App, *, dial: bool = False) -> None:
        self.app = app
        self.dial = dial  # run the campaign dialer too
        self.offset = timedelta(0)  # the service's clock runs this far from the real one
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.parts = self.run(self._build())
        self.service: TelephonyService = self.parts.service

    async def _build(self) -> Any:
        parts = self.app.telephony(clock=self._now)
        await parts.start(dial=self.dial)
        return parts

    def _now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def set_time(self, when: datetime | None) -> None:
        """Make the service's clock read ``when`` now (and run on from there); None: real."""
        self.offset = timedelta(0) if when is None else when - datetime.now(UTC)

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
