"""Inbound lines: the organisation's numbers and the flow that answers each. Reviewers and
up see the list; an admin adds, edits and deletes lines (``LineAdmin`` checks both, and
writes the audit log). The telephony worker picks a change up within a few seconds."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ivr.accounts.audit import NotFound
from ivr.store.org_models import Role
from ivr.telephony.line_admin import FlowChoice, LineChange, LineInvalid, LineView, Problem
from ivr.web.access import actor, org, requires, services

bp = Blueprint("lines", __name__, url_prefix="/o/<org_id>/lines")

DONE = ("added", "saved", "deleted")


def _labels() -> dict[str, str]:
    return {
        "number": _("Phone number"),
        "flow": _("Call flow"),
        "language": _("Language"),
    }


def _message(field: str, problem: Problem, number: str) -> str:
    """The translated text of a problem the service names by code."""
    messages = {
        ("number", "format"): _(
            "Enter the number with digits only (a + may come first), 2 to 20 characters."
        ),
        ("number", "in_use"): _("The number %(number)s is already in use.", number=number),
        ("flow", "missing"): _("Choose a call flow."),
        ("flow", "invalid"): _(
            "This call flow has errors. Correct it on the Call flows page first."
        ),
        ("language", "unknown"): _("Choose a language from the list."),
        ("language", "not_in_flow"): _("The call flow has no prompts in this language."),
    }
    return str(messages.get((field, problem.code), problem.message))


def _language_options() -> list[tuple[str, str]]:
    return [
        ("", _("The flow's default (or its language menu)")),
        ("fi", _("Finnish")),
        ("sv", _("Swedish")),
        ("en", _("English")),
    ]


def _form_change() -> LineChange:
    form = request.form
    return LineChange(
        number=form.get("number", ""),
        flow_id=form.get("flow", ""),
        language=form.get("language", ""),
        anonymous=form.get("anonymous") == "1",
        enabled=form.get("enabled") == "1",
    )


def _form_page(
    line: LineView | None, values: dict[str, Any], errors: dict[str, str], status: int = 200
) -> Any:
    flows: list[FlowChoice] = services().lines.flow_choices(actor())
    flow_options = [("", _("Choose a call flow"))] + [
        (f.id, f.name if f.valid else _("%(name)s (has errors)", name=f.name)) for f in flows
    ]
    return (
        render_template(
            "lines/form.html",
            line=line,
            values=values,
            errors=errors,
            labels=_labels(),
            flows=flows,
            flow_options=flow_options,
            language_options=_language_options(),
        ),
        status,
    )


def _get(line_id: str) -> LineView:
    try:
        return services().lines.get(actor(), line_id)
    except NotFound:
        abort(404)


def _save(line: LineView | None) -> Any:
    """The POST of the add and edit forms: saved and back to the list, or the form again
    with every problem beside its field and in the summary."""
    change = _form_change()
    try:
        if line is None:
            services().lines.create(actor(), change)
        else:
            services().lines.update(actor(), line.id, change)
    except LineInvalid as exc:
        number = change.number.strip()
        errors = {f: _message(f, p, number) for f, p in exc.errors.items()}
        return _form_page(line, _values_of(change), errors, 400)
    except NotFound:
        abort(404)
    done = "added" if line is None else "saved"
    return redirect(url_for("lines.index", org_id=org().org_id, done=done))


def _values_of(change: LineChange) -> dict[str, Any]:
    return {
        "number": change.number,
        "flow": change.flow_id,
        "language": change.language,
        "anonymous": change.anonymous,
        "enabled": change.enabled,
    }


@bp.route("/")
@requires(Role.REVIEWER)
def index(org_id: str) -> Any:
    lines = services().lines.list(actor())
    done = request.args.get("done")
    return render_template(
        "lines/index.html",
        lines=lines,
        done=done if done in DONE else None,
        can_edit=org().role.allows(Role.ADMIN),
        language_names=dict(_language_options()),
    )


@bp.route("/new", methods=["GET", "POST"])
@requires(Role.ADMIN)
def add(org_id: str) -> Any:
    if request.method == "POST":
        return _save(None)
    values = {"number": "", "flow": "", "language": "", "anonymous": False, "enabled": True}
    return _form_page(None, values, {})


@bp.route("/<line_id>/edit", methods=["GET", "POST"])
@requires(Role.ADMIN)
def edit(org_id: str, line_id: str) -> Any:
    line = _get(line_id)
    if request.method == "POST":
        return _save(line)
    values = {
        "number": line.number,
        "flow": line.flow_id,
        "language": line.language,
        "anonymous": line.anonymous,
        "enabled": line.enabled,
    }
    return _form_page(line, values, {})


@bp.route("/<line_id>/delete", methods=["GET", "POST"])
@requires(Role.ADMIN)
def delete(org_id: str, line_id: str) -> Any:
    line = _get(line_id)
    if request.method == "POST":
        try:
            services().lines.delete(actor(), line.id)
        except NotFound:
            abort(404)
        return redirect(url_for("lines.index", org_id=org().org_id, done="deleted"))
    return render_template("lines/delete.html", line=line)
