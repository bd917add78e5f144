from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from ivr.campaigns.rules import (
    END_OF_DAY,
    CallingPolicy,
    Final,
    Gate,
    Pacer,
    Retry,
    Window,
    day_start,
    decide_next,
    dial_gate,
    finnish_non_calling_days,
    holiday_name,
    in_window,
    next_window_start,
    parse_windows,
    window_reason,
)
from ivr.outcome import PLACED_OUTCOMES, Outcome

HEL = ZoneInfo("Europe/Helsinki")
NYC = ZoneInfo("America/New_York")
EVERY_DAY = frozenset(range(7))

PILOT = CallingPolicy()  # Uusikaupunki: Mon-Fri 10:00-20:00 Europe/Helsinki, 3 attempts
DAILY = CallingPolicy(windows=(Window(EVERY_DAY, time(10), time(20)),))
ROUND_THE_CLOCK = CallingPolicy(windows=(Window(EVERY_DAY, time(0), time(23, 59, 59)),))


def hel(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, fold: int = 0) -> datetime:
    """Helsinki wall-clock time; ``fold=1`` picks the second 03:xx of the autumn change."""
    return datetime(y, mo, d, h, mi, s, tzinfo=HEL, fold=fold)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# Windows


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        # Monday 7 Dec 2026, local time (EET, UTC+2)
        (hel(2026, 12, 7, 9, 59), False),
        (hel(2026, 12, 7, 9, 59, 59), False),
        (hel(2026, 12, 7, 10, 0), True),
        (hel(2026, 12, 7, 19, 59), True),
        (hel(2026, 12, 7, 19, 59, 59), True),
        (hel(2026, 12, 7, 20, 0), False),
        (hel(2026, 12, 7, 3, 0), False),  # the 3 am call
        # the same instants given in UTC and in New York time
        (utc(2026, 12, 7, 7, 59), False),
        (utc(2026, 12, 7, 8, 0), True),
        (utc(2026, 12, 7, 17, 59), True),
        (utc(2026, 12, 7, 18, 0), False),
        (datetime(2026, 12, 7, 3, 0, tzinfo=NYC), True),  # 10:00 in Helsinki
        (datetime(2026, 12, 7, 12, 59, tzinfo=NYC), True),  # 19:59 in Helsinki
        (datetime(2026, 12, 7, 13, 0, tzinfo=NYC), False),  # 20:00 in Helsinki
        (datetime(2026, 12, 6, 19, 0, tzinfo=NYC), False),  # Sunday in NY, 2 am Monday here
        # summer (EEST, UTC+3): the same UTC hour is a different local hour
        (utc(2026, 6, 10, 7, 0), True),
        (utc(2026, 6, 10, 6, 59), False),
        (utc(2026, 6, 10, 16, 59), True),
        (utc(2026, 6, 10, 17, 0), False),
        # weekend and holidays
        (hel(2026, 12, 12, 12, 0), False),  # Saturday
        (hel(2026, 12, 13, 12, 0), False),  # Sunday
        (hel(2026, 5, 1, 12, 0), False),  # Vappu, a Friday
        (hel(2026, 12, 24, 12, 0), False),  # Christmas Eve, a Thursday
        (hel(2026, 6, 19, 12, 0), False),  # Midsummer Eve, a Friday
        (hel(2026, 4, 3, 12, 0), False),  # Good Friday
        (hel(2026, 12, 31, 12, 0), False),  # New Year's Eve, a Thursday (added here)
        (hel(2026, 12, 30, 12, 0), True),  # an ordinary Wednesday
    ],
)
def test_pilot_schedule(at: datetime, inside: bool) -> None:
    assert in_window(PILOT, at) is inside
    assert (window_reason(PILOT, at) is None) is inside


@pytest.mark.parametrize(
    ("policy", "at", "reason"),
    [
        (PILOT, hel(2026, 12, 7, 9, 59), "outside calling hours 10:00–20:00 Europe/Helsinki"),
        (PILOT, utc(2026, 12, 7, 18, 0), "outside calling hours 10:00–20:00 Europe/Helsinki"),
        (PILOT, hel(2026, 12, 12, 12), "weekend"),
        (PILOT, hel(2026, 12, 13, 12), "weekend"),
        # 6 Dec 2026 is a Sunday: the holiday is named even where Sundays are allowed
        (PILOT, hel(2026, 12, 6, 12), "Finnish public holiday: Itsenäisyyspäivä"),
        (DAILY, hel(2026, 12, 6, 12), "Finnish public holiday: Itsenäisyyspäivä"),
        (PILOT, hel(2026, 5, 1, 12), "Finnish public holiday: Vappu"),
        (PILOT, hel(2026, 12, 24, 12), "Finnish public holiday: Jouluaatto"),
        (PILOT, hel(2026, 6, 19, 12), "Finnish public holiday: Juhannusaatto"),
        (PILOT, hel(2026, 12, 31, 12), "Finnish public holiday: Uudenvuodenaatto"),
        (
            CallingPolicy(windows=parse_windows("mon-fri 10-12 13-17, sat 10-14")),
            hel(2026, 12, 7, 12, 30),
            "outside calling hours 10:00–12:00, 13:00–17:00 Europe/Helsinki",
        ),
        (CallingPolicy(windows=parse_windows("mon+wed 10-20")), hel(2026, 12, 9, 12), None),
        (
            CallingPolicy(windows=parse_windows("mon+wed 10-20")),
            hel(2026, 12, 10, 12),
            "no calling on Thursdays",
        ),
        (CallingPolicy(windows=()), hel(2026, 12, 7, 12), "no calling windows configured"),
        (PILOT, hel(2026, 12, 7, 12), None),
    ],
)
def test_window_reason(policy: CallingPolicy, at: datetime, reason: str | None) -> None:
    assert window_reason(policy, at) == reason
    assert in_window(policy, at) is (reason is None)


def test_mon_wed_policy_allows_only_those_days() -> None:
    policy = CallingPolicy(windows=parse_windows("mon+wed 10-20"))
    allowed = [in_window(policy, hel(2026, 12, 7 + d, 12)) for d in range(7)]
    assert allowed == [True, False, True, False, False, False, False]


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 12, 6),
        date(2026, 5, 1),
        date(2026, 12, 24),
        date(2026, 6, 19),
        date(2026, 12, 31),
        date(2026, 1, 6),
    ],
)
def test_allow_holidays_opens_holidays(day: date) -> None:
    at = datetime.combine(day, time(12), tzinfo=HEL)
    assert not in_window(DAILY, at)
    assert in_window(replace(DAILY, allow_holidays=True), at)


def test_finnish_calendar_2026() -> None:
    assert dict(finnish_non_calling_days(2026)) == {
        date(2026, 1, 1): "Uudenvuodenpäivä",
        date(2026, 1, 6): "Loppiainen",
        date(2026, 4, 3): "Pitkäperjantai",
        date(2026, 4, 5): "Pääsiäispäivä",
        date(2026, 4, 6): "Toinen pääsiäispäivä",
        date(2026, 5, 1): "Vappu",
        date(2026, 5, 14): "Helatorstai",
        date(2026, 5, 24): "Helluntaipäivä",
        date(2026, 6, 19): "Juhannusaatto",
        date(2026, 6, 20): "Juhannuspäivä",
        date(2026, 10, 31): "Pyhäinpäivä",
        date(2026, 12, 6): "Itsenäisyyspäivä",
        date(2026, 12, 24): "Jouluaatto",
        date(2026, 12, 25): "Joulupäivä",
        date(2026, 12, 26): "Tapaninpäivä",
        date(2026, 12, 31): "Uudenvuodenaatto",
    }


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2025, 6, 20), "Juhannusaatto"),  # Midsummer Eve: the Friday in 19..25 June
        (date(2027, 6, 25), "Juhannusaatto"),
        (date(2028, 6, 23), "Juhannusaatto"),
        (date(2028, 6, 24), "Juhannuspäivä"),
        (date(2030, 12, 24), "Jouluaatto"),
        (date(2030, 12, 31), "Uudenvuodenaatto"),
        (date(2027, 3, 26), "Pitkäperjantai"),
        (date(2028, 6, 22), None),
        (date(2026, 12, 23), None),
        (date(2026, 12, 30), None),
    ],
)
def test_holiday_name(day: date, name: str | None) -> None:
    assert holiday_name(day) == name


# DST in Helsinki 2026: Sunday 29 March 03:00 EET -> 04:00 EEST (01:00 UTC);
# Sunday 25 October 04:00 EEST -> 03:00 EET (01:00 UTC).
@pytest.mark.parametrize(
    ("at", "inside"),
    [
        (utc(2026, 3, 28, 7, 59), False),  # Saturday 09:59 EET
        (utc(2026, 3, 28, 8, 0), True),  # Saturday 10:00 EET
        (utc(2026, 3, 29, 6, 59), False),  # Sunday 09:59 EEST
        (utc(2026, 3, 29, 7, 0), True),  # Sunday 10:00 EEST (a fixed +2 offset says 09:00)
        (utc(2026, 3, 29, 16, 59), True),  # 19:59 EEST
        (utc(2026, 3, 29, 17, 0), False),  # 20:00 EEST (a fixed +2 offset says 19:00)
        (utc(2026, 10, 25, 7, 0), False),  # Sunday 09:00 EET (a fixed +3 offset says 10:00)
        (utc(2026, 10, 25, 7, 59), False),  # 09:59 EET
        (utc(2026, 10, 25, 8, 0), True),  # 10:00 EET
        (utc(2026, 10, 25, 17, 59), True),  # 19:59 EET
        (utc(2026, 10, 25, 18, 0), False),  # 20:00 EET
        (utc(2026, 10, 26, 8, 0), True),  # Monday 10:00 EET
    ],
)
def test_dst_days(at: datetime, inside: bool) -> None:
    assert in_window(DAILY, at) is inside


NIGHT = CallingPolicy(windows=(Window(EVERY_DAY, time(3), time(5)),))
NIGHT_HALF = CallingPolicy(windows=(Window(EVERY_DAY, time(3, 30), time(5)),))


@pytest.mark.parametrize(
    ("policy", "at", "inside"),
    [
        # 29 March: 03:00-04:00 does not exist, the window is 04:00-05:00 EEST
        (NIGHT, utc(2026, 3, 29, 0, 59, 59), False),  # 02:59:59 EET
        (NIGHT, utc(2026, 3, 29, 1, 0), True),  # 04:00 EEST
        (NIGHT, utc(2026, 3, 29, 1, 59), True),  # 04:59 EEST
        (NIGHT, utc(2026, 3, 29, 2, 0), False),  # 05:00 EEST
        # 25 October: 03:00-04:00 happens twice, both are inside
        (NIGHT, utc(2026, 10, 25, 0, 0), True),  # 03:00 EEST
        (NIGHT, utc(2026, 10, 25, 1, 0), True),  # 03:00 EET
        (NIGHT, utc(2026, 10, 25, 2, 59), True),  # 04:59 EET
        (NIGHT, utc(2026, 10, 25, 3, 0), False),  # 05:00 EET
        (NIGHT_HALF, utc(2026, 10, 25, 0, 59), True),  # 03:59 EEST
        (NIGHT_HALF, utc(2026, 10, 25, 1, 0), False),  # 03:00 EET, the second time round
        (NIGHT_HALF, utc(2026, 10, 25, 1, 30), True),  # 03:30 EET
    ],
)
def test_dst_transition_hours(policy: CallingPolicy, at: datetime, inside: bool) -> None:
    assert in_window(policy, at) is inside


@pytest.mark.parametrize(
    ("policy", "after", "expected"),
    [
        # inside already: returned as is
        (PILOT, hel(2026, 12, 7, 12, 34, 56), utc(2026, 12, 7, 10, 34, 56)),
        (PILOT, hel(2026, 12, 7, 9, 0), utc(2026, 12, 7, 8, 0)),
        (PILOT, hel(2026, 12, 7, 20, 0), utc(2026, 12, 8, 8, 0)),
        (PILOT, hel(2026, 12, 11, 20, 0), utc(2026, 12, 14, 8, 0)),  # Friday -> Monday
        (PILOT, hel(2026, 12, 23, 20, 0), utc(2026, 12, 28, 8, 0)),  # over Christmas
        (PILOT, hel(2026, 12, 30, 20, 0), utc(2027, 1, 4, 8, 0)),  # New Year's Eve and Day
        (PILOT, hel(2026, 4, 2, 20, 0), utc(2026, 4, 7, 7, 0)),  # Easter, into EEST
        (PILOT, datetime(2026, 12, 7, 23, 0, tzinfo=NYC), utc(2026, 12, 8, 8, 0)),
        # across DST: 10:00 local is 07:00 UTC in summer, 08:00 UTC in winter
        (DAILY, hel(2026, 3, 28, 20, 0), utc(2026, 3, 29, 7, 0)),
        (DAILY, hel(2026, 10, 24, 20, 0), utc(2026, 10, 25, 8, 0)),
        # a window opening inside the spring gap opens when the gap ends
        (NIGHT, utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 0)),
        # a window opening inside the repeated autumn hour: the first time round ...
        (NIGHT_HALF, utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 0, 30)),
        # ... and, once that has passed, the second time round
        (NIGHT_HALF, utc(2026, 10, 25, 1, 0), utc(2026, 10, 25, 1, 30)),
        (NIGHT_HALF, utc(2026, 10, 25, 3, 0), utc(2026, 10, 26, 1, 30)),
    ],
)
def test_next_window_start(policy: CallingPolicy, after: datetime, expected: datetime) -> None:
    start = next_window_start(policy, after)
    assert start == expected
    assert start is not None and start.tzinfo is UTC  # instants are handed out in UTC


def test_next_window_start_none_when_never() -> None:
    assert next_window_start(CallingPolicy(windows=()), hel(2026, 12, 7, 12)) is None


@pytest.mark.parametrize("policy", [PILOT, DAILY, NIGHT_HALF])
def test_next_window_start_is_earliest_inside_instant(policy: CallingPolicy) -> None:
    t = utc(2026, 10, 20, 0, 0)
    while t < utc(2026, 11, 3):
        start = next_window_start(policy, t)
        assert start is not None and start >= t
        assert in_window(policy, start)
        if start != t:
            assert not in_window(policy, start - timedelta(seconds=1))
        t += timedelta(minutes=37)


@pytest.mark.parametrize(
    "call",
    [
        lambda: in_window(PILOT, datetime(2026, 12, 7, 12)),
        lambda: window_reason(PILOT, datetime(2026, 12, 7, 12)),
        lambda: next_window_start(PILOT, datetime(2026, 12, 7, 12)),
        lambda: decide_next(PILOT, outcome="busy", attempts_made=1, ended_at=datetime(2026, 1, 5)),
    ],
)
def test_naive_datetimes_are_refused(call: object) -> None:
    assert callable(call)
    with pytest.raises(ValueError, match="naive"):
        call()


# --------------------------------------------------------------------------------------------
# Retries

MONDAY_NOON = hel(2026, 12, 7, 12, 0)


@pytest.mark.parametrize(
    ("outcome", "attempts", "ended_at", "expected"),
    [
        (Outcome.COMPLETED, 1, MONDAY_NOON, Final("completed")),
        (Outcome.PARTIAL, 1, MONDAY_NOON, Final("partial answer: not called again")),
        (Outcome.OPTED_OUT, 1, MONDAY_NOON, Final("opted out: never called again")),
        ("declined", 1, MONDAY_NOON, Final("declined: no more attempts in this campaign")),
        ("unallocated", 1, MONDAY_NOON, Final("unallocated number: never called again")),
        # retryable outcomes: spacing by outcome
        ("busy", 1, MONDAY_NOON, Retry(hel(2026, 12, 7, 12, 30))),
        ("no_answer", 1, MONDAY_NOON, Retry(hel(2026, 12, 7, 14, 0))),
        ("failed", 1, MONDAY_NOON, Retry(hel(2026, 12, 7, 13, 0))),
        ("interrupted", 2, MONDAY_NOON, Retry(hel(2026, 12, 7, 12, 15))),
        # cap
        ("busy", 3, MONDAY_NOON, Final("attempts cap 3 reached")),
        ("no_answer", 4, MONDAY_NOON, Final("attempts cap 3 reached")),
        ("declined", 3, MONDAY_NOON, Final("declined: no more attempts in this campaign")),
        # a retry that would fall outside the window moves to the next window start
        ("busy", 1, hel(2026, 12, 10, 19, 50), Retry(hel(2026, 12, 11, 10, 0))),  # Thu
        ("busy", 1, hel(2026, 12, 11, 19, 50), Retry(hel(2026, 12, 14, 10, 0))),  # Fri
        ("no_answer", 1, hel(2026, 12, 7, 18, 30), Retry(hel(2026, 12, 8, 10, 0))),
        ("busy", 1, hel(2026, 12, 23, 19, 50), Retry(hel(2026, 12, 28, 10, 0))),  # Christmas
        ("busy", 1, hel(2026, 4, 30, 19, 45), Retry(hel(2026, 5, 4, 10, 0))),  # Vappu Fri
        ("busy", 1, utc(2026, 12, 7, 17, 50), Retry(hel(2026, 12, 8, 10, 0))),  # UTC input
        # ended outside the window (a late answer): still lands inside
        ("failed", 1, hel(2026, 12, 7, 3, 0), Retry(hel(2026, 12, 7, 10, 0))),
    ],
)
def test_decide_next(
    outcome: str, attempts: int, ended_at: datetime, expected: Retry | Final
) -> None:
    decision = decide_next(PILOT, outcome=outcome, attempts_made=attempts, ended_at=ended_at)
    assert decision == expected
    if isinstance(decision, Retry):
        assert decision.due_at.tzinfo is UTC


def test_retry_spacing_is_elapsed_time_across_dst() -> None:
    # 02:30 EET on 29 March + 2 h is 05:30 EEST (02:30 UTC), not the wall-clock 04:30.
    decision = decide_next(
        ROUND_THE_CLOCK, outcome="no_answer", attempts_made=1, ended_at=hel(2026, 3, 29, 2, 30)
    )
    assert decision == Retry(utc(2026, 3, 29, 2, 30))


@pytest.mark.parametrize(
    ("policy", "outcome", "expected"),
    [
        (
            replace(PILOT, retry_after={"no_answer": timedelta(hours=2)}),
            "busy",
            Final("busy: no retry configured for this outcome"),
        ),
        (CallingPolicy(windows=()), "busy", Final("no calling window in the next 400 days")),
        (replace(PILOT, min_gap=timedelta(hours=1)), "interrupted", Retry(hel(2026, 12, 7, 13))),
        (replace(PILOT, max_attempts=1), "busy", Final("attempts cap 1 reached")),
    ],
)
def test_decide_next_policy_variants(
    policy: CallingPolicy, outcome: str, expected: Retry | Final
) -> None:
    assert decide_next(policy, outcome=outcome, attempts_made=1, ended_at=MONDAY_NOON) == expected


@pytest.mark.parametrize("outcome", sorted(o.value for o in PLACED_OUTCOMES))
def test_a_retry_is_never_outside_the_window(outcome: str) -> None:
    ended_at = utc(2026, 12, 18, 0, 0)
    while ended_at < utc(2027, 1, 8):
        decision = decide_next(PILOT, outcome=outcome, attempts_made=1, ended_at=ended_at)
        if isinstance(decision, Retry):
            assert in_window(PILOT, decision.due_at), (outcome, ended_at, decision)
            assert decision.due_at - ended_at >= PILOT.min_gap
        ended_at += timedelta(minutes=23)


@pytest.mark.parametrize(("max_attempts", "expected_attempts"), [(1, 1), (3, 3), (5, 5)])
def test_a_number_that_is_always_busy_gets_exactly_the_cap(
    max_attempts: int, expected_attempts: int
) -> None:
    policy = replace(PILOT, max_attempts=max_attempts)
    now = hel(2026, 12, 11, 19, 40)  # Friday evening
    made = 0
    while True:
        assert (
            dial_gate(
                policy,
                now=now,
                attempts_made=made,
                last_attempt_at=None,
                opted_out=False,
                unallocated_before=False,
                called_today_by_other_campaign=False,
            ).reason
            is None
        )
        made += 1
        decision = decide_next(policy, outcome="busy", attempts_made=made, ended_at=now)
        if isinstance(decision, Final):
            break
        now = decision.due_at
    assert made == expected_attempts
    assert decision == Final(f"attempts cap {max_attempts} reached")


@pytest.mark.parametrize(
    ("outcome", "attempts", "error"),
    [
        ("answered", 1, "unknown outcome 'answered' for an attempt whose call was placed"),
        ("skipped", 1, "unknown outcome 'skipped'"),
        ("transferred", 1, "unknown outcome 'transferred'"),
        ("vanished", 1, "unknown outcome 'vanished'"),
        ("busy", 0, "attempts_made"),
    ],
)
def test_decide_next_rejects_bad_input(outcome: str, attempts: int, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        decide_next(PILOT, outcome=outcome, attempts_made=attempts, ended_at=MONDAY_NOON)


# --------------------------------------------------------------------------------------------
# The dial-time gate

GATE_OK: Mapping[str, object] = {
    "now": MONDAY_NOON,
    "attempts_made": 1,
    "last_attempt_at": hel(2026, 12, 7, 11, 0),
    "opted_out": False,
    "unallocated_before": False,
    "called_today_by_other_campaign": False,
}


@pytest.mark.parametrize(
    ("policy", "changes", "reason"),
    [
        (PILOT, {}, None),
        (PILOT, {"attempts_made": 0, "last_attempt_at": None}, None),
        (PILOT, {"opted_out": True}, "on the do-not-call list"),
        # the do-not-call list wins over every other reason
        (
            PILOT,
            {"opted_out": True, "unallocated_before": True, "now": hel(2026, 12, 6, 3)},
            "on the do-not-call list",
        ),
        (PILOT, {"unallocated_before": True}, "number known to be unallocated"),
        (PILOT, {"attempts_made": 3}, "attempts cap 3 reached"),
        (PILOT, {"attempts_made": 96}, "attempts cap 3 reached"),
        (
            PILOT,
            {"now": hel(2026, 12, 7, 3, 0)},
            "outside calling hours 10:00–20:00 Europe/Helsinki",
        ),
        (
            PILOT,
            {"now": hel(2026, 12, 7, 20, 0)},
            "outside calling hours 10:00–20:00 Europe/Helsinki",
        ),
        (PILOT, {"now": hel(2026, 12, 13, 12)}, "weekend"),
        (PILOT, {"now": hel(2026, 5, 1, 12)}, "Finnish public holiday: Vappu"),
        (PILOT, {"now": hel(2026, 12, 24, 12)}, "Finnish public holiday: Jouluaatto"),
        (
            PILOT,
            {"last_attempt_at": hel(2026, 12, 7, 11, 55)},
            "too soon after the last attempt (at least 10 min between attempts on one number)",
        ),
        (PILOT, {"last_attempt_at": hel(2026, 12, 7, 11, 50)}, None),  # exactly 10 min
        (PILOT, {"last_attempt_at": utc(2026, 12, 7, 9, 55)}, "too soon after the last attempt"),
        (PILOT, {"last_attempt_at": hel(2026, 12, 7, 12, 5)}, "too soon after the last attempt"),
        (PILOT, {"called_today_by_other_campaign": True}, "already called today by another"),
        (
            replace(PILOT, cross_campaign_daily_cap=False),
            {"called_today_by_other_campaign": True},
            None,
        ),
        (
            replace(PILOT, allow_holidays=True),
            {"now": hel(2026, 5, 1, 12), "last_attempt_at": hel(2026, 4, 30, 12)},
            None,
        ),
    ],
)
def test_dial_gate(policy: CallingPolicy, changes: dict[str, object], reason: str | None) -> None:
    arguments = {**GATE_OK, **changes}
    result = dial_gate(policy, **arguments).reason  # type: ignore[arg-type]
    if reason is None:
        assert result is None
    else:
        assert result is not None and result.startswith(reason), result


def test_min_gap_is_elapsed_time_in_the_repeated_autumn_hour() -> None:
    # 03:55 EEST then 03:05 EET is 10 real minutes later, though the wall clock went back.
    first, second = hel(2026, 10, 25, 3, 55), hel(2026, 10, 25, 3, 5, fold=1)
    assert second.astimezone(UTC) - first.astimezone(UTC) == timedelta(minutes=10)
    common = {"opted_out": False, "unallocated_before": False}
    gate = {"attempts_made": 1, "called_today_by_other_campaign": False, **common}
    assert dial_gate(ROUND_THE_CLOCK, now=second, last_attempt_at=first, **gate).dial_now  # type: ignore[arg-type]
    too_soon = dial_gate(
        ROUND_THE_CLOCK,
        now=second - timedelta(minutes=1),
        last_attempt_at=first,
        **gate,  # type: ignore[arg-type]
    ).reason
    assert too_soon is not None and too_soon.startswith("too soon")


# --------------------------------------------------------------------------------------------
# Policy and window validation


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: CallingPolicy(timezone="Europe/Helsingfors"), "unknown time zone"),
        (lambda: CallingPolicy(timezone=""), "unknown time zone"),
        (lambda: CallingPolicy(max_attempts=0), "max_attempts"),
        (lambda: CallingPolicy(min_gap=timedelta(minutes=-1)), "min_gap"),
        (lambda: CallingPolicy(retry_after={"declined": timedelta(hours=1)}), "final"),
        (lambda: CallingPolicy(retry_after={"completed": timedelta(hours=1)}), "final"),
        (lambda: CallingPolicy(retry_after={"busy": timedelta(0)}), "positive"),
        (lambda: CallingPolicy(retry_after={"bsy": timedelta(hours=1)}), "unknown outcome"),
        (lambda: Window(frozenset(), time(10), time(20)), "at least one day"),
        (lambda: Window(frozenset({7}), time(10), time(20)), "0 \\(Monday\\)"),
        (lambda: Window(frozenset({0}), time(20), time(10)), "not after its start"),
        (lambda: Window(frozenset({0}), time(10), time(10)), "not after its start"),
        (lambda: Window(frozenset({0}), time(10, tzinfo=UTC), time(20)), "tzinfo"),
    ],
)
def test_invalid_policies(build: object, error: str) -> None:
    assert callable(build)
    with pytest.raises(ValueError, match=error):
        build()


def test_policy_defaults_and_immutability() -> None:
    policy = CallingPolicy()
    assert policy.windows == (Window(frozenset({0, 1, 2, 3, 4}), time(10), time(20)),)
    assert dict(policy.retry_after) == {
        "busy": timedelta(minutes=30),
        "no_answer": timedelta(hours=2),
        "failed": timedelta(hours=1),
        "interrupted": timedelta(minutes=15),
    }
    assert policy.max_attempts == 3 and policy.min_gap == timedelta(minutes=10)
    source = {"busy": timedelta(minutes=5)}
    custom = CallingPolicy(retry_after=source)
    source["busy"] = timedelta(0)  # the policy kept its own copy
    assert custom.retry_after["busy"] == timedelta(minutes=5)
    with pytest.raises(TypeError):
        custom.retry_after["busy"] = timedelta(hours=9)  # type: ignore[index]
    assert hash(policy) == hash(CallingPolicy())


# --------------------------------------------------------------------------------------------
# parse_windows

MON_FRI = frozenset(range(5))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("mon-fri 10:00-20:00", [(MON_FRI, time(10), time(20))]),
        (
            "mon-fri 10-20, sat 10-14",
            [(MON_FRI, time(10), time(20)), (frozenset({5}), time(10), time(14))],
        ),
        ("Mon - Fri 9:30 - 17", [(MON_FRI, time(9, 30), time(17))]),
        ("ma-pe 10–20", [(MON_FRI, time(10), time(20))]),  # Finnish days, en dash
        ("må-fr 10-20", [(MON_FRI, time(10), time(20))]),  # Swedish days
        (
            "mon-fri 10-12 13-17",
            [(MON_FRI, time(10), time(12)), (MON_FRI, time(13), time(17))],
        ),
        ("mon+wed+fri 8-9", [(frozenset({0, 2, 4}), time(8), time(9))]),
        ("sat sun 10-14", [(frozenset({5, 6}), time(10), time(14))]),
        ("fri-mon 10-14", [(frozenset({4, 5, 6, 0}), time(10), time(14))]),  # wraps
        ("monday-sunday 0:00-23:59", [(EVERY_DAY, time(0), time(23, 59))]),
        (
            "tue 10-20; thu 10-20",
            [(frozenset({1}), time(10), time(20)), (frozenset({3}), time(10), time(20))],
        ),
    ],
)
def test_parse_windows(spec: str, expected: list[tuple[frozenset[int], time, time]]) -> None:
    assert parse_windows(spec) == tuple(Window(*w) for w in expected)


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("", "empty calling-window spec"),
        ("   ", "empty calling-window spec"),
        ("mon-fri", "no hours in 'mon-fri'"),
        ("10-20", "no days in '10-20'"),
        ("10-20 mon-fri", "days must come before hours"),
        ("mon-fri 20-10", "end 10:00 is not after start 20:00"),
        ("mon-fri 10-10", "end 10:00 is not after start 10:00"),
        ("mnd-fri 10-20", "unknown day 'mnd'"),
        ("mon-fri-sat 10-20", "bad day range 'mon-fri-sat'"),
        ("mon--fri 10-20", "bad day range"),
        ("mon-fri 25-26", "time '25' .* out of range"),
        ("mon-fri 10:70-12", "time '10:70' .* out of range"),
        ("mon-fri 10", "bad hours '10'"),
        ("mon-fri 10-20-22", "bad hours"),
        ("mon-fri 10am-8pm", "bad time '10am'"),
        ("mon-fri 10-20,", "empty window"),
        ("mon-fri 10-20,, sat 10-14", "empty window"),
    ],
)
def test_parse_windows_errors(spec: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_windows(spec)


@pytest.mark.parametrize(
    "spec",
    ["mon-fri 10:00-20:00", "mon+wed-thu 09:30-12:00", "sat-sun 10:00-14:00", "sun 08:00-09:00"],
)
def test_window_str_round_trips(spec: str) -> None:
    (window,) = parse_windows(spec)
    assert str(window) == spec
    assert parse_windows(str(window)) == (window,)


# --------------------------------------------------------------------------------------------
# Pacer


@pytest.mark.parametrize(("rate", "burst"), [(20.0, 1), (20.0, 5), (5.0, 10), (200.0, 50)])
def test_pacer_rate_over_five_seconds(rate: float, burst: int) -> None:
    pacer = Pacer(rate=rate, burst=burst, max_concurrent=10_000)
    started = 0
    for ms in range(5001):  # 0.000 .. 5.000 s in 1 ms steps; calls end at once
        now = ms / 1000
        while pacer.take(now, active_calls=0):
            started += 1
        assert started <= burst + rate * now + 1e-6
    assert started == burst + int(rate * 5)


def test_pacer_never_exceeds_max_concurrent() -> None:
    pacer = Pacer(rate=20, burst=5, max_concurrent=30)
    ends: list[float] = []
    started = peak = 0
    for ms in range(10_001):
        now = ms / 1000
        ends = [end for end in ends if end > now]
        while pacer.take(now, active_calls=len(ends)):
            ends.append(now + 4.0)  # every call lasts 4 s
            started += 1
        peak = max(peak, len(ends))
        assert len(ends) <= 30
    assert peak == 30  # the cap, not the rate, was binding
    assert started < 5 + 20 * 10  # so fewer calls started than the rate alone allows


def test_pacer_wait_time() -> None:
    pacer = Pacer(rate=20, burst=2, max_concurrent=3)
    assert pacer.wait_time(100.0, active_calls=0) == 0.0
    assert pacer.take(100.0, 0) and pacer.take(100.0, 1)
    assert not pacer.take(100.0, 2)  # bucket empty
    assert pacer.wait_time(100.0, 2) == pytest.approx(0.05)
    assert pacer.wait_time(100.02, 2) == pytest.approx(0.03)
    assert not pacer.take(100.049, 2)
    assert pacer.take(100.05, 2)
    assert pacer.wait_time(100.2, active_calls=3) == math.inf  # only a call ending helps
    assert not pacer.take(100.2, active_calls=3)
    assert pacer.take(100.2, active_calls=2)  # the refused take claimed nothing


def test_pacer_clock_going_backwards_adds_nothing() -> None:
    pacer = Pacer(rate=10, burst=1, max_concurrent=5)
    assert pacer.take(50.0, 0)
    assert not pacer.take(49.0, 0)
    assert not pacer.take(50.05, 0)
    assert pacer.take(50.1, 0)


@pytest.mark.parametrize(
    ("rate", "burst", "max_concurrent", "error"),
    [
        (0.0, 1, 1, "rate"),
        (-1.0, 1, 1, "rate"),
        (math.inf, 1, 1, "rate"),
        (math.nan, 1, 1, "rate"),
        (1.0, 0, 1, "burst"),
        (1.0, 1, 0, "max_concurrent"),
    ],
)
def test_pacer_rejects_bad_settings(
    rate: float, burst: int, max_concurrent: int, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        Pacer(rate, burst, max_concurrent)


# --------------------------------------------------------------------------------------------
# Windows that end at 24:00 (the end of the day)


@pytest.mark.parametrize("spec", ["mon-sun 0-24", "mon-sun 00-24:00", "ma-su 0:00-24"])
def test_a_whole_day_window_can_be_written(spec: str) -> None:
    (window,) = parse_windows(spec)
    assert window == Window(EVERY_DAY, time(0), END_OF_DAY)
    assert str(window) == "mon-sun 00:00-24:00"
    assert window.hours() == "00:00–24:00"
    assert parse_windows(str(window)) == (window,)


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("mon-fri 24-10", r"time '24' .* out of range \(00:00..23:59; 24:00 only ends"),
        ("mon-fri 10-24:30", r"time '24:30' .* out of range \(00:00..24:00\)"),
        ("mon-fri 10-25", r"time '25' .* out of range"),
    ],
)
def test_24_is_only_an_end(spec: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_windows(spec)


WHOLE_DAY = CallingPolicy(windows=parse_windows("mon-sun 0-24"), allow_holidays=True)


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 3, 29),  # spring forward in Helsinki: a 23-hour Sunday
        date(2026, 10, 25),  # fall back: a 25-hour Sunday
        date(2026, 6, 10),  # an ordinary Wednesday
    ],
)
def test_a_whole_day_window_covers_every_instant_of_the_day(day: date) -> None:
    start = datetime.combine(day, time(0), tzinfo=HEL).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=HEL).astimezone(UTC)
    at = start
    while at < end:  # every minute of the local day, both 03:xx hours of the autumn change
        assert window_reason(WHOLE_DAY, at) is None, at.astimezone(HEL)
        at += timedelta(minutes=1)
    last = end - timedelta(microseconds=1)
    assert window_reason(WHOLE_DAY, last) is None  # 23:59:59.999999: still inside
    assert next_window_start(WHOLE_DAY, last) == last


def test_a_window_ending_at_24_ends_at_the_next_midnight() -> None:
    # Sunday 25 October 2026 is 25 hours long in Helsinki; the window runs to its very end.
    policy = CallingPolicy(windows=parse_windows("sun 20-24"), allow_holidays=True)
    assert window_reason(policy, hel(2026, 10, 25, 19, 59, 59)) is not None
    assert window_reason(policy, hel(2026, 10, 25, 20)) is None
    assert window_reason(policy, datetime(2026, 10, 25, 23, 59, 59, 999999, tzinfo=HEL)) is None
    assert window_reason(policy, hel(2026, 10, 26)) == "no calling on Mondays"
    # From Monday the next opening is the next Sunday at 20:00 (UTC+2 after the change).
    assert next_window_start(policy, hel(2026, 10, 26)) == utc(2026, 11, 1, 18, 0)
    # Sunday 24:00 and Monday 00:00 join: no gap at midnight.
    joined = CallingPolicy(windows=parse_windows("sun 22-24, mon 0-2"), allow_holidays=True)
    for minute in range(0, 240):
        at = hel(2026, 10, 25, 22) + timedelta(minutes=minute)
        assert window_reason(joined, at) is None, at
    assert "outside calling hours 00:00–02:00" in str(window_reason(joined, hel(2026, 10, 26, 2)))


# --------------------------------------------------------------------------- the dial gate
# Which rule blocks a call and when it may be dialled: the same answers on any date.
GATE_FREE = {
    "attempts_made": 0,
    "last_attempt_at": None,
    "opted_out": False,
    "unallocated_before": False,
    "called_today_by_other_campaign": False,
}
GATE_DATES = {
    "past-monday": hel(2024, 1, 15, 11),
    "future-monday": hel(2031, 11, 24, 11),
    # Thursday before Easter and the spring DST change: the next calls after the daily cap
    # are on Tuesday (Good Friday, the weekend and Easter Monday are closed).
    "dst-spring-easter": hel(2027, 3, 25, 11),
    "dst-autumn-friday": hel(2026, 10, 23, 11),
    "before-christmas": hel(2026, 12, 23, 11),  # Wednesday; Christmas Eve is closed
}


@pytest.mark.parametrize("now", list(GATE_DATES.values()), ids=list(GATE_DATES))
def test_the_dial_gate_names_the_rule_and_when_to_dial(now: datetime) -> None:
    policy = PILOT
    assert dial_gate(policy, now=now, **GATE_FREE) == Gate()  # type: ignore[arg-type]
    never = [
        (dict(GATE_FREE, opted_out=True), "do_not_call"),
        (dict(GATE_FREE, unallocated_before=True), "unallocated"),
        (dict(GATE_FREE, attempts_made=3), "attempts_cap"),
    ]
    for arguments, rule in never:
        gate = dial_gate(policy, now=now, **arguments)  # type: ignore[arg-type]
        assert (gate.rule, gate.not_before) == (rule, None) and gate.reason
    # Too soon after the last attempt: dialled when the gap has passed (in the window).
    last = now - policy.min_gap / 2
    gate = dial_gate(policy, now=now, **dict(GATE_FREE, last_attempt_at=last))  # type: ignore[arg-type]
    assert gate.rule == "min_gap" and gate.not_before == last + policy.min_gap
    # Called today by another campaign: the next day's first window (10:00 local), or the
    # next working day's after a weekend or a holiday.
    gate = dial_gate(
        policy,
        now=now,
        **dict(GATE_FREE, called_today_by_other_campaign=True),  # type: ignore[arg-type]
    )
    assert gate.rule == "daily_cap" and gate.not_before is not None
    assert gate.not_before == next_window_start(policy, day_start(policy, now) + timedelta(days=1))
    local = gate.not_before.astimezone(ZoneInfo("Europe/Helsinki"))
    assert local.time() == time(10) and local.date() > now.date()
    # Outside the window: dialled when it opens.
    evening = now.replace(hour=21) if now.tzinfo else now
    gate = dial_gate(policy, now=evening, **GATE_FREE)  # type: ignore[arg-type]
    assert gate.rule == "window" and gate.not_before == next_window_start(policy, evening)
    assert gate.reason and gate.reason == window_reason(policy, evening)


def test_day_start_is_local_midnight_on_dst_days() -> None:
    spring = hel(2027, 3, 28, 12)  # 23 hours long
    autumn = hel(2026, 10, 25, 12)  # 25 hours long
    assert day_start(PILOT, spring) == hel(2027, 3, 28, 0).astimezone(UTC)
    assert day_start(PILOT, autumn) == hel(2026, 10, 25, 0).astimezone(UTC)
    assert day_start(PILOT, hel(2027, 3, 29, 0)) - day_start(PILOT, spring) == timedelta(hours=23)
    assert day_start(PILOT, hel(2026, 10, 26, 0)) - day_start(PILOT, autumn) == timedelta(hours=25)
