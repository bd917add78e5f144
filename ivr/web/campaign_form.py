"""The campaign form and the campaign pages' words: reading the form into the service's
``CampaignSettings`` (only types here: every rule is the service's), saying the service's
problems in the user's language, and naming statuses and outcomes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from ivr.campaigns import errors
from ivr.campaigns.admin import CampaignSettings
from ivr.campaigns.admin_checks import (
    INVALID_BILLING_RULE,
    INVALID_PRICE,
    PRICE_PRECISION,
    parse_price,
)
from ivr.campaigns.errors import CampaignAdminError, CampaignInvalid, FieldProblem

NOT_A_WHOLE_NUMBER = "not_a_whole_number"
NOT_A_NUMBER = "not_a_number"
NO_FILE = "no_file"

INT_FIELDS = (
    "max_attempts",
    "retry_busy_minutes",
    "retry_no_answer_minutes",
    "retry_failed_minutes",
    "max_concurrent",
)
CHECKBOXES = ("allow_holidays", "cross_campaign_daily_cap")
TEXT_FIELDS = ("caller_id", "timezone", "windows", "default_language")
COST_FIELDS = ("price_per_minute", "billing_rule")  # the report's cost
# The order of the form, for the error summary.
FIELD_ORDER = (
    "name",
    "flow",
    "caller_id",
    "windows",
    "timezone",
    "allow_holidays",
    "max_attempts",
    "retry_busy_minutes",
    "retry_no_answer_minutes",
    "retry_failed_minutes",
    "calls_per_second",
    "max_concurrent",
    "default_language",
    "cross_campaign_daily_cap",
    "price_per_minute",
    "billing_rule",
    "settings",
)


def labels() -> dict[str, str]:
    """Each field's label (the error summary names the field with it)."""
    return {
        "name": _("Campaign name"),
        "flow": _("Call flow"),
        "caller_id": _("Caller ID"),
        "windows": _("Calling windows"),
        "timezone": _("Time zone"),
        "allow_holidays": _("Call on public holidays"),
        "max_attempts": _("Attempts per number"),
        "retry_busy_minutes": _("Retry after busy (minutes)"),
        "retry_no_answer_minutes": _("Retry after no answer (minutes)"),
        "retry_failed_minutes": _("Retry after a failed call (minutes)"),
        "calls_per_second": _("Calls per second"),
        "max_concurrent": _("Calls at the same time at most"),
        "default_language": _("Default language"),
        "cross_campaign_daily_cap": _("At most one campaign calls a resident a day"),
        "settings": _("Settings"),
        "file": _("Contact list"),
        "price_per_minute": _("Price per minute (euros)"),
        "billing_rule": _("Billing rule"),
    }


def language_names() -> list[tuple[str, str]]:
    return [("fi", _("Finnish")), ("sv", _("Swedish")), ("en", _("English"))]


@dataclass
class CampaignForm:
    """What the form holds: the values as typed (to show again) and the errors by field."""

    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def blank(cls, language: str = "fi") -> CampaignForm:
        values: dict[str, Any] = {"name": "", "flow": "", **asdict(CampaignSettings())}
        values["caller_id"] = ""
        values["default_language"] = language if language in ("fi", "sv", "en") else "fi"
        values["price_per_minute"] = ""
        return cls(values)

    @classmethod
    def of(cls, name: str, flow: str, settings: CampaignSettings) -> CampaignForm:
        values: dict[str, Any] = {"name": name, "flow": flow, **asdict(settings)}
        values["caller_id"] = settings.caller_id or ""
        price = settings.price_per_minute
        values["price_per_minute"] = "" if price is None else f"{price:.4f}".rstrip("0").rstrip(".")
        return cls(values)

    @classmethod
    def read(cls, form: MultiDict[str, str]) -> CampaignForm:
        values: dict[str, Any] = {
            key: form.get(key, "").strip()
            for key in ("name", "flow", *TEXT_FIELDS, *INT_FIELDS, "calls_per_second", *COST_FIELDS)
        }
        for key in CHECKBOXES:
            values[key] = form.get(key) == "1"
        return cls(values)

    def settings(self) -> CampaignSettings:
        """The settings as typed; what is not a number is noted in ``errors`` and given its
        default here, so that the service can still check everything else at once."""
        typed: dict[str, Any] = {k: self.values[k] for k in (*TEXT_FIELDS, *CHECKBOXES)}
        for key in INT_FIELDS:
            try:
                typed[key] = int(str(self.values[key]))
            except ValueError:
                self.errors[key] = message(FieldProblem(key, NOT_A_WHOLE_NUMBER, ""))
        try:
            # A decimal comma too: "0,5" is how a Finn or a Swede writes a half.
            typed["calls_per_second"] = float(
                str(self.values["calls_per_second"]).replace(",", ".")
            )
        except ValueError:
            self.errors["calls_per_second"] = message(
                FieldProblem("calls_per_second", NOT_A_NUMBER, "")
            )
        typed["billing_rule"] = self.values.get("billing_rule") or "60/60"
        try:
            typed["price_per_minute"] = parse_price(str(self.values.get("price_per_minute", "")))
        except ValueError:
            self.errors["price_per_minute"] = message(
                FieldProblem("price_per_minute", NOT_A_NUMBER, "")
            )
        return CampaignSettings(**typed)

    def add(self, exc: CampaignInvalid) -> None:
        for name, problem in exc.by_field().items():
            self.errors.setdefault(name, message(problem))

    def ordered_errors(self) -> dict[str, str]:
        rank = {name: i for i, name in enumerate(FIELD_ORDER)}
        return dict(sorted(self.errors.items(), key=lambda kv: rank.get(kv[0], len(rank))))


def message(problem: FieldProblem) -> str:
    """A field's problem in the user's language (with the parser's own detail, in English,
    where it has one: the calling windows, a flow, a phone number, a file)."""
    code = problem.code
    detail = problem.message
    fixed = {
        errors.REQUIRED: _("Enter a name for the campaign."),
        errors.TOO_LONG: _("The name can be at most 100 characters long."),
        errors.TAKEN: _("Another campaign of your organisation has this name. Choose another."),
        errors.AT_LEAST_ONE: _("Enter a whole number of 1 or more."),
        errors.POSITIVE: _("Enter a number greater than 0, such as 2 or 0.5."),
        errors.UNKNOWN_FLOW: _("Choose a call flow from the list."),
        errors.UNKNOWN_TIMEZONE: _("Enter a time zone such as Europe/Helsinki."),
        errors.UNKNOWN_LANGUAGE: _("Choose Finnish, Swedish or English."),
        errors.FROZEN: _(
            "The call flow cannot change once the campaign has started: residents must all "
            "hear the same questions."
        ),
        NOT_A_WHOLE_NUMBER: _("Enter a whole number, such as 3."),
        NOT_A_NUMBER: _("Enter a number, such as 2 or 0.5."),
        NO_FILE: _("Choose a CSV or XLSX file."),
        INVALID_PRICE: _("Enter a price in euros of 0 or more, such as 0,0125."),
        PRICE_PRECISION: _("Enter the price with at most 4 decimals, such as 0,0125."),
    }
    if code in fixed:
        return str(fixed[code])
    lead = {
        errors.INVALID_WINDOWS: _("The calling windows cannot be read:"),
        errors.INVALID_NUMBER: _("The caller ID is not a phone number:"),
        errors.INVALID_FLOW: _("The call flow has errors; correct it first:"),
        "unreadable_file": _("The file cannot be read as a contact list:"),
        INVALID_BILLING_RULE: _(
            "Write the billing rule as the provider does, MIN/STEP in seconds, such as 60/60, "
            "1/1 or 30/6:"
        ),
    }.get(code)
    return f"{lead} {detail}" if lead else detail


def refusal(exc: CampaignAdminError) -> str:
    """Why an action on a campaign was refused, in the user's language."""
    text = {
        errors.NO_CONTACTS: _("The campaign has no contacts yet. Upload a contact list first."),
        errors.FINAL: _("The campaign has been stopped. A stopped campaign cannot change."),
        errors.PAUSE_FIRST: _("Pause the campaign before changing its settings."),
        errors.NOT_NOW: _("The campaign's status does not allow that now."),
        errors.FLOW_UNUSABLE: _("The campaign's call flow cannot be used:"),
    }.get(exc.code)
    if text is None:
        return str(exc)
    if exc.code in (errors.FLOW_UNUSABLE, errors.NOT_NOW):
        return f"{text} {exc}"
    return str(text)


def status_name(status: str) -> str:
    names = {
        "draft": _("Draft"),
        "running": _("Running"),
        "paused": _("Paused"),
        "stopped": _("Stopped"),
        "completed": _("Completed"),
    }
    return str(names.get(status, status))


def outcome_name(outcome: str) -> str:
    """An attempt's outcome for people (an outcome added later shows as its value)."""
    names = {
        "completed": _("Completed"),
        "partial": _("Partly answered"),
        "opted_out": _("Opted out"),
        "transferred": _("Transferred to a person"),
        "interrupted": _("Interrupted"),
        "failed": _("Failed"),
        "no_answer": _("No answer"),
        "busy": _("Busy"),
        "declined": _("Declined"),
        "unallocated": _("Number not in use"),
        "skipped": _("Not called (rules)"),
    }
    return str(names.get(outcome, outcome))
