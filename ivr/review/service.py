"""``ReviewService``: what the review pages call. Every method takes the acting user and
scopes its queries to their organisation (another organisation's answer is ``NotFound``);
a review (corrected text, state, tags) is saved with its change log (``transcript_edits``)
and an audit entry in one transaction; every listen and download is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ivr.accounts import audit
from ivr.accounts.audit import Actor, NotFound
from ivr.clock import Clock
from ivr.review import audio, context, queue, tags
from ivr.review.context import OtherAnswer
from ivr.review.tags import TagView
from ivr.review.words import STATES, Cursor, QueueFilter, WordSpan, word_spans
from ivr.store.db import reader_for
from ivr.store.models import Answer, Call, Campaign, Recording, ReviewState, TranscriptRow
from ivr.store.org_models import Role, User
from ivr.store.work_models import Tag, TranscriptEdit, TranscriptTag
from ivr.webhooks import events, outbox

MAX_TEXT = 10_000


@dataclass(frozen=True)
class Edit:
    at: datetime
    actor: str
    field: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class Item:
    """One open answer with everything its review page shows."""

    row: queue.QueueRow
    machine_text: str
    corrected_text: str | None
    flagged: str | None
    campaign_id: str | None
    campaign_name: str
    question: str
    language: str
    other_answers: list[OtherAnswer]
    words: list[WordSpan]
    duration: float
    tags: list[TagView]
    chosen: frozenset[int]
    edits: list[Edit]
    reviewed_by: str
    reviewed_at: datetime | None


@dataclass(frozen=True)
class QueueView:
    page: queue.QueuePage
    counts: dict[str, int]
    campaigns: list[tuple[str, str]]  # (id, name)
    questions: list[tuple[str, str]]  # (node id, label)
    languages: list[str]
    tags: list[TagView]


@dataclass(frozen=True)
class AudioFile:
    path: Path
    transcript_id: int
    recording_id: int
    campaign_id: str | None


class ReviewService:
    def __init__(
        self,
        factory: sessionmaker[Session],
        clock: Clock,
        secret: str,
        link_seconds: int = 300,
    ) -> None:
        self.factory = factory
        self.reader = reader_for(factory)
        self.clock = clock
        self._secret = secret
        self.link_seconds = link_seconds

    # ------------------------------------------------------------------ the queue
    def queue(
        self, actor: Actor, f: QueueFilter, cursor: Cursor | None, limit: int = 25
    ) -> QueueView:
        org_id = actor.require(Role.REVIEWER)
        with self.reader() as s:
            campaigns = list(
                s.execute(
                    sa.select(Campaign.id, Campaign.name)
                    .where(Campaign.org_id == org_id)
                    .order_by(Campaign.created_at.desc())
                ).tuples()
            )
            flows = []
            chosen = [c for c in campaigns if c[0] == f.campaign] if f.campaign else campaigns
            for campaign_id, _name in chosen[:50]:
                flow = context.flow_of_campaign(s.get(Campaign, campaign_id))
                if flow is not None:
                    flows.append(flow)
            languages = sorted({lang for flow in flows for lang in flow.languages})
            language = flows[0].default_language if flows else ""
            return QueueView(
                page=queue.page(s, org_id, f, cursor, limit),
                counts=queue.counts(s, org_id, f),
                campaigns=[(i, n) for i, n in campaigns],
                questions=context.open_questions(flows, language),
                languages=languages,
                tags=tags.of_org(s, org_id),
            )

    def item(self, actor: Actor, transcript_id: int) -> Item:
        org_id = actor.require(Role.REVIEWER)
        with self.reader() as s:
            row = self._row(s, org_id, transcript_id)
            summary = queue.row_of(s, org_id, transcript_id)
            assert summary is not None
            call = s.get(Call, row.call_id)
            recording = s.get(Recording, row.recording_id)
            flow = context.flow_of_call(s, row, call)
            answer_language = s.scalar(
                sa.select(Answer.language)
                .where(Answer.call_id == row.call_id, Answer.node_id == row.node_id)
                .order_by(Answer.seq.desc())
                .limit(1)
            )
            language = answer_language or row.language or (call.language if call else "")
            node = flow.nodes.get(row.node_id) if flow else None
            default = flow.default_language if flow else ""
            campaign = s.get(Campaign, row.campaign_id) if row.campaign_id else None
            chosen = frozenset(
                s.scalars(
                    sa.select(TranscriptTag.tag_id).where(TranscriptTag.transcript_id == row.id)
                )
            )
            edits = [
                Edit(e.at, e.actor, e.field, e.old, e.new)
                for e in s.scalars(
                    sa.select(TranscriptEdit)
                    .where(TranscriptEdit.transcript_id == row.id)
                    .order_by(TranscriptEdit.at.desc(), TranscriptEdit.id.desc())
                    .limit(100)
                )
            ]
            reviewer = s.get(User, row.reviewed_by) if row.reviewed_by else None
            return Item(
                row=summary,
                machine_text=row.machine_text,
                corrected_text=row.corrected_text,
                flagged=row.flagged,
                campaign_id=row.campaign_id,
                campaign_name=campaign.name if campaign and campaign.org_id == org_id else "",
                question=context.prompt_text(node, language, default),
                language=language,
                other_answers=context.other_answers(s, row.call_id, row.node_id, flow, language),
                words=word_spans(row.segments),
                duration=recording.duration_seconds if recording else 0.0,
                tags=tags.of_org(s, org_id),
                chosen=chosen,
                edits=edits,
                reviewed_by=reviewer.email if reviewer else "",
                reviewed_at=row.reviewed_at,
            )

    def next_id(self, actor: Actor, transcript_id: int, f: QueueFilter) -> int | None:
        """The answer after this one in the reviewer's queue (None: nothing else in it)."""
        org_id = actor.require(Role.REVIEWER)
        with self.reader() as s:
            row = queue.row_of(s, org_id, transcript_id)
            if row is None:
                raise NotFound(f"no transcript {transcript_id}")
            return queue.next_after(s, org_id, f, row)

    # ------------------------------------------------------------------ saving
    def save(
        self,
        actor: Actor,
        transcript_id: int,
        *,
        corrected: str,
        state: str,
        tag_ids: set[int],
    ) -> list[str]:
        """Save a review: the corrected text (the machine text stays as it is), the state
        and the tags. Each changed field goes to the change log; one audit entry names
        them. Returns the changed fields (none: nothing was written)."""
        org_id = actor.require(Role.REVIEWER)
        if state not in STATES:
            raise ValueError(f"unknown review state {state!r}")
        text = corrected.replace("\r\n", "\n").strip()[:MAX_TEXT]
        now = self.clock()
        with self.factory.begin() as s:
            row = self._row(s, org_id, transcript_id, lock=True)
            org_tags = {t.id: t.name for t in s.scalars(sa.select(Tag).where(Tag.org_id == org_id))}
            if not tag_ids <= set(org_tags):
                raise NotFound("a tag of another organisation")
            changes: list[tuple[str, str | None, str | None]] = []
            corrected_now = False
            unchanged = row.corrected_text is None and text == row.machine_text.strip()
            if not unchanged and text != row.corrected_text:
                changes.append(("corrected_text", row.corrected_text, text))
                row.corrected_text = text
                corrected_now = True
            if row.review_state.value != state:
                changes.append(("review_state", row.review_state.value, state))
                row.review_state = ReviewState(state)
            if state != ReviewState.NEW.value and (changes or row.reviewed_by is None):
                row.reviewed_by = actor.user_id
                row.reviewed_at = now
            before = set(
                s.scalars(
                    sa.select(TranscriptTag.tag_id).where(TranscriptTag.transcript_id == row.id)
                )
            )
            if before != tag_ids:
                changes.append(("tags", _names(org_tags, before), _names(org_tags, tag_ids)))
                if before - tag_ids:
                    s.execute(
                        sa.delete(TranscriptTag).where(
                            TranscriptTag.transcript_id == row.id,
                            TranscriptTag.tag_id.in_(before - tag_ids),
                        )
                    )
                s.add_all(TranscriptTag(transcript_id=row.id, tag_id=t) for t in tag_ids - before)
            for field, old, new in changes:
                s.add(
                    TranscriptEdit(
                        transcript_id=row.id, user_id=actor.user_id, actor=actor.actor,
                        at=now, field=field, old=old, new=new,
                    )
                )  # fmt: skip
            if changes:
                audit.record(
                    s, actor, "transcript.review", at=now, target_type="transcript",
                    target_id=str(row.id), campaign_id=row.campaign_id,
                    changed=[c[0] for c in changes], state=state,
                )  # fmt: skip
            if corrected_now:  # webhooks: in this transaction
                data = {
                    "transcript_id": row.id, "call_id": row.call_id,
                    "campaign_id": row.campaign_id, "review_state": state,
                }  # fmt: skip
                outbox.emit(s, row.org_id, events.TRANSCRIPT_CORRECTED, data, at=now)
            return [c[0] for c in changes]

    # ------------------------------------------------------------------ audio
    def audio_token(self, actor: Actor, transcript_id: int) -> str:
        actor.require(Role.REVIEWER)
        expires = self.clock() + timedelta(seconds=self.link_seconds)
        return audio.sign(self._secret, transcript_id, str(actor.user_id), expires)

    def check_token(self, actor: Actor, transcript_id: int, token: str) -> audio.LinkProblem | None:
        actor.require(Role.REVIEWER)
        return audio.check(self._secret, token, transcript_id, str(actor.user_id), self.clock())

    def audio(self, actor: Actor, transcript_id: int) -> AudioFile:
        """The recording of an answer of the actor's organisation (NotFound otherwise, or
        when the file is gone)."""
        org_id = actor.require(Role.REVIEWER)
        with self.reader() as s:
            row = self._row(s, org_id, transcript_id)
            recording = s.get(Recording, row.recording_id)
            if recording is None or not Path(recording.path).is_file():
                raise NotFound(f"no recording for transcript {transcript_id}")
            return AudioFile(Path(recording.path), row.id, recording.id, row.campaign_id)

    def log_listen(self, actor: Actor, found: AudioFile, *, download: bool = False) -> None:
        """An audit entry for one listen (a playback started) or download."""
        actor.require(Role.REVIEWER)
        with self.factory.begin() as s:
            audit.record(
                s, actor, "recording.download" if download else "recording.listen",
                at=self.clock(), target_type="recording", target_id=str(found.recording_id),
                transcript_id=found.transcript_id, campaign_id=found.campaign_id,
            )  # fmt: skip

    # ------------------------------------------------------------------ tags
    def tags(self, actor: Actor) -> list[TagView]:
        org_id = actor.require(Role.REVIEWER)
        with self.reader() as s:
            return tags.of_org(s, org_id, uses=True)

    def tag(self, actor: Actor, tag_id: int) -> TagView:
        org_id = actor.require(Role.MANAGER)
        with self.reader() as s:
            found = tags.find(s, org_id, tag_id)
            return TagView(found.id, found.name, found.key)

    def add_tag(self, actor: Actor, name: str, key: int | None) -> TagView:
        org_id = actor.require(Role.MANAGER)
        with self.factory.begin() as s:
            made = tags.add(s, actor, org_id, name, key, at=self.clock())
            return TagView(made.id, made.name, made.key)

    def change_tag(self, actor: Actor, tag_id: int, name: str, key: int | None) -> TagView:
        org_id = actor.require(Role.MANAGER)
        with self.factory.begin() as s:
            found = tags.change(s, actor, org_id, tag_id, name, key, at=self.clock())
            return TagView(found.id, found.name, found.key)

    def delete_tag(self, actor: Actor, tag_id: int) -> str:
        org_id = actor.require(Role.MANAGER)
        with self.factory.begin() as s:
            return tags.delete(s, actor, org_id, tag_id, at=self.clock())

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _row(s: Session, org_id: str, transcript_id: int, *, lock: bool = False) -> TranscriptRow:
        query = sa.select(TranscriptRow).where(
            TranscriptRow.id == transcript_id, TranscriptRow.org_id == org_id
        )
        if lock:
            query = query.with_for_update()
        row = s.scalar(query)
        if row is None:
            raise NotFound(f"no transcript {transcript_id}")
        return row


def _names(names: dict[int, str], ids: set[int]) -> str:
    return ", ".join(sorted(names[i] for i in ids))
