"""The organisation's users (admins only): the members and their roles, adding a user (the
generated password shown once), changing a role, removing a member; and the audit log.

Everything goes through the ``Accounts`` service with the acting admin (``access.actor()``):
the service checks the role, scopes by the organisation and writes the audit entry.
"""

from __future__ import annotations

import json
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from ivr.accounts.audit import NotFound
from ivr.accounts.service import AccountError, Accounts
from ivr.store.org_models import AuditEntry, Role
from ivr.web.access import actor, org, requires, services
from ivr.web.i18n import role_name

bp = Blueprint("users", __name__, url_prefix="/o/<org_id>")

AUDIT_PAGE = 50
ROLE_KEYS = ("role", "before", "after")


def _accounts() -> Accounts:
    return services().accounts


def _role_options() -> list[tuple[str, str]]:
    return [
        (role.value, role_name(role.value)) for role in (Role.REVIEWER, Role.MANAGER, Role.ADMIN)
    ]


def _field_labels() -> dict[str, str]:
    return {
        "email": _("E-mail address"),
        "name": _("Name"),
        "role": _("Role"),
        "user": _("User"),
    }


def _error_text(exc: AccountError) -> str:
    """The service's reason in the user's language (the service speaks English)."""
    message = exc.message
    if exc.field == "email" and "already a member" in message:
        text = _("This person is already a member of the organisation.")
    elif exc.field == "email":
        text = _("Enter an e-mail address in the form name@example.fi.")
    elif exc.field == "role" and "own role" in message:
        text = _("You cannot change your own role. Ask another administrator.")
    elif exc.field == "role":
        text = _("Choose a role.")
    elif exc.field == "user":
        text = _("You cannot remove yourself from the organisation. Ask another administrator.")
    elif exc.field == "name":
        text = _("The name is too long.")
    else:
        text = message
    return str(text)


def _member_or_404(user_id: str) -> tuple[Any, Role]:
    try:
        return _accounts().member(actor(), user_id)
    except NotFound:
        abort(404)


@bp.route("/users/")
@requires(Role.ADMIN)
def index(org_id: str) -> Any:
    members = _accounts().members(actor())
    return render_template(
        "users/index.html",
        members=members,
        me=actor().user_id,
        notices=get_flashed_messages(),
    )


@bp.route("/users/new", methods=["GET", "POST"])
@requires(Role.ADMIN)
def add(org_id: str) -> Any:
    errors: dict[str, str] = {}
    form = {
        "email": request.form.get("email", "").strip(),
        "name": request.form.get("name", "").strip(),
        "role": request.form.get("role", Role.REVIEWER.value),
    }
    if request.method == "POST":
        if not form["email"]:
            errors["email"] = _("Enter the person's e-mail address.")
        if len(form["name"]) > 100:
            errors["name"] = _("The name is too long.")
        if form["role"] not in {role.value for role in Role}:
            errors["role"] = _("Choose a role.")
        if not errors:
            try:
                user, password = _accounts().add_user(
                    actor(), form["email"], org().org_id, form["role"], name=form["name"]
                )
            except AccountError as exc:
                errors[exc.field if exc.field in form else "email"] = _error_text(exc)
            else:
                # Rendered in the answer to the POST (never redirected through the session
                # cookie, never logged): the password is shown on this page only.
                return render_template(
                    "users/added.html", user=user, role=form["role"], password=password
                )
    return render_template(
        "users/add.html",
        form=form,
        errors=errors,
        labels=_field_labels(),
        roles=_role_options(),
    )


@bp.route("/users/<user_id>", methods=["GET", "POST"])
@requires(Role.ADMIN)
def member(org_id: str, user_id: str) -> Any:
    user, role = _member_or_404(user_id)
    errors: dict[str, str] = {}
    chosen = role.value
    if request.method == "POST":
        chosen = request.form.get("role", "")
        try:
            _accounts().set_role(actor(), user_id, chosen)
        except NotFound:
            abort(404)
        except AccountError as exc:
            errors["role"] = _error_text(exc)
        else:
            flash(
                _("%(email)s is now: %(role)s.", email=user.email, role=role_name(chosen)),
            )
            return redirect(url_for("users.index", org_id=org_id))
    return render_template(
        "users/member.html",
        user=user,
        role=role,
        chosen=chosen,
        errors=errors,
        labels=_field_labels(),
        roles=_role_options(),
        is_me=user.id == actor().user_id,
    )


@bp.route("/users/<user_id>/remove", methods=["GET", "POST"])
@requires(Role.ADMIN)
def remove(org_id: str, user_id: str) -> Any:
    user, role = _member_or_404(user_id)
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            _accounts().remove_member(actor(), user_id)
        except NotFound:
            abort(404)
        except AccountError as exc:
            errors["user"] = _error_text(exc)
        else:
            flash(_("%(email)s was removed from the organisation.", email=user.email))
            return redirect(url_for("users.index", org_id=org_id))
    status = 400 if errors else 200
    page = render_template(
        "users/remove.html",
        user=user,
        role=role,
        errors=errors,
        labels=_field_labels(),
        is_me=user.id == actor().user_id,
    )
    return page, status


def _action_names() -> dict[str, str]:
    return {
        "org.create": _("Organisation created"),
        "user.login": _("Logged in"),
        "user.add": _("User added"),
        "user.role": _("Role changed"),
        "user.remove": _("User removed from the organisation"),
        "user.password": _("Password changed"),
        "campaign.create": _("Campaign created"),
        "campaign.update": _("Campaign changed"),
        "campaign.import": _("Contacts uploaded"),
        "campaign.start": _("Campaign started"),
        "campaign.pause": _("Campaign paused"),
        "campaign.resume": _("Campaign resumed"),
        "campaign.stop": _("Campaign stopped"),
        "flow.create": _("Call flow created"),
        "flow.save": _("Call flow saved"),
        "flow.update": _("Call flow saved"),
        "flow.upload": _("Call flow uploaded"),
        "flow.delete": _("Call flow deleted"),
        "prompt.upload": _("Recording uploaded"),
        "line.create": _("Inbound line added"),
        "line.update": _("Inbound line changed"),
        "line.delete": _("Inbound line removed"),
        "recording.open": _("Recording opened"),
    }


def _target_types() -> dict[str, str]:
    return {
        "user": _("user"),
        "organisation": _("organisation"),
        "campaign": _("campaign"),
        "flow": _("call flow"),
        "line": _("inbound line"),
        "prompt": _("recording"),
        "recording": _("recording"),
    }


def _detail_labels() -> dict[str, str]:
    return {
        "email": _("E-mail address"),
        "role": _("Role"),
        "before": _("Before"),
        "after": _("After"),
        "name": _("Name"),
        "language": _("Language"),
        "reason": _("Reason"),
    }


def _details(entry: AuditEntry) -> list[tuple[str, str]]:
    try:
        detail = json.loads(entry.detail or "{}")
    except ValueError:
        return [("", entry.detail)]
    if not isinstance(detail, dict):
        return [("", str(detail))]
    labels = _detail_labels()
    shown = []
    for key, value in sorted(detail.items()):
        text = str(value)
        if key in ROLE_KEYS and text in {role.value for role in Role}:
            text = role_name(text)
        shown.append((labels.get(str(key), str(key)), text))
    return shown


@bp.route("/audit")
@requires(Role.ADMIN)
def audit(org_id: str) -> Any:
    before_raw = request.args.get("before", "")
    before: int | None = None
    if before_raw:
        if not before_raw.isdigit():
            abort(404)
        before = int(before_raw)
    entries, names = _accounts().audit_log(actor(), before_id=before, limit=AUDIT_PAGE + 1)
    more = len(entries) > AUDIT_PAGE
    entries = entries[:AUDIT_PAGE]
    actions = _action_names()
    kinds = _target_types()
    rows = [
        {
            "id": e.id,
            "at": e.at,
            "who": e.actor,
            "address": e.address,
            "action": actions.get(e.action, e.action),
            "code": e.action,
            "target_kind": kinds.get(e.target_type, e.target_type),
            "target": names.get((e.target_type, e.target_id), e.target_id),
            "details": _details(e),
        }
        for e in entries
    ]
    older = url_for("users.audit", org_id=org_id, before=entries[-1].id) if more else None
    return render_template("users/audit.html", rows=rows, older=older, first_page=before is None)
