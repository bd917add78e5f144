"""When a report schedule runs next (fixed instants; Europe/Helsinki with its DST changes),
and how its form is checked."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from ivr.schedules.rules import Frequency, Rule, check, next_run, parse_recipients, retry_delay

HKI = ZoneInfo("Europe/Helsinki")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=HKI)


def weekly(day: int, at: time) -> Rule:
    return Rule(Frequency.WEEKLY, day, at, "Europe/Helsinki")


def monthly(day: int, at: time) -> Rule:
    return Rule(Frequency.MONTHLY, day, at, "Europe/Helsinki")


def test_weekly_runs_on_the_weekday_at_the_local_time() -> None:
    # Wednesday 2025-01-15 12:00 local; Monday 08:00 is next on the 20th.
    run = next_run(weekly(0, time(8, 0)), local(2025, 1, 15, 12, 0))
    assert run == local(2025, 1, 20, 8, 0)
    assert run.tzinfo == UTC and run.hour == 6  # EET = UTC+2


def test_weekly_later_the_same_day_and_strictly_after() -> None:
    monday_7 = local(2025, 1, 20, 7, 0)
    assert next_run(weekly(0, time(8, 0)), monday_7) == local(2025, 1, 20, 8, 0)
    at_run = local(2025, 1, 20, 8, 0)
    assert next_run(weekly(0, time(8, 0)), at_run) == local(2025, 1, 27, 8, 0)


def test_weekly_near_midnight_uses_the_local_date_not_utc() -> None:
    # Monday 00:30 in Helsinki is still Sunday 22:30 UTC.
    after = local(2025, 1, 19, 23, 0)  # Sunday 23:00 local
    assert next_run(weekly(0, time(0, 30)), after) == local(2025, 1, 20, 0, 30)


def test_monthly_on_a_day_and_the_next_month() -> None:
    assert next_run(monthly(1, time(8, 0)), local(2025, 1, 15)) == local(2025, 2, 1, 8, 0)
    assert next_run(monthly(20, time(8, 0)), local(2025, 1, 15)) == local(2025, 1, 20, 8, 0)
    assert next_run(monthly(1, time(8, 0)), local(2025, 12, 5)) == local(2026, 1, 1, 8, 0)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (local(2025, 1, 31, 9, 0), local(2025, 2, 28, 8, 0)),  # no 31 February: the last day
        (local(2024, 1, 31, 9, 0), local(2024, 2, 29, 8, 0)),  # a leap year
        (local(2025, 2, 28, 9, 0), local(2025, 3, 31, 8, 0)),  # and back to the 31st
        (local(2025, 4, 1, 0, 0), local(2025, 4, 30, 8, 0)),  # April has 30 days
    ],
)
def test_monthly_day_31_is_the_last_day_of_shorter_months(
    after: datetime, expected: datetime
) -> None:
    assert next_run(monthly(31, time(8, 0)), after) == expected


def test_monthly_runs_in_every_month_in_turn() -> None:
    rule = monthly(30, time(8, 0))
    at = local(2025, 1, 1)
    runs = []
    for _ in range(14):
        at = next_run(rule, at)
        runs.append(at.astimezone(HKI).date().isoformat())
    assert runs[:3] == ["2025-01-30", "2025-02-28", "2025-03-30"]
    assert runs[12:] == ["2026-01-30", "2026-02-28"]


def test_dst_keeps_the_wall_clock_time() -> None:
    # Weekly Sunday 08:00 across the spring change (30 March 2025): 06:00 UTC, then 05:00 UTC.
    rule = weekly(6, time(8, 0))
    before = next_run(rule, local(2025, 3, 24))
    after = next_run(rule, before)
    assert before == datetime(2025, 3, 30, 5, 0, tzinfo=UTC)  # 08:00 EEST on the change day
    assert next_run(rule, local(2025, 3, 20)) == datetime(2025, 3, 23, 6, 0, tzinfo=UTC)
    assert after - before == timedelta(days=7)
    assert after.astimezone(HKI).hour == 8


def test_a_skipped_time_runs_after_the_spring_change() -> None:
    # 03:30 does not exist on 30 March 2025 in Helsinki (03:00 EET -> 04:00 EEST).
    run = next_run(weekly(6, time(3, 30)), local(2025, 3, 29, 12, 0))
    assert run == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)  # = 04:30 EEST
    assert run.astimezone(HKI).date().isoformat() == "2025-03-30"


def test_a_repeated_time_runs_once_at_its_first_occurrence_in_autumn() -> None:
    # 03:30 happens twice on 26 October 2025 (04:00 EEST -> 03:00 EET).
    rule = weekly(6, time(3, 30))
    run = next_run(rule, local(2025, 10, 25, 12, 0))
    assert run == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)  # 03:30 EEST, the first one
    again = next_run(rule, run)  # not the second 03:30 an hour later
    assert again.astimezone(HKI).date().isoformat() == "2025-11-02"


def test_monthly_across_the_autumn_change_keeps_the_local_time() -> None:
    rule = monthly(26, time(9, 15))
    october = next_run(rule, local(2025, 10, 1))
    november = next_run(rule, october)
    assert october == datetime(2025, 10, 26, 7, 15, tzinfo=UTC)  # EET after the change
    assert november == datetime(2025, 11, 26, 7, 15, tzinfo=UTC)
    summer = next_run(rule, local(2025, 6, 1))
    assert summer == datetime(2025, 6, 26, 6, 15, tzinfo=UTC)  # EEST


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_run(weekly(0, time(8, 0)), datetime(2025, 1, 1))


def test_check_names_every_bad_field() -> None:
    checked = check(name=" ", frequency="daily", day="x", at="25:00",
                    recipients="a@b.fi, not-an-address", language="de")  # fmt: skip
    assert checked.codes == {
        "name": "required", "frequency": "choice", "day": "range", "time": "time",
        "recipients": "email", "language": "choice",
    }  # fmt: skip
    assert checked.bad_recipients == ("not-an-address",)


def test_check_day_ranges_by_frequency() -> None:
    ok = dict(name="n", at="8:00", recipients="a@b.fi", language="fi")
    assert check(frequency="weekly", day="7", **ok).codes == {"day": "range"}
    assert check(frequency="weekly", day="6", **ok).codes == {}
    assert check(frequency="monthly", day="0", **ok).codes == {"day": "range"}
    assert check(frequency="monthly", day="31", **ok).codes == {}
    good = check(frequency="monthly", day="31", **ok)
    assert good.at == time(8, 0) and good.frequency == Frequency.MONTHLY and good.day == 31


def test_recipients_are_split_lowered_and_deduplicated() -> None:
    good, bad = parse_recipients("Esihenkilo@Kunta.fi; toinen@kunta.fi\nesihenkilo@kunta.fi ,")
    assert good == ["esihenkilo@kunta.fi", "toinen@kunta.fi"] and bad == []
    assert parse_recipients("x@localhost a@b@c.fi")[1] == ["x@localhost", "a@b@c.fi"]
    many = " ".join(f"p{i}@kunta.fi" for i in range(21))
    assert check(name="n", frequency="weekly", day="0", at="8:00", recipients=many,
                 language="fi").codes == {"recipients": "many"}  # fmt: skip


def test_retries_back_off_then_stop() -> None:
    delays = [retry_delay(n) for n in range(1, 5)]
    assert delays[:3] == [timedelta(minutes=5), timedelta(minutes=15), timedelta(minutes=60)]
    assert delays[3] is None
