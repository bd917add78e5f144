"""The OpenAPI 3.1 document of ``/api/v1`` (served at ``/api/v1/openapi.json``) and the
browsable reference at ``/api/v1/docs`` (rendered here from the same document: no
JavaScript, nothing from a CDN)."""

from __future__ import annotations

from typing import Any, Final

from flask import Response, render_template

from ivr.api.core import bp, operation, reply
from ivr.api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from ivr.api.problems import TITLES
from ivr.api.views_campaigns import SETTING_TYPES
from ivr.callbacks.rules import Action
from ivr.store.models import CallbackStatus, CampaignStatus, ReviewState

TIME: Final = {"type": "string", "format": "date-time"}
NTIME: Final = {"type": ["string", "null"], "format": "date-time"}
NSTR: Final = {"type": ["string", "null"]}
INT_ID: Final = {"type": "integer", "minimum": 1, "maximum": 2147483647}
ERRORS: Final = (400, 401, 403, 404, 409, 415, 422, 429)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props,
            "required": list(props) if required is None else required}  # fmt: skip


def _schemas() -> dict[str, Any]:
    settings = {k: {"type": list(v) if len(v) > 1 else v[0]} for k, v in SETTING_TYPES.items()}
    campaign = _obj({
        "object": {"const": "campaign"}, "id": {"type": "string"}, "name": {"type": "string"},
        "status": {"enum": [s.value for s in CampaignStatus]}, "status_reason": NSTR,
        "flow": {"type": "string"}, "created_at": TIME, "started_at": NTIME,
        "stopped_at": NTIME, **settings,
    })  # fmt: skip
    detail = {**campaign, "properties": {**campaign["properties"], "funnel": {"type": "object"},
              "note": {"type": "string"}, "warnings": {"type": "array",
              "items": {"type": "string"}}}}  # fmt: skip
    return {
        "Problem": _obj(
            {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "instance": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": _obj(
                        {
                            "field": {"type": "string"},
                            "detail": {"type": "string"},
                            "code": {"type": "string"},
                        },
                        ["field", "detail"],
                    ),
                },
            },
            ["type", "title", "status", "detail"],
        ),  # fmt: skip
        "Campaign": campaign,
        "CampaignDetail": detail,
        "CampaignCreate": {
            "examples": [
                {
                    "name": "Resident survey",
                    "flow": "example:strategy-survey.yaml",
                    "caller_id": "029 123 4567",
                    "windows": "mon-fri 10:00-20:00",
                }
            ],
            "type": "object",
            "required": ["name", "flow"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "flow": {"type": "string", "description": "flow:<id> or example:<file name>"},
                **settings,
            },
        },  # fmt: skip
        "Reason": {"type": "object", "properties": {"reason": {"type": "string"}}},
        "Contact": _obj(
            {
                "object": {"const": "contact"},
                "id": {"type": "string"},
                "campaign_id": {"type": "string"},
                "phone": {"type": "string"},
                "language": {"type": "string"},
                "age_group": NSTR,
                "birth_year": {"type": ["integer", "null"]},
                "area": NSTR,
                "postcode": NSTR,
                "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
                "created_at": TIME,
            }
        ),  # fmt: skip
        "ContactsAdd": {
            "type": "object",
            "required": ["contacts"],
            "properties": {
                "contacts": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 10000,
                    "items": {
                        "type": "object",
                        "properties": {
                            "phone": {"type": "string"},
                            "language": {"type": "string"},
                            "age_group": {"type": "string"},
                            "birth_year": {"type": ["integer", "string"]},
                            "area": {"type": "string"},
                            "postcode": {"type": "string"},
                            "attributes": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                        },
                    },
                }
            },
        },  # fmt: skip
        "ContactImport": _obj(
            {
                "object": {"const": "contact_import"},
                "campaign_id": {"type": "string"},
                "accepted": {"type": "integer"},
                "duplicates": {"type": "integer"},
                "rejected": {
                    "type": "array",
                    "items": _obj(
                        {
                            "index": {"type": "integer"},
                            "field": {"type": "string"},
                            "detail": {"type": "string"},
                        }
                    ),
                },
            }
        ),  # fmt: skip
        "Call": _obj(
            {
                "object": {"const": "call"},
                "id": {"type": "string"},
                "campaign_id": NSTR,
                "direction": {"type": "string"},
                "status": {"type": "string"},
                "language": {"type": "string"},
                "remote_number": NSTR,
                "line_number": NSTR,
                "started_at": TIME,
                "answered_at": NTIME,
                "ended_at": NTIME,
                "end_reason": NSTR,
            }
        ),  # fmt: skip
        "Answer": _obj(
            {
                "object": {"const": "answer"},
                "id": {"type": "integer"},
                "call_id": {"type": "string"},
                "campaign_id": NSTR,
                "seq": {"type": "integer"},
                "node_id": {"type": "string"},
                "kind": {"type": "string"},
                "value": {**NSTR, "description": "null for an open answer: see its transcript"},
                "language": {"type": "string"},
                "created_at": TIME,
            }
        ),  # fmt: skip
        "Transcript": _obj(
            {
                "object": {"const": "transcript"},
                "id": {"type": "integer"},
                "call_id": {"type": "string"},
                "campaign_id": NSTR,
                "node_id": {"type": "string"},
                "language": {"type": "string"},
                "machine_text": {"type": "string"},
                "corrected_text": NSTR,
                "text": {"type": "string"},
                "confidence": {"type": ["number", "null"]},
                "review_state": {"enum": [s.value for s in ReviewState]},
                "reviewed_at": NTIME,
                "created_at": TIME,
                "updated_at": TIME,
            }
        ),  # fmt: skip
        "CallbackRequest": _obj(
            {
                "object": {"const": "callback_request"},
                "id": {"type": "integer"},
                "call_id": {"type": "string"},
                "campaign_id": NSTR,
                "status": {"enum": [s.value for s in CallbackStatus]},
                "channel": {"type": "string"},
                "phone_number": NSTR,
                "time_window": NSTR,
                "interpreter_language": NSTR,
                "language": {"type": "string"},
                "consent_version": {"type": "string"},
                "assigned_to": NSTR,
                "resolution": NSTR,
                "resolved_at": NTIME,
                "created_at": TIME,
                "updated_at": NTIME,
            }
        ),  # fmt: skip
        "CallbackRequestDetail": {
            "allOf": [
                _ref("CallbackRequest"),
                _obj(
                    {
                        "version": {"type": "string"},
                        "actions": {"type": "array", "items": {"enum": [a.value for a in Action]}},
                        "notes": {"type": "array", "items": {"type": "object"}},
                    }
                ),
            ]
        },  # fmt: skip
        "CallbackChange": {
            "type": "object",
            "required": ["action"],
            "additionalProperties": False,
            "properties": {
                "action": {"enum": [a.value for a in Action]},
                "note": {"type": "string"},
                "resolution": {"type": "string"},
                "assignee": {"type": "string", "description": "a member's user id"},
                "version": {"type": "string"},
            },
        },  # fmt: skip
        "Report": {
            "type": "object",
            "description": "the report page's numbers",
            "properties": {"object": {"const": "report"}, "campaign_id": {"type": "string"}},
        },  # fmt: skip
    }


def _list_of(name: str) -> dict[str, Any]:
    return _obj({
        "object": {"const": "list"}, "url": {"type": "string"},
        "data": {"type": "array", "items": _ref(name)}, "has_more": {"type": "boolean"},
        "next_cursor": NSTR,
    })  # fmt: skip


LIST_PARAMS: Final = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
     "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
    {"name": "starting_after", "in": "query", "schema": {"type": "string"},
     "description": "the next_cursor of the previous page"},
    {"name": "updated_since", "in": "query", "schema": TIME},
]  # fmt: skip


def _op(summary: str, ok: tuple[int, dict[str, Any]], *, params: list[Any] | None = None,
        body: str | None = None, changed: str = "") -> dict[str, Any]:  # fmt: skip
    responses: dict[str, Any] = {
        str(ok[0]): {"description": "OK", "content": {"application/json": {"schema": ok[1]}}}
    }
    for code in ERRORS:
        responses[str(code)] = {"description": TITLES[code], "content": {
            "application/problem+json": {"schema": _ref("Problem")}}}  # fmt: skip
    out: dict[str, Any] = {"summary": summary, "parameters": list(params or []),
                           "responses": responses}  # fmt: skip
    if changed:
        out["description"] = f"updated_since compares {changed}."
    if body is not None:
        out["parameters"].append({"name": "Idempotency-Key", "in": "header",
                                  "schema": {"type": "string", "maxLength": 255}})  # fmt: skip
        out["requestBody"] = {"required": body != "Reason", "content": {
            "application/json": {"schema": _ref(body)}}}  # fmt: skip
    return out


def _path(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True,
            "schema": schema or {"type": "string", "minLength": 1}}  # fmt: skip


def _query(name: str, values: list[str] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query",
            "schema": {"enum": values} if values else {"type": "string"}}  # fmt: skip


def document() -> dict[str, Any]:
    cid, rid, tid = (
        _path("campaign_id"),
        _path("request_id", INT_ID),
        _path("transcript_id", INT_ID),
    )
    call = _path("call_id")
    campaign = _ref("CampaignDetail")
    paths: dict[str, Any] = {
        "/campaigns": {
            "get": _op("List campaigns", (200, _list_of("Campaign")), params=[
                *LIST_PARAMS, _query("status", [s.value for s in CampaignStatus])],
                changed="the creation, start and stop times"),
            "post": _op("Create a campaign (a draft)", (201, campaign), body="CampaignCreate"),
        },
        "/campaigns/{campaign_id}": {"get": _op("Read a campaign and its funnel", (200, campaign),
                                                params=[cid])},
        "/campaigns/{campaign_id}/start": {"post": _op(
            "Start (or resume) a campaign", (200, campaign), params=[cid], body="Reason")},
        "/campaigns/{campaign_id}/pause": {"post": _op(
            "Pause a campaign", (200, campaign), params=[cid], body="Reason")},
        "/campaigns/{campaign_id}/stop": {"post": _op(
            "Stop a campaign for good", (200, campaign), params=[cid], body="Reason")},
        "/campaigns/{campaign_id}/report": {"get": _op(
            "The campaign's report (the report page's numbers)", (200, _ref("Report")),
            params=[cid])},
        "/campaigns/{campaign_id}/contacts": {
            "get": _op("List a campaign's contacts", (200, _list_of("Contact")),
                       params=[cid, *LIST_PARAMS], changed="the creation time (only)"),
            "post": _op("Add contacts (the importer's checks; rows rejected with reasons)",
                        (200, _ref("ContactImport")), params=[cid], body="ContactsAdd"),
        },
        "/campaigns/{campaign_id}/answers": {"get": _op(
            "List a campaign's answers", (200, _list_of("Answer")),
            params=[cid, *LIST_PARAMS], changed="the time of the answer (answers never change)")},
        "/calls": {"get": _op("List calls", (200, _list_of("Call")), params=[
            *LIST_PARAMS, _query("campaign_id")], changed="the start and end times")},
        "/calls/{call_id}": {"get": _op("Read a call", (200, _ref("Call")), params=[call])},
        "/calls/{call_id}/answers": {"get": _op(
            "List a call's answers", (200, _list_of("Answer")), params=[call, *LIST_PARAMS],
            changed="the time of the answer")},
        "/transcripts": {"get": _op("List transcripts", (200, _list_of("Transcript")), params=[
            *LIST_PARAMS, _query("campaign_id"),
            _query("review_state", [s.value for s in ReviewState])], changed="updated_at")},
        "/transcripts/{transcript_id}": {"get": _op(
            "Read a transcript", (200, _ref("Transcript")), params=[tid])},
        "/callback_requests": {"get": _op(
            "List callback requests", (200, _list_of("CallbackRequest")), params=[
                *LIST_PARAMS, _query("campaign_id"),
                _query("status", [s.value for s in CallbackStatus])],
            changed="updated_at (created_at while never changed)")},
        "/callback_requests/{request_id}": {
            "get": _op("Read a callback request", (200, _ref("CallbackRequestDetail")),
                       params=[rid]),
            "post": _op("Change a callback request's status (the worklist's rules)",
                        (200, _ref("CallbackRequestDetail")), params=[rid],
                        body="CallbackChange"),
        },
    }  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "IVR survey platform API",
            "version": "1",
            "description": "Per-organisation API: campaigns, contacts, calls, answers, "
            "transcripts, callback requests and reports. Authenticate with an organisation's "
            "API token: Authorization: Bearer ivr_... Lists are oldest first with cursor "
            "pagination; POST honours Idempotency-Key; errors are RFC 9457 problem details.",
        },  # fmt: skip
        "servers": [{"url": "/api/v1"}],
        "security": [{"token": []}],
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
    }


@bp.get("/openapi.json")
@operation
def openapi() -> Response:
    return reply(document())


@bp.get("/docs")
@operation
def docs() -> Response:
    doc = document()
    html = render_template("api_docs.html", doc=doc)
    return Response(html, mimetype="text/html")
