"""A campaign's settings and their checks: every problem at once, per field, so that the
command line can list them and a form can show each beside its field."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.campaigns import rules
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
    if not problems:  # the dialer's own reading of them, the last word
        try:
            policy_of(Campaign(name=clean, flow_path="-", **values))
        except ValueError as exc:
            problems.append(FieldProblem("settings", "invalid", str(exc)))
    return Checked(clean, values, warnings, problems)
