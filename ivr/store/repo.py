"""The queries the call sessions need. Plain functions on a ``Session``.

The caller owns the transaction (``with session_scope(factory) as s: save_answer(s, ...)``);
these functions flush, so ids and database errors (a missing call, a duplicate channel)
appear at the call, not later at commit.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from ivr.outcome import CALL_ENDS, Outcome
from ivr.store import counters
from ivr.store.models import (
    Answer,
    AnswerKind,
    Attempt,
    Call,
    CallbackChannel,
    CallbackRequest,
    Campaign,
    Direction,
    OptOut,
    OptOutSource,
    Recording,
    new_id,
    utcnow,
)
from ivr.store.org_models import InboundLine
from ivr.webhooks import events, outbox

E164 = re.compile(r"\+[1-9][0-9]{1,14}")
# What Asterisk and trunks put in the caller number when there is none to show.
ANONYMOUS = {"", "anonymous", "unknown", "restricted", "private", "unavailable"}


class CallNotFound(LookupError):
    def __init__(self, call_id: str) -> None:
        super().__init__(f"no call {call_id!r}")
        self.call_id = call_id


def caller_number(number: str | None) -> str | None:
    """The number to store for the remote party; None for an anonymous caller."""
    if number is None or number.strip().lower() in ANONYMOUS:
        return None
    return number.strip()


def check_e164(number: str) -> str:
    if not E164.fullmatch(number):
        raise ValueError(f"{number!r} is not an E.164 number (like +358401234567)")
    return number


def _call(session: Session, call_id: str) -> Call:
    call = session.get(Call, call_id)
    if call is None:
        raise CallNotFound(call_id)
    return call


# --------------------------------------------------------------------------- calls
def create_call(
    session: Session,
    *,
    direction: Direction | str,
    flow_id: str,
    flow_version: str,
    channel_id: str,
    node_name: str,
    language: str,
    line_number: str | None = None,
    remote_number: str | None = None,
    anonymous: bool = False,
    attempt_id: str | None = None,
    call_id: str | None = None,
    started_at: datetime,
) -> Call:
    """A new active call. ``anonymous`` (an information line) stores no caller number.

    The call gets its organisation and campaign here, once: from its attempt's campaign
    (outbound) or from the inbound line its number belongs to.
    """
    org_id, campaign_id = _owner(session, attempt_id, line_number)
    call = Call(
        id=call_id or new_id(),
        direction=Direction(direction),
        flow_id=flow_id,
        flow_version=flow_version,
        channel_id=channel_id,
        node_name=node_name,
        language=language,
        line_number=line_number,
        remote_number=None if anonymous else caller_number(remote_number),
        status=Outcome.ACTIVE,
        attempt_id=attempt_id,
        org_id=org_id,
        campaign_id=campaign_id,
        started_at=started_at,
    )
    session.add(call)
    session.flush()
    return call


def _owner(
    session: Session, attempt_id: str | None, line_number: str | None
) -> tuple[str | None, str | None]:
    """(org_id, campaign_id) of a new call."""
    if attempt_id is not None:
        row = session.execute(
            sa.select(Campaign.org_id, Campaign.id)
            .join(Attempt, Attempt.campaign_id == Campaign.id)
            .where(Attempt.id == attempt_id)
        ).first()
        if row is not None:
            return row[0], row[1]
    if line_number:
        org_id = session.scalar(
            sa.select(InboundLine.org_id).where(InboundLine.number == line_number)
        )
        return org_id, None
    return None, None


def mark_answered(session: Session, call_id: str, at: datetime) -> None:
    """The call was answered (outbound) or entered the flow (inbound); the first time counts."""
    # Plain Core UPDATEs, no ORM object: these run several times per call under load.
    calls = cast(sa.Table, Call.__table__)
    done = session.execute(
        sa.update(calls)
        .where(calls.c.id == call_id, calls.c.answered_at.is_(None))
        .values(answered_at=at)
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        _call(session, call_id)  # answered before (kept), or no such call (raises)


def set_progress(
    session: Session, call_id: str, *, node_id: str | None = None, language: str | None = None
) -> None:
    """Where the call is in its flow (the last node reached) and its current language."""
    values: dict[str, str] = {}
    if node_id is not None:
        values["last_node_id"] = node_id
    if language is not None:
        values["language"] = language
    if not values:
        _call(session, call_id)
        return
    calls = cast(sa.Table, Call.__table__)  # Core: the ORM bulk UPDATE path costs more
    done = session.execute(sa.update(calls).where(calls.c.id == call_id).values(**values))
    if not done.rowcount:  # type: ignore[attr-defined]
        raise CallNotFound(call_id)


def end_call(
    session: Session,
    call_id: str,
    status: Outcome | str,
    cause: int | None = None,
    *,
    at: datetime,
    reason: str | None = None,
) -> bool:
    """Give an active call its final status; False if it had already ended (kept as it was)."""
    final = Outcome(status)
    if final not in CALL_ENDS:
        raise ValueError(f"{final.value!r} is not a final call status")
    ended = session.execute(
        sa.update(Call)
        .where(Call.id == call_id, Call.status == Outcome.ACTIVE)
        .values(status=final, hangup_cause=cause, ended_at=at, end_reason=reason)
        .returning(Call.id, Call.org_id, Call.campaign_id, Call.attempt_id)
        .execution_options(synchronize_session="fetch")
    ).all()
    if not ended:
        _call(session, call_id)  # raises if there is no such call at all
        return False
    _, org_id, campaign_id, attempt_id = ended[0]
    if org_id is not None:  # webhooks: in this transaction, one INSERT each, no query
        data = {"call_id": call_id, "campaign_id": campaign_id, "status": final.value}
        outbox.emit(session, org_id, events.CALL_FINISHED, data, at=at)
        if final is Outcome.COMPLETED:
            survey = {"call_id": call_id, "campaign_id": campaign_id, "attempt_id": attempt_id}
            outbox.emit(session, org_id, events.SURVEY_COMPLETED, survey, at=at)
    return True


def interrupt_active_calls(session: Session, node_name: str, at: datetime) -> int:
    """At a worker's start: its calls still marked active were cut off when it stopped."""
    interrupted = session.scalars(
        sa.update(Call)
        .where(Call.node_name == node_name, Call.status == Outcome.ACTIVE)
        .values(status=Outcome.INTERRUPTED, ended_at=at)
        .returning(Call.id)
        .execution_options(synchronize_session="fetch")
    ).all()
    return len(interrupted)


def call_of_attempt(session: Session, attempt_id: str) -> Call | None:
    """The call placed for a campaign attempt, if any."""
    return session.scalars(sa.select(Call).where(Call.attempt_id == attempt_id).limit(1)).first()


def discard_unplaced_call(session: Session, call_id: str) -> None:
    """Remove the row of an outbound call that never reached the network (its originate
    failed): it was never a call, so it is neither counted nor reported."""
    session.execute(sa.delete(Call).where(Call.id == call_id, Call.answered_at.is_(None)))


def get_call(session: Session, call_id: str) -> Call | None:
    """The call with its answers, recordings and callback requests loaded."""
    return session.scalars(
        sa.select(Call)
        .where(Call.id == call_id)
        .options(
            selectinload(Call.answers),
            selectinload(Call.recordings),
            selectinload(Call.callback_requests),
        )
    ).one_or_none()


def get_call_by_channel(session: Session, channel_id: str) -> Call | None:
    return session.scalars(sa.select(Call).where(Call.channel_id == channel_id)).one_or_none()


def active_calls(session: Session, node_name: str) -> list[Call]:
    return list(
        session.scalars(
            sa.select(Call)
            .where(Call.node_name == node_name, Call.status == Outcome.ACTIVE)
            .order_by(Call.started_at)
        )
    )


# --------------------------------------------------------------------------- answers
def save_answer(
    session: Session,
    call_id: str,
    *,
    node_id: str,
    kind: AnswerKind | str,
    value: str,
    language: str,
    digits: str = "",
    at: datetime | None = None,
) -> Answer:
    """Append an answer (never overwrites; see ``latest_answers``). Moves ``last_node_id``."""
    set_progress(session, call_id, node_id=node_id)  # raises CallNotFound first
    seq = session.scalar(
        sa.select(sa.func.coalesce(sa.func.max(Answer.seq), 0) + 1).where(Answer.call_id == call_id)
    )
    answer = Answer(
        call_id=call_id,
        seq=int(seq or 1),
        node_id=node_id,
        kind=AnswerKind(kind),
        value=value,
        digits=digits,
        language=language,
        created_at=at or utcnow(),
    )
    if answer.seq == 1:  # the call's first answer: its attempt's survey has started
        contact_ids = session.scalars(
            sa.select(Attempt.contact_id).where(Attempt.call_id == call_id)
        ).all()
        with counters.change(session, contact_ids):
            session.add(answer)
            session.flush()
        return answer
    session.add(answer)
    session.flush()
    return answer


def latest_answers(session: Session, call_id: str) -> dict[str, Answer]:
    """The answer that counts per node: the last one given."""
    newest = (
        sa.select(Answer.node_id, sa.func.max(Answer.seq).label("seq"))
        .where(Answer.call_id == call_id)
        .group_by(Answer.node_id)
        .subquery()
    )
    rows = session.scalars(
        sa.select(Answer)
        .join(newest, sa.and_(Answer.node_id == newest.c.node_id, Answer.seq == newest.c.seq))
        .where(Answer.call_id == call_id)
        .order_by(Answer.seq)
    )
    return {a.node_id: a for a in rows}


def save_recording(
    session: Session,
    call_id: str,
    *,
    node_id: str,
    path: str,
    duration_seconds: float,
    language: str,
    at: datetime | None = None,
) -> Recording:
    recording = Recording(
        call_id=call_id,
        node_id=node_id,
        path=path,
        duration_seconds=float(duration_seconds),
        language=language,
        created_at=at or utcnow(),
    )
    session.add(recording)
    session.flush()
    return recording


def save_callback(
    session: Session,
    call_id: str,
    *,
    channel: CallbackChannel | str,
    consent_version: str,
    language: str,
    phone_number: str | None = None,
    time_window: str | None = None,
    interpreter_language: str | None = None,
    at: datetime | None = None,
) -> CallbackRequest:
    owner = session.execute(
        sa.select(Call.org_id, Call.campaign_id).where(Call.id == call_id)
    ).first()
    request = CallbackRequest(
        call_id=call_id,
        org_id=owner[0] if owner else None,
        campaign_id=owner[1] if owner else None,
        channel=CallbackChannel(channel),
        consent_version=consent_version,
        language=language,
        phone_number=phone_number,
        time_window=time_window,
        interpreter_language=interpreter_language,
        created_at=at or utcnow(),
    )
    session.add(request)
    session.flush()
    if request.org_id is not None:
        data = {
            "callback_request_id": request.id,
            "call_id": call_id,
            "campaign_id": request.campaign_id,
            "status": request.status.value,
        }
        outbox.emit(session, request.org_id, events.CALLBACK_REQUESTED, data, at=request.created_at)
    return request


# --------------------------------------------------------------------------- opt-outs
def add_opt_out(
    session: Session,
    phone_number: str,
    *,
    source: OptOutSource | str,
    call_id: str | None = None,
    at: datetime | None = None,
) -> bool:
    """Put an E.164 number on the do-not-call list; False if it was there already.

    Safe against a concurrent insert of the same number (ON CONFLICT DO NOTHING).
    """
    values = {
        "phone_number": check_e164(phone_number),
        "source": OptOutSource(source),
        "call_id": call_id,
        "created_at": at or utcnow(),
    }
    dialect = session.get_bind().dialect.name
    # INSERT ... ON CONFLICT DO NOTHING: both backends have it, each with its own class.
    if dialect == "postgresql":
        stmt = (
            postgresql.insert(OptOut)
            .values(values)
            .on_conflict_do_nothing(index_elements=[OptOut.phone_number])
            .returning(OptOut.id)
        )
    elif dialect == "sqlite":
        stmt = (
            sqlite.insert(OptOut)
            .values(values)
            .on_conflict_do_nothing(index_elements=[OptOut.phone_number])
            .returning(OptOut.id)
        )
    else:  # pragma: no cover - make_engine accepts only these two
        raise ValueError(f"unsupported database {dialect!r}")
    return session.scalar(stmt) is not None


def opted_out_among(session: Session, phone_numbers: list[str]) -> set[str]:
    """The numbers of ``phone_numbers`` on the do-not-call list."""
    if not phone_numbers:
        return set()
    return set(
        session.scalars(
            sa.select(OptOut.phone_number).where(OptOut.phone_number.in_(phone_numbers))
        )
    )


def is_opted_out(session: Session, phone_number: str) -> bool:
    return (
        session.scalar(sa.select(OptOut.id).where(OptOut.phone_number == phone_number)) is not None
    )
