"""Campaigns (list, create, read, start, pause, stop), their contacts (bulk add through the
importer's own checks; list) and their report, as the API's operations."""

from __future__ import annotations

import csv
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from flask import Response, request

from ivr.accounts.audit import NotFound
from ivr.api import pagination
from ivr.api.core import actor, audit_read, body_object, bp, operation, reply, services
from ivr.api.problems import FieldError, invalid
from ivr.api.serialise import campaign_json, contact_json
from ivr.campaigns.admin_checks import CampaignSettings
from ivr.campaigns.admin_flows import DB_PREFIX, EXAMPLE_PREFIX
from ivr.campaigns.contacts import FIELDS
from ivr.campaigns.errors import CampaignInvalid
from ivr.store.models import Campaign, CampaignStatus, Contact

MAX_CONTACTS: Final = 10_000  # rows in one request (a bigger list: several requests)
# The JSON types of the settings (bool is not a number here).
SETTING_TYPES: Final[dict[str, tuple[str, ...]]] = {
    "caller_id": ("string", "null"),
    "timezone": ("string",),
    "windows": ("string",),
    "allow_holidays": ("boolean",),
    "max_attempts": ("integer",),
    "retry_busy_minutes": ("integer",),
    "retry_no_answer_minutes": ("integer",),
    "retry_failed_minutes": ("integer",),
    "calls_per_second": ("number",),
    "max_concurrent": ("integer",),
    "default_language": ("string",),
    "cross_campaign_daily_cap": ("boolean",),
    "price_per_minute": ("number", "null"),
    "billing_rule": ("string",),
}
assert set(SETTING_TYPES) == {f.name for f in fields(CampaignSettings)}


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _fits(value: Any, wanted: tuple[str, ...]) -> bool:
    kind = json_type(value)
    return kind in wanted or (kind == "integer" and "number" in wanted)


def _scoped(s: Any, campaign_id: str) -> Campaign:
    found: Campaign | None = s.scalars(
        sa.select(Campaign).where(Campaign.id == campaign_id, Campaign.org_id == actor().org_id)
    ).first()
    if found is None:
        raise NotFound("campaign")
    return found


def _campaign(campaign_id: str) -> dict[str, Any]:
    with services().factory() as s:
        out = campaign_json(_scoped(s, campaign_id))
    status = services().campaigns.status(actor(), campaign_id)
    out["funnel"] = {k: v for k, v in status.items() if k not in out and k not in (
        "campaign", "reason", "flow", "caller_id")}  # fmt: skip
    return out


@bp.get("/campaigns")
@operation
def campaigns() -> Response:
    args = pagination.list_args("campaigns", request.args, str)
    query = sa.select(Campaign).where(Campaign.org_id == actor().org_id)
    if args.updated_since is not None:
        since = args.updated_since
        query = query.where(sa.or_(
            Campaign.created_at >= since, Campaign.started_at >= since,
            Campaign.stopped_at >= since,
        ))  # fmt: skip
    status = request.args.get("status")
    if status:
        if status not in {s.value for s in CampaignStatus}:
            raise invalid([FieldError("status", "one of " + ", ".join(CampaignStatus))])
        query = query.where(Campaign.status == CampaignStatus(status))
    with services().factory() as s:
        found = pagination.page(s, "campaigns", query, Campaign.created_at, Campaign.id, args)
        items = [campaign_json(c) for c in found.rows]
    return reply(pagination.envelope(request.path, items, found))


@bp.post("/campaigns")
@operation
def create_campaign() -> Response:
    body = body_object()
    errors: list[FieldError] = []
    for key in body:
        if key not in SETTING_TYPES and key not in ("name", "flow"):
            errors.append(FieldError(key, "not a field of a campaign"))
    for key in ("name", "flow"):
        if not isinstance(body.get(key), str):
            errors.append(FieldError(key, "required: a string"))
    flow = body.get("flow")
    if isinstance(flow, str) and not flow.startswith((DB_PREFIX, EXAMPLE_PREFIX)):
        errors.append(FieldError("flow", "flow:<id> (the organisation's flow) or example:<file>"))
    for key, wanted in SETTING_TYPES.items():
        if key in body and not _fits(body[key], wanted):
            errors.append(FieldError(key, f"must be {' or '.join(wanted)}"))
    if errors:
        raise invalid(errors)
    settings = CampaignSettings(**{k: body[k] for k in SETTING_TYPES if k in body})
    made = services().campaigns.create(actor(), body["name"], body["flow"], settings)
    out = _campaign(made.id)
    out["warnings"] = made.warnings
    return reply(out, 201)


@bp.get("/campaigns/<campaign_id>")
@operation
def campaign(campaign_id: str) -> Response:
    return reply(_campaign(campaign_id))


def _reason(default: str) -> str:
    reason = body_object().get("reason", default)
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 300:
        raise invalid([FieldError("reason", "a string of 1 to 300 characters")])
    return reason.strip()


@bp.post("/campaigns/<campaign_id>/start")
@operation
def start(campaign_id: str) -> Response:
    body_object()
    note = services().campaigns.start(actor(), campaign_id)
    return reply({**_campaign(campaign_id), "note": note})


@bp.post("/campaigns/<campaign_id>/pause")
@operation
def pause(campaign_id: str) -> Response:
    services().campaigns.pause(actor(), campaign_id, _reason("paused through the API"))
    return reply(_campaign(campaign_id))


@bp.post("/campaigns/<campaign_id>/stop")
@operation
def stop(campaign_id: str) -> Response:
    services().campaigns.stop(actor(), campaign_id, _reason("stopped through the API"))
    return reply(_campaign(campaign_id))


@bp.get("/campaigns/<campaign_id>/report")
@operation
def report(campaign_id: str) -> Response:
    made = services().reports.campaign(actor(), campaign_id)
    return reply({"object": "report", "campaign_id": campaign_id, **made.to_dict()})


# --------------------------------------------------------------------------- contacts
@bp.get("/campaigns/<campaign_id>/contacts")
@operation
def contacts(campaign_id: str) -> Response:
    args = pagination.list_args("contacts", request.args, str)
    with services().factory() as s:
        _scoped(s, campaign_id)
        query = sa.select(Contact).where(Contact.campaign_id == campaign_id)
        if args.updated_since is not None:
            query = query.where(Contact.created_at >= args.updated_since)
        found = pagination.page(s, "contacts", query, Contact.created_at, Contact.id, args)
        items = [contact_json(c) for c in found.rows]
    audit_read("api.contacts.list", "campaign", campaign_id, count=len(items))
    return reply(pagination.envelope(request.path, items, found))


def _rows(body: dict[str, Any]) -> list[dict[str, str]]:
    """The rows as the importer's columns (every problem of shape at once, by field)."""
    given = body.get("contacts")
    extra = [k for k in body if k != "contacts"]
    if not isinstance(given, list) or not given:
        raise invalid([FieldError("contacts", "required: a list of 1 or more contacts")])
    if len(given) > MAX_CONTACTS:
        raise invalid([FieldError("contacts", f"at most {MAX_CONTACTS} in one request")])
    errors = [FieldError(k, "not a field of this request") for k in extra]
    rows: list[dict[str, str]] = []
    for n, item in enumerate(given):
        where = f"contacts[{n}]"
        if not isinstance(item, dict):
            errors.append(FieldError(where, "a JSON object"))
            continue
        row: dict[str, str] = {}
        for key, value in item.items():
            if key == "attributes":
                if not isinstance(value, dict):
                    errors.append(FieldError(f"{where}.attributes", "an object of strings"))
                    continue
                for name, text in value.items():
                    if not isinstance(text, str) or not _plain(name) or not _plain(text):
                        errors.append(FieldError(
                            f"{where}.attributes.{name}", "a one-line string (name and value)"
                        ))  # fmt: skip
                    else:
                        row[f"attr:{name}"] = text
            elif key not in FIELDS:
                errors.append(FieldError(f"{where}.{key}", "not a field of a contact"))
            elif key == "birth_year" and isinstance(value, int) and not isinstance(value, bool):
                row[key] = str(value)
            elif not isinstance(value, str) or not _plain(value):
                errors.append(FieldError(f"{where}.{key}", "a one-line string"))
            else:
                row[key] = value
        rows.append(row)
    if errors:
        raise invalid(errors)
    return rows


def _plain(text: str) -> bool:
    return "\n" not in text and "\r" not in text and len(text) <= 1000


@bp.post("/campaigns/<campaign_id>/contacts")
@operation
def add_contacts(campaign_id: str) -> Response:
    rows = _rows(body_object())
    attrs = list(dict.fromkeys(k for row in rows for k in row if k.startswith("attr:")))
    header = [*FIELDS, *(a.removeprefix("attr:") for a in attrs)]
    if len({h.casefold() for h in header}) != len(header):
        raise invalid([FieldError("contacts", "an attribute has the name of a field")])
    with tempfile.TemporaryDirectory(prefix="ivr-api-") as tmp:
        path = Path(tmp) / "contacts.csv"
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, delimiter=",", quoting=csv.QUOTE_ALL)
            writer.writerow(header)
            for row in rows:  # line n + 2: the header is line 1
                writer.writerow([row.get(f, "") for f in FIELDS] + [row.get(a, "") for a in attrs])
        try:
            result = services().campaigns.import_contacts(
                actor(), campaign_id, path, filename="request body"
            )
        except CampaignInvalid as exc:  # the importer could not read the columns
            raise invalid(
                [FieldError("contacts", p.message, p.code) for p in exc.problems]
            ) from None
    rejected = [
        {"index": r["line"] - 2, "field": f"contacts[{r['line'] - 2}]", "detail": r["reason"]}
        for r in result["rejected"]
    ]
    return reply({
        "object": "contact_import", "campaign_id": campaign_id, "accepted": result["accepted"],
        "duplicates": result["duplicates"], "rejected": rejected,
    })  # fmt: skip
