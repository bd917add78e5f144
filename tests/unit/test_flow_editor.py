"""The form-based flow editor's core: open/save round trips, the form, errors, operations."""

from __future__ import annotations

import copy
import dataclasses
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ivr.flows import editor_yaml, loader
from ivr.flows.editor import (
    STEP_KINDS,
    Defaults,
    Editable,
    EditRefused,
    FieldError,
    FormErrors,
    Hours,
    Option,
    Question,
    ReadOnly,
    Reason,
    Step,
    add_step,
    check_flow,
    clear_upload,
    field_for_path,
    from_form,
    move_step,
    new_flow,
    open_flow,
    prompt_audio_of,
    prompts_of,
    read_form,
    remove_step,
    render,
    save_flow,
    set_upload,
    to_form,
    upload_of,
)
from ivr.flows.loader import FlowError, parse_flow
from ivr.flows.model import Flow
from ivr.flows.walk import iter_prompts

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flows"


def loaded(text: str) -> Flow:
    return dataclasses.replace(parse_flow(text), source="")


def editable(text: str) -> Editable:
    result = open_flow(text)
    assert isinstance(result, Editable), getattr(result, "messages", result)
    return result


def assert_round_trip(flow: Editable, original: str | None = None) -> None:
    """Everything the editor promises for an editable flow."""
    text = save_flow(flow)
    again = editable(text)
    assert again == flow
    assert save_flow(again) == text  # stable
    if original is not None:
        assert loaded(text) == loaded(original)  # the loader sees the same flow
    assert from_form(to_form(flow)) == flow
    walked = list(iter_prompts(loaded(text)))
    expected = [(p, lang, prompt.text[lang]) for p, lang, prompt in walked if lang in prompt.text]
    assert prompts_of(flow) == expected
    assert prompt_audio_of(flow) == [
        (p, lang, prompt.text.get(lang, ""), prompt.upload.get(lang)) for p, lang, prompt in walked
    ]
    assert all(not prompt.recording for _, _, prompt in walked)
    assert check_flow(flow) == []


# --------------------------------------------------------------------------- the examples
RECORDING = Reason(
    "nodes.intro.prompt.recording.fi",
    "recording",
    {"language": "fi", "file": "recordings/intro-fi.wav"},
)
EXAMPLE_RESULTS: dict[str, list[Reason] | None] = {  # None: editable
    "housing-line.yaml": None,
    "survey-call-in.yaml": None,
    "strategy-survey.yaml": [RECORDING],
}


def test_every_example_is_in_the_table() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == sorted(EXAMPLE_RESULTS)


@pytest.mark.parametrize("name", sorted(EXAMPLE_RESULTS))
def test_example_flows(name: str) -> None:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    expected = EXAMPLE_RESULTS[name]
    result = open_flow(text)
    if expected is None:
        assert isinstance(result, Editable)
        assert [s.id for s in result.steps] == list(loaded(text).nodes)  # the file's order
        assert_round_trip(result, text)
    else:
        assert isinstance(result, ReadOnly)
        assert list(result.reasons) == expected
        assert result.flow.id == loaded(text).id


def test_read_only_messages_are_english_with_the_path() -> None:
    result = open_flow((EXAMPLES / "strategy-survey.yaml").read_text(encoding="utf-8"))
    assert isinstance(result, ReadOnly)
    assert result.messages == [
        "nodes.intro.prompt.recording.fi: plays the Finnish recording recordings/intro-fi.wav; "
        "recorded prompts are not editable here"
    ]
    finnish = {"recording": "soittaa {language_name} äänitteen {file}"}
    assert result.reasons[0].render(finnish, {"fi": "suomenkielisen"}) == (
        "nodes.intro.prompt.recording.fi: soittaa suomenkielisen äänitteen recordings/intro-fi.wav"
    )
    assert render("missing_text", {"language": "sv"}) == "write the Swedish text"


def test_example_keeps_defaults_and_what_steps_set() -> None:
    flow = editable((EXAMPLES / "housing-line.yaml").read_text(encoding="utf-8"))
    assert flow.defaults.timeout == 6 and flow.defaults.retries == 2
    assert flow.defaults.no_input == {
        "fi": "En kuullut valintaasi.",
        "sv": "Jag hörde inte ditt val.",
    }
    assert flow.step("next-steps").retries == 0  # set on the step
    assert flow.step("menu").retries is None  # the flow's default
    assert flow.step("desk").hours == (
        Hours(("mon", "tue", "wed", "thu", "fri"), "08:00", "16:00"),
    )
    assert [q.field for q in flow.step("contact").questions] == [
        "consent",
        "time_window",
        "interpreter",
    ]


def test_invalid_yaml_raises_the_loaders_error() -> None:
    with pytest.raises(FlowError) as caught:
        open_flow("id: x\nnodes: {}\n")
    assert any(p.path == "nodes" for p in caught.value.problems)


# --------------------------------------------------------------------------- read-only flows
def P(fi: str = "Hei", sv: str = "Hej") -> dict[str, Any]:
    return {"fi": fi, "sv": sv}


def yes_no() -> list[dict[str, str]]:
    return [{"key": "1", "value": "yes"}, {"key": "2", "value": "no"}]


BASE: dict[str, Any] = {
    "id": "t",
    "name": "T",
    "version": "1",
    "languages": ["fi", "sv"],
    "start": "q1",
    "fallback": "bye",
    "keys": {"opt_out": "0"},
    "opt_out_prompt": P(),
    "defaults": {"no_input": P()},
    "nodes": {
        "q1": {"kind": "choice", "prompt": P(), "options": yes_no(), "next": "cb"},
        "cb": {
            "kind": "callback",
            "consent_version": "v1",
            "steps": [{"field": "consent", "prompt": P(), "options": yes_no()}],
            "next": "bye",
        },
        "bye": {"kind": "end", "prompt": P()},
    },
}


def base_text(change: Callable[[dict[str, Any]], None] | None = None) -> str:
    doc = copy.deepcopy(BASE)
    if change is not None:
        change(doc)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def put(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        parent: Any = doc
        for part in parents:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        parent[last] = value

    return change


def test_base_flow_is_editable() -> None:
    assert_round_trip(editable(base_text()), base_text())


@pytest.mark.parametrize(
    ("change", "reasons"),
    [
        (
            put("nodes.q1.prompt.recording", {"sv": "kysymys-sv.wav"}),
            [
                Reason(
                    "nodes.q1.prompt.recording.sv",
                    "recording",
                    {"language": "sv", "file": "kysymys-sv.wav"},
                )
            ],
        ),
        (
            put("defaults.no_input.recording", {"fi": "hiljaa.wav"}),
            [
                Reason(
                    "defaults.no_input.recording.fi",
                    "recording",
                    {"language": "fi", "file": "hiljaa.wav"},
                )
            ],
        ),
        (
            put("nodes.cb.steps.0.prompt.recording", {"fi": "a.wav", "sv": "b.wav"}),
            [
                Reason(
                    "nodes.cb.steps.0.prompt.recording.fi",
                    "recording",
                    {"language": "fi", "file": "a.wav"},
                ),
                Reason(
                    "nodes.cb.steps.0.prompt.recording.sv",
                    "recording",
                    {"language": "sv", "file": "b.wav"},
                ),
            ],
        ),
        (
            put("opt_out_prompt.recording", {"fi": "kielto.wav"}),
            [
                Reason(
                    "opt_out_prompt.recording.fi",
                    "recording",
                    {"language": "fi", "file": "kielto.wav"},
                )
            ],
        ),
    ],
    ids=["recording", "default-recording", "callback-recordings", "opt-out-recording"],
)
def test_read_only_reasons(change: Callable[[dict[str, Any]], None], reasons: list[Reason]) -> None:
    result = open_flow(base_text(change))
    assert isinstance(result, ReadOnly)
    assert list(result.reasons) == reasons


def test_a_key_the_loader_learns_but_the_editor_does_not_makes_it_read_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kinds = dict(loader._KIND_FIELDS)
    kinds["choice"] = (*kinds["choice"], "when")
    monkeypatch.setattr(loader, "_KIND_FIELDS", kinds)
    result = open_flow(base_text(put("nodes.q1.when", "hour < 12")))
    assert isinstance(result, ReadOnly)
    assert result.messages == ["nodes.q1.when: 'when' is not editable here"]


def test_a_flow_the_editor_would_change_is_read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real = editor_yaml.save_flow
    monkeypatch.setattr(
        editor_yaml, "save_flow", lambda flow: real(dataclasses.replace(flow, name="Other"))
    )
    result = open_flow(base_text())
    assert isinstance(result, ReadOnly)
    assert result.reasons == (Reason("name", "unfaithful"),)


# --------------------------------------------------------------------------- the form
def three_questions() -> dict[str, str]:
    """A choice, a scale and an open answer, then an end; Finnish and Swedish."""
    return {
        "id": "park-survey",
        "name": "Puistokysely / Parkenkät",
        "version": "1",
        "languages": "fi,sv",
        "default_language": "fi",
        "start": "use",
        "fallback": "bye",
        "keys-repeat": "*",
        "keys-switch_language": "9",
        "keys-opt_out": "",
        "defaults-no_input-fi": "En kuullut.",
        "defaults-no_input-sv": "Jag hörde inte.",
        "steps-0-id": "use",
        "steps-0-kind": "choice",
        "steps-0-text-fi": "Käytätkö puistoa? Kyllä 1, ei 2.",
        "steps-0-text-sv": "Använder du parken? Ja 1, nej 2.",
        "steps-0-next": "grade",
        "steps-0-fallback": "grade",
        "steps-0-retries": "1",
        "steps-0-options-0-key": "1",
        "steps-0-options-0-value": "yes",
        "steps-0-options-0-label-fi": "Kyllä",
        "steps-0-options-0-label-sv": "Ja",
        "steps-0-options-1-key": "2",
        "steps-0-options-1-value": "no",
        "steps-0-options-1-next": "wish",
        "steps-0-options-1-label-fi": "Ei",
        "steps-0-options-1-label-sv": "Nej",
        "steps-1-id": "grade",
        "steps-1-kind": "scale",
        "steps-1-text-fi": "Arvosana yhdestä viiteen?",
        "steps-1-text-sv": "Betyg från ett till fem?",
        "steps-1-min": "1",
        "steps-1-max": "5",
        "steps-1-next": "wish",
        "steps-2-id": "wish",
        "steps-2-kind": "open",
        "steps-2-text-fi": "Mitä toivot puistoon? Kerro äänimerkin jälkeen.",
        "steps-2-text-sv": "Vad önskar du i parken? Berätta efter tonen.",
        "steps-2-max_seconds": "90",
        "steps-2-beep": "on",
        "steps-2-next": "bye",
        "steps-3-id": "bye",
        "steps-3-kind": "end",
        "steps-3-text-fi": "Kiitos!",
        "steps-3-text-sv": "Tack!",
        "csrf_token": "ignored",
    }


def test_three_question_flow_built_through_the_form() -> None:
    flow = from_form(three_questions())
    assert [(s.id, s.kind) for s in flow.steps] == [
        ("use", "choice"),
        ("grade", "scale"),
        ("wish", "open"),
        ("bye", "end"),
    ]
    text = save_flow(flow)
    model = parse_flow(text)  # the project's loader accepts it
    assert model.node("use").options[1].next == "wish"
    assert model.node("use").retries == 1 and model.node("grade").retries == 2
    assert model.node("wish").max_seconds == 90
    assert open_flow(text) == flow
    assert_round_trip(flow, text)


def test_form_field_names() -> None:
    form = to_form(from_form(three_questions()))
    assert form["steps-0-kind"] == "choice"
    assert form["steps-0-text-fi"].startswith("Käytätkö")
    assert form["steps-0-options-1-next"] == "wish"
    assert form["steps-0-options-0-next"] == ""  # the step's own next
    assert form["steps-1-retries"] == ""  # the flow's default
    assert form["languages"] == "fi,sv" and form["anonymous"] == ""


def test_blank_rows_and_gaps_are_skipped_and_errors_name_the_submitted_row() -> None:
    form = three_questions()
    form["steps-0-options-5-key"] = ""  # an empty "add option" row
    form["steps-0-options-5-value"] = ""
    moved = {k.replace("steps-3-", "steps-7-"): v for k, v in form.items()}
    assert from_form(moved) == from_form(three_questions())
    moved["steps-7-text-sv"] = ""
    with pytest.raises(FormErrors) as caught:
        from_form(moved)
    assert caught.value.items == [("steps-7-text-sv", "write the Swedish text")]


def setting(name: str, value: str) -> Callable[[dict[str, str]], None]:
    def apply(form: dict[str, str]) -> None:
        form[name] = value

    return apply


def removing(name: str) -> Callable[[dict[str, str]], None]:
    def apply(form: dict[str, str]) -> None:
        del form[name]

    return apply


FORM_ERRORS: list[tuple[str, Callable[[dict[str, str]], None], set[tuple[str, str]]]] = [
    (
        "missing Finnish text",
        setting("steps-1-text-fi", "  "),
        {("steps-1-text-fi", "missing_text")},
    ),
    ("text field left out", removing("steps-2-text-sv"), {("steps-2-text-sv", "missing_text")}),
    (
        "option to a missing step",
        setting("steps-0-options-1-next", "nowhere"),
        {("steps-0-options-1-next", "unknown_step")},
    ),
    (
        "duplicate digits",
        setting("steps-0-options-1-key", "1"),
        {("steps-0-options-1-key", "duplicate_key")},
    ),
    ("two digits", setting("steps-0-options-1-key", "12"), {("steps-0-options-1-key", "bad_key")}),
    (
        "duplicate values",
        setting("steps-0-options-1-value", "yes"),
        {("steps-0-options-1-value", "duplicate_value")},
    ),
    (
        "option without value",
        setting("steps-0-options-1-value", ""),
        {("steps-0-options-1-value", "required")},
    ),
    ("unknown kind", setting("steps-1-kind", "slider"), {("steps-1-kind", "bad_kind")}),
    ("no kind", setting("steps-1-kind", ""), {("steps-1-kind", "required")}),
    (
        "next to a missing step",
        setting("steps-2-next", "byebye"),
        {("steps-2-next", "unknown_step")},
    ),
    ("no next", setting("steps-2-next", ""), {("steps-2-next", "required")}),
    (
        "fallback to a missing step",
        setting("steps-0-fallback", "x"),
        {("steps-0-fallback", "unknown_step")},
    ),
    ("start at a missing step", setting("start", "first"), {("start", "unknown_step")}),
    ("duplicate step id", setting("steps-1-id", "use"), {("steps-1-id", "duplicate_id")}),
    ("bad step id", setting("steps-1-id", "Grade 1"), {("steps-1-id", "bad_id")}),
    ("bad flow id", setting("id", "Park Survey"), {("id", "bad_flow_id")}),
    ("no name", setting("name", ""), {("name", "required")}),
    ("words for a number", setting("steps-1-max", "five"), {("steps-1-max", "not_whole_number")}),
    ("no min", setting("steps-1-min", ""), {("steps-1-min", "required")}),
    ("words for seconds", setting("steps-0-timeout", "soon"), {("steps-0-timeout", "not_seconds")}),
    ("a checkbox that is not", setting("steps-2-beep", "maybe"), {("steps-2-beep", "not_on_off")}),
    ("unknown language", setting("languages", "fi,de"), {("languages", "unknown_language")}),
    ("no languages", setting("languages", ""), {("languages", "no_languages")}),
    (
        "default language not used",
        setting("default_language", "en"),
        {("default_language", "not_flow_language")},
    ),
    (
        "half a default prompt",
        setting("defaults-no_input-sv", ""),
        {("defaults-no_input-sv", "missing_text")},
    ),
    (
        "opt-out key without a prompt",
        setting("keys-opt_out", "0"),
        {("opt_out_prompt-fi", "missing_text"), ("opt_out_prompt-sv", "missing_text")},
    ),
    # the project's loader refuses these; its YAML path becomes the field
    (
        "option key is the switch key",
        setting("keys-switch_language", "2"),
        {("steps-0-options-1-key", "invalid")},
    ),
    ("scale past 9", setting("steps-1-max", "12"), {("steps-1-max", "invalid")}),
    ("retries out of range", setting("steps-0-retries", "9"), {("steps-0-retries", "invalid")}),
    ("unreachable step", setting("start", "grade"), {("steps-0-id", "invalid")}),
    (
        "long recording",
        setting("steps-2-max_seconds", "6000"),
        {("steps-2-max_seconds", "invalid")},
    ),
]


@pytest.mark.parametrize(
    ("change", "expected"),
    [(c, e) for _, c, e in FORM_ERRORS],
    ids=[name for name, _, _ in FORM_ERRORS],
)
def test_form_errors_name_the_field(
    change: Callable[[dict[str, str]], None], expected: set[tuple[str, str]]
) -> None:
    form = three_questions()
    change(form)
    with pytest.raises(FormErrors) as caught:
        from_form(form)
    errors = caught.value.errors
    assert expected <= {(e.field, e.code) for e in errors}
    assert all(e.field for e in errors)
    assert all(message for _, message in caught.value.items)
    assert set(caught.value.by_field()) == {e.field for e in errors}


def test_unknown_kind_is_not_also_called_a_missing_step() -> None:
    form = three_questions()
    form["steps-2-kind"] = "recording"
    with pytest.raises(FormErrors) as caught:
        from_form(form)
    assert caught.value.items == [
        (
            "steps-2-kind",
            "unknown step kind 'recording'; use say, language, choice, scale, number, open, "
            "callback, transfer, end",
        )
    ]


def test_loader_errors_keep_the_loaders_words_and_path() -> None:
    form = three_questions()
    form["keys-switch_language"] = "2"
    with pytest.raises(FormErrors) as caught:
        from_form(form)
    (error,) = caught.value.errors
    assert error.path == "nodes.use.options.1.key"
    assert error.message == "key '2' is the flow's switch_language key (keys.switch_language)"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("nodes.contact.steps.1.options.2.label.sv", "steps-9-questions-1-options-2-label-sv"),
        ("nodes.contact.steps.0.prompt", "steps-9-questions-0-text-fi"),
        ("nodes.desk.hours.0.days.3", "steps-7-hours-0-days"),
        ("nodes.desk.hours.0.to", "steps-7-hours-0-to"),
        ("nodes.menu.options.3.next", "steps-1-options-3-next"),
        ("nodes.menu", "steps-1-id"),
        ("nodes.menu.invalid.sv", "steps-1-invalid-sv"),
        ("nodes.menu.prompt.upload.sv", "steps-1-upload-sv"),
        ("nodes.menu.invalid.upload.fi", "steps-1-invalid-upload-fi"),
        ("nodes.contact.steps.0.prompt.upload.sv", "steps-9-questions-0-upload-sv"),
        ("defaults.no_input.upload.sv", "defaults-no_input-upload-sv"),
        ("opt_out_prompt.upload.fi", "opt_out_prompt-upload-fi"),
        ("defaults.no_input", "defaults-no_input-fi"),
        ("keys.opt_out", "keys-opt_out"),
        ("nodes.nosuch.next", "steps"),
        ("start", "start"),
        ("", ""),
    ],
)
def test_field_for_path(path: str, field: str) -> None:
    flow = editable((EXAMPLES / "housing-line.yaml").read_text(encoding="utf-8"))
    assert field_for_path(flow, path) == field


# --------------------------------------------------------------------------- operations
def ids_and_next(flow: Editable) -> list[tuple[str, str | None]]:
    return [(s.id, s.next if s.kind != "transfer" else s.fallback) for s in flow.steps]


def test_new_flow_is_valid_and_minimal() -> None:
    flow = new_flow("Kaupunkistrategia 2026 – äänestys", ["fi", "sv", "en"])
    assert flow.id == "kaupunkistrategia-2026-aanestys"
    assert [s.kind for s in flow.steps] == ["say", "choice", "end"]
    assert all(set(s.text) == {"fi", "sv", "en"} for s in flow.steps)
    parse_flow(save_flow(flow))
    assert_round_trip(flow)
    with pytest.raises(ValueError):
        new_flow("X", ["fi", "de"])
    with pytest.raises(ValueError):
        new_flow(" ", ["fi"])


def fill(flow: Editable) -> Editable:
    """Write the texts and settings a person fills in after adding a step."""
    langs = flow.languages

    def texts(word: str) -> dict[str, str]:
        return {lang: f"{word} {lang}" for lang in langs}

    steps = []
    for s in flow.steps:
        if not s.text and s.kind not in ("callback", "transfer", "end"):
            s = dataclasses.replace(s, text=texts(s.id))
        if s.kind == "callback":
            questions = tuple(dataclasses.replace(q, text=texts("consent")) for q in s.questions)
            s = dataclasses.replace(s, consent_version="v1", questions=questions)
        if s.kind == "transfer":
            s = dataclasses.replace(s, endpoint="PJSIP/softphone1")
        steps.append(s)
    return dataclasses.replace(flow, steps=tuple(steps))


@pytest.mark.parametrize("kind", STEP_KINDS)
def test_add_step_of_each_kind(kind: str) -> None:
    base = new_flow("Kysely", ["fi", "sv"])
    flow = add_step(base, kind)
    added = flow.steps[2]
    assert added.id == ("message-1" if kind == "say" else f"{kind}-1")
    assert [s.id for s in flow.steps] == ["welcome", "question", added.id, "end"]
    if kind == "end":
        assert flow.step("question").next == "end"  # an end does not cut the sequence
    else:
        assert flow.step("question").next == added.id
        assert (added.fallback if kind == "transfer" else added.next) == "end"
    if kind in ("say", "language", "choice", "scale", "number", "open"):
        fields = {e.field for e in check_flow(flow)}
        assert fields == {"steps-2-text-fi", "steps-2-text-sv"}
    filled = fill(flow)
    if kind != "end":  # an added end step is unreachable until something goes to it
        assert check_flow(filled) == []
        assert_round_trip(filled)


def test_add_step_language_menu_offers_the_flows_languages() -> None:
    flow = add_step(new_flow("K", ["sv", "fi"]), "language", at=0, step_id="lang")
    assert flow.start == "lang"
    assert flow.steps[0].options == (
        Option("1", "sv", {"sv": "svenska", "fi": "ruotsi"}),
        Option("2", "fi", {"sv": "finska", "fi": "suomi"}),
    )
    assert flow.steps[0].next == "welcome"


@pytest.mark.parametrize(
    ("kind", "step_id", "code"),
    [("slider", None, "bad_kind"), ("say", "welcome", "duplicate_id"), ("say", "Hei!", "bad_id")],
)
def test_add_step_refused(kind: str, step_id: str | None, code: str) -> None:
    with pytest.raises(EditRefused) as caught:
        add_step(new_flow("K"), kind, step_id=step_id)
    assert [r.code for r in caught.value.reasons] == [code]


def survey() -> Editable:
    return editable((EXAMPLES / "survey-call-in.yaml").read_text(encoding="utf-8"))


def test_remove_step_splices_it_out() -> None:
    flow = remove_step(survey(), "recommend")
    assert "recommend" not in [s.id for s in flow.steps]
    assert flow.step("develop-area").next == "age-group"
    assert flow.step("develop-area").fallback == "age-group"
    assert check_flow(flow) == []


def test_remove_the_start_step_moves_the_start() -> None:
    flow = remove_step(survey(), "lang")
    assert flow.start == "welcome"
    assert check_flow(flow) == []


def test_remove_step_in_use_is_refused_with_every_reference() -> None:
    with pytest.raises(EditRefused) as caught:
        remove_step(survey(), "thanks")
    paths = [r.path for r in caught.value.reasons]
    assert paths == [
        "fallback",
        "nodes.contact.next",
        "nodes.contact.fallback",
        "nodes.contact.declined_next",
    ]
    assert (
        caught.value.reasons[0].message
        == "fallback: 'thanks' is used here; say where to go instead"
    )


def test_remove_step_with_a_redirect() -> None:
    flow = add_step(survey(), "end", step_id="bye")
    flow = remove_step(flow, "thanks", redirect="bye")
    assert flow.fallback == "bye"
    assert flow.step("contact").declined_next == "bye"
    assert check_flow(flow) == []


@pytest.mark.parametrize(
    ("step_id", "redirect", "code"),
    [("nosuch", None, "no_such_step"), ("thanks", "nosuch", "no_such_step")],
)
def test_remove_step_refused(step_id: str, redirect: str | None, code: str) -> None:
    with pytest.raises(EditRefused) as caught:
        remove_step(survey(), step_id, redirect=redirect)
    assert [r.code for r in caught.value.reasons] == [code]


def test_remove_the_last_step_is_refused() -> None:
    flow = new_flow("K")
    flow = dataclasses.replace(flow, steps=flow.steps[2:], start="end", fallback=None)
    with pytest.raises(EditRefused) as caught:
        remove_step(flow, "end")
    assert caught.value.reasons[0].code == "last_step"


def test_move_step_up_changes_the_order_of_the_questions() -> None:
    flow = move_step(survey(), "recommend", -1)
    order = [s.id for s in flow.steps]
    assert order.index("recommend") == order.index("develop-area") - 1
    assert flow.step("services").next == "recommend"
    assert flow.step("services").fallback == "recommend"
    assert flow.step("recommend").next == "develop-area"
    assert flow.step("develop-area").next == "age-group"
    assert check_flow(flow) == []
    assert move_step(flow, "recommend", 1) == survey()  # and back


def test_move_step_down_two_places_and_the_start_follows() -> None:
    base = new_flow("K")
    flow = move_step(base, "welcome", 1)
    assert flow.start == "question"
    assert ids_and_next(flow) == [("question", "welcome"), ("welcome", "end"), ("end", None)]
    assert check_flow(flow) == []
    flow = move_step(base, "welcome", 2)
    assert [s.id for s in flow.steps] == ["question", "end", "welcome"]
    assert flow.start == "question"
    assert flow.step("question").next == "end"


def test_move_keeps_branches() -> None:
    housing = editable((EXAMPLES / "housing-line.yaml").read_text(encoding="utf-8"))
    flow = move_step(housing, "search-advice", -1)
    assert [s.id for s in flow.steps][2:4] == ["search-advice", "rent-advice"]
    assert flow.step("menu").options == housing.step("menu").options
    assert loaded(save_flow(flow)).nodes == loaded(save_flow(housing)).nodes


@pytest.mark.parametrize(
    ("step_id", "by", "code"),
    [("lang", -1, "already_first"), ("thanks", 1, "already_last"), ("nosuch", 1, "no_such_step")],
)
def test_move_step_refused(step_id: str, by: int, code: str) -> None:
    with pytest.raises(EditRefused) as caught:
        move_step(survey(), step_id, by)
    assert [r.code for r in caught.value.reasons] == [code]


def test_prompts_of_uses_the_prompt_keys() -> None:
    prompts = prompts_of(survey())
    assert prompts[0] == ("nodes.lang.prompt", "fi", survey().step("lang").text["fi"])
    keys = [p.key for p in prompts]
    assert "nodes.lang.no_input" in keys and "nodes.services.no_input" not in keys
    assert "nodes.contact.steps.3.prompt" in keys


# --------------------------------------------------------------------------- uploaded prompts
def with_uploads(doc: dict[str, Any]) -> None:
    """Uploads on every kind of prompt the editor models (some with the text beside them,
    some alone, as the format allows)."""
    nodes = doc["nodes"]
    nodes["q1"]["prompt"]["upload"] = {"sv": "kysymys-sv"}
    nodes["q1"]["invalid"] = {"fi": "Väärä", "upload": {"sv": "vaara"}}  # sv: upload only
    nodes["cb"]["steps"][0]["prompt"]["upload"] = {"fi": "lupa", "sv": "lupa-sv"}
    nodes["cb"]["no_input"] = {"upload": {"fi": "hiljaa", "sv": "yes"}}  # no text at all
    nodes["bye"]["prompt"] = {"upload": {"sv": "1"}, "fi": "Hei hei"}
    doc["defaults"]["no_input"]["upload"] = {"fi": "en-kuullut"}
    doc["defaults"]["invalid"] = {"upload": {"fi": "null", "sv": "true"}}
    doc["opt_out_prompt"]["upload"] = {"fi": "kielto", "sv": "kielto_sv"}


def test_uploads_round_trip_in_every_place() -> None:
    text = base_text(with_uploads)
    flow = editable(text)
    assert flow.step("q1").text == P() and flow.step("q1").upload == {"sv": "kysymys-sv"}
    assert flow.step("q1").invalid == {"fi": "Väärä"}
    assert flow.step("q1").invalid_upload == {"sv": "vaara"}
    assert flow.step("q1").no_input is None and flow.step("q1").no_input_upload == {}
    assert flow.step("cb").questions[0].upload == {"fi": "lupa", "sv": "lupa-sv"}
    assert flow.step("cb").no_input == {}  # its own prompt, with uploads only
    assert flow.step("cb").no_input_upload == {"fi": "hiljaa", "sv": "yes"}
    assert flow.step("bye").upload == {"sv": "1"} and flow.step("bye").text == {"fi": "Hei hei"}
    assert flow.defaults.no_input_upload == {"fi": "en-kuullut"}
    assert flow.defaults.invalid == {} and flow.defaults.invalid_upload == {
        "fi": "null",
        "sv": "true",
    }
    assert flow.opt_out_upload == {"fi": "kielto", "sv": "kielto_sv"}
    assert_round_trip(flow, text)
    saved = save_flow(flow)
    assert "      upload: {sv: kysymys-sv}\n" in saved  # as the README writes it
    assert "upload: {fi: 'null', sv: 'true'}" in saved  # names that look like YAML values
    # The loader accepts the saved YAML: each language has an upload or a recording, not both.
    model = parse_flow(saved)
    q1 = model.nodes["q1"]
    assert q1.prompt is not None and q1.prompt.upload == {"sv": "kysymys-sv"}
    assert q1.prompt.text == P() and q1.prompt.recording == {}
    assert model.nodes["cb"].no_input is not None
    assert model.nodes["cb"].no_input.upload == {"fi": "hiljaa", "sv": "yes"}
    assert model.opt_out_prompt is not None and model.opt_out_prompt.recording == {}
    audio = {(p.key, p.language): p.upload for p in prompt_audio_of(flow)}
    assert audio[("nodes.q1.invalid", "sv")] == "vaara"
    assert audio[("nodes.q1.no_input", "fi")] == "en-kuullut"  # the default, under q1
    assert audio[("nodes.q1.prompt", "fi")] is None  # spoken
    assert ("nodes.q1.invalid", "sv") not in {(p.key, p.language) for p in prompts_of(flow)}


def test_recording_stays_read_only_beside_an_upload() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["nodes"]["q1"]["prompt"]["upload"] = {"fi": "kysymys"}
        doc["nodes"]["q1"]["prompt"]["recording"] = {"sv": "kysymys-sv.wav"}

    result = open_flow(base_text(change))
    assert isinstance(result, ReadOnly)
    assert [r.path for r in result.reasons] == ["nodes.q1.prompt.recording.sv"]
    both = put("nodes.q1.prompt", {**P(), "recording": {"fi": "a.wav"}, "upload": {"fi": "a"}})
    with pytest.raises(FlowError, match="both a recording and an upload"):
        open_flow(base_text(both))


@pytest.mark.parametrize(
    ("key", "where", "played_at"),
    [
        ("nodes.q1.prompt", lambda f: f.step("q1").upload, "nodes.q1.prompt"),
        ("nodes.bye.prompt", lambda f: f.step("bye").upload, "nodes.bye.prompt"),
        # the default that q1 plays (prompts_of lists it under q1)
        ("nodes.q1.no_input", lambda f: f.defaults.no_input_upload, "nodes.q1.no_input"),
        ("defaults.no_input", lambda f: f.defaults.no_input_upload, "nodes.q1.no_input"),
        # none yet: made, with no text
        ("defaults.invalid", lambda f: f.defaults.invalid_upload, "nodes.q1.invalid"),
        (
            "nodes.cb.steps.0.prompt",
            lambda f: f.step("cb").questions[0].upload,
            "nodes.cb.steps.0.prompt",
        ),
        ("opt_out_prompt", lambda f: f.opt_out_upload, "opt_out_prompt"),
    ],
)
def test_set_and_clear_upload(key: str, where: Callable[[Editable], Any], played_at: str) -> None:
    flow = editable(base_text())
    one = set_upload(flow, key, "sv", "tervehdys-sv")
    assert where(one) == {"sv": "tervehdys-sv"}
    assert upload_of(one, key, "sv") == "tervehdys-sv" and upload_of(one, key, "fi") is None
    two = set_upload(one, key, "fi", "tervehdys")
    assert list(where(two).items()) == [("fi", "tervehdys"), ("sv", "tervehdys-sv")]
    assert set_upload(two, key, "fi", "toinen") == set_upload(one, key, "fi", "toinen")
    # The texts stay; the flow saves, reopens and the loader plays the uploads.
    assert prompts_of(two) == prompts_of(flow)
    assert check_flow(two) == []
    assert_round_trip(two)
    played = {
        (p, lang): prompt.upload.get(lang)
        for p, lang, prompt in iter_prompts(loaded(save_flow(two)))
    }
    assert played[(played_at, "fi")] == "tervehdys"
    assert played[(played_at, "sv")] == "tervehdys-sv"
    assert clear_upload(clear_upload(two, key, "fi"), key, "sv") == flow
    assert clear_upload(flow, key, "fi") == flow  # nothing to clear


def test_set_upload_on_a_step_that_has_its_own_no_input_prompt() -> None:
    flow = editable(base_text(put("nodes.q1.no_input", P("Oma", "Egen"))))
    changed = set_upload(flow, "nodes.q1.no_input", "fi", "oma")
    assert changed.step("q1").no_input_upload == {"fi": "oma"}
    assert changed.defaults == flow.defaults
    assert upload_of(changed, "nodes.q1.no_input", "fi") == "oma"
    assert_round_trip(changed)


@pytest.mark.parametrize(
    ("key", "language", "name", "codes", "field"),
    [
        ("nodes.nosuch.prompt", "fi", "x", ["no_such_prompt"], "steps"),
        ("nodes.q1.invalid", "fi", "x", ["no_such_prompt"], "steps-0-invalid-fi"),  # none
        ("nodes.bye.no_input", "fi", "x", ["no_such_prompt"], "steps-2-no_input-fi"),
        ("nodes.cb.steps.1.prompt", "fi", "x", ["no_such_prompt"], "steps-1-questions-1-text-fi"),
        ("nodes.q1.options.0.label", "fi", "x", ["no_such_prompt"], "steps-0-options-0-label-fi"),
        ("name", "fi", "x", ["no_such_prompt"], "name"),
        ("nodes.q1.prompt", "en", "x", ["not_flow_language"], "steps-0-upload-en"),
        ("nodes.q1.prompt", "sv", "Tervehdys.wav", ["bad_upload_name"], "steps-0-upload-sv"),
        (
            "opt_out_prompt",
            "de",
            "",
            ["not_flow_language", "bad_upload_name"],
            "opt_out_prompt-upload-fi",
        ),
    ],
)
def test_set_upload_refused(
    key: str, language: str, name: str, codes: list[str], field: str
) -> None:
    flow = editable(base_text())
    with pytest.raises(EditRefused) as caught:
        set_upload(flow, key, language, name)
    assert [r.code for r in caught.value.reasons] == codes
    assert field_for_path(flow, caught.value.reasons[0].path) == field
    if codes == ["no_such_prompt"]:
        assert upload_of(flow, key, language) is None
        with pytest.raises(EditRefused):
            clear_upload(flow, key, language)
    assert caught.value.reasons[-1].message  # renders in English


def test_uploads_through_the_form() -> None:
    flow = editable(base_text(with_uploads))
    form = to_form(flow)
    assert form["steps-0-upload-sv"] == "kysymys-sv"
    assert "steps-0-upload-fi" not in form  # only where a language has an upload
    assert form["steps-0-invalid-upload-sv"] == "vaara"
    assert form["steps-1-no_input-upload-fi"] == "hiljaa"
    assert form["steps-1-no_input-fi"] == ""
    assert form["steps-1-questions-0-upload-sv"] == "lupa-sv"
    assert form["defaults-no_input-upload-fi"] == "en-kuullut"
    assert form["defaults-invalid-upload-sv"] == "true"
    assert form["opt_out_prompt-upload-sv"] == "kielto_sv"
    assert from_form(form) == flow
    # A page that drops the hidden field drops the upload; the text is then needed.
    without = dict(form)
    del without["steps-0-upload-sv"]
    assert from_form(without) == clear_upload(flow, "nodes.q1.prompt", "sv")
    without["steps-0-invalid-upload-sv"] = "  "
    with pytest.raises(FormErrors) as caught:
        from_form(without)
    assert caught.value.items == [("steps-0-invalid-sv", "write the Swedish text")]
    # An upload with no text at all keeps an optional prompt; a bad name is named at its field.
    bad = dict(form, **{"steps-1-no_input-upload-sv": "Ei Näin"})
    with pytest.raises(FormErrors) as caught:
        from_form(bad)
    assert [(e.field, e.code) for e in caught.value.errors] == [
        ("steps-1-no_input-upload-sv", "bad_upload_name")
    ]


def test_a_language_with_an_upload_needs_no_text() -> None:
    form = three_questions()
    form["steps-1-text-sv"] = ""
    form["steps-1-upload-sv"] = "betyg"
    flow = from_form(form)
    assert flow.step("grade").text == {"fi": "Arvosana yhdestä viiteen?"}
    assert flow.step("grade").upload == {"sv": "betyg"}
    assert_round_trip(flow)
    form["opt_out_prompt-upload-fi"] = "kielto"  # an optional prompt in one language only
    with pytest.raises(FormErrors) as caught:
        from_form(form)
    assert caught.value.items == [("opt_out_prompt-sv", "write the Swedish text")]


def test_an_upload_the_loader_would_refuse_is_named_at_its_field() -> None:
    flow = editable(base_text())
    q1 = dataclasses.replace(flow.steps[0], upload={"sv": "ok", "en": "kysymys"})
    flow = dataclasses.replace(flow, steps=(q1, *flow.steps[1:]))
    with pytest.raises(FlowError):  # undeclared language
        parse_flow(save_flow(flow))
    errors = check_flow(flow)  # once, at the upload's field (not again from the loader)
    assert [(e.field, e.code) for e in errors] == [("steps-0-upload-en", "not_flow_language")]
    assert errors[0].message == "'en' is not one of the flow's languages (fi, sv)"


# --------------------------------------------------------------------------- random flows
# hypothesis is not installed in .venv; the same property over seeded random flows.
AWKWARD = [
    "yes",
    "no",
    "1",
    "08:00",
    "null",
    "~",
    "a: b",
    "# not a comment",
    "'quoted'",
    '"double"',
    "* star",
    "- dash",
    "{braces}",
    "Hyvää päivää! Åbo, Ärr?",
    "line one\nline two",
    "x" * 150,
    "0x1F",
    "1e3",
    "true",
]


def random_texts(rng: random.Random, langs: tuple[str, ...]) -> dict[str, str]:
    return {lang: rng.choice(AWKWARD) + f" {lang}" for lang in langs}


def random_step(
    rng: random.Random, kind: str, step_id: str, nxt: str, langs: tuple[str, ...]
) -> Step:
    text = random_texts(rng, langs)
    extra: dict[str, Any] = {}
    if kind in ("language", "choice", "scale", "number", "callback"):
        extra["timeout"] = rng.choice([None, 2.5, 10.0])
        extra["retries"] = rng.choice([None, 0, 3])
        extra["no_input"] = rng.choice([None, random_texts(rng, langs)])
        extra["invalid"] = rng.choice([None, random_texts(rng, langs)])
        extra["fallback"] = rng.choice([None, nxt])
    if kind == "language":
        opts = tuple(
            Option(str(n), lang, rng.choice([{}, {langs[0]: rng.choice(AWKWARD)}]))
            for n, lang in enumerate(langs, 1)
        )
        return Step(step_id, "language", text, next=nxt, options=opts, **extra)
    if kind == "choice":
        values = rng.sample(["yes", "no", "1", "18-29", "65+", "maybe"], rng.randint(1, 4))
        opts = tuple(
            Option(str(n), v, random_texts(rng, langs), rng.choice([None, nxt]))
            for n, v in enumerate(values, 1)
        )
        return Step(step_id, "choice", text, next=nxt, options=opts, **extra)
    if kind == "scale":
        low = rng.randint(0, 5)
        return Step(
            step_id, "scale", text, next=nxt, min_value=low, max_value=rng.randint(low, 9), **extra
        )
    if kind == "number":
        digits = rng.choice([None, 5])
        idt = rng.choice([None, 1.5])
        return Step(
            step_id,
            "number",
            text,
            next=nxt,
            max_value=rng.randint(0, 9999),
            max_digits=digits,
            inter_digit_timeout=idt,
            **extra,
        )
    if kind == "open":
        return Step(
            step_id,
            "open",
            text,
            next=nxt,
            max_seconds=rng.randint(1, 600),
            beep=rng.random() < 0.5,
        )
    if kind == "callback":
        questions: tuple[Question, ...] = (
            Question("consent", random_texts(rng, langs), (Option("1", "yes"), Option("2", "no"))),
        )
        if rng.random() < 0.5:
            questions += (
                Question(
                    "channel",
                    random_texts(rng, langs),
                    (Option("3", "phone", random_texts(rng, langs)),),
                ),
            )
        return Step(
            step_id,
            "callback",
            rng.choice([{}, text]),
            next=nxt,
            consent_version=rng.choice(["v1", "2021-12-a", "yes"]),
            questions=questions,
            declined_next=rng.choice([None, nxt]),
            **extra,
        )
    if kind == "transfer":
        hours = rng.choice(
            [(), (Hours(("mon", "fri"), "08:00", "16:30"), Hours(("sat",), "10:00", "12:00"))]
        )
        return Step(
            step_id,
            "transfer",
            rng.choice([{}, text]),
            fallback=nxt,
            endpoint="PJSIP/desk",
            hours=hours,
            ring_seconds=rng.randint(5, 300),
            timezone=rng.choice(["Europe/Helsinki", "Europe/Stockholm"]),
        )
    return Step(step_id, "say", text, next=nxt)


def random_flow(seed: int) -> Editable:
    rng = random.Random(seed)
    langs = tuple(rng.sample(["fi", "sv", "en"], rng.randint(1, 3)))
    kinds = [k for k in STEP_KINDS if k != "end"]
    count = rng.randint(1, 7)
    ids = [rng.choice(["q", "yes", "1", "step_"]) + str(i) for i in range(count)] + ["bye"]
    steps = [random_step(rng, rng.choice(kinds), ids[i], ids[i + 1], langs) for i in range(count)]
    steps.append(Step("bye", "end", rng.choice([{}, random_texts(rng, langs)])))
    opt_out = rng.choice(["", "0"])
    return Editable(
        id=f"flow-{seed}",
        name=rng.choice(AWKWARD),
        version=rng.choice(["1", "2.0", "yes"]),
        languages=langs,
        default_language=rng.choice(langs),
        start=ids[0],
        steps=tuple(steps),
        fallback=rng.choice([None, "bye"]),
        anonymous=rng.random() < 0.5,
        repeat_key=rng.choice(["*", ""]),
        switch_language_key="",
        opt_out_key=opt_out,
        opt_out_prompt=random_texts(rng, langs) if opt_out or rng.random() < 0.3 else None,
        defaults=Defaults(
            timeout=rng.choice([6.0, 4.5]),
            inter_digit_timeout=rng.choice([3.0, 2.0]),
            retries=rng.randint(0, 5),
            no_input=rng.choice([None, random_texts(rng, langs)]),
            invalid=rng.choice([None, random_texts(rng, langs)]),
        ),
    )


@pytest.mark.parametrize("seed", range(60))
def test_round_trip_of_random_flows(seed: int) -> None:
    assert_round_trip(random_flow(seed))


UPLOAD_NAMES = ["kunnan-tervehdys", "yes", "1", "null", "0x1f", "a_b", "true", "x" * 64]


def random_uploads(rng: random.Random, langs: tuple[str, ...], texts: Any) -> tuple[Any, Any]:
    """``(texts, uploads)``: some languages given an upload, some of those losing the text."""
    if texts is None:
        if rng.random() < 0.2:  # a prompt of uploads only
            return {}, {lang: rng.choice(UPLOAD_NAMES) for lang in langs}
        return None, {}
    if not texts:
        return texts, {}
    uploads = {lang: rng.choice(UPLOAD_NAMES) for lang in langs if rng.random() < 0.4}
    kept = {lang: t for lang, t in texts.items() if lang not in uploads or rng.random() < 0.7}
    return kept, uploads


def random_flow_with_uploads(seed: int) -> Editable:
    flow = random_flow(seed)
    rng = random.Random(seed * 7919)
    langs = flow.languages
    steps = []
    for step in flow.steps:
        text, upload = random_uploads(rng, langs, step.text)
        no_input, no_input_upload = random_uploads(rng, langs, step.no_input)
        invalid, invalid_upload = random_uploads(rng, langs, step.invalid)
        questions = []
        for q in step.questions:
            q_text, q_upload = random_uploads(rng, langs, q.text)
            questions.append(dataclasses.replace(q, text=q_text, upload=q_upload))
        fields: dict[str, Any] = {"text": text, "upload": upload, "questions": tuple(questions)}
        if step.kind in ("language", "choice", "scale", "number", "callback"):
            fields.update(
                no_input=no_input,
                no_input_upload=no_input_upload,
                invalid=invalid,
                invalid_upload=invalid_upload,
            )
        steps.append(dataclasses.replace(step, **fields))
    d = flow.defaults
    no_input, no_input_upload = random_uploads(rng, langs, d.no_input)
    invalid, invalid_upload = random_uploads(rng, langs, d.invalid)
    opt_out, opt_out_upload = random_uploads(rng, langs, flow.opt_out_prompt)
    if flow.opt_out_key and opt_out is None:
        opt_out, opt_out_upload = flow.opt_out_prompt, {}
    return dataclasses.replace(
        flow,
        steps=tuple(steps),
        defaults=dataclasses.replace(
            d,
            no_input=no_input,
            no_input_upload=no_input_upload,
            invalid=invalid,
            invalid_upload=invalid_upload,
        ),
        opt_out_prompt=opt_out,
        opt_out_upload=opt_out_upload,
    )


@pytest.mark.parametrize("seed", range(40))
def test_round_trip_of_random_flows_with_uploads(seed: int) -> None:
    flow = random_flow_with_uploads(seed)
    assert_round_trip(flow)
    audio = prompt_audio_of(flow)
    for p in audio:
        assert upload_of(flow, p.key, p.language) == p.upload
        same = [a for a in audio if a.key == p.key]
        # A no-input, invalid-key or opt-out prompt that had only this upload is unset by
        # clearing it (a step's key then names the default, if any).
        kept = any(a.text or (a.upload and a.language != p.language) for a in same)
        if p.upload is not None and (kept or p.key.endswith(".prompt")):
            cleared = clear_upload(flow, p.key, p.language)
            assert upload_of(cleared, p.key, p.language) is None
            assert set_upload(cleared, p.key, p.language, p.upload) == flow


# --------------------------------------------------------------------------- a form with problems
# The problems whose value a flow cannot hold: the flow has a placeholder, given back as this.
PLACEHOLDERS = {
    "words for a number": ("steps-1-max", "0"),
    "no min": ("steps-1-min", "0"),
    "words for seconds": ("steps-0-timeout", ""),  # the flow's default
    "a checkbox that is not": ("steps-2-beep", ""),
}


def dropped(name: str, field: str) -> bool:
    """Whether the typed ``field`` is rightly not in the form of the flow read (problem
    ``name``): the kind's fields of a step of an unknown kind, texts of a language the
    flow no longer has."""
    if name in ("unknown kind", "no kind"):
        return field.startswith("steps-1-")
    if name == "unknown language":
        return field.endswith("-sv")
    if name == "no languages":
        return field.endswith(("-fi", "-sv"))
    return False


def test_read_form_of_a_valid_form_is_from_form() -> None:
    forms = [three_questions(), to_form(new_flow("K", ["sv", "en"]))]
    forms += [
        to_form(editable((EXAMPLES / name).read_text(encoding="utf-8")))
        for name, reasons in EXAMPLE_RESULTS.items()
        if reasons is None
    ]
    forms += [to_form(random_flow_with_uploads(seed)) for seed in range(20)]
    for form in forms:
        assert read_form(form) == (from_form(form), [])


@pytest.mark.parametrize(
    ("change", "expected"),
    [(c, e) for _, c, e in FORM_ERRORS],
    ids=[name for name, _, _ in FORM_ERRORS],
)
def test_read_form_gives_the_flow_and_the_errors_from_form_raises(
    change: Callable[[dict[str, str]], None], expected: set[tuple[str, str]]
) -> None:
    form = three_questions()
    change(form)
    flow, errors = read_form(form)
    with pytest.raises(FormErrors) as caught:
        from_form(form)
    assert tuple(errors) == caught.value.errors
    assert expected <= {(e.field, e.code) for e in errors}
    assert [s.id for s in flow.steps] == [form[f"steps-{n}-id"].strip() for n in range(4)]


@pytest.mark.parametrize(("name", "change"), [(n, c) for n, c, _ in FORM_ERRORS])
def test_the_form_of_a_flow_with_problems_keeps_what_was_typed(
    name: str, change: Callable[[dict[str, str]], None]
) -> None:
    form = three_questions()
    change(form)
    flow, errors = read_form(form)
    again = to_form(flow)
    typed = {k: v.strip() for k, v in form.items() if k != "csrf_token"}
    if name in PLACEHOLDERS:
        field, placeholder = PLACEHOLDERS[name]
        typed[field] = placeholder
    shown = [k for k in typed if k in again]
    assert {k: again[k] for k in shown} == {k: typed[k] for k in shown}
    assert all(k in again or not v or dropped(name, k) for k, v in typed.items())
    if name not in PLACEHOLDERS:  # the same flow, the same problems
        assert read_form(again) == (flow, errors)
    else:  # the placeholder is the flow's value, not a problem
        assert read_form(again)[0] == flow


def test_read_form_keeps_the_values_that_are_problems() -> None:
    form = three_questions()
    form.update({
        "steps-1-text-fi": "",
        "steps-0-options-1-next": "nowhere",
        "steps-0-options-1-key": "x",
        "steps-1-id": "Grade 1",
        "steps-1-max": "five",
        "steps-2-silence_seconds": "a while",
        "steps-0-timeout": "soon",
        "steps-2-beep": "maybe",
    })  # fmt: skip
    flow, errors = read_form(form)
    use, grade, wish, _bye = flow.steps
    assert use.options[1] == Option("x", "no", {"fi": "Ei", "sv": "Nej"}, "nowhere")
    assert use.next == "grade" and use.timeout is None
    assert grade.id == "Grade 1" and grade.text == {"sv": "Betyg från ett till fem?"}
    assert (grade.min_value, grade.max_value) == (1, 0)
    assert (wish.silence_seconds, wish.beep) == (4, False)
    assert [(e.field, e.code) for e in errors] == [
        ("steps-0-timeout", "not_seconds"),
        ("steps-1-max", "not_whole_number"),
        ("steps-2-silence_seconds", "not_whole_number"),
        ("steps-2-beep", "not_on_off"),
        ("steps-0-next", "unknown_step"),
        ("steps-0-fallback", "unknown_step"),
        ("steps-0-options-1-key", "bad_key"),
        ("steps-0-options-1-next", "unknown_step"),
        ("steps-1-id", "bad_id"),
        ("steps-1-text-fi", "missing_text"),
    ]
    assert errors[1] == FieldError("steps-1-max", "not_whole_number", {"value": "five"})


def test_read_form_keeps_a_step_of_an_unknown_kind_in_its_place() -> None:
    form = three_questions()
    form["steps-1-kind"] = "slider"
    flow, errors = read_form(form)
    assert flow.steps[1] == Step(
        "grade",
        "slider",  # type: ignore[arg-type]
        {"fi": "Arvosana yhdestä viiteen?", "sv": "Betyg från ett till fem?"},
    )
    assert [(e.field, e.code) for e in errors] == [("steps-1-kind", "bad_kind")]
    assert flow.steps[0].next == "grade"  # not called a missing step
    with pytest.raises(EditRefused) as caught:  # what goes to it needs somewhere to go
        remove_step(flow, "grade")
    assert [r.path for r in caught.value.reasons] == ["nodes.use.next", "nodes.use.fallback"]
    removed = remove_step(flow, "grade", redirect="wish")
    assert [s.id for s in removed.steps] == ["use", "wish", "bye"]
    assert read_form(to_form(removed)) == (removed, [])


def test_a_step_just_added_reads_back_with_its_empty_texts() -> None:
    for kind in STEP_KINDS:
        flow = add_step(new_flow("K", ["fi", "sv"]), kind)
        flow, errors = read_form(to_form(flow))
        assert flow == add_step(new_flow("K", ["fi", "sv"]), kind)
        assert errors == check_flow(flow)
        if kind in ("say", "language", "choice", "scale", "number", "open"):
            assert {(e.field, e.code) for e in errors} == {
                ("steps-2-text-fi", "missing_text"),
                ("steps-2-text-sv", "missing_text"),
            }


def with_problems() -> dict[str, str]:
    form = three_questions()
    form.update({
        "steps-1-text-fi": "",  # as a step just added
        "steps-0-options-1-next": "nowhere",
        "steps-2-max_seconds": "lots",
    })  # fmt: skip
    return form


def test_add_move_and_remove_a_step_in_a_form_with_problems() -> None:
    flow, errors = read_form(with_problems())
    assert {e.code for e in errors} == {"missing_text", "unknown_step", "not_whole_number"}
    # as the page does: the operation, the form of its flow, read back
    added = add_step(flow, "say", at=2)
    assert [s.id for s in added.steps] == ["use", "grade", "message-1", "wish", "bye"]
    assert (added.step("grade").next, added.step("message-1").next) == ("message-1", "wish")
    again, problems = read_form(to_form(added))
    assert again == added
    assert [(e.field, e.code) for e in problems] == [
        ("steps-0-options-1-next", "unknown_step"),
        ("steps-1-text-fi", "missing_text"),
        ("steps-2-text-fi", "missing_text"),
        ("steps-2-text-sv", "missing_text"),
    ]
    moved = move_step(again, "message-1", -1)
    assert [s.id for s in moved.steps] == ["use", "message-1", "grade", "wish", "bye"]
    assert (moved.step("use").next, moved.step("use").fallback) == ("message-1", "message-1")
    assert moved.step("use").options[1].next == "nowhere"  # branches are kept
    assert read_form(to_form(moved))[0] == moved
    down = move_step(moved, "use", 1)
    assert down.start == "message-1" and read_form(to_form(down))[0] == down
    removed = remove_step(moved, "message-1")
    assert removed == flow  # back where it was, problems and all
    assert to_form(removed)["steps-1-text-fi"] == ""
    assert to_form(removed)["steps-0-options-1-next"] == "nowhere"


def test_operations_on_steps_without_an_id_or_with_the_same_id() -> None:
    form = three_questions()
    form["steps-2-id"] = "grade"  # two steps 'grade'
    flow, _errors = read_form(form)
    removed = remove_step(flow, "grade")  # the first; what went to 'grade' goes to the other
    assert [(s.id, s.kind) for s in removed.steps] == [
        ("use", "choice"),
        ("grade", "open"),
        ("bye", "end"),
    ]
    assert removed.steps[0].next == "grade"
    assert {e.code for e in read_form(to_form(removed))[1]} == {"unknown_step"}  # 'wish'

    form = three_questions()
    form["steps-3-id"] = ""  # the end step, its id cleared
    flow, errors = read_form(form)
    assert flow.steps[3].id == "" and ("steps-3-id", "required") in [
        (e.field, e.code) for e in errors
    ]
    added = add_step(flow, "say")  # before the end step: it has no id to go on to
    assert [s.id for s in added.steps] == ["use", "grade", "wish", "message-1", ""]
    assert added.step("message-1").next is None and added.step("wish").next == "bye"
    moved = move_step(added, "", -1)
    assert [s.id for s in moved.steps] == ["use", "grade", "wish", "", "message-1"]
    removed = remove_step(moved, "")  # nothing can name it, so nothing is in its way
    assert [s.id for s in removed.steps] == ["use", "grade", "wish", "message-1"]
    for changed in (added, moved, removed):
        refs = [ref for s in changed.steps for ref in (s.next, s.fallback, s.declined_next)]
        assert "" not in refs
        assert read_form(to_form(changed))[0] == changed


# Values a flow cannot hold: it has a placeholder instead.
_NOT_HELD = ("not_whole_number", "not_seconds", "not_on_off")


@pytest.mark.parametrize("seed", range(30))
def test_read_form_of_random_forms_with_problems(seed: int) -> None:
    rng = random.Random(seed * 31)
    form = to_form(random_flow_with_uploads(seed))
    for name in rng.sample(sorted(form), min(3, len(form))):
        form[name] = rng.choice(["nowhere", "7", "Grade 1"])
    flow, errors = read_form(form)
    try:
        assert from_form(form) == flow and errors == []
    except FormErrors as exc:
        assert exc.errors == tuple(errors)
    if any(e.code in _NOT_HELD or e.field == "languages" for e in errors):
        return  # (languages: the texts of a language no longer listed are not read)
    again = to_form(flow)
    assert {k: again[k] for k in form if k in again} == {k: form[k] for k in form if k in again}
    assert read_form(again) == (flow, errors)
