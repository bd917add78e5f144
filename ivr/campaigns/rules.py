"""Campaign calling rules: windows, holidays, retries, the dial-time gate, pacing (pure core).

Nothing here reads a clock or does I/O: every instant is passed in as an *aware* datetime
(any time zone; it is converted to the policy's zone) and the pacer takes a monotonic
reading. Naive datetimes are refused, because a naive "10:00" is exactly how calls end up at
3 am in another time zone.

Holidays: the ``holidays`` library's Finnish public calendar, with Finnish names (checked
with holidays 0.109: the 13 statutory holidays plus juhannusaatto, Midsummer Eve, and
jouluaatto, Christmas Eve). This module adds, where the library has nothing on that date:
juhannusaatto and jouluaatto (so an older or changed library cannot drop them) and
uudenvuodenaatto (New Year's Eve, Dec 31), which the library does not list. All three are de
facto days off on which residents should not get survey calls.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from ivr.outcome import PLACED_OUTCOMES, Outcome

__all__ = [
    "MAX_SEARCH_DAYS",
    "RETRYABLE",
    "CallingPolicy",
    "Decision",
    "Final",
    "Gate",
    "Pacer",
    "Retry",
    "Window",
    "day_start",
    "decide_next",
    "dial_gate",
    "finnish_non_calling_days",
    "holiday_name",
    "in_window",
    "next_window_start",
    "parse_windows",
    "window_reason",
]

MAX_SEARCH_DAYS = 400
"""How far ahead :func:`next_window_start` looks before concluding there is no window."""

_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAY_ABBR = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


RETRYABLE = frozenset({Outcome.BUSY, Outcome.NO_ANSWER, Outcome.FAILED, Outcome.INTERRUPTED})
"""Outcomes after which another attempt may be scheduled; every other outcome is final."""

_FINAL_REASONS = {
    Outcome.COMPLETED: "completed",
    Outcome.PARTIAL: "partial answer: not called again",
    Outcome.OPTED_OUT: "opted out: never called again",
    Outcome.DECLINED: "declined: no more attempts in this campaign",
    Outcome.UNALLOCATED: "unallocated number: never called again",
}


# --------------------------------------------------------------------------------------------
# Data


# A window's end at 24:00: the end of its day (the next midnight), so that a window can
# cover the whole day, whatever its length (23 or 25 hours on the days DST changes).
END_OF_DAY = time.max


@dataclass(frozen=True)
class Window:
    """Calling allowed on ``days`` (0 = Monday .. 6 = Sunday) from ``start`` (inclusive) to
    ``end`` (exclusive; :data:`END_OF_DAY` is 24:00, the end of the day), local wall-clock
    time in the policy's time zone."""

    days: frozenset[int]
    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.days:
            raise ValueError("a calling window needs at least one day")
        if not all(isinstance(d, int) and 0 <= d <= 6 for d in self.days):
            raise ValueError(f"window days must be 0 (Monday) .. 6 (Sunday), got {self.days}")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("window times are local wall-clock times: give them no tzinfo")
        if self.end <= self.start:
            raise ValueError(
                f"window end {_hhmm(self.end)} is not after its start {_hhmm(self.start)}"
            )

    def hours(self) -> str:
        """``10:00–20:00``."""
        return f"{_hhmm(self.start)}–{_hhmm(self.end)}"

    def __str__(self) -> str:
        """The window in :func:`parse_windows` syntax, e.g. ``mon-fri 10:00-20:00``."""
        return f"{_format_days(self.days)} {_hhmm(self.start)}-{_hhmm(self.end)}"


def _default_windows() -> tuple[Window, ...]:
    return (Window(frozenset(range(5)), time(10), time(20)),)


def _default_retry_after() -> Mapping[str, timedelta]:
    return MappingProxyType(
        {
            Outcome.BUSY: timedelta(minutes=30),
            Outcome.NO_ANSWER: timedelta(hours=2),
            Outcome.FAILED: timedelta(hours=1),
            Outcome.INTERRUPTED: timedelta(minutes=15),
        }
    )


@dataclass(frozen=True)
class CallingPolicy:
    """When and how often a campaign may call one number.

    ``retry_after`` gives the spacing after each retryable outcome (an outcome missing from
    it is not retried); ``min_gap`` is the least time between two attempts on the same
    number whatever the outcome; ``cross_campaign_daily_cap`` allows a number to be called by
    at most one campaign a day."""

    timezone: str = "Europe/Helsinki"
    windows: tuple[Window, ...] = field(default_factory=_default_windows)
    allow_holidays: bool = False
    max_attempts: int = 3
    retry_after: Mapping[str, timedelta] = field(default_factory=_default_retry_after, hash=False)
    min_gap: timedelta = timedelta(minutes=10)
    cross_campaign_daily_cap: bool = True

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        if not all(isinstance(w, Window) for w in self.windows):
            raise ValueError("windows must be Window objects (see parse_windows)")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.min_gap < timedelta(0):
            raise ValueError(f"min_gap must not be negative, got {self.min_gap}")
        spacing: dict[str, timedelta] = {}
        for name, delay in self.retry_after.items():
            outcome = _outcome(name)
            if outcome not in RETRYABLE:
                raise ValueError(f"retry_after[{name!r}]: {name} is final and never retried")
            if delay <= timedelta(0):
                raise ValueError(f"retry_after[{name!r}] must be positive, got {delay}")
            spacing[outcome.value] = delay
        object.__setattr__(self, "retry_after", MappingProxyType(spacing))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Retry:
    """Call the number again, not before ``due_at`` (UTC; inside a calling window)."""

    due_at: datetime


@dataclass(frozen=True)
class Final:
    """No more attempts on this number in this campaign, because of ``reason``."""

    reason: str


Decision: TypeAlias = Retry | Final


# --------------------------------------------------------------------------------------------
# Holidays


@functools.lru_cache(maxsize=64)
def finnish_non_calling_days(year: int) -> Mapping[date, str]:
    """Finnish public holidays of ``year`` plus the eves added by this module, by date, with
    their Finnish names (e.g. ``date(2026, 12, 6): "Itsenäisyyspäivä"``)."""
    calendar = holidays.country_holidays("FI", years=year, language="fi")
    days: dict[date, str] = dict(calendar.items())
    midsummer_eve = date(year, 6, 19) + timedelta(days=(4 - date(year, 6, 19).weekday()) % 7)
    for day, name in (
        (midsummer_eve, "Juhannusaatto"),
        (date(year, 12, 24), "Jouluaatto"),
        (date(year, 12, 31), "Uudenvuodenaatto"),
    ):
        days.setdefault(day, name)
    return MappingProxyType(dict(sorted(days.items())))


def holiday_name(day: date) -> str | None:
    """The Finnish name of the public holiday (or added eve) on ``day``, else None."""
    return finnish_non_calling_days(day.year).get(day)


# --------------------------------------------------------------------------------------------
# Windows


def in_window(policy: CallingPolicy, at: datetime) -> bool:
    """Whether ``at`` (aware, any zone) lies inside one of the policy's calling windows."""
    return window_reason(policy, at) is None


def window_reason(policy: CallingPolicy, at: datetime) -> str | None:
    """Why calls may not be placed at ``at``, or None when they may."""
    local = _local(policy, at)
    if not policy.allow_holidays:
        name = holiday_name(local.date())
        if name is not None:
            return f"Finnish public holiday: {name}"
    if not policy.windows:
        return "no calling windows configured"
    todays = sorted(
        (w for w in policy.windows if local.weekday() in w.days), key=lambda w: (w.start, w.end)
    )
    if not todays:
        if local.weekday() >= 5:
            return "weekend"
        return f"no calling on {_DAY_NAMES[local.weekday()]}s"
    now = local.time()
    if any(w.start <= now and (now < w.end or w.end == END_OF_DAY) for w in todays):
        return None
    hours = ", ".join(w.hours() for w in todays)
    return f"outside calling hours {hours} {policy.timezone}"


def next_window_start(policy: CallingPolicy, after: datetime) -> datetime | None:
    """The earliest instant at or after ``after`` that is inside a calling window; None when
    there is none within :data:`MAX_SEARCH_DAYS` days.

    The result is in UTC: an aware datetime in a zone with DST compares and subtracts by wall
    clock when both sides share the zone and is never equal to another zone's datetime in the
    repeated autumn hour (PEP 495), so instants are handed out in UTC; convert for display."""
    zone = policy.zone
    local = _local(policy, after)
    if in_window(policy, local):
        return after.astimezone(UTC)
    # Compare instants in UTC: datetimes sharing a tzinfo compare by wall clock, ignoring fold.
    earliest = after.astimezone(UTC)
    for offset in range(MAX_SEARCH_DAYS + 1):
        day = local.date() + timedelta(days=offset)
        for candidate in sorted(_window_starts(policy, day, zone)):
            if candidate >= earliest and in_window(policy, candidate):
                return candidate
    return None


def _window_starts(policy: CallingPolicy, day: date, zone: ZoneInfo) -> Iterator[datetime]:
    """The instants (in UTC) at which the windows open on ``day``. A start inside a
    spring-forward gap maps (fold=0) to the first instant after the gap; a start inside the
    repeated autumn hour yields both of its instants."""
    if not policy.allow_holidays and holiday_name(day) is not None:
        return
    for window in policy.windows:
        if day.weekday() in window.days:
            for fold in (0, 1):
                wall = datetime.combine(day, window.start, tzinfo=zone).replace(fold=fold)
                yield wall.astimezone(UTC)


# --------------------------------------------------------------------------------------------
# Retries and the dial-time gate


def decide_next(
    policy: CallingPolicy, *, outcome: str, attempts_made: int, ended_at: datetime
) -> Decision:
    """What to do with a number after an attempt ended at ``ended_at`` with ``outcome``;
    ``attempts_made`` counts that attempt. A retry is always due inside a calling window."""
    result = _outcome(outcome)
    if attempts_made < 1:
        raise ValueError(f"attempts_made counts the attempt that ended; got {attempts_made}")
    _local(policy, ended_at)
    if result in _FINAL_REASONS:
        return Final(_FINAL_REASONS[result])
    if attempts_made >= policy.max_attempts:
        return Final(f"attempts cap {policy.max_attempts} reached")
    spacing = policy.retry_after.get(result.value)
    if spacing is None:
        return Final(f"{result.value}: no retry configured for this outcome")
    # Elapsed time is added in UTC: wall-clock arithmetic would be an hour off across DST.
    earliest = ended_at.astimezone(UTC) + max(spacing, policy.min_gap)
    due = next_window_start(policy, earliest)
    if due is None:
        return Final(f"no calling window in the next {MAX_SEARCH_DAYS} days")
    return Retry(due)


@dataclass(frozen=True)
class Gate:
    """The dial-time gate's answer. ``rule`` None: dial now. Otherwise the rule that blocks
    the call (``do_not_call``, ``unallocated``, ``attempts_cap``, ``window``, ``min_gap``,
    ``daily_cap``), the reason in words, and ``not_before``: when the call may be placed
    (always inside a calling window), or None when it never may."""

    rule: str | None = None
    reason: str | None = None
    not_before: datetime | None = None

    @property
    def dial_now(self) -> bool:
        return self.rule is None


def day_start(policy: CallingPolicy, at: datetime) -> datetime:
    """Midnight of ``at``'s day in the campaign's zone (an aware datetime in UTC)."""
    local = _local(policy, at)
    midnight = datetime.combine(local.date(), time(0), tzinfo=local.tzinfo)
    return midnight.astimezone(UTC)


def _in_window_from(policy: CallingPolicy, at: datetime) -> datetime | None:
    return at if in_window(policy, at) else next_window_start(policy, at)


def dial_gate(
    policy: CallingPolicy,
    *,
    now: datetime,
    attempts_made: int,
    last_attempt_at: datetime | None,
    opted_out: bool,
    unallocated_before: bool,
    called_today_by_other_campaign: bool,
) -> Gate:
    """The gate run immediately before each origination: which rule (if any) blocks the
    call, and when it may be dialled instead. ``attempts_made`` counts earlier attempts on
    this number in this campaign."""
    _local(policy, now)
    if opted_out:
        return Gate("do_not_call", "on the do-not-call list")
    if unallocated_before:
        return Gate("unallocated", "number known to be unallocated")
    if attempts_made >= policy.max_attempts:
        return Gate("attempts_cap", f"attempts cap {policy.max_attempts} reached")
    reason = window_reason(policy, now)
    if reason is not None:
        return Gate("window", reason, next_window_start(policy, now))
    if last_attempt_at is not None:
        _local(policy, last_attempt_at)
        earliest = last_attempt_at.astimezone(UTC) + policy.min_gap
        if now.astimezone(UTC) < earliest:
            return Gate(
                "min_gap",
                f"too soon after the last attempt (at least {_duration(policy.min_gap)} "
                "between attempts on one number)",
                _in_window_from(policy, earliest),
            )
    if policy.cross_campaign_daily_cap and called_today_by_other_campaign:
        # Tomorrow, from 01:00 local (not at midnight sharp), in a window.
        tomorrow = _local(policy, day_start(policy, now) + timedelta(hours=25))
        at = datetime.combine(tomorrow.date(), time(1), tzinfo=ZoneInfo(policy.timezone))
        return Gate(
            "daily_cap",
            "already called today by another campaign",
            _in_window_from(policy, at.astimezone(UTC)),
        )
    return Gate()


# --------------------------------------------------------------------------------------------
# Pacing


class Pacer:
    """Calls-per-second pacing (a token bucket holding up to ``burst`` calls, refilled at
    ``rate`` per second) plus a cap of ``max_concurrent`` active calls.

    Pure: the caller passes a monotonic clock reading and the number of active calls."""

    _EPSILON = 1e-9  # tolerance for the float sum of refills

    def __init__(self, rate: float, burst: int, max_concurrent: int) -> None:
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of calls per second, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {max_concurrent}")
        self.rate = float(rate)
        self.burst = burst
        self.max_concurrent = max_concurrent
        self._tokens = float(burst)
        self._last: float | None = None

    def take(self, now_monotonic: float, active_calls: int) -> bool:
        """Claim a start for one call now; False (and nothing claimed) when pacing or the
        concurrency cap forbids it."""
        self._refill(now_monotonic)
        if active_calls >= self.max_concurrent or self._tokens < 1 - self._EPSILON:
            return False
        self._tokens = max(0.0, self._tokens - 1)
        return True

    def available(self, now_monotonic: float, active_calls: int) -> int:
        """How many calls may start now (nothing is claimed)."""
        self._refill(now_monotonic)
        room = self.max_concurrent - active_calls
        return max(0, min(room, int(self._tokens + self._EPSILON)))

    def wait_time(self, now_monotonic: float, active_calls: int) -> float:
        """Seconds until a call may start (0 when one may start now); ``math.inf`` while the
        concurrency cap is reached, since only a call ending can free a slot."""
        if active_calls >= self.max_concurrent:
            return math.inf
        self._refill(now_monotonic)
        missing = 1 - self._tokens
        return 0.0 if missing <= self._EPSILON else missing / self.rate

    def _refill(self, now: float) -> None:
        if self._last is None:
            self._last = now
        elif now > self._last:  # a clock reading from the past refills nothing
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
            self._last = now


# --------------------------------------------------------------------------------------------
# Parsing windows (CLI)

_DAY_WORDS: dict[str, int] = {}
for _index, _names in enumerate(
    (
        ("mon", "monday", "ma", "må"),
        ("tue", "tuesday", "ti"),
        ("wed", "wednesday", "ke", "on"),
        ("thu", "thursday", "to"),
        ("fri", "friday", "pe", "fr"),
        ("sat", "saturday", "la", "lö"),
        ("sun", "sunday", "su", "sö"),
    )
):
    for _name in _names:
        _DAY_WORDS[_name] = _index
_TIME = re.compile(r"(\d{1,2})(?::(\d{2}))?")
_DAY_HELP = "use mon..sun (or Finnish ma..su, Swedish må..sö), ranges like mon-fri"


def parse_windows(spec: str) -> tuple[Window, ...]:
    """Windows from text such as ``"mon-fri 10:00-20:00"`` or ``"mon-fri 10-20, sat 10-14"``.

    Items are separated by ``,`` or ``;``; each is one or more day groups (a day, a range
    ``mon-fri`` — which may wrap, ``fri-mon`` — or days joined with ``+``) followed by one or
    more hour ranges (``10-20``, ``9:30-12``; an end of ``24`` or ``24:00`` is midnight at the
    end of the day, so ``0-24`` is the whole day). Raises ValueError saying what is wrong."""
    if not spec.strip():
        raise ValueError("empty calling-window spec; expected e.g. 'mon-fri 10:00-20:00'")
    windows: list[Window] = []
    for raw_item in re.split(r"[,;]", spec):
        item = re.sub(r"\s*[-\u2013]\s*", "-", raw_item.strip().lower())
        if not item:
            raise ValueError(f"empty window in {spec!r} (a stray ',' or ';'?)")
        days: set[int] = set()
        hours: list[tuple[time, time]] = []
        for token in item.split():
            if token[0].isdigit():
                hours.append(_parse_hours(token, item))
            elif hours:
                raise ValueError(f"days must come before hours in {item!r}")
            else:
                days |= _parse_days(token, item)
        if not days:
            raise ValueError(f"no days in {item!r}; start it with days such as 'mon-fri'")
        if not hours:
            raise ValueError(f"no hours in {item!r}; add hours such as '10-20'")
        for start, end in hours:
            if end <= start:
                raise ValueError(
                    f"in {item!r}: end {_hhmm(end)} is not after start {_hhmm(start)}"
                    " (windows cannot run past midnight; end at 24 for midnight)"
                )
            windows.append(Window(frozenset(days), start, end))
    return tuple(windows)


def _parse_days(token: str, item: str) -> set[int]:
    days: set[int] = set()
    for group in token.split("+"):
        ends = group.split("-")
        if len(ends) > 2 or not all(ends):
            raise ValueError(f"bad day range {group!r} in {item!r}; {_DAY_HELP}")
        try:
            first, last = (_DAY_WORDS[ends[0]], _DAY_WORDS[ends[-1]])
        except KeyError as exc:
            raise ValueError(f"unknown day {exc.args[0]!r} in {item!r}; {_DAY_HELP}") from None
        span = (last - first) % 7
        days.update((first + step) % 7 for step in range(span + 1))
    return days


def _parse_hours(token: str, item: str) -> tuple[time, time]:
    ends = token.split("-")
    if len(ends) != 2:
        raise ValueError(f"bad hours {token!r} in {item!r}; write a range such as '10-20'")
    return _parse_time(ends[0], item), _parse_time(ends[1], item, end=True)


def _parse_time(text: str, item: str, end: bool = False) -> time:
    match = _TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"bad time {text!r} in {item!r}; write 10, 10:00 or 9:30")
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if end and hour == 24 and minute == 0:
        return END_OF_DAY  # 24 / 24:00: to the end of the day
    if hour > 23 or minute > 59:
        limit = "00:00..24:00" if end else "00:00..23:59; 24:00 only ends a window"
        raise ValueError(f"time {text!r} in {item!r} is out of range ({limit})")
    return time(hour, minute)


# --------------------------------------------------------------------------------------------
# Helpers


def _outcome(name: str) -> Outcome:
    """The outcome of an attempt whose call was placed (the rules decide on nothing else)."""
    try:
        outcome: Outcome | None = Outcome(name)
    except ValueError:
        outcome = None
    if outcome is None or outcome not in PLACED_OUTCOMES:
        known = ", ".join(sorted(o.value for o in PLACED_OUTCOMES))
        raise ValueError(
            f"unknown outcome {name!r} for an attempt whose call was placed; "
            f"expected one of {known}"
        )
    return outcome


def _local(policy: CallingPolicy, at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()}: pass an aware datetime")
    return at.astimezone(policy.zone)


def _hhmm(value: time) -> str:
    if value == END_OF_DAY:
        return "24:00"
    return value.strftime("%H:%M:%S" if value.second or value.microsecond else "%H:%M")


def _duration(value: timedelta) -> str:
    minutes, seconds = divmod(int(value.total_seconds()), 60)
    return f"{minutes} min" if not seconds else f"{minutes} min {seconds} s"


def _format_days(days: frozenset[int]) -> str:
    """``mon-fri``, ``mon-wed+fri``, ``sat-sun`` (contiguous runs, Monday first)."""
    runs: list[str] = []
    ordered = sorted(days)
    start = prev = ordered[0]
    for day in [*ordered[1:], None]:
        if day is not None and day == prev + 1:
            prev = day
            continue
        runs.append(_DAY_ABBR[start] if start == prev else f"{_DAY_ABBR[start]}-{_DAY_ABBR[prev]}")
        if day is not None:
            start = prev = day
    return "+".join(runs)
