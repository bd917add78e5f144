"""The staff web UI: a Flask application from ``create_app(settings)``, served by gunicorn
(``ivr web``). Server-rendered pages; the little JavaScript there is comes pinned from a
package registry and is served from ``static/`` (never a CDN)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask, Response, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect

from ivr.accounts.audit import Forbidden, NotFound
from ivr.clock import Clock, system_clock
from ivr.config import Settings
from ivr.services import Services
from ivr.web import access, i18n

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock = system_clock,
    services: Services | None = None,
    testing: bool = False,
) -> Flask:
    """The staff UI for an initialised data directory (``ivr init``)."""
    if services is None:
        from ivr.bootstrap import load_app

        services = load_app(settings, clock).services()
    app = Flask(__name__)
    web = services.settings.web
    app.config.update(
        SECRET_KEY=services.credentials.web_secret_key,
        SESSION_COOKIE_NAME="ivr_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=web.secure_cookies,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=web.idle_minutes),
        MAX_CONTENT_LENGTH=50 * 1024 * 1024,  # contact lists and prompt recordings
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session (idle timeout)
        TESTING=testing,
    )
    app.extensions["ivr"] = services
    CSRFProtect(app)
    i18n.init_i18n(app)
    access.load_user(app)

    from ivr.web import auth

    app.register_blueprint(auth.bp)
    _register_feature_blueprints(app)

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if request.endpoint != "static":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError) -> Any:
        message = _("The form had expired or did not come from this site. Please try again.")
        return render_template("error.html", code=400, message=message), 400

    for code in ERROR_TEXTS:
        app.register_error_handler(code, lambda error, code=code: _error_page(code))
    # The services' refusals, from any view: another organisation's object (or none) is
    # the 404 page, a role too low for the action the 403 page.
    app.register_error_handler(NotFound, lambda error: _error_page(404))
    app.register_error_handler(Forbidden, lambda error: _error_page(403))

    from ivr.api import install as install_api  # the REST API under /api/v1 (issue 12)

    install_api(app)
    access.check_declared(app)
    return app


ERROR_TEXTS: dict[int, Callable[[], str]] = {
    403: lambda: _("You do not have permission to open this page."),
    404: lambda: _("Page not found."),
    413: lambda: _("The file is too large."),
    429: lambda: _("Too many attempts. Please wait a moment and try again."),
}


def _error_page(code: int) -> Any:
    return render_template("error.html", code=code, message=ERROR_TEXTS[code]()), code


def _register_feature_blueprints(app: Flask) -> None:
    """The pages of each feature: campaigns, flows, inbound lines, users and the audit log."""
    from ivr.web import campaigns, flows, lines, users

    for module in (campaigns, flows, lines, users):
        app.register_blueprint(module.bp)
    from ivr.web import reports as report_pages  # the ready report (issue 11)

    app.register_blueprint(report_pages.bp)
    from ivr.web import review, tags  # the review queue and the organisation's tags

    app.register_blueprint(review.bp)
    app.register_blueprint(tags.bp)
    from ivr.web import public  # the public campaign page (no login) and its editor

    app.register_blueprint(public.bp)
    from ivr.web import callbacks as callback_pages

    app.register_blueprint(callback_pages.bp)
    from ivr.web import exports as export_pages  # the downloads (CSV, XLSX, SPSS, dataset)

    app.register_blueprint(export_pages.bp)
    from ivr.web import schedules as schedule_pages  # e-mailed report schedules (issue 12)

    app.register_blueprint(schedule_pages.bp)
    from ivr.web import tokens as token_pages  # the organisation's API tokens (issue 12)

    app.register_blueprint(token_pages.bp)
    from ivr.web import webhooks as webhook_pages  # webhook endpoints and deliveries (issue 12)

    app.register_blueprint(webhook_pages.bp)
    from ivr.web import cluster as cluster_page  # the telephony nodes (issue 13)

    app.register_blueprint(cluster_page.bp)
