"""The inbound lines the telephony worker answers: the config file's ``[lines]`` and the
enabled lines staff keep in the database (``inbound_lines``, edited in the browser), merged
and refreshed while the worker runs, so that a line added, changed, disabled or removed
takes effect within a couple of seconds without a restart.

Every pass reads the database and parses and prerenders any flow it has not seen in a
thread (``asyncio.to_thread``), never on the event loop, then replaces ``service.lines``
with a new dict in one assignment: a call that comes in sees either the old lines or the
new ones, never half of each, and a call already running keeps the line it started with.

- A config line wins over a database line for the same number (the admin service refuses
  such numbers; one can still be left over from an edited config file: it is logged once).
- A database line whose flow does not parse, or whose prompts cannot be rendered, is logged
  once and skipped; the other lines keep working.
- A pass that cannot read the database (it is down or busy) is logged once and leaves the
  lines as they were until a later pass succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr.flows.loader import FlowError, parse_flow
from ivr.flows.model import Flow
from ivr.speech.prompts import PromptError
from ivr.store.org_models import FlowDoc, InboundLine
from ivr.telephony.service import Line

log = logging.getLogger(__name__)

#: Seconds between two reads of the database.
REFRESH_SECONDS = 2.0


def db_flow_source(data_dir: Path, flow_doc_id: str) -> str:
    """The ``source`` a flow kept in the database is parsed with: a ``recording:`` path in
    it is relative to ``DATA_DIR/flows`` (uploaded prompts are found by name anyway)."""
    return str(data_dir / "flows" / f"{flow_doc_id}.yaml")


def parse_flow_doc(yaml_text: str, flow_doc_id: str, data_dir: Path) -> Flow:
    """A flow of the ``flows`` table, parsed as the worker parses it (FlowError if not)."""
    return parse_flow(yaml_text, db_flow_source(data_dir, flow_doc_id))


@dataclass(frozen=True)
class DbLine:
    """An enabled line of the database with its flow's YAML."""

    number: str
    language: str
    anonymous: bool
    flow_doc_id: str
    flow_name: str
    yaml: str


def read_enabled_lines(s: Session) -> list[DbLine]:
    """Every enabled line of every organisation (numbers are unique across them)."""
    rows = s.execute(
        sa.select(
            InboundLine.number,
            InboundLine.language,
            InboundLine.anonymous,
            FlowDoc.id,
            FlowDoc.name,
            FlowDoc.yaml,
        )
        .join(FlowDoc, FlowDoc.id == InboundLine.flow_id)
        .where(InboundLine.enabled.is_(True))
        .order_by(InboundLine.number)
    ).all()
    return [DbLine(*row) for row in rows]


class LineHolder(Protocol):
    """What the directory keeps current: the telephony service's ``lines``."""

    lines: dict[str, Line]


FlowKey = tuple[str, str]  # (flow doc id, sha256 of its YAML)


class LineDirectory:
    def __init__(
        self,
        holder: LineHolder,
        factory: sessionmaker[Session],
        prerender: Callable[[Flow], object],
        config_lines: Mapping[str, Line],
        data_dir: Path,
        *,
        interval: float = REFRESH_SECONDS,
    ) -> None:
        self.holder = holder
        self.factory = factory
        self.prerender = prerender  # blocking: renders a flow's prompts (run in a thread)
        self.config_lines = dict(config_lines)
        self.data_dir = data_dir
        self.interval = interval
        self.changes = 0  # how many times the lines were replaced
        self._flows: dict[FlowKey, Flow] = {}  # parsed and prerendered
        self._broken: set[FlowKey] = set()  # does not parse: skipped until its YAML changes
        self._logged: set[str] = set()  # problems logged once
        self._signature: tuple[tuple[str, int, str | None, bool], ...] | None = None
        self._started = 0  # passes begun
        self._done = 0  # the number of the last pass that finished
        self._passed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Load the lines once (a database that cannot be read is logged: the config lines
        serve meanwhile), then keep them current in the background."""
        self.holder.lines = dict(self.config_lines)
        await self._safe_pass()
        self._task = asyncio.create_task(self._loop(), name="line-directory")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self._safe_pass()

    async def _safe_pass(self) -> None:
        """A pass whose failure is logged (once, until a pass succeeds) and left to the
        next one: the lines stay as they are meanwhile."""
        try:
            await self._pass()
        except Exception as exc:
            self._log_once(
                f"pass:{type(exc).__name__}:{exc}",
                "inbound lines: the database's lines cannot be read (%s: %s); the lines stay "
                "as they are and the next pass tries again",
                type(exc).__name__,
                exc,
                exc_info=not isinstance(exc, sa.exc.SQLAlchemyError),
            )
        else:
            self._logged = {m for m in self._logged if not m.startswith("pass:")}

    # ------------------------------------------------------------------ waiting
    async def refreshed(self, timeout: float) -> None:
        """Wait until a pass that began after this call has finished: the lines then
        reflect what the database held when it was called. TimeoutError if none does."""
        target = self._started + 1
        async with self._passed:
            await asyncio.wait_for(self._passed.wait_for(lambda: self._done >= target), timeout)

    # ------------------------------------------------------------------ a pass
    async def refresh(self) -> None:
        """One pass now (the background loop does this every ``interval`` seconds)."""
        await self._pass()

    async def _pass(self) -> None:
        self._started += 1
        number = self._started
        rows = await asyncio.to_thread(self._read)
        seen: set[FlowKey] = set()
        lines: dict[str, Line] = {}
        for row in rows:
            if row.number in self.config_lines:
                self._log_once(
                    f"shadowed:{row.number}",
                    "inbound line %s in the database is also in the config file's [lines]: "
                    "the config file's line answers it",
                    row.number,
                )
                continue
            key = (row.flow_doc_id, hashlib.sha256(row.yaml.encode()).hexdigest())
            seen.add(key)
            flow = await self._flow(key, row)
            if flow is not None:
                lines[row.number] = Line(
                    row.number, flow, row.language or None, anonymous=row.anonymous
                )
        for key in set(self._flows) - seen:
            del self._flows[key]
        self._broken &= seen
        merged = {**lines, **self.config_lines}
        signature = tuple(
            sorted((n, id(line.flow), line.language, line.anonymous) for n, line in merged.items())
        )
        if signature != self._signature:
            before = set(self.holder.lines)
            self.holder.lines = merged  # one assignment: a call sees the old or the new
            self._signature = signature
            self.changes += 1
            added, removed = sorted(set(merged) - before), sorted(before - set(merged))
            if added or removed or self.changes > 1:
                log.info(
                    "inbound lines now %s (added %s, removed %s)",
                    ", ".join(sorted(merged)) or "none",
                    ", ".join(added) or "none",
                    ", ".join(removed) or "none",
                )
        async with self._passed:
            self._done = number
            self._passed.notify_all()

    def _read(self) -> list[DbLine]:
        with self.factory() as s:
            return read_enabled_lines(s)

    async def _flow(self, key: FlowKey, row: DbLine) -> Flow | None:
        """The parsed, prerendered flow of ``row`` (cached by its YAML), or None: unusable."""
        found = self._flows.get(key)
        if found is not None:
            return found
        if key in self._broken:
            return None
        try:
            flow = await asyncio.to_thread(parse_flow_doc, row.yaml, row.flow_doc_id, self.data_dir)
        except FlowError as exc:
            self._broken.add(key)
            first = exc.problems[0].format(row.flow_name) if exc.problems else str(exc)
            self._log_once(
                f"flow:{key}",
                "inbound line %s: the flow %r has errors (%s%s); the line is not answered "
                "until it is fixed",
                row.number,
                row.flow_name,
                first,
                f" and {len(exc.problems) - 1} more" if len(exc.problems) > 1 else "",
            )
            return None
        try:
            # An upload the flow names may arrive later: tried again on every pass.
            await asyncio.to_thread(self.prerender, flow)
        except Exception as exc:  # PromptError: a missing upload or recording, no voice...
            self._log_once(
                f"prompts:{key}:{exc}",
                "inbound line %s: the prompts of the flow %r cannot be rendered (%s); the "
                "line is not answered until they can",
                row.number,
                row.flow_name,
                exc,
                exc_info=not isinstance(exc, PromptError | OSError),
            )
            return None
        self._flows[key] = flow
        return flow

    def _log_once(self, key: str, message: str, *args: object, exc_info: bool = False) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.warning(message, *args, exc_info=exc_info)
