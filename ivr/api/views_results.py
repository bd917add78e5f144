"""Results: calls, answers, transcripts (machine and corrected text, review state) and
callback requests (read; status changes through the callback service's rules).

Reading calls, transcripts and callback requests (phone numbers, residents' words) is
written in the audit log: one entry per request, naming what was read.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response, request

from ivr.accounts.audit import NotFound
from ivr.api import pagination
from ivr.api.core import actor, audit_read, body_object, bp, operation, reply, services
from ivr.api.problems import FieldError, Problem, invalid
from ivr.api.serialise import (
    answer_json,
    call_json,
    callback_detail_json,
    callback_json,
    transcript_json,
)
from ivr.callbacks.rules import Action, ChangeRefused
from ivr.callbacks.service import Stale
from ivr.store.models import (
    Answer,
    Call,
    CallbackRequest,
    CallbackStatus,
    Campaign,
    ReviewState,
    TranscriptRow,
)


def _org() -> str:
    return str(actor().org_id)


def _choice(name: str, allowed: set[str]) -> str | None:
    value = request.args.get(name)
    if value is not None and value not in allowed:
        raise invalid([FieldError(name, "one of " + ", ".join(sorted(allowed)))])
    return value


def _campaign_filter() -> str | None:
    campaign_id = request.args.get("campaign_id")
    if campaign_id is None:
        return None
    with services().factory() as s:
        found = s.scalar(
            sa.select(Campaign.id).where(Campaign.id == campaign_id, Campaign.org_id == _org())
        )
    if found is None:
        raise NotFound("campaign")
    return campaign_id


# --------------------------------------------------------------------------- calls
@bp.get("/calls")
@operation
def calls() -> Response:
    args = pagination.list_args("calls", request.args, str)
    query = sa.select(Call).where(Call.org_id == _org())
    if (campaign_id := _campaign_filter()) is not None:
        query = query.where(Call.campaign_id == campaign_id)
    if args.updated_since is not None:
        since = args.updated_since
        query = query.where(sa.or_(Call.started_at >= since, Call.ended_at >= since))
    with services().factory() as s:
        found = pagination.page(s, "calls", query, Call.started_at, Call.id, args)
        items = [call_json(c) for c in found.rows]
    audit_read("api.calls.list", "campaign" if campaign_id else "", campaign_id or "",
               count=len(items))  # fmt: skip
    return reply(pagination.envelope(request.path, items, found))


def _call(s: Any, call_id: str) -> Call:
    query = sa.select(Call).where(Call.id == call_id, Call.org_id == _org())
    found: Call | None = s.scalars(query).first()
    if found is None:
        raise NotFound("call")
    return found


@bp.get("/calls/<call_id>")
@operation
def call(call_id: str) -> Response:
    with services().factory() as s:
        out = call_json(_call(s, call_id))
    audit_read("api.call.read", "call", call_id)
    return reply(out)


# --------------------------------------------------------------------------- answers
def _answers(query: sa.Select[Any]) -> Response:
    args = pagination.list_args("answers", request.args, int)
    if args.updated_since is not None:
        query = query.where(Answer.created_at >= args.updated_since)
    with services().factory() as s:
        found = pagination.page(s, "answers", query, Answer.created_at, Answer.id, args)
        wanted = {a.call_id for a in found.rows}
        query = sa.select(Call.id, Call.campaign_id).where(Call.id.in_(wanted))
        campaigns: dict[str, str | None] = {cid: camp for cid, camp in s.execute(query)}
        items = [answer_json(a, campaigns.get(a.call_id)) for a in found.rows]
    return reply(pagination.envelope(request.path, items, found))


@bp.get("/campaigns/<campaign_id>/answers")
@operation
def campaign_answers(campaign_id: str) -> Response:
    with services().factory() as s:
        if s.scalar(sa.select(Campaign.id).where(
            Campaign.id == campaign_id, Campaign.org_id == _org()
        )) is None:  # fmt: skip
            raise NotFound("campaign")
    # Row by row as the (created_at, id) index is walked (EXISTS on the call's key), not
    # every answer of the campaign gathered by call and sorted: 0.2 ms instead of 1.2 s for
    # a page of a campaign with a million answers (bench/results_pages.py).
    of_campaign = sa.exists().where(
        Call.id == Answer.call_id, Call.campaign_id == campaign_id, Call.org_id == _org()
    )
    return _answers(sa.select(Answer).where(of_campaign))


@bp.get("/calls/<call_id>/answers")
@operation
def call_answers(call_id: str) -> Response:
    with services().factory() as s:
        _call(s, call_id)
    return _answers(sa.select(Answer).where(Answer.call_id == call_id))


# --------------------------------------------------------------------------- transcripts
@bp.get("/transcripts")
@operation
def transcripts() -> Response:
    args = pagination.list_args("transcripts", request.args, int)
    query = sa.select(TranscriptRow).where(TranscriptRow.org_id == _org())
    if (campaign_id := _campaign_filter()) is not None:
        query = query.where(TranscriptRow.campaign_id == campaign_id)
    if state := _choice("review_state", {s.value for s in ReviewState}):
        query = query.where(TranscriptRow.review_state == ReviewState(state))
    if args.updated_since is not None:
        query = query.where(TranscriptRow.updated_at >= args.updated_since)
    with services().factory() as s:
        found = pagination.page(
            s, "transcripts", query, TranscriptRow.created_at, TranscriptRow.id, args
        )
        items = [transcript_json(t) for t in found.rows]
    audit_read("api.transcripts.list", "campaign" if campaign_id else "", campaign_id or "",
               ids=[t["id"] for t in items])  # fmt: skip
    return reply(pagination.envelope(request.path, items, found))


@bp.get("/transcripts/<int:transcript_id>")
@operation
def transcript(transcript_id: int) -> Response:
    with services().factory() as s:
        found = s.scalars(
            sa.select(TranscriptRow).where(
                TranscriptRow.id == transcript_id, TranscriptRow.org_id == _org()
            )
        ).first()
        if found is None:
            raise NotFound("transcript")
        out = transcript_json(found)
    audit_read("api.transcript.read", "transcript", str(transcript_id))
    return reply(out)


# --------------------------------------------------------------------------- callbacks
@bp.get("/callback_requests")
@operation
def callback_requests() -> Response:
    args = pagination.list_args("callback_requests", request.args, int)
    query = sa.select(CallbackRequest).where(CallbackRequest.org_id == _org())
    if (campaign_id := _campaign_filter()) is not None:
        query = query.where(CallbackRequest.campaign_id == campaign_id)
    if status := _choice("status", {s.value for s in CallbackStatus}):
        query = query.where(CallbackRequest.status == CallbackStatus(status))
    if args.updated_since is not None:
        changed = sa.func.coalesce(CallbackRequest.updated_at, CallbackRequest.created_at)
        query = query.where(changed >= args.updated_since)
    with services().factory() as s:
        found = pagination.page(
            s, "callback_requests", query, CallbackRequest.created_at, CallbackRequest.id, args
        )
        items = [callback_json(r) for r in found.rows]
    audit_read("api.callback_requests.list", "campaign" if campaign_id else "",
               campaign_id or "", ids=[r["id"] for r in items])  # fmt: skip
    return reply(pagination.envelope(request.path, items, found))


def _callback(request_id: int) -> dict[str, Any]:
    detail = services().callbacks.detail(actor(), request_id)  # NotFound for another org's
    with services().factory() as s:
        row = s.get(CallbackRequest, request_id)
        assert row is not None
        return callback_detail_json(row, detail)


@bp.get("/callback_requests/<int:request_id>")
@operation
def callback_request(request_id: int) -> Response:
    out = _callback(request_id)
    audit_read("api.callback_request.read", "callback_request", str(request_id))
    return reply(out)


TEXTS = ("note", "resolution", "assignee", "version")


@bp.post("/callback_requests/<int:request_id>")
@operation
def change_callback(request_id: int) -> Response:
    """Apply one action (the worklist's: contacted, resolve, unreachable, note, reopen,
    assign) with its texts; ``version`` (from a read) refuses a change to a request that
    changed since (409)."""
    body = body_object()
    errors = [FieldError(k, "not a field of this request") for k in body
              if k not in (*TEXTS, "action")]  # fmt: skip
    action = body.get("action")
    if action not in {a.value for a in Action}:
        errors.append(FieldError("action", "one of " + ", ".join(a.value for a in Action)))
    errors += [FieldError(k, "a string") for k in TEXTS if k in body
               and not isinstance(body[k], str)]  # fmt: skip
    if errors:
        raise invalid(errors)
    version = body.get("version") or services().callbacks.detail(actor(), request_id).version
    try:
        services().callbacks.change(
            actor(), request_id, str(action), version=version, note=body.get("note", ""),
            resolution=body.get("resolution", ""), assignee=body.get("assignee"),
        )  # fmt: skip
    except ChangeRefused as exc:
        if exc.errors.get("action") == "not_allowed":
            wrong = [FieldError("action", "not allowed in the request's status")]
            detail = f"the request's status does not allow {action}"
            raise Problem(409, "not_allowed", detail, wrong) from None
        errors = [FieldError(k, v.replace("_", " "), v) for k, v in exc.errors.items()]
        raise invalid(errors) from None
    except Stale:
        wrong = [FieldError("version", "not the request's version")]
        detail = "the request changed since it was read (version): read it again"
        raise Problem(409, "stale", detail, wrong) from None
    return reply(_callback(request_id))
