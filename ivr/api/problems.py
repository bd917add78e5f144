"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error the API answers is a ``Problem``: ``type`` (a stable URI naming the kind of
problem), ``title``, ``status``, ``detail`` and, for bad input, ``errors``: one
``{"field", "detail"}`` per field that is wrong (a JSON pointer-like dotted name such as
``contacts[3].phone``), so that an integrator's code can show each beside its field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Final

from flask import Response

MEDIA_TYPE: Final = "application/problem+json"
BASE: Final = "https://ivr.invalid/problems/"  # a stable name; not fetched

TITLES: Final[dict[int, str]] = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
}


@dataclass(frozen=True)
class FieldError:
    field: str
    detail: str
    code: str = ""


@dataclass
class Problem(Exception):
    status: int
    kind: str  # the last part of ``type``: "invalid", "not_found", "rate_limited" ...
    detail: str
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.detail)

    def body(self) -> dict[str, object]:
        out: dict[str, object] = {
            "type": BASE + self.kind,
            "title": TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            out["errors"] = [
                {"field": e.field, "detail": e.detail, **({"code": e.code} if e.code else {})}
                for e in self.errors
            ]
        return out

    def response(self, instance: str = "") -> Response:
        body = self.body()
        if instance:
            body["instance"] = instance
        response = Response(
            json.dumps(body, ensure_ascii=False), status=self.status, mimetype=MEDIA_TYPE
        )
        for name, value in self.headers.items():
            response.headers[name] = value
        return response


def invalid(errors: list[FieldError], detail: str = "") -> Problem:
    """422: the request was understood but a field is wrong."""
    text = detail or "; ".join(f"{e.field}: {e.detail}" for e in errors)
    return Problem(422, "invalid", text, errors)


def bad_request(field_name: str, detail: str) -> Problem:
    """400: a malformed parameter (a cursor, a date, a limit, a body that is not JSON)."""
    return Problem(400, "bad_request", f"{field_name}: {detail}", [FieldError(field_name, detail)])


def not_found(what: str = "the object") -> Problem:
    return Problem(404, "not_found", f"{what} was not found in this organisation")


def conflict(kind: str, detail: str) -> Problem:
    return Problem(409, kind, detail)
