"""The callback worklist (the service advisor's page): residents' permission-to-contact
requests, each worked until it ends in a recorded answer. Reviewers and up.

Thin views over ``CallbackService``: the list with its filters, keyset pages and the
pilot's counts; one request with its history and the actions the rules allow (one POST
address, the action named by the button pressed). Every form carries the request's
version: a form read before someone else's change is refused with a message, never
applied over it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ivr.accounts.audit import NotFound
from ivr.callbacks.rules import Action, ChangeRefused
from ivr.callbacks.service import (
    ASSIGNEE_FILTERS,
    INBOUND,
    STATUS_FILTERS,
    Detail,
    Filters,
    Stale,
)
from ivr.store.models import CallbackChannel, CallbackStatus
from ivr.store.org_models import Role
from ivr.web.access import actor, org, requires, services

bp = Blueprint("callbacks", __name__, url_prefix="/o/<org_id>/callbacks")

DONE = {a.value for a in Action}


def status_labels() -> dict[str, str]:
    return {
        CallbackStatus.NEW: _("New"),
        CallbackStatus.ASSIGNED: _("Assigned"),
        CallbackStatus.CONTACTED: _("Contacted"),
        CallbackStatus.RESOLVED: _("Resolved"),
        CallbackStatus.UNREACHABLE: _("Could not reach"),
    }


def channel_labels() -> dict[str, str]:
    return {
        CallbackChannel.PHONE: _("Phone"),
        CallbackChannel.EMAIL: _("Email"),
        CallbackChannel.HOME_VISIT: _("Home visit"),
    }


def window_labels() -> dict[str, str]:
    return {
        "morning": _("Morning"),
        "afternoon": _("Afternoon"),
        "evening": _("Early evening"),
        "weekday_daytime": _("Weekdays, daytime"),
    }


def language_labels() -> dict[str, str]:
    return {
        "fi": _("Finnish"),
        "sv": _("Swedish"),
        "en": _("English"),
        "ar": _("Arabic"),
        "ru": _("Russian"),
        "so": _("Somali"),
        "other": _("Another language"),
        "none": _("No interpreter"),
    }


def _labels() -> dict[str, str]:
    return {
        "assignee": _("Assign to"),
        "note": _("Note"),
        "reopen-note": _("Why the request is reopened"),
        "resolution": _("The answer the resident got"),
        "from": _("From"),
        "to": _("To"),
        "action": _("Action"),
    }


def _problem(field: str, code: str) -> str:
    messages = {
        ("assignee", "required"): _("Choose who the request is assigned to."),
        ("assignee", "unknown"): _("Choose a member of the organisation."),
        ("note", "required"): _("Write a note."),
        ("note", "too_long"): _("Keep the note under 4000 characters."),
        ("reopen-note", "required"): _("Write why the request is reopened."),
        ("reopen-note", "too_long"): _("Keep the note under 4000 characters."),
        ("resolution", "required"): _(
            "Write the answer the resident got, or what was tried: a request ends only "
            "with a recorded answer."
        ),
        ("resolution", "too_long"): _("Keep the answer under 4000 characters."),
        ("action", "not_allowed"): _("That cannot be done to a request in this state."),
    }
    return str(messages.get((field, code), code))


# --------------------------------------------------------------------------- the list
def _filters() -> Filters:
    args = request.args
    status = args.get("status", "open")
    channel = args.get("channel", "")
    assignee = args.get("assignee", "")
    return Filters(
        status=status if status in STATUS_FILTERS else "open",
        channel=channel if channel in {c.value for c in CallbackChannel} else "",
        assignee=assignee if assignee in ASSIGNEE_FILTERS else "",
        campaign=args.get("campaign", "")[:36],
        overdue=args.get("overdue") == "1",
    )


def _period(
    zone: ZoneInfo,
) -> tuple[dict[str, str], datetime | None, datetime | None, dict[str, str]]:
    """The counts' period from the ``from`` and ``to`` dates (whole days in the
    organisation's time zone): values, since, until, errors."""
    values = {key: request.args.get(key, "").strip() for key in ("from", "to")}
    errors: dict[str, str] = {}
    days: dict[str, date | None] = {}
    for key, text in values.items():
        try:
            days[key] = date.fromisoformat(text) if text else None
        except ValueError:
            days[key] = None
            errors[key] = _("Enter a date as YYYY-MM-DD, for example 2026-11-30.")
    start, end = days.get("from"), days.get("to")
    if not errors and start and end and end < start:
        errors["to"] = _("The end date must be on or after the start date.")
    if errors:
        return values, None, None, errors
    since = datetime.combine(start, time(0), zone) if start else None
    until = datetime.combine(end + timedelta(days=1), time(0), zone) if end else None
    return values, since, until, {}


def _query(filters: Filters, **extra: str) -> dict[str, str]:
    """The list's query string for these filters (pagination and links keep them)."""
    args = {
        "status": filters.status,
        "channel": filters.channel,
        "assignee": filters.assignee,
        "campaign": filters.campaign,
        "overdue": "1" if filters.overdue else "",
        **{k: request.args.get(k, "") for k in ("from", "to")},
        **extra,
    }
    return {k: v for k, v in args.items() if v}


@bp.route("/")
@requires(Role.REVIEWER)
def index(org_id: str) -> Any:
    filters = _filters()
    shared = services().callbacks
    after = request.args.get("after", "")[:64]
    page = shared.worklist(actor(), filters, after=after)
    period, since, until, errors = _period(ZoneInfo(org().timezone))
    counts = shared.counts(actor(), since, until) if not errors else []
    campaigns = shared.campaigns(actor())
    return render_template(
        "callbacks/index.html",
        page=page,
        filters=filters,
        after=after,
        counts=counts,
        period=period,
        errors=errors,
        labels=_labels(),
        campaigns=campaigns,
        campaign_names=dict(campaigns),
        inbound=INBOUND,
        next_query=_query(filters, after=page.next_after) if page.next_after else None,
        first_query=_query(filters) if after else None,
        statuses=status_labels(),
        channels=channel_labels(),
        windows=window_labels(),
        languages=language_labels(),
    )


# --------------------------------------------------------------------------- one request
def _get(request_id: int) -> Detail:
    try:
        return services().callbacks.detail(actor(), request_id)
    except NotFound:
        abort(404)


def _detail_page(
    detail: Detail,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    stale: bool = False,
    status: int = 200,
) -> Any:
    return (
        render_template(
            "callbacks/show.html",
            detail=detail,
            item=detail.item,
            errors=errors or {},
            values=values or {},
            stale=stale,
            done=request.args.get("done") if request.args.get("done") in DONE else None,
            labels=_labels(),
            members=services().callbacks.members(actor()),
            actions={a.value for a in detail.actions},
            statuses=status_labels(),
            channels=channel_labels(),
            windows=window_labels(),
            languages=language_labels(),
        ),
        status,
    )


@bp.route("/<int:request_id>", methods=["GET", "POST"])
@requires(Role.REVIEWER)
def show(org_id: str, request_id: int) -> Any:
    if request.method == "GET":
        return _detail_page(_get(request_id))
    form = request.form
    action = form.get("action", "")
    reopening = action == Action.REOPEN
    note = form.get("reopen-note" if reopening else "note", "")
    values = {
        "assignee": form.get("assignee", ""),
        "reopen-note" if reopening else "note": note,
        "resolution": form.get("resolution", ""),
    }
    try:
        services().callbacks.change(
            actor(),
            request_id,
            action,
            version=form.get("version", ""),
            note=note,
            resolution=form.get("resolution", ""),
            assignee=form.get("assignee") or None,
        )
    except NotFound:
        abort(404)
    except Stale:
        return _detail_page(_get(request_id), values=values, stale=True, status=409)
    except ChangeRefused as refused:
        errors = {}
        for field, code in refused.errors.items():
            shown = "reopen-note" if field == "note" and reopening else field
            errors[shown] = _problem(shown, code)
        return _detail_page(_get(request_id), errors=errors, values=values, status=400)
    return redirect(
        url_for("callbacks.show", org_id=org().org_id, request_id=request_id, done=action)
    )
