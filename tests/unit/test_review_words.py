"""The review queue's pure parts: word timings, the filter in the query string, cursors,
confidence bands and the signed audio links."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from ivr.review import audio
from ivr.review.words import (
    Cursor,
    QueueFilter,
    WordSpan,
    band_of,
    decode_cursor,
    encode_cursor,
    word_spans,
)

SECRET = "x" * 32
NOW = datetime(2030, 5, 6, 12, 0, tzinfo=UTC)


def test_stored_word_times_are_used_as_they_are() -> None:
    segments = [
        {
            "start": 0.5,
            "end": 2.0,
            "text": "Tiet ovat",
            "words": [[0.5, 1.0, "Tiet"], [1.1, 2.0, "ovat"]],
        }
    ]
    assert word_spans(json.dumps(segments)) == [
        WordSpan(0.5, 1.0, "Tiet"),
        WordSpan(1.1, 2.0, "ovat"),
    ]


def test_a_segment_without_words_is_spread_evenly_over_its_time() -> None:
    segments = [
        {"start": 1.0, "end": 4.0, "text": "yksi kaksi kolme", "words": []},
        {"start": 5.0, "end": 6.0, "text": "neljä"},
    ]
    assert word_spans(segments) == [
        WordSpan(1.0, 2.0, "yksi"),
        WordSpan(2.0, 3.0, "kaksi"),
        WordSpan(3.0, 4.0, "kolme"),
        WordSpan(5.0, 6.0, "neljä"),
    ]


def test_broken_segments_give_no_words_rather_than_an_error() -> None:
    assert word_spans("not json") == []
    assert word_spans("{}") == []
    assert word_spans([{"start": "x", "text": ""}, 5]) == []


def test_confidence_bands_meet_without_gaps() -> None:
    assert [band_of(c) for c in (0.0, 0.49, 0.5, 0.79, 0.8, 1.0, None)] == [
        "low", "low", "mid", "mid", "high", "high", None,
    ]  # fmt: skip


def test_the_filter_goes_to_the_query_string_and_back() -> None:
    f = QueueFilter(state="second_look", campaign="c1", node="q", language="sv", tag=7,
                    band="mid", order="random")  # fmt: skip
    assert QueueFilter.from_args(f.args()) == f
    assert QueueFilter().args() == {}  # the defaults are left out
    odd = QueueFilter.from_args({"state": "x", "order": "y", "band": "z", "tag": "a1"})
    assert odd == QueueFilter()


def test_cursors_round_trip_and_refuse_another_orders_or_garbage() -> None:
    at = datetime(2030, 1, 2, 3, 4, 5, 600, tzinfo=UTC).isoformat()
    for cursor, order in (
        (Cursor("o", at, 12), "oldest"),
        (Cursor("c", "0.65", 3), "confidence"),
        (Cursor("n", "", 9), "confidence"),
        (Cursor("r", "0.123", 4), "random"),
    ):
        assert decode_cursor(encode_cursor(cursor), order) == cursor
    assert decode_cursor("c:0.5:3", "oldest") is None
    assert decode_cursor("c:abc:3", "confidence") is None
    assert decode_cursor("r:0.5:x", "random") is None
    assert decode_cursor("", "oldest") is None


def test_a_signed_link_serves_its_user_and_answer_until_it_expires() -> None:
    token = audio.sign(SECRET, 5, "user-1", NOW + timedelta(minutes=5))
    assert audio.check(SECRET, token, 5, "user-1", NOW) is None
    assert audio.check(SECRET, token, 5, "user-1", NOW + timedelta(minutes=5)) is None
    late = NOW + timedelta(minutes=5, seconds=1)
    assert audio.check(SECRET, token, 5, "user-1", late) is audio.LinkProblem.EXPIRED
    assert audio.check(SECRET, token, 5, "user-2", NOW) is audio.LinkProblem.OTHER_USER
    assert audio.check(SECRET, token, 6, "user-1", NOW) is audio.LinkProblem.OTHER_ITEM
    assert audio.check("y" * 32, token, 5, "user-1", NOW) is audio.LinkProblem.FORGED
    assert audio.check(SECRET, token[:-2] + "xx", 5, "user-1", NOW) is audio.LinkProblem.FORGED


def test_a_listen_is_counted_at_the_start_of_a_playback_not_for_each_range() -> None:
    assert audio.first_chunk(None)
    assert audio.first_chunk("bytes=0-")
    assert audio.first_chunk("bytes=0-1023")
    assert not audio.first_chunk("bytes=1024-")
    assert not audio.first_chunk("bytes=500-999, 0-10")
