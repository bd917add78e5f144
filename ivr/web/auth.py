"""Logging in and out, the language switch, the user's own account, the front page."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _

from ivr.accounts.service import AccountError, LoginRefused
from ivr.web.access import public, services, signed_in
from ivr.web.i18n import LANGUAGES

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host, not ``//``): no open redirect."""
    if not target:
        return url_for("auth.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("auth.home")
    # Browsers read "/\evil.example" as "//evil.example"; a control character (CR, LF, tab)
    # would be dropped by the browser or break the Location header.
    if "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return url_for("auth.home")
    return target


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Any:
    error = None
    status = 200
    retry_after = 0
    timed_out = session.pop("flash_timeout", False)
    if request.method == "POST":
        email = request.form.get("email", "")
        password = request.form.get("password", "")
        try:
            who = services().accounts.login(email, password, request.remote_addr or "")
        except LoginRefused as refused:
            if refused.limited:
                minutes = max(1, (refused.retry_after + 59) // 60)
                error = _(
                    "Too many failed logins. Try again in %(minutes)d minutes.", minutes=minutes
                )
                status = 429
                retry_after = refused.retry_after
            else:
                error = _("Wrong e-mail address or password.")
                status = 401
        else:
            language = session.get("language")
            session.clear()  # a new session: no fixation
            session.permanent = True
            session["user_id"] = who.user_id
            session["sv"] = who.session_version
            session["seen"] = services().clock().timestamp()
            if language:
                session["language"] = language
            return redirect(_safe_next(request.args.get("next")))
    response = render_template(
        "login.html", error=error, timed_out=timed_out, email=request.form.get("email", "")
    )
    headers = {}
    if status == 429:
        headers["Retry-After"] = str(retry_after)
    return response, status, headers


@bp.route("/logout", methods=["POST"])
@public
def logout() -> Any:
    language = session.get("language")
    if g.user is not None:
        # The cookie is signed, not stored: make this one (and any copy of it) worthless.
        services().accounts.end_sessions(g.user.user_id)
    session.clear()
    if language:
        session["language"] = language
    return redirect(url_for("auth.login"))


@bp.route("/language", methods=["POST"])
@public
def language() -> Any:
    chosen = request.form.get("language", "")
    if chosen not in LANGUAGES:
        abort(400)
    session["language"] = chosen
    if g.user is not None:
        services().accounts.set_language(g.user.user_id, chosen)
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/")
@signed_in
def home() -> Any:
    orgs = g.user.orgs
    if len(orgs) == 1:
        return redirect(url_for("campaigns.index", org_id=orgs[0].org_id))
    return render_template("home.html", orgs=orgs)


@bp.route("/account", methods=["GET", "POST"])
@signed_in
def account() -> Any:
    errors: dict[str, str] = {}
    saved = False
    if request.method == "POST":
        try:
            services().accounts.change_password(
                g.user.user_id,
                request.form.get("current_password", ""),
                request.form.get("new_password", ""),
            )
            # This session stays; the user's other sessions end.
            fresh = services().accounts.logged_in(g.user.user_id)
            session["sv"] = fresh.session_version if fresh else -1
            saved = True
        except AccountError as exc:
            messages = {
                "current_password": _("The current password is wrong."),
                "new_password": _(
                    "Choose a password of at least 12 characters with several different ones."
                ),
            }
            errors[exc.field] = messages.get(exc.field, exc.message)
    return render_template("account.html", errors=errors, saved=saved)
