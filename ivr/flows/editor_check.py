"""Checking an edited flow, with each problem named by the form field it belongs beside.

:func:`check_flow` runs the editor's own checks (missing texts, steps that do not exist,
duplicate keys, ...) and then the project's loader on the saved YAML, mapping the loader's
YAML paths (``nodes.q3.options.2.next``) to form fields (``steps-4-options-2-next``) with
:func:`field_for_path`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from dataclasses import field as _field

from ivr.flows.editor_model import (
    DAYS,
    FALLBACK_KINDS,
    INPUT_KINDS,
    NEXT_KINDS,
    OPTION_KINDS,
    PROMPT_REQUIRED,
    QUESTION_FIELDS,
    Editable,
    FieldError,
    Option,
    Texts,
    Uploads,
    language_choices,
)
from ivr.flows.editor_yaml import SOURCE, save_flow
from ivr.flows.loader import FlowError, parse_flow
from ivr.flows.model import LANGUAGES, UPLOAD_NAME

FLOW_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
STEP_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


@dataclass
class Names:
    """The form's name for each part of a flow: ``steps-{i}`` unless the form said otherwise.

    ``from_form`` records the submitted prefixes here (a form may skip numbers or have blank
    rows), so errors land beside the fields the person typed into.
    """

    prefixes: dict[str, str] = _field(default_factory=dict)

    def step(self, i: int) -> str:
        return self.prefixes.get(f"{i}", f"steps-{i}")

    def option(self, i: int, j: int) -> str:
        return self.prefixes.get(f"{i}.o{j}", f"{self.step(i)}-options-{j}")

    def question(self, i: int, q: int) -> str:
        return self.prefixes.get(f"{i}.q{q}", f"{self.step(i)}-questions-{q}")

    def question_option(self, i: int, q: int, j: int) -> str:
        return self.prefixes.get(f"{i}.q{q}.o{j}", f"{self.question(i, q)}-options-{j}")

    def hours(self, i: int, h: int) -> str:
        return self.prefixes.get(f"{i}.h{h}", f"{self.step(i)}-hours-{h}")


class _Errors:
    def __init__(self) -> None:
        self.list: list[FieldError] = []

    def add(self, where: str, code: str, /, **params: str) -> None:
        self.list.append(FieldError(where, code, params))


def check_flow(
    flow: Editable,
    names: Names | None = None,
    *,
    other_ids: Iterable[str] = (),
    loader: bool = True,
) -> list[FieldError]:
    """Every problem of ``flow`` (empty: the loader accepts it), each beside its form field.

    ``other_ids`` are steps the form had that could not be read (so no reference to them is
    called dangling); ``names`` maps parts to the submitted form's names; ``loader=False``
    leaves out the loader's checks.
    """
    names = names or Names()
    errors = _Errors()
    ids = {step.id for step in flow.steps} | set(other_ids)
    _check_top(flow, ids, errors)
    seen: dict[str, int] = {}
    duplicates = False
    for i, step in enumerate(flow.steps):
        p = names.step(i)
        if not step.id:
            errors.add(f"{p}-id", "required")
        elif not STEP_ID.fullmatch(step.id):
            errors.add(f"{p}-id", "bad_id", id=step.id)
        if step.id in seen:
            errors.add(f"{p}-id", "duplicate_id", id=step.id, other=str(seen[step.id] + 1))
            duplicates = True
        seen.setdefault(step.id, i)
        _check_step(flow, i, names, ids, errors)
    languages_ok = not any(e.field == "languages" for e in errors.list)
    if loader and languages_ok and not duplicates and flow.steps:
        _loader_problems(flow, names, errors)
    return errors.list


def _texts(
    flow: Editable,
    texts: Texts | None,
    field: str,
    errors: _Errors,
    *,
    required: bool,
    uploads: Uploads | None = None,
    upload_field: str | None = None,
) -> None:
    """A prompt needs every language of the flow (when it is required or partly written),
    as text or as an upload (``upload_field``: the uploads' fields, ``{field}-upload``)."""
    uploads = uploads or {}
    upload_field = upload_field or f"{field}-upload"
    for language, name in uploads.items():
        if not UPLOAD_NAME.fullmatch(name):
            errors.add(f"{upload_field}-{language}", "bad_upload_name", name=name)
        elif language not in flow.languages:
            choices = ", ".join(flow.languages)
            errors.add(
                f"{upload_field}-{language}",
                "not_flow_language",
                language=language,
                choices=choices,
            )
    if not texts and not uploads and not required:
        return
    for language in flow.languages:
        if language not in LANGUAGES or language in uploads:
            continue
        if not (texts or {}).get(language, "").strip():
            errors.add(f"{field}-{language}", "missing_text", language=language)


def _ref(target: str | None, field: str, ids: set[str], errors: _Errors) -> None:
    if target is not None and target not in ids:
        errors.add(field, "unknown_step", step=target)


def _check_top(flow: Editable, ids: set[str], errors: _Errors) -> None:
    if not flow.id:
        errors.add("id", "required")
    elif not FLOW_ID.fullmatch(flow.id):
        errors.add("id", "bad_flow_id", id=flow.id)
    for name in ("name", "version"):
        if not str(getattr(flow, name)).strip():
            errors.add(name, "required")
    if not flow.languages:
        errors.add("languages", "no_languages")
    listed: set[str] = set()
    for language in flow.languages:
        if language not in LANGUAGES:
            errors.add("languages", "unknown_language", language=language, choices=_choices())
        elif language in listed:
            errors.add("languages", "duplicate_language", language=language)
        listed.add(language)
    if flow.languages and flow.default_language not in flow.languages:
        choices = ", ".join(flow.languages)
        errors.add(
            "default_language", "not_flow_language", language=flow.default_language, choices=choices
        )
    if not flow.steps:
        errors.add("steps", "no_steps")
    elif not flow.start:
        errors.add("start", "required")
    else:
        _ref(flow.start, "start", ids, errors)
    _ref(flow.fallback, "fallback", ids, errors)
    d = flow.defaults
    required = bool(flow.opt_out_key)
    _texts(
        flow,
        flow.opt_out_prompt,
        "opt_out_prompt",
        errors,
        required=required,
        uploads=flow.opt_out_upload,
    )
    _texts(flow, d.no_input, "defaults-no_input", errors, required=False, uploads=d.no_input_upload)
    _texts(flow, d.invalid, "defaults-invalid", errors, required=False, uploads=d.invalid_upload)


def _choices() -> str:
    return language_choices()


def _check_step(flow: Editable, i: int, names: Names, ids: set[str], errors: _Errors) -> None:
    step = flow.steps[i]
    p = names.step(i)
    kind = step.kind
    _texts(
        flow,
        step.text,
        f"{p}-text",
        errors,
        required=kind in PROMPT_REQUIRED,
        uploads=step.upload,
        upload_field=f"{p}-upload",
    )
    if kind in NEXT_KINDS:
        _ref(step.next, f"{p}-next", ids, errors)
        if step.next is None and kind not in OPTION_KINDS:
            errors.add(f"{p}-next", "required")
    if kind in FALLBACK_KINDS:
        _ref(step.fallback, f"{p}-fallback", ids, errors)
    if kind in INPUT_KINDS:
        _texts(
            flow,
            step.no_input,
            f"{p}-no_input",
            errors,
            required=False,
            uploads=step.no_input_upload,
        )
        _texts(
            flow,
            step.invalid,
            f"{p}-invalid",
            errors,
            required=False,
            uploads=step.invalid_upload,
        )
    if kind in OPTION_KINDS:
        if not step.options:
            errors.add(f"{p}-options", "no_options")
        fields = [names.option(i, j) for j in range(len(step.options))]
        _options(flow, step.options, fields, errors, language_menu=kind == "language")
        for field, option in zip(fields, step.options, strict=True):
            _ref(option.next, f"{field}-next", ids, errors)
            if option.next is None and step.next is None:
                errors.add(f"{field}-next", "required")
    if kind == "callback":
        if not step.consent_version.strip():
            errors.add(f"{p}-consent_version", "required")
        _ref(step.declined_next, f"{p}-declined_next", ids, errors)
        if not step.questions:
            errors.add(f"{p}-questions", "no_questions")
        for q, question in enumerate(step.questions):
            qp = names.question(i, q)
            if question.field not in QUESTION_FIELDS:
                choices = ", ".join(QUESTION_FIELDS)
                errors.add(f"{qp}-field", "bad_question", field=question.field, choices=choices)
            _texts(
                flow,
                question.text,
                f"{qp}-text",
                errors,
                required=True,
                uploads=question.upload,
                upload_field=f"{qp}-upload",
            )
            if not question.options:
                errors.add(f"{qp}-options", "no_options")
            fields = [names.question_option(i, q, j) for j in range(len(question.options))]
            _options(flow, question.options, fields, errors, language_menu=False)
    if kind == "transfer":
        if not step.endpoint.strip():
            errors.add(f"{p}-endpoint", "required")
        for h, hours in enumerate(step.hours):
            hp = names.hours(i, h)
            if not hours.days:
                errors.add(f"{hp}-days", "required")
            for day in hours.days:
                if day not in DAYS:
                    errors.add(f"{hp}-days", "bad_day", day=day, choices=", ".join(DAYS))
            for name, value in (("from", hours.from_time), ("to", hours.to_time)):
                if not value:
                    errors.add(f"{hp}-{name}", "required")


def _options(
    flow: Editable,
    options: tuple[Option, ...],
    fields: list[str],
    errors: _Errors,
    *,
    language_menu: bool,
) -> None:
    keys: dict[str, int] = {}
    values: dict[str, int] = {}
    for j, (field, option) in enumerate(zip(fields, options, strict=True)):
        if not option.key:
            errors.add(f"{field}-key", "required")
        elif len(option.key) != 1 or option.key not in "0123456789":
            errors.add(f"{field}-key", "bad_key", key=option.key)
        elif option.key in keys:
            errors.add(f"{field}-key", "duplicate_key", key=option.key, other=str(keys[option.key]))
        else:
            keys[option.key] = j + 1
        if not option.value.strip():
            errors.add(f"{field}-value", "required")
        elif option.value in values:
            other = str(values[option.value])
            errors.add(f"{field}-value", "duplicate_value", value=option.value, other=other)
        else:
            values[option.value] = j + 1
        if language_menu and option.value.strip() and option.value not in flow.languages:
            choices = ", ".join(flow.languages)
            errors.add(
                f"{field}-value", "not_flow_language", language=option.value, choices=choices
            )


# --------------------------------------------------------------------------- the loader
def _group(field: str) -> str:
    """The prompt (or label) a field belongs to: its texts and uploads are one group."""
    head, _, last = field.rpartition("-")
    if not head or last not in LANGUAGES:
        return field
    if head.endswith("-upload"):  # steps-N-upload-fi: beside steps-N-text-fi
        head = head.removesuffix("-upload")
        return f"{head}-text" if head.rpartition("-")[2].isdigit() else head
    return head


def _loader_problems(flow: Editable, names: Names, errors: _Errors) -> None:
    """The loader's problems with the saved flow, beside fields that have none yet."""
    try:
        parse_flow(save_flow(flow), SOURCE)
    except FlowError as exc:
        taken = {_group(e.field) for e in errors.list}
        for problem in exc.problems:
            field = field_for_path(flow, problem.path, names)
            if _group(field) in taken:
                continue
            taken.add(_group(field))
            params = {"message": problem.message}
            errors.list.append(FieldError(field, "invalid", params, problem.path))


def field_for_path(flow: Editable, path: str, names: Names | None = None) -> str:
    """The form field for a YAML path of the saved ``flow`` ("" when it names the flow)."""
    names = names or Names()
    parts = path.split(".") if path else []
    if not parts:
        return ""
    first = flow.languages[0] if flow.languages else LANGUAGES[0]

    def prompt(prefix: str, rest: list[str], upload: str | None = None) -> str:
        if rest and rest[0] == "upload":  # the uploads: ``{upload}-{lang}``
            language = rest[1] if len(rest) > 1 and rest[1] in LANGUAGES else first
            return f"{upload or prefix + '-upload'}-{language}"
        return f"{prefix}-{rest[0]}" if rest and rest[0] in LANGUAGES else f"{prefix}-{first}"

    head, rest = parts[0], parts[1:]
    if head == "opt_out_prompt":
        return prompt("opt_out_prompt", rest)
    if head == "keys":
        return f"keys-{rest[0]}" if rest else "keys-repeat"
    if head == "defaults":
        if rest and rest[0] in ("no_input", "invalid"):
            return prompt(f"defaults-{rest[0]}", rest[1:])
        return f"defaults-{rest[0]}" if rest else "defaults-timeout"
    if head != "nodes":
        return head
    i = flow.index(rest[0]) if rest else None
    if i is None:
        return "steps"
    p = names.step(i)
    sub = rest[1:]
    if not sub:
        return f"{p}-id"
    name, more = sub[0], sub[1:]
    if name == "prompt":
        return prompt(f"{p}-text", more, f"{p}-upload")
    if name in ("no_input", "invalid"):
        return prompt(f"{p}-{name}", more)
    if name == "options":
        if not more or not more[0].isdigit():
            return f"{p}-options"
        return _option_field(names.option(i, int(more[0])), more[1:], prompt)
    if name == "steps":
        if not more or not more[0].isdigit():
            return f"{p}-questions"
        q = int(more[0])
        qp = names.question(i, q)
        rest_q = more[1:]
        if rest_q and rest_q[0] == "prompt":
            return prompt(f"{qp}-text", rest_q[1:], f"{qp}-upload")
        if rest_q and rest_q[0] == "options":
            if len(rest_q) < 2 or not rest_q[1].isdigit():
                return f"{qp}-options"
            op = names.question_option(i, q, int(rest_q[1]))
            return _option_field(op, rest_q[2:], prompt)
        return f"{qp}-field"
    if name == "hours":
        if not more or not more[0].isdigit():
            return f"{p}-hours"
        hp = names.hours(i, int(more[0]))
        return f"{hp}-{more[1]}" if len(more) > 1 and more[1] in ("from", "to") else f"{hp}-days"
    return f"{p}-{name}"


def _option_field(prefix: str, rest: list[str], prompt: Callable[[str, list[str]], str]) -> str:
    if rest and rest[0] == "label":
        return prompt(f"{prefix}-label", rest[1:])
    if rest and rest[0] in ("key", "value", "next"):
        return f"{prefix}-{rest[0]}"
    return f"{prefix}-key"
