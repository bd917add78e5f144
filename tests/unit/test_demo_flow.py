"""The demo's survey (the example survey with English added) and its simulated residents,
without Asterisk (tests/e2e/test_demo_live.py runs the demo itself)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ivr.campaigns.contacts import read_contacts
from ivr.config import EXAMPLE_FLOWS
from ivr.demo_flow import (
    FLOW_ID,
    RESIDENTS,
    contacts,
    dialplan_steps,
    expected_outcomes,
    expected_transcripts,
    survey_steps,
    write_contacts,
    write_survey,
)
from ivr.flows.loader import load_flow
from ivr.flows.walk import iter_prompts


def test_the_demo_survey_is_the_example_with_english(tmp_path: Path) -> None:
    flow = load_flow(write_survey(tmp_path))  # validates: every text in every language
    example = load_flow(EXAMPLE_FLOWS / "strategy-survey.yaml")
    assert flow.id == FLOW_ID and flow.languages == ("fi", "sv", "en")
    assert list(flow.nodes) == list(example.nodes)
    assert [o.value for o in flow.nodes["lang"].options] == ["fi", "sv", "en"]
    english = [p for _, language, p in iter_prompts(flow) if language == "en"]
    assert english and all(p.text.get("en") for p in english)
    assert (tmp_path / "recordings" / "intro-fi.wav").is_file()


def test_the_contacts_import_as_the_residents(tmp_path: Path) -> None:
    path = tmp_path / "asukkaat.csv"
    assert write_contacts(path) == sum(r.count for r in RESIDENTS) == len(contacts())
    result = read_contacts(path)
    assert not result.rejected and result.duplicates == 0
    assert sorted(row.phone for row in result.rows) == sorted(p for p, _ in contacts())
    languages = Counter(str(row.language) for row in result.rows)
    assert languages == Counter(r.language for _, r in contacts())
    assert sum(expected_outcomes().values()) == len(contacts())
    assert expected_transcripts() == sum(r.count for r in RESIDENTS if r.language == "en")


def test_a_residents_script_keys_into_prompts_and_listens_to_the_rest() -> None:
    lengths = {"intro": 10.0, "how-to": 8.0, "develop-open": 5.0}
    heard: list[tuple[str, str]] = []

    def seconds(node_id: str, language: str) -> float:
        heard.append((node_id, language))
        return lengths.get(node_id, 3.0)

    english = next(r for r in RESIDENTS if r.language == "en" and r.plan)
    steps = survey_steps(english.plan, seconds, english.language, english.speaks)
    keys = "".join(s.value for s in steps if s.kind == "dtmf")
    assert keys == "3" + "4312" + "#" + "1121"  # language, four answers, #, the callback
    assert [s.value for s in steps if s.kind == "say"] == ["01"]
    assert ("how-to", "en") in heard and ("develop-open", "en") in heard
    plan = dialplan_steps(steps, "/sim audio")
    assert plan[0] == ("Answer", "") and plan[-1] == ("Hangup", "16")
    assert ("Playback", "/sim audio/01") in plan and ("SendDTMF", "3,250,120") in plan

    midway = next(r for r in RESIDENTS if r.outcome == "partial")
    assert survey_steps(midway.plan, seconds, "fi", 0)[-1].kind == "hangup"
