"""The organisation's webhook endpoints (admins): the list with each endpoint's state and
latest delivery; add and edit one (URL, events); its secret, shown once after it is made
and after a rotation; enable and disable; its deliveries on keyset pages with their tries;
one delivery with its body and every try, and re-sending it. Thin views over ``Webhooks``
(ivr/webhooks/service.py), which checks the organisation and audits each change."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ivr.store.org_models import Role
from ivr.web.access import actor, requires, services
from ivr.webhooks import guard, history
from ivr.webhooks.events import EVENT_TYPES
from ivr.webhooks.service import EndpointView, WebhookInvalid, Webhooks

bp = Blueprint("webhooks", __name__, url_prefix="/o/<org_id>/webhooks")

ADMIN_DISABLED = "disabled by an admin"  # the service's reason (ivr/webhooks/service.py)


def hooks() -> Webhooks:
    return services().webhooks


def labels() -> dict[str, str]:
    return {
        "url": _("Receiver URL"),
        "description": _("Description"),
        "events": _("Events"),
    }


def event_labels() -> dict[str, str]:
    return {
        "call.finished": _("A call ended"),
        "survey.completed": _("A resident answered every question of a survey"),
        "transcript.ready": _("An open answer was transcribed"),
        "transcript.corrected": _("A reviewer corrected or reviewed an open answer"),
        "callback.requested": _("A resident asked to be contacted"),
        "campaign.finished": _("A campaign ended"),
    }


def state_labels() -> dict[str, str]:
    return {
        "pending": _("Waiting to be sent"),
        "delivered": _("Delivered"),
        "dead": _("Failed (no more retries)"),
    }


def disabled_text(endpoint: EndpointView) -> str:
    """Why the endpoint is off, in the reader's language where we wrote the reason."""
    if endpoint.disabled_reason in (None, ADMIN_DISABLED):
        return str(_("Disabled by an admin."))
    return str(_("Disabled automatically: %(reason)s", reason=endpoint.disabled_reason))


def _url_problem(url: str, problem: str) -> str:
    """The service's reason, told to the admin in their language."""
    try:
        target = guard.parse_url(url.strip())
    except guard.AddressRefused:
        return str(_("Enter the receiver's full address, starting with https://."))
    if "allow_private" in problem:
        return str(
            _(
                "%(host)s is a loopback, link-local or private address. Webhooks are sent "
                "only to addresses on the public internet.",
                host=target.host,
            )
        )
    return str(_("The host %(host)s cannot be found. Check the address.", host=target.host))


def _problems(error: WebhookInvalid, url: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if "url" in error.errors:
        errors["url"] = _url_problem(url, error.errors["url"])
    if "events" in error.errors:
        errors["events"] = str(_("Choose at least one event."))
    if "description" in error.errors:
        errors["description"] = str(_("Keep the description under 200 characters."))
    return errors


@dataclass(frozen=True)
class EndpointForm:
    url: str = ""
    description: str = ""
    events: list[str] = field(default_factory=list)


def _form() -> EndpointForm:
    return EndpointForm(
        request.form.get("url", "").strip(),
        request.form.get("description", "").strip(),
        [e for e in EVENT_TYPES if request.form.get(f"event-{e}")],
    )


def _render_form(endpoint: EndpointView | None, form: EndpointForm, errors: dict[str, str]) -> Any:
    return render_template(
        "webhooks/form.html",
        endpoint=endpoint,
        form=form,
        errors=errors,
        labels=labels(),
        events=event_labels(),
    ), (400 if errors else 200)


# --------------------------------------------------------------------------- endpoints
@bp.route("/")
@requires(Role.ADMIN)
def index(org_id: str) -> Any:
    who = actor()
    endpoints = hooks().endpoints(who)
    return render_template(
        "webhooks/index.html",
        endpoints=endpoints,
        latest=history.latest_deliveries(hooks(), who),
        events=event_labels(),
        states=state_labels(),
        disabled_text=disabled_text,
    )


@bp.route("/new", methods=["GET", "POST"])
@requires(Role.ADMIN)
def new(org_id: str) -> Any:
    if request.method == "GET":
        return _render_form(None, EndpointForm(), {})
    form = _form()
    try:
        made, secret = hooks().create(actor(), form.url, form.events, form.description)
    except WebhookInvalid as exc:
        return _render_form(None, form, _problems(exc, form.url))
    return render_template("webhooks/secret.html", endpoint=made, secret=secret, rotated=False)


@bp.route("/<endpoint_id>/edit", methods=["GET", "POST"])
@requires(Role.ADMIN)
def edit(org_id: str, endpoint_id: str) -> Any:
    current = hooks().get(actor(), endpoint_id)
    if request.method == "GET":
        form = EndpointForm(current.url, current.description, current.events)
        return _render_form(current, form, {})
    form = _form()
    try:
        hooks().update(
            actor(), endpoint_id, url=form.url, events=form.events,
            description=form.description, enabled=current.enabled,
        )  # fmt: skip
    except WebhookInvalid as exc:
        return _render_form(current, form, _problems(exc, form.url))
    flash(_("The endpoint %(url)s was saved.", url=form.url))
    return redirect(url_for("webhooks.index", org_id=org_id))


@bp.route("/<endpoint_id>/state", methods=["POST"])
@requires(Role.ADMIN)
def state(org_id: str, endpoint_id: str) -> Any:
    """Enable (``action=enable``) or disable (``action=disable``) the endpoint."""
    action = request.form.get("action", "")
    if action not in ("enable", "disable"):
        abort(400)
    done = hooks().set_enabled(actor(), endpoint_id, action == "enable")
    if done.enabled:
        flash(_("%(url)s is enabled: waiting deliveries are sent now.", url=done.url))
    else:
        flash(_("%(url)s is disabled: events are kept until it is enabled.", url=done.url))
    return redirect(url_for("webhooks.index", org_id=org_id))


@bp.route("/<endpoint_id>/rotate", methods=["GET", "POST"])
@requires(Role.ADMIN)
def rotate(org_id: str, endpoint_id: str) -> Any:
    """GET: what a rotation does; POST: a new secret, shown once."""
    endpoint = hooks().get(actor(), endpoint_id)
    if request.method == "GET":
        return render_template(
            "webhooks/rotate.html",
            endpoint=endpoint,
            hours=hooks().settings.rotation_overlap_hours,
        )
    secret = hooks().rotate(actor(), endpoint_id)
    endpoint = hooks().get(actor(), endpoint_id)
    return render_template(
        "webhooks/secret.html",
        endpoint=endpoint,
        secret=secret,
        rotated=True,
        hours=hooks().settings.rotation_overlap_hours,
    )


# --------------------------------------------------------------------------- deliveries
@bp.route("/<endpoint_id>/deliveries")
@requires(Role.ADMIN)
def deliveries(org_id: str, endpoint_id: str) -> Any:
    before_text = request.args.get("before", "")
    before = int(before_text) if before_text.isdigit() and len(before_text) < 19 else None
    endpoint = hooks().get(actor(), endpoint_id)
    page = history.delivery_page(hooks(), actor(), endpoint_id, before)
    return render_template(
        "webhooks/deliveries.html",
        endpoint=endpoint,
        page=page,
        first=before is not None,
        states=state_labels(),
    )


@bp.route("/<endpoint_id>/deliveries/<int:delivery_id>")
@requires(Role.ADMIN)
def delivery(org_id: str, endpoint_id: str, delivery_id: int) -> Any:
    endpoint = hooks().get(actor(), endpoint_id)
    found, payload, attempts = hooks().delivery(actor(), delivery_id)
    if found.endpoint_id != endpoint.id:
        abort(404)
    return render_template(
        "webhooks/delivery.html",
        endpoint=endpoint,
        delivery=found,
        payload=payload,
        attempts=attempts,
        states=state_labels(),
    )


@bp.route("/<endpoint_id>/deliveries/<int:delivery_id>/resend", methods=["POST"])
@requires(Role.ADMIN)
def resend(org_id: str, endpoint_id: str, delivery_id: int) -> Any:
    endpoint = hooks().get(actor(), endpoint_id)
    found, _payload, _attempts = hooks().delivery(actor(), delivery_id)
    if found.endpoint_id != endpoint.id:
        abort(404)
    hooks().resend(actor(), delivery_id)
    if endpoint.enabled:
        flash(_("The delivery will be sent again in a moment."))
    else:
        flash(_("The delivery will be sent again when the endpoint is enabled."))
    return redirect(
        url_for(
            "webhooks.delivery", org_id=org_id, endpoint_id=endpoint_id, delivery_id=delivery_id
        )
    )
