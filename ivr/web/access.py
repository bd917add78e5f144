"""Who may open which page: every view declares it, and the app refuses to start with an
undeclared one.

- ``@public``: anyone (the login page, static files, the public campaign page).
- ``@signed_in``: any logged-in user (their own account page, the organisation picker).
- ``@requires(Role.X)``: a member of the organisation in the URL (``/o/<org_id>/...``) with
  at least role X. Another organisation's id answers 404, as does a missing one: a user
  cannot learn what other organisations exist.

The organisation and role are read from the database on every request, so a removed
member or a disabled account is out at once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar, cast

from flask import Flask, abort, current_app, g, redirect, request, session, url_for
from flask_babel import gettext as _

from ivr.accounts.audit import Actor
from ivr.accounts.service import LoggedIn, OrgRole
from ivr.services import Services
from ivr.store.org_models import Role

F = TypeVar("F", bound=Callable[..., Any])
ACCESS_ATTR = "_ivr_access"  # "public", "signed_in" or a Role


def public(view: F) -> F:
    setattr(view, ACCESS_ATTR, "public")
    return view


def signed_in(view: F) -> F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if getattr(g, "user", None) is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    setattr(wrapper, ACCESS_ATTR, "signed_in")
    return cast(F, wrapper)


def requires(role: Role) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user: LoggedIn | None = getattr(g, "user", None)
            if user is None:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            org_id = kwargs.get("org_id")
            membership = next((o for o in user.orgs if o.org_id == org_id), None)
            if membership is None:
                abort(404)
            g.org = membership
            if not membership.role.allows(role):
                abort(403)
            g.actor = Actor(
                actor=user.email,
                user_id=user.user_id,
                org_id=membership.org_id,
                role=membership.role,
                address=request.remote_addr or "",
            )
            return view(*args, **kwargs)

        setattr(wrapper, ACCESS_ATTR, role)
        return cast(F, wrapper)

    return decorate


def services() -> Services:
    """The shared services of this app (``create_app`` puts them in ``app.extensions``)."""
    found: Services = current_app.extensions["ivr"]
    return found


def actor() -> Actor:
    """The acting user in the organisation of this request (set by ``@requires``)."""
    found: Actor | None = getattr(g, "actor", None)
    if found is None:
        raise RuntimeError("actor() outside a @requires view")
    return found


def org() -> OrgRole:
    found: OrgRole | None = getattr(g, "org", None)
    if found is None:
        raise RuntimeError("org() outside a @requires view")
    return found


def load_user(app: Flask) -> None:
    """Before each request: the logged-in user (idle timeout applied), or None."""

    @app.before_request
    def _load() -> Any:
        g.user = None
        user_id = session.get("user_id")
        if not user_id:
            return None
        shared = services()
        now = shared.clock()
        idle = timedelta(minutes=shared.settings.web.idle_minutes)
        seen = session.get("seen")
        if not isinstance(seen, int | float) or now.timestamp() - seen > idle.total_seconds():
            session.clear()
            session["flash_timeout"] = True
            if request.endpoint not in ("auth.login", "static"):
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            return None
        user = shared.accounts.logged_in(user_id)
        if user is not None and session.get("sv") != user.session_version:
            user = None  # logged out (or password changed) since this cookie was issued
        if user is None:
            session.clear()
            return redirect(url_for("auth.login"))
        g.user = user
        # Live-progress polling is not the user being active: it must not keep a session
        # open on a screen left alone.
        if request.headers.get("X-Ivr-Poll") != "1":
            session["seen"] = now.timestamp()
        return None


def check_declared(app: Flask) -> None:
    """Refuse to start if a view has no access declaration."""
    missing = [
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static" and not hasattr(app.view_functions[rule.endpoint], ACCESS_ATTR)
    ]
    if missing:
        raise RuntimeError(f"views without an access declaration: {', '.join(missing)}")


def access_of(app: Flask, endpoint: str) -> str | Role:
    if endpoint == "static":
        return "public"
    return cast(str | Role, getattr(app.view_functions[endpoint], ACCESS_ATTR))


def forbidden_message() -> str:
    return str(_("You do not have permission to do that."))
