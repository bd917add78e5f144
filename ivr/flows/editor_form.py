"""An edited flow as flat HTML form fields, and back.

Field names (``{lang}`` is each of the flow's languages; ``N``, ``M``, ``Q``, ``H`` count
from 0; numbers may skip and fully blank rows are ignored, as a page that adds and removes
rows leaves them):

- flow: ``id``, ``name``, ``version``, ``languages`` (``fi,sv``), ``default_language``,
  ``start``, ``fallback``, ``anonymous`` (``on`` or blank), ``keys-repeat``,
  ``keys-switch_language``, ``keys-opt_out``, ``opt_out_prompt-{lang}``,
  ``defaults-timeout``, ``defaults-inter_digit_timeout``, ``defaults-retries``,
  ``defaults-no_input-{lang}``, ``defaults-invalid-{lang}``
- each step ``steps-N-``: ``id``, ``kind``, ``text-{lang}``, ``next``, ``fallback``,
  ``timeout``, ``retries``, ``no_input-{lang}``, ``invalid-{lang}`` (blank: the flow's
  default), ``options-M-key``/``-value``/``-next``/``-label-{lang}``, ``min``, ``max``,
  ``max_digits``, ``inter_digit_timeout``, ``max_seconds``, ``silence_seconds``, ``beep``,
  ``consent_version``, ``declined_next``, ``questions-Q-field``, ``questions-Q-text-{lang}``,
  ``questions-Q-options-M-key``/``-value``/``-label-{lang}``, ``endpoint``, ``timezone``,
  ``ring_seconds``, ``hours-H-days`` (``mon,tue``), ``hours-H-from``, ``hours-H-to``;
  only the fields of the step's kind are read.
- an uploaded prompt (the format's ``upload:``) beside each prompt's texts, the name per
  language: ``steps-N-upload-{lang}`` (the step's prompt), ``steps-N-no_input-upload-{lang}``,
  ``steps-N-invalid-upload-{lang}``, ``steps-N-questions-Q-upload-{lang}``,
  ``defaults-no_input-upload-{lang}``, ``defaults-invalid-upload-{lang}``,
  ``opt_out_prompt-upload-{lang}``. :func:`to_form` gives them only where a language has an
  upload; the page keeps them (hidden or read-only) so that a save keeps the uploads, and a
  language with an upload needs no text.

:func:`from_form` gives the flow or raises every problem; :func:`read_form` gives the flow
as the form describes it together with the same problems, for a form still being written.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from ivr.flows.editor_check import Names, check_flow
from ivr.flows.editor_model import (
    FALLBACK_KINDS,
    INPUT_KINDS,
    NEXT_KINDS,
    OPTION_KINDS,
    STEP_KINDS,
    Defaults,
    Editable,
    FieldError,
    FormErrors,
    Hours,
    Option,
    Question,
    Step,
    Texts,
    Uploads,
)
from ivr.flows.model import LANGUAGES

_WHOLE = re.compile(r"[0-9]{1,18}")
_SECONDS = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9})?")
_TRUE = ("on", "true", "yes", "1")
_FALSE = ("", "off", "false", "no", "0")


# --------------------------------------------------------------------------- to the form
def to_form(flow: Editable) -> dict[str, str]:
    """``flow`` as the form's fields (``from_form(to_form(flow)) == flow``)."""
    out: dict[str, str] = {
        "id": flow.id,
        "name": flow.name,
        "version": flow.version,
        "languages": ",".join(flow.languages),
        "default_language": flow.default_language,
        "start": flow.start,
        "fallback": flow.fallback or "",
        "anonymous": "on" if flow.anonymous else "",
        "keys-repeat": flow.repeat_key,
        "keys-switch_language": flow.switch_language_key,
        "keys-opt_out": flow.opt_out_key,
    }
    languages = flow.languages
    _put_texts(out, "opt_out_prompt", flow.opt_out_prompt, languages)
    _put_uploads(out, "opt_out_prompt-upload", flow.opt_out_upload, languages)
    d = flow.defaults
    out["defaults-timeout"] = _number(d.timeout)
    out["defaults-inter_digit_timeout"] = _number(d.inter_digit_timeout)
    out["defaults-retries"] = str(d.retries)
    _put_texts(out, "defaults-no_input", d.no_input, languages)
    _put_texts(out, "defaults-invalid", d.invalid, languages)
    _put_uploads(out, "defaults-no_input-upload", d.no_input_upload, languages)
    _put_uploads(out, "defaults-invalid-upload", d.invalid_upload, languages)
    for i, step in enumerate(flow.steps):
        _put_step(out, f"steps-{i}", step, languages)
    return out


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _put_texts(out: dict[str, str], prefix: str, texts: Texts | None, languages: Any) -> None:
    for language in languages:
        out[f"{prefix}-{language}"] = (texts or {}).get(language, "")


def _put_uploads(out: dict[str, str], prefix: str, uploads: Uploads, languages: Any) -> None:
    for language in languages:
        if uploads.get(language):
            out[f"{prefix}-{language}"] = uploads[language]


def _put_options(
    out: dict[str, str], prefix: str, options: tuple[Option, ...], languages: Any, next_: bool
) -> None:
    for j, option in enumerate(options):
        op = f"{prefix}-options-{j}"
        out[f"{op}-key"] = option.key
        out[f"{op}-value"] = option.value
        if next_:
            out[f"{op}-next"] = option.next or ""
        _put_texts(out, f"{op}-label", option.label, languages)


def _put_step(out: dict[str, str], p: str, step: Step, languages: tuple[str, ...]) -> None:
    kind = step.kind
    out[f"{p}-id"] = step.id
    out[f"{p}-kind"] = kind
    _put_texts(out, f"{p}-text", step.text, languages)
    _put_uploads(out, f"{p}-upload", step.upload, languages)
    if kind in NEXT_KINDS:
        out[f"{p}-next"] = step.next or ""
    if kind in FALLBACK_KINDS:
        out[f"{p}-fallback"] = step.fallback or ""
    if kind in INPUT_KINDS:
        out[f"{p}-timeout"] = _number(step.timeout)
        out[f"{p}-retries"] = "" if step.retries is None else str(step.retries)
        _put_texts(out, f"{p}-no_input", step.no_input, languages)
        _put_texts(out, f"{p}-invalid", step.invalid, languages)
        _put_uploads(out, f"{p}-no_input-upload", step.no_input_upload, languages)
        _put_uploads(out, f"{p}-invalid-upload", step.invalid_upload, languages)
    if kind in OPTION_KINDS:
        _put_options(out, p, step.options, languages, True)
    if kind in ("scale", "number"):
        out[f"{p}-min"] = str(step.min_value)
        out[f"{p}-max"] = str(step.max_value)
    if kind == "number":
        out[f"{p}-max_digits"] = "" if step.max_digits is None else str(step.max_digits)
        out[f"{p}-inter_digit_timeout"] = _number(step.inter_digit_timeout)
    if kind == "open":
        out[f"{p}-max_seconds"] = str(step.max_seconds)
        out[f"{p}-silence_seconds"] = str(step.silence_seconds)
        out[f"{p}-beep"] = "on" if step.beep else ""
    if kind == "callback":
        out[f"{p}-consent_version"] = step.consent_version
        out[f"{p}-declined_next"] = step.declined_next or ""
        for q, question in enumerate(step.questions):
            qp = f"{p}-questions-{q}"
            out[f"{qp}-field"] = question.field
            _put_texts(out, f"{qp}-text", question.text, languages)
            _put_uploads(out, f"{qp}-upload", question.upload, languages)
            _put_options(out, qp, question.options, languages, False)
    if kind == "transfer":
        out[f"{p}-endpoint"] = step.endpoint
        out[f"{p}-timezone"] = step.timezone
        out[f"{p}-ring_seconds"] = str(step.ring_seconds)
        for h, hours in enumerate(step.hours):
            hp = f"{p}-hours-{h}"
            out[f"{hp}-days"] = ",".join(hours.days)
            out[f"{hp}-from"] = hours.from_time
            out[f"{hp}-to"] = hours.to_time


# --------------------------------------------------------------------------- from the form
class _Reader:
    """Reads fields, noting every value it cannot read as a :class:`FieldError`."""

    def __init__(self, form: Mapping[str, str]) -> None:
        self.form = form
        self.errors: list[FieldError] = []
        self.languages: tuple[str, ...] = ()

    def error(self, where: str, code: str, /, **params: str) -> None:
        self.errors.append(FieldError(where, code, params))

    def get(self, name: str) -> str:
        value = self.form.get(name)
        if not isinstance(value, str):
            return ""
        return value.replace("\r\n", "\n").replace("\r", "\n").strip()

    def ref(self, name: str) -> str | None:
        return self.get(name) or None

    def rows(self, prefix: str) -> list[tuple[int, str]]:
        """``(number, prefix-number)`` of each non-blank row under ``prefix``, in order."""
        pattern = re.compile(re.escape(prefix) + r"-([0-9]{1,6})-")
        numbers: set[int] = set()
        filled: set[int] = set()
        for name in self.form:
            match = pattern.match(name)
            if match:
                number = int(match.group(1))
                numbers.add(number)
                if self.get(name):
                    filled.add(number)
        return [(n, f"{prefix}-{n}") for n in sorted(numbers) if n in filled]

    def whole(self, name: str, default: int | None) -> int | None:
        text = self.get(name)
        if not text:
            return default
        if not _WHOLE.fullmatch(text):
            self.error(name, "not_whole_number", value=text)
            return default
        return int(text)

    def whole_or(self, name: str, default: int) -> int:
        value = self.whole(name, default)
        return default if value is None else value

    def required_whole(self, name: str, default: int) -> int:
        if not self.get(name):
            self.error(name, "required")
        return self.whole_or(name, default)

    def seconds(self, name: str, default: float | None) -> float | None:
        text = self.get(name)
        if not text:
            return default
        if not _SECONDS.fullmatch(text):
            self.error(name, "not_seconds", value=text)
            return default
        return float(text)

    def seconds_or(self, name: str, default: float) -> float:
        value = self.seconds(name, default)
        return default if value is None else value

    def on_off(self, name: str) -> bool:
        text = self.get(name).lower()
        if text in _TRUE:
            return True
        if text not in _FALSE:
            self.error(name, "not_on_off", value=text)
        return False

    def texts(self, prefix: str) -> dict[str, str]:
        """The non-blank texts of the flow's languages."""
        result: dict[str, str] = {}
        for language in self.languages:
            text = self.get(f"{prefix}-{language}")
            if text:
                result[language] = text
        return result

    def prompt(self, prefix: str) -> dict[str, str] | None:
        """An optional prompt: None when every language is blank (texts and uploads)."""
        texts = self.texts(prefix)
        return texts if texts or self.texts(f"{prefix}-upload") else None


def read_form(form: Mapping[str, str]) -> tuple[Editable, list[FieldError]]:
    """The flow a submitted form describes, even while it has problems, and every problem.

    The problems are the ones :func:`from_form` raises (the same codes, fields and order);
    the flow is what the form says, so that a page can add, remove and move steps in a form
    that is not yet valid and show the problems beside the fields. A step with empty texts,
    an option or ``next`` naming a step that does not exist, a bad step id, a bad key, ...
    are kept as typed, and ``to_form`` gives them back. Where a value cannot be held at all
    (words in a number field, a checkbox that is neither on nor off), the flow has what a
    blank field gives (the default: a step's ``timeout`` is then the flow's, ``min`` /
    ``max`` are 0, a checkbox is off) and the problem is listed. A step whose kind is
    missing or unknown is kept in its place with its id, kind (as typed), texts and uploads
    only; what goes to it is not called a missing step.
    """
    r = _Reader(form)
    languages = tuple(lang for lang in re.split(r"[\s,]+", r.get("languages")) if lang)
    r.languages = tuple(lang for lang in dict.fromkeys(languages) if lang in LANGUAGES)
    names = Names()
    steps: list[Step] = []
    shown: list[Step] = []  # with the steps that could not be read, in their places
    unreadable: list[str] = []
    for _, p in r.rows("steps"):
        step = _read_step(r, p, len(steps), names)
        if step is None:
            unreadable.append(r.get(f"{p}-id"))
            shown.append(_unreadable_step(r, p))
        else:
            names.prefixes[f"{len(steps)}"] = p
            steps.append(step)
            shown.append(step)
    d = Defaults()
    defaults = Defaults(
        timeout=r.seconds_or("defaults-timeout", d.timeout),
        inter_digit_timeout=r.seconds_or("defaults-inter_digit_timeout", d.inter_digit_timeout),
        retries=r.whole_or("defaults-retries", d.retries),
        no_input=r.prompt("defaults-no_input"),
        invalid=r.prompt("defaults-invalid"),
        no_input_upload=r.texts("defaults-no_input-upload"),
        invalid_upload=r.texts("defaults-invalid-upload"),
    )
    flow = Editable(
        id=r.get("id"),
        name=r.get("name"),
        version=r.get("version") if "version" in form else "1",
        languages=languages,
        default_language=r.get("default_language") or (languages[0] if languages else ""),
        start=r.get("start") or (steps[0].id if steps else ""),
        steps=tuple(steps),
        fallback=r.ref("fallback"),
        anonymous=r.on_off("anonymous"),
        repeat_key=r.get("keys-repeat") if "keys-repeat" in form else "*",
        switch_language_key=r.get("keys-switch_language"),
        opt_out_key=r.get("keys-opt_out"),
        opt_out_prompt=r.prompt("opt_out_prompt"),
        defaults=defaults,
        opt_out_upload=r.texts("opt_out_prompt-upload"),
    )
    # Where a value could not be read, the flow is not what was typed: no loader yet.
    errors = r.errors + check_flow(flow, names, other_ids=unreadable, loader=not r.errors)
    if unreadable:  # (always with an error) the steps that could not be read back in place
        flow = dataclasses.replace(flow, steps=tuple(shown))
    return flow, errors


def from_form(form: Mapping[str, str]) -> Editable:
    """The flow a submitted form describes; raises :class:`FormErrors` listing every problem.

    Fields a form leaves out take their defaults (``version`` 1, ``default_language`` the
    first language, ``start`` the first step, ``keys-repeat`` ``*``); other forms' fields
    (a CSRF token, the submit button) are ignored. The same as :func:`read_form` where
    that finds no problem.
    """
    flow, errors = read_form(form)
    if errors:
        raise FormErrors(errors)
    return flow


def _unreadable_step(r: _Reader, p: str) -> Step:
    """A step of a missing or unknown kind, as far as the form says what every step has."""
    kind: Any = r.get(f"{p}-kind")
    return Step(
        id=r.get(f"{p}-id"),
        kind=kind,
        text=r.texts(f"{p}-text"),
        upload=r.texts(f"{p}-upload"),
    )


def _read_options(r: _Reader, prefix: str, next_: bool) -> tuple[list[Option], list[str]]:
    options: list[Option] = []
    prefixes: list[str] = []
    for _, op in r.rows(f"{prefix}-options"):
        option = Option(
            key=r.get(f"{op}-key"),
            value=r.get(f"{op}-value"),
            label=r.texts(f"{op}-label"),
            next=r.ref(f"{op}-next") if next_ else None,
        )
        options.append(option)
        prefixes.append(op)
    return options, prefixes


def _read_step(r: _Reader, p: str, i: int, names: Names) -> Step | None:
    kind = r.get(f"{p}-kind")
    if kind not in STEP_KINDS:
        if kind:
            r.error(f"{p}-kind", "bad_kind", kind=kind, choices=", ".join(STEP_KINDS))
        else:
            r.error(f"{p}-kind", "required")
        return None
    fields: dict[str, Any] = {
        "id": r.get(f"{p}-id"),
        "kind": kind,
        "text": r.texts(f"{p}-text"),
        "upload": r.texts(f"{p}-upload"),
    }
    if kind in NEXT_KINDS:
        fields["next"] = r.ref(f"{p}-next")
    if kind in FALLBACK_KINDS:
        fields["fallback"] = r.ref(f"{p}-fallback")
    if kind in INPUT_KINDS:
        fields["timeout"] = r.seconds(f"{p}-timeout", None)
        fields["retries"] = r.whole(f"{p}-retries", None)
        fields["no_input"] = r.prompt(f"{p}-no_input")
        fields["invalid"] = r.prompt(f"{p}-invalid")
        fields["no_input_upload"] = r.texts(f"{p}-no_input-upload")
        fields["invalid_upload"] = r.texts(f"{p}-invalid-upload")
    if kind in OPTION_KINDS:
        options, prefixes = _read_options(r, p, True)
        fields["options"] = tuple(options)
        for j, op in enumerate(prefixes):
            names.prefixes[f"{i}.o{j}"] = op
    if kind in ("scale", "number"):
        fields["min_value"] = r.required_whole(f"{p}-min", 0)
        fields["max_value"] = r.required_whole(f"{p}-max", 0)
    if kind == "number":
        fields["max_digits"] = r.whole(f"{p}-max_digits", None)
        fields["inter_digit_timeout"] = r.seconds(f"{p}-inter_digit_timeout", None)
    if kind == "open":
        fields["max_seconds"] = r.whole_or(f"{p}-max_seconds", 60)
        fields["silence_seconds"] = r.whole_or(f"{p}-silence_seconds", 4)
        fields["beep"] = r.on_off(f"{p}-beep")
    if kind == "callback":
        fields["consent_version"] = r.get(f"{p}-consent_version")
        fields["declined_next"] = r.ref(f"{p}-declined_next")
        questions: list[Question] = []
        for q, (_, qp) in enumerate(r.rows(f"{p}-questions")):
            names.prefixes[f"{i}.q{q}"] = qp
            options, prefixes = _read_options(r, qp, False)
            for j, op in enumerate(prefixes):
                names.prefixes[f"{i}.q{q}.o{j}"] = op
            field: Any = r.get(f"{qp}-field")
            questions.append(
                Question(
                    field=field,
                    text=r.texts(f"{qp}-text"),
                    options=tuple(options),
                    upload=r.texts(f"{qp}-upload"),
                )
            )
        fields["questions"] = tuple(questions)
    if kind == "transfer":
        fields["endpoint"] = r.get(f"{p}-endpoint")
        fields["timezone"] = r.get(f"{p}-timezone") or "Europe/Helsinki"
        fields["ring_seconds"] = r.whole_or(f"{p}-ring_seconds", 30)
        hours: list[Hours] = []
        for h, (_, hp) in enumerate(r.rows(f"{p}-hours")):
            names.prefixes[f"{i}.h{h}"] = hp
            days = tuple(d.lower() for d in re.split(r"[\s,]+", r.get(f"{hp}-days")) if d)
            hours.append(Hours(days=days, from_time=r.get(f"{hp}-from"), to_time=r.get(f"{hp}-to")))
        fields["hours"] = tuple(hours)
    return Step(**fields)
