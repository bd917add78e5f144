"""The organisation's API tokens (admins): make one (its secret shown once), list them with
scope and last use, revoke one. The service audits each change."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ivr.api.tokens import ApiTokens, TokenInvalid
from ivr.store.org_models import Role
from ivr.web.access import actor, requires, services

bp = Blueprint("tokens", __name__, url_prefix="/o/<org_id>/tokens")


def tokens() -> ApiTokens:
    shared = services()
    return ApiTokens(shared.factory, shared.clock)


def labels() -> dict[str, str]:
    return {"name": _("Name"), "scope": _("Access")}


def scopes() -> list[tuple[str, str]]:
    return [("read", _("Read only")), ("write", _("Read and change"))]


def message(error: TokenInvalid) -> str:
    if error.field == "name":
        return str(_("Enter a name of at most 100 characters (what uses the token)."))
    return str(_("Choose read only, or read and change."))


@bp.route("/", methods=["GET", "POST"])
@requires(Role.ADMIN)
def index(org_id: str) -> Any:
    errors: dict[str, str] = {}
    form = {"name": "", "scope": "read"}
    status = 200
    if request.method == "POST":
        form = {"name": request.form.get("name", ""), "scope": request.form.get("scope", "")}
        try:
            made = tokens().create(actor(), form["name"], form["scope"])
        except TokenInvalid as exc:
            errors[exc.field] = message(exc)
            status = 400
        else:
            return render_template("tokens/created.html", made=made)
    return render_template(
        "tokens/index.html",
        tokens=tokens().list(actor()),
        form=form,
        errors=errors,
        labels=labels(),
        scopes=scopes(),
    ), status


@bp.route("/revoke", methods=["GET", "POST"])
@requires(Role.ADMIN)
def revoke(org_id: str) -> Any:
    """GET ``?token=ID``: the confirmation; POST ``token``: revoke it."""
    token_id = request.values.get("token", "")
    found = next((t for t in tokens().list(actor()) if t.id == token_id and t.active), None)
    if found is None:
        return redirect(url_for("tokens.index", org_id=org_id))
    if request.method == "POST":
        tokens().revoke(actor(), token_id)
        flash(_("The token %(name)s was revoked: it no longer works.", name=found.name))
        return redirect(url_for("tokens.index", org_id=org_id))
    return render_template("tokens/revoke.html", token=found)
