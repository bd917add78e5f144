"""A campaign's settings and their checks: every problem at once, per field, so that the
command line can list them and a form can show each beside its field."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.campaigns import billing, rules
from ivr.campaigns.dialer import policy_of
from ivr.campaigns.errors import (
    AT_LEAST_ONE,
    INVALID_NUMBER,
    INVALID_WINDOWS,
    POSITIVE,
    REQUIRED,
    TOO_LONG,
    UNKNOWN_LANGUAGE,
    UNKNOWN_TIMEZONE,
    FieldProblem,
)
from ivr.campaigns.numbers import NumberError, caller_id_warnings, normalise
from ivr.store.models import Campaign, Language

MAX_NAME: Final = 100
MAX_PRICE: Final = 1000  # euros a minute: anything above is a typo
# The codes of the cost fields' problems (the form words them).
INVALID_PRICE: Final = "invalid_price"  # not a price from 0 to MAX_PRICE
PRICE_PRECISION: Final = "price_precision"  # more than 4 decimals
INVALID_BILLING_RULE: Final = "invalid_billing_rule"  # not MIN/STEP (message: why)


@dataclass(frozen=True)
class CampaignSettings:
    caller_id: str | None = None
    timezone: str = "Europe/Helsinki"
    windows: str = "mon-fri 10:00-20:00"
    allow_holidays: bool = False
    max_attempts: int = 3
    retry_busy_minutes: int = 30
    retry_no_answer_minutes: int = 120
    retry_failed_minutes: int = 60
    calls_per_second: float = 2.0
    max_concurrent: int = 30
    default_language: str = "fi"
    cross_campaign_daily_cap: bool = True
    # What the provider charges (the report's cost): euros per billable minute (None: not
    # set) and its rounding rule "MIN/STEP" in seconds (ivr.campaigns.billing).
    price_per_minute: float | None = None
    billing_rule: str = "60/60"


@dataclass
class Checked:
    name: str
    values: dict[str, Any]  # column -> value, ready for the campaign row
    warnings: list[str] = field(default_factory=list)
    problems: list[FieldProblem] = field(default_factory=list)

    def audit_values(self) -> dict[str, Any]:
        return {k: (v.value if isinstance(v, Language) else v) for k, v in self.values.items()}


def _whole(problems: list[FieldProblem], name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        message = f"{name}: {value!r} is not a whole number >= {minimum}"
        problems.append(FieldProblem(name, AT_LEAST_ONE, message))


def parse_price(text: str) -> float | None:
    """A price per minute as typed, decimal comma or point (``"0,0125"`` → 0.0125); None
    for nothing typed; ValueError for what is not a number."""
    clean = text.strip().replace("\u00a0", "").replace(" ", "").replace(",", ".")
    clean = clean.removesuffix("€").removeprefix("€")
    return float(clean) if clean else None


def _check_cost(
    problems: list[FieldProblem], values: dict[str, Any], settings: CampaignSettings
) -> None:
    """The price per minute (euros, >= 0, at most 4 decimals: the column's precision) and
    the billing rule (``billing.parse_rule``), kept in its plain form ("60/60")."""
    price = settings.price_per_minute
    if price is not None:
        if (
            isinstance(price, bool)
            or not isinstance(price, int | float)
            or not math.isfinite(price)
            or price < 0
            or price >= MAX_PRICE
        ):
            problems.append(
                FieldProblem(
                    "price_per_minute",
                    INVALID_PRICE,
                    f"price_per_minute: {price!r} is not a price in euros from 0 to {MAX_PRICE}",
                )
            )
        elif abs(price * 10_000 - round(price * 10_000)) > 1e-6:
            problems.append(
                FieldProblem(
                    "price_per_minute",
                    PRICE_PRECISION,
                    f"price_per_minute: {price!r} has more than 4 decimals",
                )
            )
        else:
            values["price_per_minute"] = round(float(price), 4)
    try:
        values["billing_rule"] = str(billing.parse_rule(settings.billing_rule))
    except billing.BillingRuleError as exc:
        problems.append(FieldProblem("billing_rule", INVALID_BILLING_RULE, str(exc)))


def check_settings(name: str, settings: CampaignSettings) -> Checked:
    """The settings checked (``problems`` empty) or every problem found."""
    problems: list[FieldProblem] = []
    clean = name.strip()
    if not clean:
        problems.append(FieldProblem("name", REQUIRED, "the campaign needs a name"))
    elif len(clean) > MAX_NAME:
        problems.append(
            FieldProblem("name", TOO_LONG, f"the name is {len(clean)} characters; at most 100")
        )
    values: dict[str, Any] = asdict(settings)
    caller_id = (settings.caller_id or "").strip() or None
    if caller_id is not None:
        try:
            caller_id = normalise(caller_id)
        except NumberError as exc:
            problems.append(
                FieldProblem("caller_id", INVALID_NUMBER, f"caller ID {caller_id!r}: {exc}")
            )
    values["caller_id"] = caller_id
    warnings = caller_id_warnings(caller_id or "")
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            FieldProblem(
                "timezone", UNKNOWN_TIMEZONE, f"{settings.timezone!r} is not a known time zone"
            )
        )
    try:
        rules.parse_windows(settings.windows)
        values["windows"] = settings.windows.strip()
    except ValueError as exc:
        problems.append(FieldProblem("windows", INVALID_WINDOWS, f"calling windows: {exc}"))
    _whole(problems, "max_attempts", settings.max_attempts, 1)
    # A retry spacing of 0 would retry at once: the rules want at least a minute.
    for key in ("retry_busy_minutes", "retry_no_answer_minutes", "retry_failed_minutes"):
        _whole(problems, key, getattr(settings, key), 1)
    _whole(problems, "max_concurrent", settings.max_concurrent, 1)
    cps = settings.calls_per_second
    if (
        isinstance(cps, bool)
        or not isinstance(cps, int | float)
        or not math.isfinite(cps)
        or cps <= 0
    ):
        problems.append(
            FieldProblem("calls_per_second", POSITIVE, f"calls_per_second: {cps!r} is not > 0")
        )
    else:
        values["calls_per_second"] = float(cps)
    try:
        values["default_language"] = Language(settings.default_language)
    except ValueError:
        problems.append(
            FieldProblem(
                "default_language",
                UNKNOWN_LANGUAGE,
                f"default_language: {settings.default_language!r} is not one of fi, sv, en",
            )
        )
    _check_cost(problems, values, settings)
    if not problems:  # the dialer's own reading of them, the last word
        try:
            policy_of(Campaign(name=clean, flow_path="-", **values))
        except ValueError as exc:
            problems.append(FieldProblem("settings", "invalid", str(exc)))
    return Checked(clean, values, warnings, problems)
