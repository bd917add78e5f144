"""The tables, as SQLAlchemy 2.0 typed declarative models.

Timestamps are timezone-aware UTC on both backends (``UtcDateTime``); enumerations are
stored as short strings with a CHECK constraint (no PostgreSQL enum types, which are
awkward to migrate). Every constraint and index has a conventional name so that the
Alembic migrations can refer to it on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import enum
import random
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ivr.clock import system_clock
from ivr.outcome import ATTEMPT_OUTCOMES, CALL_STATUSES, Outcome

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Column default for record timestamps that decide nothing (the writers that matter to
    the rules pass the App's clock explicitly)."""
    return system_clock()


def new_id() -> str:
    return str(uuid.uuid4())


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so the value is stored as
    UTC text and given back its ``UTC`` tzinfo on the way out. A naive datetime is refused:
    it is always a bug (local time or UTC? nobody knows later).
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: give timestamps a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class AnswerKind(enum.StrEnum):
    CHOICE = "choice"
    SCALE = "scale"
    NUMBER = "number"
    OPEN = "open"
    LANGUAGE = "language"
    CALLBACK = "callback"


class CallbackChannel(enum.StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    HOME_VISIT = "home_visit"


class CallbackStatus(enum.StrEnum):
    """Where a permission-to-contact request stands in the staff's worklist. It ends
    ``resolved`` or ``unreachable``, each with the staff's recorded answer (``resolution``)."""

    NEW = "new"
    ASSIGNED = "assigned"
    CONTACTED = "contacted"
    RESOLVED = "resolved"
    UNREACHABLE = "unreachable"


class ReviewState(enum.StrEnum):
    """A transcript in the review queue: not yet reviewed, reviewed, or flagged for another
    reviewer's look."""

    NEW = "new"
    REVIEWED = "reviewed"
    SECOND_LOOK = "second_look"


class OptOutSource(enum.StrEnum):
    IN_CALL = "in_call"
    IMPORT = "import"
    STAFF = "staff"


def _enum(cls: type[enum.StrEnum], name: str) -> sa.Enum:
    """A VARCHAR holding the member *values*, guarded by a CHECK constraint ``ck_<t>_<name>``."""
    return sa.Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        validate_strings=True,
        values_callable=lambda members: [m.value for m in members],
    )


class _Outcomes(sa.types.TypeDecorator[Outcome]):
    """Members of the one outcome vocabulary (``ivr.outcome``), as their values in a VARCHAR
    guarded by a CHECK constraint ``ck_<t>_<name>`` that allows exactly ``members``."""

    impl = sa.Enum
    cache_ok = True

    def __init__(self, members: tuple[Outcome, ...], name: str) -> None:
        super().__init__(
            *(m.value for m in members),
            name=name,
            native_enum=False,
            create_constraint=True,
            length=16,
            validate_strings=True,
        )
        self.members = members

    def process_bind_param(self, value: Outcome | str | None, dialect: Dialect) -> str | None:
        return None if value is None else Outcome(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> Outcome | None:
        return None if value is None else Outcome(value)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {datetime: UtcDateTime()}


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        sa.Index("ix_calls_node_name_status", "node_name", "status"),
        sa.Index("ix_calls_org_id_started_at", "org_id", "started_at"),
        sa.Index("ix_calls_campaign_id", "campaign_id"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    direction: Mapped[Direction] = mapped_column(_enum(Direction, "direction"))
    flow_id: Mapped[str] = mapped_column(sa.String(100))
    flow_version: Mapped[str] = mapped_column(sa.String(64))
    line_number: Mapped[str | None] = mapped_column(sa.String(32))  # the DID dialled (inbound)
    remote_number: Mapped[str | None] = mapped_column(sa.String(32))  # NULL: anonymous line
    language: Mapped[str] = mapped_column(sa.String(8))
    channel_id: Mapped[str] = mapped_column(sa.String(128), unique=True, index=True)
    node_name: Mapped[str] = mapped_column(sa.String(100))  # the telephony worker running it
    status: Mapped[Outcome] = mapped_column(
        _Outcomes(CALL_STATUSES, "status"), default=Outcome.ACTIVE
    )
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    hangup_cause: Mapped[int | None]  # the Q.850 cause Asterisk reported
    # Why a call failed or was cut (an ARI request refused, a database fault, Asterisk
    # gone), in words for staff; NULL for a call that ended normally.
    end_reason: Mapped[str | None] = mapped_column(sa.String(300))
    last_node_id: Mapped[str | None] = mapped_column(sa.String(100))
    attempt_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)  # campaigns
    # Whose call it is, set when it is created: the campaign's organisation (outbound) or
    # the inbound line's; NULL for a line or campaign that belongs to no organisation.
    org_id: Mapped[str | None] = mapped_column(sa.String(36))
    campaign_id: Mapped[str | None] = mapped_column(sa.String(36))

    answers: Mapped[list[Answer]] = relationship(
        back_populates="call", order_by="Answer.seq", passive_deletes=True
    )
    recordings: Mapped[list[Recording]] = relationship(
        back_populates="call", order_by="Recording.id", passive_deletes=True
    )
    callback_requests: Mapped[list[CallbackRequest]] = relationship(
        back_populates="call", order_by="CallbackRequest.id", passive_deletes=True
    )


class Answer(Base):
    """Every answer given, in order (``seq`` within the call); none is overwritten.

    A node can be answered again (after a language switch or ``*`` repeat); the latest one
    per node counts (``repo.latest_answers``), the earlier ones stay for the record.
    """

    __tablename__ = "answers"
    __table_args__ = (
        sa.UniqueConstraint("call_id", "seq"),
        sa.Index("ix_answers_call_id_node_id", "call_id", "node_id"),
        # The API's answer lists walk answers oldest first (created_at, id) by cursor.
        sa.Index("ix_answers_created_at_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(sa.ForeignKey("calls.id", ondelete="CASCADE"))
    seq: Mapped[int]  # 1, 2, 3 ... within the call
    node_id: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[AnswerKind] = mapped_column(_enum(AnswerKind, "kind"))
    value: Mapped[str] = mapped_column(sa.Text)
    digits: Mapped[str] = mapped_column(sa.Text, default="")  # the keys pressed, "" if none
    language: Mapped[str] = mapped_column(sa.String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    call: Mapped[Call] = relationship(back_populates="answers")


class Recording(Base):
    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(sa.ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[str] = mapped_column(sa.String(100))
    path: Mapped[str] = mapped_column(sa.Text)
    duration_seconds: Mapped[float]
    language: Mapped[str] = mapped_column(sa.String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    call: Mapped[Call] = relationship(back_populates="recordings")


class CallbackRequest(Base):
    """A resident's permission to be contacted, with the consent wording version played."""

    __tablename__ = "callback_requests"
    __table_args__ = (
        sa.Index("ix_callback_requests_status_created_at", "status", "created_at"),
        sa.Index("ix_callback_requests_org_id_status_created_at", "org_id", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(sa.ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    phone_number: Mapped[str | None] = mapped_column(sa.String(32))
    channel: Mapped[CallbackChannel] = mapped_column(_enum(CallbackChannel, "channel"))
    time_window: Mapped[str | None] = mapped_column(sa.String(64))
    interpreter_language: Mapped[str | None] = mapped_column(sa.String(8))
    consent_version: Mapped[str] = mapped_column(sa.String(32))
    language: Mapped[str] = mapped_column(sa.String(8))
    status: Mapped[CallbackStatus] = mapped_column(
        _enum(CallbackStatus, "status"), default=CallbackStatus.NEW
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The staff side (copied from the call when it is stored: scoping without joins).
    org_id: Mapped[str | None] = mapped_column(sa.String(36))
    campaign_id: Mapped[str | None] = mapped_column(sa.String(36))
    assigned_to: Mapped[str | None] = mapped_column(
        sa.String(36), sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    resolution: Mapped[str | None] = mapped_column(sa.Text)  # the answer the resident got
    resolved_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]

    call: Mapped[Call] = relationship(back_populates="callback_requests")


class OptOut(Base):
    """The do-not-call list: one row per number (E.164). Survives the purge of its call."""

    __tablename__ = "opt_outs"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_number: Mapped[str] = mapped_column(sa.String(32), unique=True)
    source: Mapped[OptOutSource] = mapped_column(_enum(OptOutSource, "source"))
    call_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("calls.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --------------------------------------------------------------------------- campaigns
class Language(enum.StrEnum):
    FI = "fi"
    SV = "sv"
    EN = "en"


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"  # ended by staff before its contacts were done; final
    COMPLETED = "completed"  # every contact reached a final outcome


class AttemptState(enum.StrEnum):
    DUE = "due"  # waiting for its due_at (and for a dialer to claim it)
    DIALING = "dialing"  # claimed by a telephony worker (claimed_by): being dialled
    DONE = "done"  # finished, with an outcome
    CANCELLED = "cancelled"  # will never be dialled (the campaign was stopped)


class Campaign(Base):
    """An outbound campaign: a flow, its contacts, and the rules its dialer follows."""

    __tablename__ = "campaigns"
    __table_args__ = (
        sa.CheckConstraint("length(name) BETWEEN 1 AND 100", name="name_length"),
        sa.CheckConstraint("max_attempts >= 1", name="max_attempts"),
        sa.CheckConstraint(
            "retry_busy_minutes >= 0 AND retry_no_answer_minutes >= 0 "
            "AND retry_failed_minutes >= 0",
            name="retry_minutes",
        ),
        sa.CheckConstraint("calls_per_second > 0", name="calls_per_second"),
        sa.CheckConstraint("max_concurrent >= 1", name="max_concurrent"),
        # Unique within an organisation (the store also keeps names without one unique).
        sa.UniqueConstraint("org_id", "name"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(sa.String(100))
    # The organisation that owns it; None only for campaigns made on the command line
    # without --org (no staff user sees those).
    org_id: Mapped[str | None] = mapped_column(
        sa.String(36), sa.ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    flow_path: Mapped[str] = mapped_column(sa.Text)
    flow_id: Mapped[str | None] = mapped_column(sa.String(100))  # set when started
    flow_version: Mapped[str | None] = mapped_column(sa.String(64))  # set when started
    flow_snapshot: Mapped[str | None] = mapped_column(sa.Text)  # the flow file, frozen at start
    caller_id: Mapped[str | None] = mapped_column(sa.String(32))  # E.164
    # What the provider charges: euros per billable minute (None: not set), and how it
    # rounds a call's length, "MIN/STEP" in seconds (60/60: every started minute; 1/1: by
    # the second; 30/6: at least 30 s, then in 6 s steps).
    price_per_minute: Mapped[float | None] = mapped_column(sa.Numeric(10, 4, asdecimal=False))
    billing_rule: Mapped[str] = mapped_column(sa.String(16), default="60/60")
    # The public page (no login): its address token (None: no page) and what it says, a
    # JSON object (ivr.campaigns.public_info).
    public_slug: Mapped[str | None] = mapped_column(sa.String(32), unique=True)
    public_info: Mapped[str] = mapped_column(sa.Text, default="{}")
    timezone: Mapped[str] = mapped_column(sa.String(64), default="Europe/Helsinki")
    windows: Mapped[str] = mapped_column(sa.Text, default="mon-fri 10:00-20:00")
    allow_holidays: Mapped[bool] = mapped_column(default=False)
    max_attempts: Mapped[int] = mapped_column(default=3)
    retry_busy_minutes: Mapped[int] = mapped_column(default=30)
    retry_no_answer_minutes: Mapped[int] = mapped_column(default=120)
    retry_failed_minutes: Mapped[int] = mapped_column(default=60)
    calls_per_second: Mapped[float] = mapped_column(default=2.0)
    max_concurrent: Mapped[int] = mapped_column(default=30)
    default_language: Mapped[Language] = mapped_column(
        _enum(Language, "default_language"), default=Language.FI
    )
    cross_campaign_daily_cap: Mapped[bool] = mapped_column(default=True)
    status: Mapped[CampaignStatus] = mapped_column(
        _enum(CampaignStatus, "status"), default=CampaignStatus.DRAFT
    )
    status_reason: Mapped[str | None] = mapped_column(sa.Text)  # why it cannot dial now
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]


class Contact(Base):
    """One number to call in a campaign (E.164, unique within the campaign)."""

    __tablename__ = "contacts"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "phone"),
        sa.CheckConstraint("source_line >= 1", name="source_line"),
        # The API's contact lists walk a campaign's contacts oldest first by cursor.
        sa.Index("ix_contacts_campaign_id_created_at_id", "campaign_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    campaign_id: Mapped[str] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(sa.String(32))
    language: Mapped[Language] = mapped_column(_enum(Language, "language"))
    age_group: Mapped[str | None] = mapped_column(sa.String(32))
    birth_year: Mapped[int | None]
    area: Mapped[str | None] = mapped_column(sa.Text)
    postcode: Mapped[str | None] = mapped_column(sa.String(16))
    attributes: Mapped[str] = mapped_column(sa.Text, default="{}")  # a JSON object
    source_line: Mapped[int]  # the line of the imported file it came from
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Attempt(Base):
    """One try at calling a contact. ``(contact_id, attempt_no)`` is unique: a retry is a
    new row with the next number, so no attempt can ever be made twice."""

    __tablename__ = "attempts"
    __table_args__ = (
        sa.UniqueConstraint("contact_id", "attempt_no"),
        sa.CheckConstraint("attempt_no >= 1", name="attempt_no"),
        sa.Index("ix_attempts_state_due_at", "state", "due_at"),
        sa.Index("ix_attempts_campaign_id_state_due_at", "campaign_id", "state", "due_at"),
        sa.Index("ix_attempts_campaign_id_started_at", "campaign_id", "started_at"),
        sa.Index("ix_attempts_phone_started_at", "phone", "started_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    campaign_id: Mapped[str] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[str] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(sa.String(32))
    attempt_no: Mapped[int]
    state: Mapped[AttemptState] = mapped_column(
        _enum(AttemptState, "state"), default=AttemptState.DUE
    )
    due_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(sa.String(100))  # the telephony node
    claimed_at: Mapped[datetime | None]
    call_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("calls.id", ondelete="SET NULL"), index=True
    )
    channel_id: Mapped[str | None] = mapped_column(sa.String(128), unique=True)
    outcome: Mapped[Outcome | None] = mapped_column(_Outcomes(ATTEMPT_OUTCOMES, "outcome"))
    outcome_detail: Mapped[str | None] = mapped_column(sa.Text)  # the rule, or "SIP 503"
    cause: Mapped[int | None]  # Q.850
    sip_code: Mapped[int | None]
    started_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    ring_seconds: Mapped[float | None]
    talk_seconds: Mapped[float | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --------------------------------------------------------------------------- transcripts
class TranscriptRow(Base):
    """What speech-to-text heard in one recording (one per recording: the job is idempotent).

    ``machine_text`` is the engine's text and is never edited; a reviewer's correction goes
    to ``corrected_text``. ``segments`` is a JSON list of ``{start, end, text, confidence}``.
    ``flagged`` is None or a ``ivr.speech.stt`` FLAG_* code (silent, too_short, no_speech).
    """

    __tablename__ = "transcripts"
    __table_args__ = (
        sa.Index("ix_transcripts_org_id_review_state_created_at", "org_id", "review_state",
                 "created_at", "id"),
        sa.Index("ix_transcripts_org_id_review_state_confidence", "org_id", "review_state",
                 "confidence", "id"),
        sa.Index("ix_transcripts_org_id_sample_key", "org_id", "sample_key", "id"),
        sa.Index("ix_transcripts_campaign_id_node_id", "campaign_id", "node_id"),
        # The queue's counts per state under any filter but a tag: read from this index
        # alone (100,000 entries in ~30 ms on SQLite) rather than from the rows.
        sa.Index("ix_transcripts_queue_counts",
                 "org_id", "review_state", "campaign_id", "node_id", "language", "confidence"),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(
        sa.ForeignKey("recordings.id", ondelete="CASCADE"), unique=True
    )
    call_id: Mapped[str] = mapped_column(sa.ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    engine: Mapped[str] = mapped_column(sa.String(64))
    model: Mapped[str] = mapped_column(sa.Text)
    language: Mapped[str] = mapped_column(sa.String(8))
    machine_text: Mapped[str] = mapped_column(sa.Text, default="")
    confidence: Mapped[float | None]
    segments: Mapped[str] = mapped_column(sa.Text, default="[]")  # a JSON list
    flagged: Mapped[str | None] = mapped_column(sa.String(16))
    corrected_text: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # The review queue (copied from the call and the recording when the row is stored, so
    # that the queue's filters and orders are served by indexes on this table alone).
    org_id: Mapped[str | None] = mapped_column(sa.String(36))
    campaign_id: Mapped[str | None] = mapped_column(sa.String(36))
    node_id: Mapped[str] = mapped_column(sa.String(100), default="")  # the question
    review_state: Mapped[ReviewState] = mapped_column(
        _enum(ReviewState, "review_state"), default=ReviewState.NEW
    )
    reviewed_by: Mapped[str | None] = mapped_column(sa.String(36))  # a user id
    reviewed_at: Mapped[datetime | None]
    # A fixed random number in [0, 1): ordering by it draws a random sample that pages
    # like any other order and stays the same between page loads.
    sample_key: Mapped[float] = mapped_column(default=lambda: random.random())


# The staff side's tables share this metadata (Alembic and the tests see one schema).
from ivr.store import api_models as _api_models  # noqa: E402,F401
from ivr.store import cluster_models as _cluster_models  # noqa: E402,F401
from ivr.store import counters as _counters  # noqa: E402,F401
from ivr.store import job_models as _job_models  # noqa: E402,F401
from ivr.store import org_models as _org_models  # noqa: E402,F401
from ivr.store import schedule_models as _schedule_models  # noqa: E402,F401
from ivr.store import webhook_models as _webhook_models  # noqa: E402,F401
from ivr.store import work_models as _work_models  # noqa: E402,F401
