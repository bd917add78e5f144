"""When a schedule runs next, and what makes a schedule valid. Pure: no I/O, no clock.

A schedule runs at a wall-clock time in the organisation's time zone: weekly on a weekday
(0 = Monday ... 6 = Sunday) or monthly on a day of the month (1-31; a month without that
day runs on its last day, so "31" means "the last day of every month").

Daylight saving time: the wall-clock time is kept. A time that does not exist on the day
of the spring change (03:30 in Helsinki on the last Sunday of March) runs when the clocks
have moved on past it (04:30 summer time, the same instant as 03:30 winter time); a time
that occurs twice on the autumn change (03:30 on the last Sunday of October) runs once,
at its first occurrence.
"""

from __future__ import annotations

import calendar
import enum
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LANGUAGES = ("fi", "sv", "en")
MAX_RECIPIENTS = 20
_TIME = re.compile(r"([01]?\d|2[0-3])[:.]([0-5]\d)")
# One address: a local part without spaces or separators, a dotted domain with a top level.
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)


class Frequency(enum.StrEnum):
    WEEKLY = "weekly"
    MONTHLY = "monthly"


@dataclass(frozen=True, slots=True)
class Rule:
    frequency: Frequency
    day: int  # weekly: 0 (Monday) - 6 (Sunday); monthly: 1-31 (past the month's end: its last day)
    at: time  # the wall-clock time in ``timezone``
    timezone: str


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The instant of ``at`` on ``day`` in ``zone`` (fold=0: a skipped time moves on by the
    gap, a repeated time is its first occurrence), in UTC."""
    return datetime.combine(day, at).replace(tzinfo=zone, fold=0).astimezone(UTC)


def _month_day(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def next_run(rule: Rule, after: datetime) -> datetime:
    """The first run strictly after ``after`` (an aware instant), in UTC."""
    if after.tzinfo is None:
        raise ValueError("after: an aware datetime is needed")
    zone = ZoneInfo(rule.timezone)
    today = after.astimezone(zone).date()
    if rule.frequency == Frequency.WEEKLY:
        start = today - timedelta(days=1)  # a day's margin either side of a zone's date line
        for offset in range(9):
            day = start + timedelta(days=offset)
            if day.weekday() == rule.day:
                run = _local(day, rule.at, zone)
                if run > after:
                    return run
    else:
        year, month = today.year, today.month - 1
        for _ in range(3):
            if month == 0:
                year, month = year - 1, 12
            run = _local(_month_day(year, month, rule.day), rule.at, zone)
            if run > after:
                return run
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    raise AssertionError("no run found")  # pragma: no cover - a run lies within 9 days/2 months


def parse_time(text: str) -> time | None:
    """ "9:00", "09.00" or "21:30" as a time; None if it is not one."""
    found = _TIME.fullmatch(text.strip())
    if found is None:
        return None
    return time(int(found.group(1)), int(found.group(2)))


def parse_recipients(text: str) -> tuple[list[str], list[str]]:
    """The addresses in ``text`` (separated by commas, semicolons, spaces or lines), lower
    case, each once; and the parts that are not addresses."""
    good: list[str] = []
    bad: list[str] = []
    for part in re.split(r"[\s,;]+", text):
        if not part:
            continue
        if _EMAIL.fullmatch(part) and len(part) <= 254:
            if part.lower() not in good:
                good.append(part.lower())
        else:
            bad.append(part)
    return good, bad


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class Checked:
    """A schedule's form values, parsed; ``codes``: field name -> what is wrong with it
    (the web page words each code in the reader's language)."""

    name: str
    frequency: Frequency | None
    day: int | None
    at: time | None
    recipients: list[str]
    language: str
    codes: dict[str, str]  # field -> code: required, too_long, choice, range, time, email, many
    bad_recipients: tuple[str, ...] = ()  # the parts of ``recipients`` that are not addresses


def check(
    *, name: str, frequency: str, day: str, at: str, recipients: str, language: str
) -> Checked:
    """Parse and check a schedule's fields; every problem named by its field (the scope,
    which needs the database, is the service's to check)."""
    codes: dict[str, str] = {}
    name = name.strip()
    if not name:
        codes["name"] = "required"
    elif len(name) > 100:
        codes["name"] = "too_long"
    freq = Frequency(frequency) if frequency in set(Frequency) else None
    if freq is None:
        codes["frequency"] = "choice"
    day_no: int | None = None
    try:
        day_no = int(day.strip())
    except ValueError:
        codes["day"] = "required" if not day.strip() else "range"
    if day_no is not None and freq is not None:
        low, high = (0, 6) if freq == Frequency.WEEKLY else (1, 31)
        if not low <= day_no <= high:
            codes["day"] = "range"
            day_no = None
    parsed = parse_time(at)
    if parsed is None:
        codes["time"] = "required" if not at.strip() else "time"
    good, bad = parse_recipients(recipients)
    if bad:
        codes["recipients"] = "email"
    elif not good:
        codes["recipients"] = "required"
    elif len(good) > MAX_RECIPIENTS:
        codes["recipients"] = "many"
    if language not in LANGUAGES:
        codes["language"] = "choice"
    return Checked(name, freq, day_no, parsed, good, language, codes, tuple(bad))


RETRY_MINUTES = (5, 15, 60)  # after the 1st, 2nd, 3rd failed try; then the send has failed


def retry_delay(failures: int) -> timedelta | None:
    """How long after the ``failures``-th failed try of one send to try again; None: no more."""
    if failures < 1 or failures > len(RETRY_MINUTES):
        return None
    return timedelta(minutes=RETRY_MINUTES[failures - 1])
