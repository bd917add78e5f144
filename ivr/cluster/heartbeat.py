"""The telephony worker's heartbeat into the database (``cluster_nodes``).

An asyncio task of its own writes, every ``[cluster] heartbeat_seconds``, what this node
is doing: the Asterisk version (read over ARI once per connection), the calls in progress,
the pacing its dialer allows now and its last error. The database work goes through the
process's one writer (``DbWriter``): never on the event loop. What the heartbeat reads back
(the operator's draining flag) is handed to the dialer, which then claims no new attempts:
no extra query per dialer pass. A heartbeat that fails is logged and tried again at the
next interval; it never stops the worker. A clean shutdown (``stop``) marks the node
"stopped", so that the cluster view tells it from a node that died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ivr import redact
from ivr.clock import Clock
from ivr.cluster import nodes

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ivr.campaigns.dialer import Dialer
    from ivr.telephony.service import TelephonyService

log = logging.getLogger(__name__)

INFO_TIMEOUT = 5.0  # seconds for ARI's GET /asterisk/info
STOP_TIMEOUT = 5.0  # seconds for the "stopped" mark at shutdown
# A phone number (6+ digits, maybe with + and spaces): never written into the cluster view,
# which every organisation's admins read.
_NUMBER = re.compile(r"\+?\d[\d ]{4,}\d")


def public_error(text: str) -> str:
    """An error as the cluster view may show it: its first line, secrets masked (as in
    the logs), phone numbers replaced, and no longer than ``nodes.MAX_ERROR_CHARS``."""
    first = text.strip().splitlines()[0] if text.strip() else "error"
    return _NUMBER.sub("[number]", redact.redact(first))[: nodes.MAX_ERROR_CHARS]


class Heartbeat:
    """Writes this node's row every ``interval`` seconds until ``stop()``."""

    def __init__(
        self,
        name: str,
        service: TelephonyService,
        dialer: Dialer | None,
        run_db: Callable[[Callable[[Session], Any]], Awaitable[Any]],
        *,
        clock: Clock,
        interval: float,
    ) -> None:
        self.name = name
        self.service = service
        self.dialer = dialer
        self.run_db = run_db
        self.clock = clock
        self.interval = interval
        self.started_at = clock()
        self.asterisk_version: str | None = None
        self._version_of = -1  # the ARI connection (its number) the version was read on
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self._ari_down = False
        self._dialer_error: object = None  # the dialer's last error already taken
        self.draining = False
        self.draining_since: datetime | None = None
        self.beats = 0  # heartbeats written (for tests and status)
        self.failures = 0  # heartbeats that failed
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Write the first heartbeat now (so a node restarted while draining knows it
        before its dialer claims anything), then one every ``interval`` seconds."""
        await self.beat()
        self._task = asyncio.create_task(self._loop(), name=f"heartbeat-{self.name}")

    async def stop(self, *, mark_stopped: bool = True) -> None:
        """Stop beating; a clean shutdown marks the node "stopped" (best effort)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if not mark_stopped:
            return
        at = self.clock()
        try:
            await asyncio.wait_for(
                self.run_db(lambda s: nodes.mark_stopped(s, self.name, at)), STOP_TIMEOUT
            )
        except Exception as exc:  # noqa: BLE001 - the node then reads "down" after the timeout
            log.warning("heartbeat: marking node %s stopped failed: %s", self.name, exc)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self.interval
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at = max(next_at + self.interval, loop.time())
            await self.beat()

    # ------------------------------------------------------------------ one beat
    async def beat(self) -> bool:
        """Write one heartbeat; True when it was stored. Never raises (but cancellation)."""
        try:
            await self._read_version()
            self._observe_errors()
            beat = self.snapshot()
            now = self.clock()
            result: nodes.BeatResult = await self.run_db(lambda s: nodes.heartbeat(s, beat, now))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - logged; the next beat tries again
            self.failures += 1
            self._error(f"heartbeat failed: {type(exc).__name__}: {exc}")
            log.warning("heartbeat of node %s failed: %s", self.name, exc)
            return False
        self.beats += 1
        self._apply_draining(result)
        return True

    def snapshot(self) -> nodes.NodeBeat:
        """What this node reports now."""
        dialer = self.dialer
        pacing: float | None = None
        campaigns = 0
        if dialer is not None and dialer.running:
            runs = list(dialer.campaigns.values())
            campaigns = len(runs)
            pacing = 0.0 if self.draining else round(sum(r.pacer.rate for r in runs), 3)
        return nodes.NodeBeat(
            name=self.name,
            started_at=self.started_at,
            asterisk_version=self.asterisk_version,
            calls_in_progress=self.service.live_calls(),
            pacing=pacing,
            campaigns_running=campaigns,
            last_error=self.last_error,
            last_error_at=self.last_error_at,
        )

    async def _read_version(self) -> None:
        """Asterisk's version, read over ARI once per connection (again after a reconnect,
        which may be to an upgraded Asterisk)."""
        ari = self.service.ari
        if not ari.connected.is_set() or self._version_of == ari.connections:
            return
        try:
            info = await asyncio.wait_for(ari.info(), INFO_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - tried again at the next beat
            log.info("heartbeat: ARI /asterisk/info failed: %s", exc)
            return
        system = info.get("system") if isinstance(info, dict) else None
        version = system.get("version") if isinstance(system, dict) else None
        self.asterisk_version = str(version) if version else None
        self._version_of = ari.connections

    def _observe_errors(self) -> None:
        """The newest error the service or the dialer met becomes the node's last error."""
        service = self.service
        down = service.connection_lost.is_set() or not service.ari.connected.is_set()
        if down and not self._ari_down:
            self._error("ARI disconnected (Asterisk unreachable)")
        self._ari_down = down
        dialer = self.dialer
        if dialer is None:
            return
        error = dialer.last_error
        if error is not None and error is not self._dialer_error:
            self._dialer_error = error
            at, text = error
            self._error(str(text), at)
        from ivr.campaigns.dialer import TRUNK_FAILING

        for run in list(dialer.campaigns.values()):
            reason = run.reason or ""
            if reason.startswith(TRUNK_FAILING):
                self._error(reason)

    def _error(self, text: str, at: datetime | None = None) -> None:
        text = public_error(text)
        if self.last_error == text:
            return  # the same error going on: keep when it started
        self.last_error = text
        self.last_error_at = at or self.clock()

    def _apply_draining(self, result: nodes.BeatResult) -> None:
        if result.draining != self.draining:
            log.warning(
                "node %s %s", self.name,
                "is draining: no new campaign attempts; live calls finish"
                if result.draining else "is no longer draining: dialling resumes",
            )  # fmt: skip
        self.draining, self.draining_since = result.draining, result.draining_since
        if self.dialer is not None:
            self.dialer.draining = result.draining
