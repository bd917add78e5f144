"""The flow loader: every validation rule, hostile files, and the example flows."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ivr.flows.loader import (
    MAX_FILE_BYTES,
    FlowError,
    Problem,
    load_flow,
    parse_flow,
    validate_file,
)
from ivr.flows.walk import iter_prompts

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flows"


def P(fi: str = "Hei", sv: str = "Hej") -> dict[str, str]:
    return {"fi": fi, "sv": sv}


def yes_no() -> list[dict[str, str]]:
    return [{"key": "1", "value": "yes"}, {"key": "2", "value": "no"}]


BASE: dict[str, Any] = {
    "id": "test-flow",
    "name": "Testi",
    "version": "1",
    "languages": ["fi", "sv"],
    "default_language": "fi",
    "start": "intro",
    "fallback": "bye",
    "keys": {"repeat": "*", "switch_language": "9", "opt_out": "0"},
    "opt_out_prompt": P("Selvä", "Okej"),
    "defaults": {"timeout": 6, "retries": 2, "no_input": P(), "invalid": P()},
    "nodes": {
        "intro": {"kind": "say", "prompt": P(), "next": "lang"},
        "lang": {
            "kind": "language",
            "prompt": P(),
            "options": [{"key": "1", "value": "fi"}, {"key": "2", "value": "sv"}],
            "next": "q1",
        },
        "q1": {
            "kind": "choice",
            "prompt": P(),
            "options": [{"key": "1", "value": "yes", "next": "grade"}, {"key": "2", "value": "no"}],
            "next": "grade",
        },
        "grade": {"kind": "scale", "prompt": P(), "min": 1, "max": 5, "next": "age"},
        "age": {
            "kind": "number",
            "prompt": P(),
            "min": 15,
            "max": 120,
            "max_digits": 3,
            "next": "develop",
        },
        "develop": {
            "kind": "open",
            "prompt": P(),
            "max_seconds": 60,
            "silence_seconds": 4,
            "next": "contact",
        },
        "contact": {
            "kind": "callback",
            "consent_version": "v1",
            "steps": [
                {"field": "consent", "prompt": P(), "options": yes_no()},
                {
                    "field": "channel",
                    "prompt": P(),
                    "options": [{"key": "1", "value": "phone"}, {"key": "2", "value": "email"}],
                },
            ],
            "declined_next": "bye",
            "next": "desk",
        },
        "desk": {
            "kind": "transfer",
            "prompt": P(),
            "endpoint": "PJSIP/softphone1",
            "hours": [{"days": ["mon", "fri"], "from": "08:00", "to": "16:00"}],
            "timezone": "Europe/Helsinki",
            "fallback": "bye",
        },
        "bye": {"kind": "end", "prompt": P()},
    },
}


def _walk(doc: Any, path: str) -> tuple[Any, str | int]:
    *parents, last = path.split(".")
    for part in parents:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc, int(last) if isinstance(doc, list) else last


def put(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        parent, key = _walk(doc, path)
        parent[key] = value

    return change


def drop(path: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        parent, key = _walk(doc, path)
        del parent[key]

    return change


def both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        for one in changes:
            one(doc)

    return change


def render(change: Callable[[dict[str, Any]], None] | None = None) -> str:
    doc = copy.deepcopy(BASE)
    if change is not None:
        change(doc)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(FlowError) as caught:
        parse_flow(text, "t.yaml")
    return caught.value.problems


def test_the_base_flow_is_valid_and_maps_yaml_names_onto_the_model() -> None:
    flow = parse_flow(render(), "t.yaml")
    assert flow.source == "t.yaml"
    assert flow.start == "intro" and flow.fallback == "bye"
    assert flow.keys.switch_language == "9" and flow.keys.opt_out == "0"
    grade, age = flow.nodes["grade"], flow.nodes["age"]
    assert (grade.min_value, grade.max_value) == (1, 5)
    assert (age.min_value, age.max_value, age.max_digits) == (15, 120, 3)
    assert flow.nodes["desk"].hours == ((0, "08:00", "16:00"), (4, "08:00", "16:00"))
    assert [s.field for s in flow.nodes["contact"].steps] == ["consent", "channel"]
    stores = {node_id: node.store for node_id, node in flow.nodes.items()}
    assert [k for k, v in stores.items() if not v] == ["intro", "desk", "bye"]
    # defaults apply to input nodes; say nodes have no re-prompts
    assert flow.nodes["q1"].no_input is not None and flow.nodes["q1"].no_input.text["sv"] == "Hej"
    assert flow.nodes["intro"].no_input is None
    assert flow.nodes["q1"].options[1].next is None  # falls back to the node's next


def test_node_settings_override_the_defaults() -> None:
    flow = parse_flow(
        render(
            both(
                put("defaults.timeout", 8),
                put("nodes.q1.timeout", 4.5),
                put("nodes.q1.retries", 0),
                put("nodes.q1.invalid", P("Väärä", "Fel")),
            )
        )
    )
    assert flow.nodes["q1"].timeout == 4.5 and flow.nodes["q1"].retries == 0
    assert flow.nodes["grade"].timeout == 8.0 and flow.nodes["grade"].retries == 2
    assert flow.nodes["q1"].invalid is not None and flow.nodes["q1"].invalid.text["fi"] == "Väärä"


# (name, change, path, message fragment)
RULES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    # wrong types
    ("int field as text", put("nodes.grade.min", "one"), "nodes.grade.min", "whole number"),
    ("bool as text", put("anonymous", "maybe"), "anonymous", "expected true or false"),
    ("options not a list", put("nodes.q1.options", "1"), "nodes.q1.options", "list of options"),
    ("prompt as a string", put("nodes.intro.prompt", "Hei"), "nodes.intro.prompt", "mapping"),
    ("version as a mapping", put("version", {"a": 1}), "version", "expected text"),
    ("timeout as text", put("nodes.q1.timeout", "soon"), "nodes.q1.timeout", "seconds"),
    ("languages not a list", put("languages", "fi"), "languages", "expected a list"),
    # missing required fields
    ("no id", drop("id"), "id", "missing required field"),
    ("no nodes", drop("nodes"), "nodes", "missing required field"),
    ("scale without max", drop("nodes.grade.max"), "nodes.grade.max", "missing required"),
    (
        "option without value",
        drop("nodes.q1.options.1.value"),
        "nodes.q1.options.1.value",
        "missing",
    ),
    ("node without kind", drop("nodes.intro.kind"), "nodes.intro.kind", "missing required"),
    # unknown fields, named with the allowed ones
    ("unknown top field", put("colour", "red"), "colour", "allowed: id, name, version"),
    ("typo in a node", put("nodes.intro.nxt", "lang"), "nodes.intro.nxt", "did you mean 'next'"),
    ("next on a transfer", put("nodes.desk.next", "bye"), "nodes.desk.next", "unknown field"),
    (
        "unknown prompt language",
        put("nodes.intro.prompt.de", "Hallo"),
        "nodes.intro.prompt.de",
        "allowed: fi, sv, en, recording",
    ),
    # ids and kinds
    ("bad flow id", put("id", "Test Flow"), "id", "bad id 'Test Flow'"),
    ("bad node id", put("nodes.Q 1", {"kind": "end", "prompt": P()}), "nodes.Q 1", "bad node id"),
    ("unknown kind", put("nodes.intro.kind", "sya"), "nodes.intro.kind", "did you mean 'say'"),
    # dangling references
    (
        "dangling next",
        put("nodes.intro.next", "lnag"),
        "nodes.intro.next",
        "no node 'lnag'; did you mean 'lang'?",
    ),
    (
        "dangling option next",
        put("nodes.q1.options.1.next", "q9"),
        "nodes.q1.options.1.next",
        "no node 'q9'",
    ),
    ("dangling fallback", put("nodes.q1.fallback", "nowhere"), "nodes.q1.fallback", "no node"),
    (
        "dangling declined_next",
        put("nodes.contact.declined_next", "x"),
        "nodes.contact.declined_next",
        "no node 'x'",
    ),
    ("dangling flow fallback", put("fallback", "byebye"), "fallback", "no node 'byebye'"),
    ("dangling start", put("start", "begin"), "start", "no node 'begin'"),
    # reachability and endings
    (
        "unreachable node",
        put("nodes.orphan", {"kind": "end", "prompt": P()}),
        "nodes.orphan",
        "unreachable",
    ),
    (
        "endless loop",
        both(
            put("nodes.intro.next", "loop-a"),
            put("nodes.loop-a", {"kind": "say", "prompt": P(), "next": "loop-b"}),
            put("nodes.loop-b", {"kind": "say", "prompt": P(), "next": "loop-a"}),
        ),
        "nodes.loop-a",
        "no end node can be reached",
    ),
    ("say without next", drop("nodes.intro.next"), "nodes.intro.next", "nowhere to go"),
    (
        "choice option with nowhere to go",
        drop("nodes.q1.next"),
        "nodes.q1.options.1.next",
        "option '2' has nowhere to go",
    ),
    ("end with next", put("nodes.bye.next", "intro"), "nodes.bye.next", "must not have next"),
    (
        "transfer without any fallback",
        both(drop("nodes.desk.fallback"), drop("fallback")),
        "nodes.desk.fallback",
        "needs a fallback",
    ),
    # languages
    (
        "prompt missing a language",
        drop("nodes.grade.prompt.sv"),
        "nodes.grade.prompt",
        "no text or recording for sv",
    ),
    (
        "no_input missing a language",
        drop("defaults.no_input.fi"),
        "defaults.no_input",
        "no text or recording for fi",
    ),
    ("opt-out prompt missing a language", drop("opt_out_prompt.sv"), "opt_out_prompt", "for sv"),
    (
        "step prompt missing a language",
        drop("nodes.contact.steps.1.prompt.fi"),
        "nodes.contact.steps.1.prompt",
        "for fi",
    ),
    (
        "undeclared language text",
        put("nodes.intro.prompt.en", "Hello"),
        "nodes.intro.prompt.en",
        "not declared",
    ),
    ("unknown flow language", put("languages", ["fi", "de"]), "languages.1", "unknown language"),
    (
        "default language not declared",
        put("default_language", "en"),
        "default_language",
        "not one of the flow's languages",
    ),
    (
        "language option not declared",
        put("nodes.lang.options.1.value", "en"),
        "nodes.lang.options.1.value",
        "not one of the flow's languages",
    ),
    ("opt-out key without its prompt", drop("opt_out_prompt"), "opt_out_prompt", "missing"),
    # option keys
    (
        "option key not a digit",
        put("nodes.q1.options.0.key", "a"),
        "nodes.q1.options.0.key",
        "one digit 0-9",
    ),
    (
        "option key twice",
        put("nodes.q1.options.1.key", "1"),
        "nodes.q1.options.1.key",
        "already used by option 0",
    ),
    (
        "option key is the language key",
        put("nodes.q1.options.1.key", "9"),
        "nodes.q1.options.1.key",
        "switch_language key",
    ),
    (
        "option key is the opt-out key",
        put("nodes.contact.steps.1.options.1.key", "0"),
        "nodes.contact.steps.1.options.1.key",
        "opt_out key",
    ),
    (
        "option value twice",
        put("nodes.q1.options.1.value", "yes"),
        "nodes.q1.options.1.value",
        "already used by option 0",
    ),
    ("global key '#'", put("keys.repeat", "#"), "keys.repeat", "one key 0-9 or *"),
    (
        "two global keys alike",
        put("keys.opt_out", "9"),
        "keys.opt_out",
        "already the switch_language key",
    ),
    # scale, number, open
    (
        "scale min above max",
        both(put("nodes.grade.min", 5), put("nodes.grade.max", 2)),
        "nodes.grade.min",
        "greater than max",
    ),
    ("number min above max", put("nodes.age.min", 200), "nodes.age.min", "greater than max"),
    (
        "max_digits too short",
        put("nodes.age.max_digits", 2),
        "nodes.age.max_digits",
        "too short for max 120",
    ),
    ("scale beyond one key", put("nodes.grade.max", 10), "nodes.grade.max", "at most 9"),
    (
        "open too long",
        put("nodes.develop.max_seconds", 601),
        "nodes.develop.max_seconds",
        "between 1 and 600",
    ),
    (
        "open zero length",
        put("nodes.develop.max_seconds", 0),
        "nodes.develop.max_seconds",
        "between 1 and 600",
    ),
    (
        "silence too long",
        put("nodes.develop.silence_seconds", 61),
        "nodes.develop.silence_seconds",
        "between 1 and 60",
    ),
    ("too many retries", put("nodes.q1.retries", 6), "nodes.q1.retries", "between 0 and 5"),
    (
        "timeout too short",
        put("nodes.q1.timeout", 0.5),
        "nodes.q1.timeout",
        "between 1 and 60 seconds",
    ),
    (
        "default timeout too long",
        put("defaults.timeout", 61),
        "defaults.timeout",
        "between 1 and 60",
    ),
    # transfer
    (
        "transfer without endpoint",
        drop("nodes.desk.endpoint"),
        "nodes.desk.endpoint",
        "missing required",
    ),
    (
        "endpoint not PJSIP",
        put("nodes.desk.endpoint", "SIP/desk"),
        "nodes.desk.endpoint",
        "PJSIP/softphone1",
    ),
    (
        "hours backwards",
        put("nodes.desk.hours.0.from", "17:00"),
        "nodes.desk.hours.0.to",
        "16:00 is not after 17:00",
    ),
    (
        "hours not HH:MM",
        put("nodes.desk.hours.0.from", "8am"),
        "nodes.desk.hours.0.from",
        'expected a time "HH:MM"',
    ),
    ("hour 24", put("nodes.desk.hours.0.to", "24:00"), "nodes.desk.hours.0.to", "HH:MM"),
    (
        "unknown day",
        put("nodes.desk.hours.0.days.1", "friday"),
        "nodes.desk.hours.0.days.1",
        "unknown day",
    ),
    (
        "unknown time zone",
        put("nodes.desk.timezone", "Europe/Helsingfors"),
        "nodes.desk.timezone",
        "unknown time zone",
    ),
    # callback
    (
        "no callback steps",
        put("nodes.contact.steps", []),
        "nodes.contact.steps",
        "at least the consent step",
    ),
    (
        "consent not first",
        put("nodes.contact.steps.0.field", "time_window"),
        "nodes.contact.steps.0.field",
        "first step must be consent",
    ),
    (
        "step field twice",
        put("nodes.contact.steps.1.field", "consent"),
        "nodes.contact.steps.1.field",
        "already step 0",
    ),
    (
        "unknown step field",
        put("nodes.contact.steps.1.field", "email"),
        "nodes.contact.steps.1.field",
        "unknown field 'email'",
    ),
    (
        "empty consent version",
        put("nodes.contact.consent_version", ""),
        "nodes.contact.consent_version",
        "must not be empty",
    ),
    (
        "consent without yes",
        put("nodes.contact.steps.0.options.0.value", "ok"),
        "nodes.contact.steps.0.options",
        "yes and no",
    ),
    # recordings stay inside the flow's folder
    (
        "recording outside the folder",
        put("nodes.intro.prompt.recording", {"fi": "../x.wav"}),
        "nodes.intro.prompt.recording.fi",
        "inside the flow's folder",
    ),
    (
        "absolute recording",
        put("nodes.intro.prompt.recording", {"fi": "/etc/x.wav"}),
        "nodes.intro.prompt.recording.fi",
        "relative",
    ),
    ("no nodes at all", put("nodes", {}), "nodes", "at least one node"),
]


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [pytest.param(change, path, fragment, id=name) for name, change, path, fragment in RULES],
)
def test_each_rule_names_the_path_and_says_what_is_wrong(
    change: Callable[[dict[str, Any]], None], path: str, fragment: str
) -> None:
    problems = problems_of(render(change))
    matching = [p for p in problems if p.path == path and fragment in p.message]
    assert matching, "\n".join(f"{p.path}: {p.message}" for p in problems)
    assert all(p.line is not None and p.line >= 1 for p in matching)


def test_all_problems_are_reported_at_once() -> None:
    problems = problems_of(
        render(
            both(
                put("nodes.intro.next", "nope"),
                put("nodes.grade.max", 12),
                put("nodes.desk.endpoint", "SIP/x"),
                drop("nodes.q1.prompt.sv"),
            )
        )
    )
    paths = {p.path for p in problems}
    assert {"nodes.intro.next", "nodes.grade.max", "nodes.desk.endpoint", "nodes.q1.prompt"} <= (
        paths
    )


LINES = """\
id: lines
name: Rivit
version: "1"
languages: [fi]
start: a
nodes:
  a:
    kind: choice
    prompt: {fi: Valitse}
    options:
      - {key: "1", value: x, next: b}
      - {key: "1", value: y, next: zz}
    next: b
  b:
    kind: end
    prompt: {fi: Hei}
    next: a
  b:
    kind: end
"""


def test_problems_carry_the_yaml_line_and_format_as_file_line_path_message() -> None:
    with pytest.raises(FlowError) as caught:
        parse_flow(LINES, "lines.yaml")
    found = {(p.line, p.path, p.message.split(";")[0]) for p in caught.value.problems}
    assert (12, "nodes.a.options.1.key", "key '1' is already used by option 0") in found
    assert (12, "nodes.a.options.1.next", "no node 'zz'") in found
    assert (17, "nodes.b.next", "an end node hangs up: it must not have next") in found
    assert (18, "nodes.b", "duplicate key 'b' (first on line 14)") in found
    text = str(caught.value).splitlines()
    assert "lines.yaml:12: nodes.a.options.1.next: no node 'zz'" in text
    assert text == sorted(text, key=lambda line: int(line.split(":")[1]))


def test_digits_and_yes_no_written_without_quotes_still_read_as_text() -> None:
    text = render().replace("'1'", "1").replace("'yes'", "yes").replace("'no'", "no")
    assert "key: 1\n" in text and "value: yes" in text
    flow = parse_flow(text)
    assert flow.nodes["q1"].options[0].key == "1"
    assert flow.nodes["contact"].steps[0].options[0].value == "yes"
    assert flow.version == "1"


def test_a_recording_counts_as_that_languages_text() -> None:
    flow = parse_flow(
        render(put("nodes.grade.prompt", {"fi": "Arvosana", "recording": {"sv": "b.wav"}}))
    )
    assert flow.nodes["grade"].prompt is not None
    assert flow.nodes["grade"].prompt.recording == {"sv": "b.wav"}


# --------------------------------------------------------------------------- hostile files
def _fails(text_or_bytes: str | bytes, tmp_path: Path) -> FlowError:
    file = tmp_path / "hostile.yaml"
    if isinstance(text_or_bytes, bytes):
        file.write_bytes(text_or_bytes)
    else:
        file.write_text(text_or_bytes, encoding="utf-8")
    with pytest.raises(FlowError) as caught:  # its CPU time: python -m bench.flow_loader
        load_flow(file)
    assert str(file) in str(caught.value)
    return caught.value


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


@pytest.mark.parametrize(
    ("content", "fragment", "line"),
    [
        pytest.param(b"id: t\nname: \xff\xfeabc\n", "not UTF-8", 2, id="not-utf8"),
        pytest.param("id: t\nnodes: [a, b\n", "not valid YAML", 3, id="not-yaml"),
        pytest.param("- a\n- b\n", "not a list", 1, id="a-list"),
        pytest.param("just words\n", "not a single value", 1, id="a-scalar"),
        pytest.param("", "empty", None, id="empty"),
        pytest.param("# only a comment\n", "empty", None, id="only-comments"),
        pytest.param(
            "a: " + "[" * 50 + "]" * 50 + "\n", "nested deeper than 20 levels", 1, id="deep-flow"
        ),
        pytest.param(
            "".join("  " * i + f"k{i}:\n" for i in range(50)) + "  " * 50 + "v\n",
            "nested deeper than 20 levels",
            21,
            id="deep-block",
        ),
        pytest.param(BILLION_LAUGHS, "anchors (&a) are not allowed", 1, id="billion-laughs"),
        pytest.param("a: 1\nb: *x\n", "aliases (*x) are not allowed", 2, id="alias"),
        pytest.param(
            "id: !!python/object:os.system x\n", "tags (!!python/object", 1, id="python-tag"
        ),
        pytest.param("!!python/object/apply:os.system [ls]\n", "tags", 1, id="python-apply"),
        pytest.param("a: {x: 1}\nb:\n  <<: {x: 2}\n", "merge keys (<<)", 3, id="merge-key"),
        pytest.param("keys: {repeat: *}\n", "must be quoted", 1, id="unquoted-star"),
        pytest.param("id: a\n---\nid: b\n", "more than one YAML document", 2, id="two-docs"),
        pytest.param("id: a\x00\n", "not valid YAML", 1, id="nul-char"),
        pytest.param(
            "nodes:\n" + "".join(f"  n{i}: {{kind: end}}\n" for i in range(501)),
            "more than 500 nodes",
            502,
            id="501-nodes",
        ),
        pytest.param(
            "a: [" + ",".join(["1"] * 200_000) + "]\n", "too many values", 1, id="many-values"
        ),
    ],
)
def test_hostile_files_fail_with_a_clear_message(
    content: str | bytes, fragment: str, line: int | None, tmp_path: Path
) -> None:
    error = _fails(content, tmp_path)
    assert len(error.problems) == 1
    assert fragment in error.problems[0].message
    assert error.problems[0].line == line


def test_a_file_over_1_mb_is_refused_before_parsing(tmp_path: Path) -> None:
    big = "# " + "x" * 2_000_000 + "\n"
    error = _fails(big, tmp_path)
    assert "at most 1 MB" in str(error)
    assert len(big) > MAX_FILE_BYTES
    with pytest.raises(FlowError, match="at most 1 MB"):
        parse_flow(big)


def test_a_missing_file_is_a_flow_error(tmp_path: Path) -> None:
    with pytest.raises(FlowError, match="no such file"):
        load_flow(tmp_path / "nope.yaml")
    assert validate_file(tmp_path / "nope.yaml")[0].message == "no such file"
    assert validate_file(tmp_path)[0].message == "is not a file"


def test_a_wildly_broken_file_stops_after_200_problems() -> None:
    text = "".join(f"field{i}: {i}\n" for i in range(15_000))
    problems = problems_of(text)  # its CPU time: python -m bench.flow_loader
    assert len(problems) == 201
    assert "stopped after 200 problems" in problems[-1].message


# --------------------------------------------------------------------------- examples
def test_example_flows_validate_with_the_expected_node_kinds() -> None:
    expected = {
        "strategy-survey.yaml": [
            "say",
            "language",
            "say",
            "scale",
            "choice",
            "choice",
            "choice",
            "open",
            "callback",
            "end",
        ],
        "survey-call-in.yaml": [
            "language",
            "say",
            "scale",
            "choice",
            "choice",
            "choice",
            "open",
            "callback",
            "end",
        ],
        "housing-line.yaml": [
            "language",
            "choice",
            "say",
            "say",
            "say",
            "say",
            "choice",
            "transfer",
            "say",
            "callback",
            "end",
            "end",
        ],
    }
    for name, kinds in expected.items():
        assert validate_file(EXAMPLES / name) == [], name
        flow = load_flow(EXAMPLES / name)
        assert [node.kind for node in flow.nodes.values()] == kinds, name
        assert flow.languages == ("fi", "sv")


def test_strategy_survey_example_details() -> None:
    flow = load_flow(EXAMPLES / "strategy-survey.yaml")
    assert flow.nodes[flow.start].kind == "say"
    intro = flow.nodes[flow.start].prompt
    assert intro is not None and intro.recording == {"fi": "recordings/intro-fi.wav"}
    assert (EXAMPLES / "recordings" / "intro-fi.wav").read_bytes()[:4] == b"RIFF"
    assert flow.nodes[flow.nodes[flow.start].next or ""].kind == "language"
    assert (flow.keys.repeat, flow.keys.switch_language, flow.keys.opt_out) == ("*", "9", "0")
    assert flow.opt_out_prompt is not None
    age = flow.nodes["age-group"]
    assert [(o.key, o.value) for o in age.options] == [
        ("1", "18-29"),
        ("2", "30-49"),
        ("3", "50-64"),
        ("4", "65+"),
    ]
    contact = flow.nodes["contact"]
    assert [s.field for s in contact.steps] == ["consent", "channel", "time_window", "interpreter"]
    assert [o.value for o in contact.steps[1].options] == ["phone", "email", "home_visit"]
    assert {"none", "ar", "ru", "so", "en"} <= {o.value for o in contact.steps[3].options}
    assert not flow.anonymous


def test_call_in_line_has_no_opt_out_and_starts_with_the_language_menu() -> None:
    flow = load_flow(EXAMPLES / "survey-call-in.yaml")
    survey = load_flow(EXAMPLES / "strategy-survey.yaml")
    assert flow.keys.opt_out == "" and flow.opt_out_prompt is None
    assert flow.nodes[flow.start].kind == "language"
    questions = ["services", "develop-area", "recommend", "age-group", "develop-open", "contact"]
    for node_id in questions:
        assert flow.nodes[node_id] == survey.nodes[node_id], node_id


def test_housing_line_is_anonymous_with_office_hours_and_a_menu_loop() -> None:
    flow = load_flow(EXAMPLES / "housing-line.yaml")
    assert flow.anonymous
    desk = flow.nodes["desk"]
    assert desk.endpoint == "PJSIP/softphone1"
    assert desk.hours == tuple((day, "08:00", "16:00") for day in range(5))
    assert desk.fallback is not None
    assert flow.nodes[desk.fallback].next == "contact"
    menu_targets = {o.next for o in flow.nodes["menu"].options}
    assert {flow.nodes[t].next for t in menu_targets if t} == {"next-steps"}
    steps = {o.key: o.next for o in flow.nodes["next-steps"].options}
    assert steps == {"1": "desk", "2": "contact", "3": "menu"}
    assert flow.nodes[flow.nodes["next-steps"].fallback or ""].kind == "end"


# --------------------------------------------------------------------------- iter_prompts
def test_iter_prompts_lists_every_prompt_once_per_language() -> None:
    flow = parse_flow(render())
    listed = list(iter_prompts(flow))
    paths = [path for path, language, _ in listed if language == "fi"]
    assert [lang for _, lang, _ in listed[:2]] == ["fi", "sv"]
    assert paths[0] == "nodes.intro.prompt"
    assert "nodes.contact.steps.0.prompt" in paths and "nodes.contact.steps.1.prompt" in paths
    assert paths[-1] == "opt_out_prompt"
    # the shared defaults are listed once, under the first input node that uses them
    assert "nodes.lang.no_input" in paths and "nodes.q1.no_input" not in paths
    assert "nodes.intro.no_input" not in paths
    assert len(listed) == 2 * len(paths)
    assert len(paths) == 8 + 2 + 2 + 1  # node prompts, steps, defaults, opt-out


def test_the_pure_python_loader_refuses_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without libyaml the SafeLoader subclass does the same job."""
    from ivr.flows import loader

    monkeypatch.setattr(loader, "_LOADER", loader._SafeFlowLoader)
    assert len(load_flow(EXAMPLES / "housing-line.yaml").nodes) == 12
    for text, fragment in [
        (BILLION_LAUGHS, "anchors (&a)"),
        ("a: 1\nb: *x\n", "aliases (*x)"),
        ("id: !!python/object:os.system x\n", "tags (!!python/object"),
        ("a: " + "[" * 50 + "]" * 50 + "\n", "nested deeper"),
        ("id: a\x00\n", "U+0000"),
    ]:
        problems = problems_of(text)
        assert fragment in problems[0].message, problems
