"""The API's blueprint and what every operation shares: the token check (401), the scope
(403 for a read-only token's POST), the rate limit (429), ``Idempotency-Key`` on POST,
JSON in and out, and every refusal as problem details.

Operations act as the token's organisation: an ``Actor`` named ``token:<name>`` with the
manager role (what a write token may change is what a manager may; a read token is kept
to GET here, before any service is called), and the services apply their own rules.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

from flask import Blueprint, Response, current_app, g, request

from ivr.accounts import audit
from ivr.accounts.audit import Actor, Forbidden, NotFound
from ivr.api import idempotency
from ivr.api.problems import FieldError, Problem, bad_request, invalid, not_found
from ivr.api.ratelimit import RateLimiter, retry_after
from ivr.api.tokens import ApiTokens, TokenInfo
from ivr.campaigns.errors import CampaignAdminError, CampaignInvalid
from ivr.services import Services
from ivr.store.api_models import TokenScope
from ivr.store.org_models import Role
from ivr.web.access import ACCESS_ATTR

F = TypeVar("F", bound=Callable[..., Any])
bp = Blueprint("api", __name__, url_prefix="/api/v1", template_folder="templates")
MAX_ID: Final = 2**31 - 1  # the databases' integer ids
PUBLIC: Final = frozenset({"api.openapi", "api.docs"})  # no token needed


@dataclass(frozen=True)
class TokenActor(Actor):
    """An API token acting for its organisation: not the command line (no file paths,
    no organisation-less campaigns), not a person (no user id)."""

    @property
    def is_cli(self) -> bool:
        return False


@dataclass
class ApiState:
    tokens: ApiTokens
    limiter: RateLimiter


def services() -> Services:
    found: Services = current_app.extensions["ivr"]
    return found


def state() -> ApiState:
    found: ApiState = current_app.extensions["ivr_api"]
    return found


def actor() -> Actor:
    found: Actor = g.api_actor
    return found


def token() -> TokenInfo:
    found: TokenInfo = g.api_token
    return found


def reply(body: dict[str, Any], status: int = 200) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, default=str), status=status,
        mimetype="application/json",
    )  # fmt: skip


def body_object() -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    if request.mimetype != "application/json":
        raise Problem(415, "unsupported_media_type", "send JSON (Content-Type: application/json)")
    try:
        found = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("body", "not valid JSON") from None
    if not isinstance(found, dict):
        raise invalid([FieldError("body", "a JSON object")])
    if nul := _nul(found, ""):
        raise invalid([FieldError(nul, "contains a NUL character")])
    return found


def _nul(value: Any, where: str) -> str:
    """The first field whose text (or name) holds a NUL character (no database keeps one)."""
    if isinstance(value, str):
        return where or "body" if "\x00" in value else ""
    if isinstance(value, list):
        return next((f for n, v in enumerate(value) if (f := _nul(v, f"{where}[{n}]"))), "")
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{where}.{key}" if where else str(key)
            if "\x00" in str(key):
                return name
            if found := _nul(item, name):
                return found
    return ""


def audit_read(action: str, target_type: str = "", target_id: str = "", **detail: Any) -> None:
    """An audit entry for reading personal data (transcripts, callback requests, calls)."""
    shared = services()
    with shared.factory.begin() as s:
        audit.record(
            s, actor(), action, at=shared.clock(), target_type=target_type,
            target_id=target_id, **detail,
        )  # fmt: skip


def as_problem(exc: Exception) -> Problem:
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, NotFound):
        return not_found()
    if isinstance(exc, Forbidden):
        return Problem(403, "forbidden", str(exc) or "not allowed")
    if isinstance(exc, CampaignInvalid):
        return invalid([FieldError(p.field, p.message, p.code) for p in exc.problems])
    if isinstance(exc, CampaignAdminError):
        return Problem(409, exc.code or "conflict", str(exc))
    raise exc


def operation(view: F) -> F:
    """An API operation: problems as responses, POST with ``Idempotency-Key`` replayed."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        if request.method != "POST" or idempotency.HEADER not in request.headers:
            return _run(view, args, kwargs)
        key = idempotency.check_key(request.headers[idempotency.HEADER])
        org_id = token().org_id
        shared = services()
        mark = idempotency.fingerprint("POST", request.path, request.get_data(cache=True))
        stored = idempotency.begin(shared.factory, org_id, key, mark, shared.clock())
        if stored is not None:
            response = Response(stored.body, status=stored.status, headers=stored.headers)
            response.headers["Idempotent-Replayed"] = "true"
            return response
        try:
            response = _run(view, args, kwargs)
        except BaseException:
            idempotency.finish(shared.factory, org_id, key, 500, "", {})
            raise
        kept = {"Content-Type": response.headers.get("Content-Type", "application/json")}
        idempotency.finish(
            shared.factory, org_id, key, response.status_code, response.get_data(as_text=True),
            kept,
        )  # fmt: skip
        return response

    setattr(wrapper, ACCESS_ATTR, "public")  # a token, not a session: checked below
    return cast(F, wrapper)


def _run(view: Callable[..., Response], args: Any, kwargs: Any) -> Response:
    try:
        return view(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - as_problem re-raises what it does not know
        return as_problem(exc).response(request.path)


def unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="ivr"'})


@bp.before_request
def _authenticate() -> Response | None:
    if request.endpoint in PUBLIC:
        return None
    for name, value in [*(request.view_args or {}).items(), *request.args.items()]:
        if "\x00" in str(value):
            return bad_request(name, "contains a NUL character").response()
        if isinstance(value, int) and not 0 < value <= MAX_ID:  # beyond any row's id
            return not_found().response(request.path)
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if not header:
        return unauthorized("give an API token: Authorization: Bearer ivr_...").response()
    if scheme.lower() != "bearer" or not secret.strip():
        return unauthorized("the Authorization header is not 'Bearer <token>'").response()
    found = state().tokens.authenticate(secret.strip())
    if found is None:
        return unauthorized("the API token is not valid (wrong, or revoked)").response()
    g.api_token = found
    wait = state().limiter.take(found.id, services().clock())
    if wait > 0:
        return Problem(
            429, "rate_limited", "too many requests with this token: slow down",
            headers={"Retry-After": retry_after(wait)},
        ).response()  # fmt: skip
    if request.method not in ("GET", "HEAD", "OPTIONS") and found.scope is not TokenScope.WRITE:
        return Problem(403, "read_only_token", "this token may only read (scope read)").response()
    g.api_actor = TokenActor(
        actor=f"token:{found.name}", org_id=found.org_id, role=Role.MANAGER,
        address=request.remote_addr or "",
    )  # fmt: skip
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    found: TokenInfo | None = getattr(g, "api_token", None)
    if found is not None:
        limiter = state().limiter
        response.headers["RateLimit-Limit"] = str(limiter.burst)
        response.headers["RateLimit-Remaining"] = str(limiter.remaining(found.id))
    return response


@bp.errorhandler(Problem)
def _problem(exc: Problem) -> Response:
    return exc.response(request.path)
