"""The API's cursors and list parameters (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ivr.api import pagination
from ivr.api.problems import Problem

AT = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)


def test_a_cursor_round_trips_and_is_opaque() -> None:
    cursor = pagination.encode("calls", AT, "a-b-c")
    assert "calls" not in cursor and "=" not in cursor
    assert pagination.decode("calls", cursor, str) == (AT, "a-b-c")
    assert pagination.decode("answers", pagination.encode("answers", AT, 7), int) == (AT, 7)


@pytest.mark.parametrize("cursor", ["", "!!", "e30", pagination.encode("calls", AT, 7)])
def test_a_foreign_or_broken_cursor_is_400_naming_starting_after(cursor: str) -> None:
    with pytest.raises(Problem) as caught:
        pagination.decode("calls", cursor or "x", str)
    assert caught.value.status == 400
    assert [e.field for e in caught.value.errors] == ["starting_after"]


def test_another_lists_cursor_is_refused() -> None:
    with pytest.raises(Problem):
        pagination.decode("calls", pagination.encode("campaigns", AT, "x"), str)


def test_list_args() -> None:
    got = pagination.list_args(
        "calls", {"limit": "7", "updated_since": "2026-03-02T11:30:00+02:00"}, str
    )
    assert got.limit == 7 and got.after is None
    assert got.updated_since == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert pagination.list_args("calls", {}, str).limit == pagination.DEFAULT_LIMIT


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"updated_since": "2026-03-02T11:30:00"}, "updated_since"),
        ({"updated_since": "maanantaina"}, "updated_since"),
        ({"updated_since": "0001-01-01T00:00:00+01:00"}, "updated_since"),
    ],
)
def test_bad_list_args_name_the_parameter(args: dict[str, str], field: str) -> None:
    with pytest.raises(Problem) as caught:
        pagination.list_args("calls", args, str)
    assert caught.value.errors[0].field == field


def test_parse_time_keeps_the_instant() -> None:
    helsinki = timezone(timedelta(hours=2))
    assert pagination.parse_time("x", "2026-03-02T11:30:00+02:00") == datetime(
        2026, 3, 2, 11, 30, tzinfo=helsinki
    )
