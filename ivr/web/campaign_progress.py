"""A campaign's live progress as the page shows it: the numbers formatted in the user's
locale, and in words why it is not dialling now and when it will.

The page renders these server-side; ``static/js/progress.js`` fetches the same from the
JSON endpoint every few seconds and puts each text into the element whose
``data-progress`` names its key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask_babel import format_decimal
from flask_babel import gettext as _

from ivr.store.campaigns import FUNNEL_COUNTS
from ivr.web.campaign_form import outcome_name, status_name
from ivr.web.i18n import fmt_datetime


def count_labels() -> dict[str, str]:
    return {
        "contacts": _("Contacts"),
        "numbers_attempted": _("Numbers attempted"),
        "calls_placed": _("Calls placed"),
        "answered": _("Answered"),
        "survey_started": _("Survey started"),
        "completed": _("Completed"),
        "opted_out": _("Opted out"),
    }


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def why(progress: dict[str, Any]) -> str:
    """Why the campaign is not dialling now and when it will, or that it is dialling."""
    status = progress["status"]
    if status == "draft":
        return str(_("Not started. Upload contacts, then start the campaign."))
    if status == "paused":
        return str(_("Paused: no new calls are placed until the campaign is resumed."))
    if status == "stopped":
        return str(_("Stopped: no more calls are placed."))
    if status == "completed":
        return str(_("Completed: every contact has been called as the rules allow."))
    window = progress["window"]
    if not window["open"]:
        if window["holiday"]:
            lead = _(
                "Not calling today: it is a public holiday (%(name)s).", name=window["holiday"]
            )
        else:
            lead = _("Not calling now: outside the calling windows.")
        start = _aware(window["next_start"])
        then = (
            _("Calls resume %(when)s.", when=fmt_datetime(start))
            if start
            else _("No calling window lies ahead: check the calling windows.")
        )
        return f"{lead} {then}"
    if progress["in_progress"] or progress["placing"]:
        return str(_("Dialling."))
    queue = progress["queue"]
    if not queue["left"]:
        return str(_("Nothing is left to call: the campaign completes in a moment."))
    due = _aware(queue["next_due"])
    if not queue["due_now"] and due is not None:
        return str(_("Waiting for retries: the next call is due %(when)s.", when=fmt_datetime(due)))
    return str(_("Dialling."))


def texts(progress: dict[str, Any]) -> dict[str, str]:
    """Every number and sentence of the progress panel, by ``data-progress`` key."""
    funnel = progress["funnel"]
    out = {key: str(format_decimal(funnel[key])) for key in FUNNEL_COUNTS}
    rate = format_decimal(funnel["response_rate"] * 100, "#,##0.0")
    out["response_rate"] = str(_("%(value)s %%", value=rate))
    for outcome, number in funnel["outcomes"].items():
        out[f"outcome-{outcome}"] = str(format_decimal(number))
    out["in_progress"] = str(format_decimal(progress["in_progress"]))
    out["calls_per_minute"] = str(format_decimal(progress["calls_per_minute"], "#,##0.0"))
    out["status"] = status_name(progress["status"])
    out["why"] = why(progress)
    out["status_reason"] = progress["status_reason"] or "–"
    out["updated"] = fmt_datetime(progress["at"])
    return out


def as_json(progress: dict[str, Any]) -> dict[str, Any]:
    """The progress for the JSON endpoint: the numbers as numbers (``funnel`` as
    ``ivr.store.campaigns.funnel`` has them), times in ISO 8601 (UTC), and ``text``."""
    window = progress["window"]
    queue = progress["queue"]

    def iso(value: datetime | None) -> str | None:
        aware = _aware(value)
        return aware.astimezone(UTC).isoformat() if aware else None

    text = texts(progress)
    return {
        "id": progress["id"],
        "status": progress["status"],
        "status_reason": progress["status_reason"],
        "at": iso(progress["at"]),
        "funnel": progress["funnel"],
        "in_progress": progress["in_progress"],
        "placing": progress["placing"],
        "calls_per_minute": progress["calls_per_minute"],
        "window": {**window, "next_start": iso(window["next_start"])},
        "queue": {**queue, "next_due": iso(queue["next_due"])},
        "text": text,
        # What a screen reader hears when it changes (not on every tick).
        "announce": f"{text['status']}. {text['why']}",
    }


def outcome_rows(progress: dict[str, Any]) -> list[tuple[str, str]]:
    """(outcome, its name) of every outcome in the funnel, in the funnel's order."""
    return [(key, outcome_name(key)) for key in progress["funnel"]["outcomes"]]
