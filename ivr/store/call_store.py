"""The database side of the telephony service (the ``CallStore`` port), over ``repo``.

SQLAlchemy is synchronous; the telephony loop must not wait on the database, so every write
goes to the process's one database writer (``ivr.store.writer``), which commits what has
queued up together. The dialer shares the same writer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr.clock import Clock
from ivr.flows import engine as fe
from ivr.flows.model import Flow
from ivr.outcome import Outcome
from ivr.store import repo
from ivr.store.models import Call
from ivr.store.writer import DbWriter

log = logging.getLogger(__name__)

T = TypeVar("T")

CALLBACK_FIELDS = {"channel", "time_window", "interpreter"}


class DbCallStore:
    def __init__(
        self,
        factory: sessionmaker[Session],
        node_name: str,
        on_recording: Callable[[int], None] | None = None,
        *,
        clock: Clock,
    ) -> None:
        self.factory = factory
        # The App's clock: each write is stamped when its event happened, not when the
        # writer gets to it.
        self.clock = clock
        self.node_name = node_name
        self.on_recording = on_recording  # given a stored recording's id (e.g. to transcribe)
        self.writer = DbWriter(factory)

    def close(self) -> None:
        self.writer.close()

    async def _run(self, work: Callable[[Session], T]) -> T:
        return await self.writer.run(work)

    # ------------------------------------------------------------------ CallStore
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
        attempt_id: str | None = None,
    ) -> None:
        now = self.clock()
        await self._run(
            lambda s: repo.create_call(
                s,
                call_id=call_id,
                direction=direction,
                flow_id=flow.id,
                flow_version=flow.version,
                channel_id=channel_id,
                node_name=self.node_name,
                language=language,
                line_number=line_number,
                remote_number=remote_number,
                anonymous=flow.anonymous,
                attempt_id=attempt_id,
                started_at=now,
            )
        )

    async def answered(self, call_id: str) -> None:
        now = self.clock()
        await self._run(lambda s: repo.mark_answered(s, call_id, now))

    async def progress(self, call_id: str, node_id: str | None, language: str) -> None:
        await self._run(lambda s: repo.set_progress(s, call_id, node_id=node_id, language=language))

    async def answer(self, call_id: str, action: fe.SaveAnswer) -> None:
        now = self.clock()

        def work(s: Session) -> int | None:
            repo.save_answer(
                s,
                call_id,
                node_id=action.node_id,
                kind=action.kind,
                value=action.value,
                language=action.language,
                digits=action.digits,
                at=now,
            )
            if action.kind == "open":
                return repo.save_recording(
                    s,
                    call_id,
                    node_id=action.node_id,
                    path=action.value,
                    duration_seconds=action.seconds or 0.0,
                    language=action.language,
                    at=now,
                ).id
            return None

        recording_id = await self._run(work)
        if recording_id is not None and self.on_recording is not None:
            on_recording = self.on_recording  # after the commit: the row is there to read
            try:
                await asyncio.to_thread(on_recording, recording_id)
            except Exception:  # the call goes on; the recording is stored either way
                log.exception("on_recording(%s) failed", recording_id)

    async def callback(
        self, call_id: str, action: fe.SaveCallback, phone_number: str | None
    ) -> None:
        fields = dict(action.fields)
        interpreter = fields.get("interpreter")
        now = self.clock()
        await self._run(
            lambda s: repo.save_callback(
                s,
                call_id,
                channel=fields.get("channel", "phone"),
                consent_version=action.consent_version,
                language=action.language,
                phone_number=phone_number,
                time_window=fields.get("time_window"),
                interpreter_language=None if interpreter in (None, "none") else interpreter,
                at=now,
            )
        )

    async def opt_out(self, call_id: str, phone_number: str) -> None:
        now = self.clock()
        try:
            await self._run(
                lambda s: repo.add_opt_out(
                    s, phone_number, source="in_call", call_id=call_id, at=now
                )
            )
        except ValueError as exc:  # not an E.164 number (e.g. a softphone's name)
            log.warning("opt-out of %r not stored: %s", phone_number, exc)

    async def ended(
        self,
        call_id: str,
        status: Outcome,
        node_id: str | None,
        cause: int | None,
        reason: str | None = None,
    ) -> None:
        now = self.clock()

        def work(s: Session) -> None:
            if node_id is not None:
                repo.set_progress(s, call_id, node_id=node_id)
            repo.end_call(s, call_id, status, cause=cause, at=now, reason=reason)

        await self._run(work)

    async def not_answered(
        self, call_id: str, outcome: Outcome, cause: int | None, sip_code: int | None
    ) -> None:
        now = self.clock()
        await self._run(lambda s: repo.end_call(s, call_id, outcome, cause=cause, at=now))

    async def discard_unplaced(self, call_id: str) -> None:
        await self._run(lambda s: repo.discard_unplaced_call(s, call_id))

    async def interrupt_orphans(self, live_call_ids: set[str]) -> int:
        now = self.clock()

        def work(s: Session) -> int:
            stale = [
                c.id for c in repo.active_calls(s, self.node_name) if c.id not in live_call_ids
            ]
            for call_id in stale:
                repo.end_call(
                    s, call_id, Outcome.INTERRUPTED, at=now, reason="orphaned: not running here"
                )
            return len(stale)

        return await self._run(work)

    # ------------------------------------------------------------------ reading (tests, UI)
    def call(self, call_id: str) -> Call | None:
        with self.factory() as s:
            call = repo.get_call(s, call_id)
            if call is not None:
                s.expunge_all()
            return call

    def call_ids(self) -> set[str]:
        with self.factory() as s:
            return set(s.scalars(sa.select(Call.id)))

    def newest_call_id(self) -> str | None:
        with self.factory() as s:
            return s.scalar(sa.select(Call.id).order_by(Call.started_at.desc()).limit(1))

    def is_opted_out(self, phone_number: str) -> bool:
        with self.factory() as s:
            return repo.is_opted_out(s, phone_number)

    def count_calls(self) -> int:
        with self.factory() as s:
            return int(s.scalar(sa.select(sa.func.count()).select_from(Call)) or 0)
