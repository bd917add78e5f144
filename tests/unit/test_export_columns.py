"""The exports' columns and rows (ivr/exports/columns.py): names, labels, codes and a
contact's rows in the wide and long layouts, from hand-made records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ivr.exports import columns
from ivr.exports.columns import AnswerInfo, AttemptInfo, ContactRecord, TranscriptInfo
from ivr.flows.loader import parse_flow
from ivr.outcome import Outcome

FLOW = parse_flow(
    """\
id: t
name: t
version: "1"
languages: [fi, sv]
default_language: fi
start: hello
nodes:
  hello: {kind: say, prompt: {fi: Hei, sv: Hej}, next: age-group}
  age-group:
    kind: choice
    prompt: {fi: "Ikäryhmä?", sv: "Åldersgrupp?"}
    options:
      - {key: "1", value: young, label: {fi: Nuori, sv: Ung}}
      - {key: "3", value: old, label: {fi: Vanha}}
    next: score
  score: {kind: scale, prompt: {fi: Arvosana, sv: Betyg}, min: 1, max: 5, next: say-it}
  say-it: {kind: open, prompt: {fi: Kerro, sv: Berätta}, next: bye}
  bye: {kind: end, prompt: {fi: Kiitos, sv: Tack}}
"""
)
AT = datetime(2030, 1, 7, 10, 0, tzinfo=UTC)


def test_questions_in_flow_order_with_spss_names_and_labels() -> None:
    found = columns.questions(FLOW, "sv")
    assert [(q.node_id, q.name, q.kind) for q in found] == [
        ("age-group", "q_age_group", "choice"),
        ("score", "q_score", "scale"),
        ("say-it", "q_say_it", "open"),
    ]
    age = found[0]
    assert age.text == "Åldersgrupp?"
    # a label missing in Swedish falls back to the flow's default language
    assert age.options == (("young", "Ung"), ("old", "Vanha"))
    assert age.codes() == {"young": 1, "old": 3}  # the keys
    assert age.label("old") == "Vanha" and age.label("other") == "other"
    assert [name for name, _ in found[2].columns()] == [
        "q_say_it_text", "q_say_it_corrected", "q_say_it_review", "q_say_it_tags",
    ]  # fmt: skip


def test_column_names_are_unique_and_valid() -> None:
    taken: set[str] = set()
    assert columns.column_name("a-b", taken) == "q_a_b"
    assert columns.column_name("a_b", taken) == "q_a_b_2"
    assert columns.column_name("A.B", taken) == "q_A_B_3"  # SPSS names ignore case
    long = columns.column_name("x" * 100, taken)
    assert len(f"{long}_corrected") <= columns.MAX_NAME


def test_codes_by_place_when_keys_are_not_numbers() -> None:
    question = columns.Question("q", "q_q", "choice", "", (("a", "A"), ("b", "B")), ("*", "#"))
    assert question.codes() == {"a": 1, "b": 2}


def _record() -> ContactRecord:
    record = ContactRecord("c-1", "+358401234567", "fi", "18-29", "Keskusta")
    record.attempts = [
        AttemptInfo(1, Outcome.NO_ANSWER, True, None),
        AttemptInfo(2, Outcome.COMPLETED, True, "call-2"),
        AttemptInfo(3, None, False, None),  # cancelled: never placed
    ]
    answer = AnswerInfo  # (call, attempt, seq, node, kind, value, language, at)
    record.answers = [
        answer("call-2", 2, 1, "age-group", "choice", "old", "fi", AT),
        answer("call-2", 2, 2, "age-group", "choice", "young", "fi", AT + timedelta(seconds=5)),
        answer("call-2", 2, 3, "score", "scale", "4", "fi", AT + timedelta(seconds=9)),
        answer("call-2", 2, 4, "say-it", "open", "/srv/x.wav", "fi", AT + timedelta(seconds=20)),
    ]  # fmt: skip
    record.transcripts = {
        ("call-2", "say-it"): TranscriptInfo("kone", "ihminen", "reviewed", ("A", "B"))
    }
    return record


def test_wide_row_takes_the_latest_answer_and_the_final_disposition() -> None:
    found = columns.questions(FLOW, "fi")
    header = [name for name, _ in columns.wide_header(found)]
    row = dict(zip(header, columns.wide_row(_record(), found, 1.25), strict=True))
    assert row == {
        "contact_id": "c-1",
        "attempts": 2,
        "last_outcome": "completed",
        "aapor_code": "1.1",
        "aapor_disposition": "Complete",
        "language": "fi",
        "age_group": "18-29",
        "area": "Keskusta",
        "weight": 1.25,
        "q_age_group": "young",
        "q_score": 4,
        "q_say_it_text": "kone",
        "q_say_it_corrected": "ihminen",
        "q_say_it_review": "reviewed",
        "q_say_it_tags": "A; B",
    }
    labelled = columns.wide_row(_record(), found, None, labels=True, with_phone=True)
    assert labelled[1] == "+358401234567" and "Nuori" in labelled


def test_wide_row_of_a_contact_never_reached() -> None:
    found = columns.questions(FLOW, "fi")
    record = ContactRecord("c-2", "+358401234568", "sv", None, None)
    record.attempts = [
        AttemptInfo(1, Outcome.BUSY, True, None),
        AttemptInfo(2, Outcome.BUSY, True, None),
    ]
    row = columns.wide_row(record, found, None)
    assert row[:5] == ["c-2", 2, "busy", "3.12", "Always busy"]
    assert row[9:] == [None] * 6  # age group, score, the open answer's four columns
    nothing = ContactRecord("c-3", "+358401234569", "fi", None, None)
    assert columns.wide_row(nothing, found, None)[1:4] == [0, None, "3.11"]


def test_a_later_call_wins_in_the_wide_row() -> None:
    found = columns.questions(FLOW, "fi")
    record = ContactRecord("c-4", "+3584", "fi", None, None)
    record.attempts = [
        AttemptInfo(1, Outcome.PARTIAL, True, "a"),
        AttemptInfo(2, Outcome.COMPLETED, True, "b"),
    ]
    record.answers = [
        AnswerInfo("b", 2, 1, "score", "scale", "2", "fi", AT + timedelta(hours=1)),
        AnswerInfo("a", 1, 5, "score", "scale", "5", "fi", AT),
    ]
    header = [name for name, _ in columns.wide_header(found)]
    assert columns.wide_row(record, found, None)[header.index("q_score")] == 2


def test_long_rows_one_per_counting_answer() -> None:
    found = columns.questions(FLOW, "fi")
    rows = columns.long_rows(_record(), {q.node_id: q for q in found})
    header = [name for name, _ in columns.long_header()]
    got = [dict(zip(header, row, strict=True)) for row in rows]
    assert [(r["node_id"], r["value"], r["label"]) for r in got] == [
        ("age-group", "young", "Nuori"),
        ("score", 4, None),
        ("say-it", None, None),  # never the recording's path
    ]
    assert got[0]["answered_at"] == "2030-01-07T10:00:05Z"
    assert got[2]["transcript"] == "kone" and got[2]["corrected"] == "ihminen"
    assert got[2]["tags"] == "A; B" and got[2]["question"] == "q_say_it"
    assert all(r["attempt_no"] == 2 and r["call_id"] == "call-2" for r in got)


@pytest.mark.parametrize(("value", "cell"), [("4", 4), ("2.5", 2.5), ("", ""), ("x", "x")])
def test_numbers_are_numbers(value: str, cell: object) -> None:
    question = columns.Question("s", "q_s", "scale", "")
    assert columns._answer_cell(question, value, False) == cell
