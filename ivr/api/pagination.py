"""Cursor pagination and the list parameters every list takes.

A list is ordered oldest first by (its creation time, id): a walk with ``next_cursor``
sees every row exactly once, and rows made during the walk come at its end. The cursor is
opaque to the client (URL-safe base64 of the resource's name and the last row's key); a
cursor of another list, or a made-up one, is a 400 naming ``starting_after``.

``updated_since`` (ISO 8601 with a time zone) keeps the rows changed at or after that
instant; which column says "changed" is given per resource (the OpenAPI document says it).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, Session

from ivr.api.problems import bad_request

DEFAULT_LIMIT: Final = 25
MAX_LIMIT: Final = 100
T = TypeVar("T")


@dataclass(frozen=True)
class ListArgs:
    limit: int
    after: tuple[datetime, int | str] | None
    updated_since: datetime | None


def encode(resource: str, at: datetime, ident: int | str) -> str:
    raw = json.dumps([resource, at.isoformat(), ident], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(resource: str, cursor: str, id_type: type) -> tuple[datetime, int | str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, at, ident = json.loads(raw)
        when = datetime.fromisoformat(at)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise bad_request("starting_after", "not a cursor this API gave") from None
    if name != resource or not isinstance(ident, int | str) or isinstance(ident, bool):
        raise bad_request("starting_after", f"not a cursor of the {resource} list")
    if not isinstance(ident, id_type):
        raise bad_request("starting_after", f"not a cursor of the {resource} list")
    if when.tzinfo is None:
        raise bad_request("starting_after", "not a cursor this API gave")
    return when, ident


def parse_time(name: str, text: str) -> datetime:
    """An ISO 8601 instant with a time zone (``2026-12-01T08:00:00Z``)."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise bad_request(name, "not an ISO 8601 date and time (2026-12-01T08:00:00Z)") from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise bad_request(name, "give a time zone (Z or +02:00)")
    try:
        return when.astimezone(UTC)
    except OverflowError:
        raise bad_request(name, "out of range") from None


def list_args(resource: str, args: Mapping[str, str], id_type: type) -> ListArgs:
    raw_limit = args.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        if not raw_limit.strip().isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise bad_request("limit", f"a whole number from 1 to {MAX_LIMIT}")
        limit = int(raw_limit)
    cursor = args.get("starting_after")
    after = decode(resource, cursor, id_type) if cursor else None
    since = args.get("updated_since")
    return ListArgs(limit, after, parse_time("updated_since", since) if since else None)


@dataclass(frozen=True)
class Page:
    rows: Sequence[Any]
    has_more: bool
    next_cursor: str | None


def page(
    s: Session,
    resource: str,
    query: sa.Select[Any],
    created: InstrumentedAttribute[datetime],
    ident: InstrumentedAttribute[Any],
    args: ListArgs,
) -> Page:
    """A page of ``query`` (its rows: one entity each) after ``args.after``."""
    if args.after is not None:
        at, last = args.after
        query = query.where(sa.or_(created > at, sa.and_(created == at, ident > last)))
    rows = list(s.scalars(query.order_by(created, ident).limit(args.limit + 1)))
    more = len(rows) > args.limit
    rows = rows[: args.limit]
    cursor = None
    if more:
        tail = rows[-1]
        cursor = encode(resource, getattr(tail, created.key), getattr(tail, ident.key))
    return Page(rows, more, cursor)


def envelope(url: str, items: list[dict[str, Any]], found: Page) -> dict[str, Any]:
    return {
        "object": "list",
        "url": url,
        "data": items,
        "has_more": found.has_more,
        "next_cursor": found.next_cursor,
    }
