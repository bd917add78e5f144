"""The REST API under ``/api/v1`` (issue 12): per-organisation tokens, JSON resources over
the same services as the staff UI, an OpenAPI 3.1 document. ``install(app)`` adds it to
the staff web app."""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from ivr.api.problems import Problem
from ivr.api.ratelimit import RateLimiter
from ivr.api.tokens import ApiTokens
from ivr.services import Services

PREFIX = "/api/v1/"


def install(app: Flask) -> None:
    """Register the API's blueprint (no CSRF: a token, not a cookie, authenticates), and
    answer the router's own errors under ``/api/`` as problem details."""
    from ivr.api import core, openapi, views_campaigns, views_results  # noqa: F401 (routes)

    services: Services = app.extensions["ivr"]
    app.extensions["ivr_api"] = core.ApiState(
        ApiTokens(services.factory, services.clock), RateLimiter()
    )
    app.register_blueprint(core.bp)
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(core.bp)
    for code in (404, 405, 413):
        previous = app.error_handler_spec[None].get(code, {}).copy()

        def handler(error: HTTPException, code: int = code, previous: Any = previous) -> Any:
            if request.path.startswith(PREFIX) or request.path == PREFIX.rstrip("/"):
                kind = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}[code]
                detail = error.description or ""
                return Problem(code, kind, detail).response(request.path)
            for cls in type(error).__mro__:
                if cls in previous:
                    return previous[cls](error)
            return error

        app.register_error_handler(code, handler)
