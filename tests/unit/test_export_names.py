"""File names and timestamps of the exports (pure helpers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from ivr.exports.columns import iso
from ivr.web.exports import ascii_name, content_disposition


def test_ascii_file_name_and_utf8_name_in_the_header() -> None:
    assert ascii_name("Kysely: Yläkoulu/ÅÄÖ 2026") == "Kysely-Ylakoulu-AAO-2026"
    assert ascii_name("***") == "campaign"
    header = content_disposition("Strategia – Pyhämaa.csv")
    assert header.startswith('attachment; filename="Strategia-Pyhamaa.csv"; ')
    assert header.endswith("filename*=UTF-8''Strategia%20%E2%80%93%20Pyh%C3%A4maa.csv")
    assert content_disposition('a"b\\c.csv').startswith('attachment; filename="a-b-c.csv"; ')


def test_iso_timestamps_from_a_datetime_or_sqlite_text() -> None:
    at = datetime(2030, 1, 7, 10, 0, 5, 123456, tzinfo=UTC)
    assert iso(at) == "2030-01-07T10:00:05Z"
    helsinki = at.astimezone(timezone(timedelta(hours=2)))
    assert iso(helsinki) == "2030-01-07T10:00:05Z"
    assert iso("2030-01-07 10:00:05.123456") == "2030-01-07T10:00:05Z"
    assert iso(None) is None
