"""The flow editor's data: an editable flow, and the messages it answers with.

Pure data (frozen dataclasses). :mod:`ivr.flows.editor` is the public face; this module holds
the types and the English message templates every reason and form error is rendered from,
so the web layer can translate them by code (``render(code, params, templates)``).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as _field
from typing import Literal

from ivr.flows.model import LANGUAGES, NODE_KINDS, Flow, NodeKind

# The step kinds are the flow format's node kinds, with the format's names.
StepKind = NodeKind
STEP_KINDS: tuple[str, ...] = NODE_KINDS
QuestionField = Literal["consent", "channel", "time_window", "interpreter"]
QUESTION_FIELDS: tuple[str, ...] = ("consent", "channel", "time_window", "interpreter")
DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Kinds whose prompt is required (callback, transfer and end may be silent).
PROMPT_REQUIRED = frozenset({"say", "language", "choice", "scale", "number", "open"})
# Kinds that wait for keys: timeout, retries, no-input / invalid prompts, fallback.
INPUT_KINDS = frozenset({"language", "choice", "scale", "number", "callback"})
# Kinds with options (each a key, a stored value, labels and an optional next step).
OPTION_KINDS = frozenset({"language", "choice"})
# Kinds with a ``next``; a transfer goes on by its ``fallback``, an end hangs up.
NEXT_KINDS = frozenset({"say", "language", "choice", "scale", "number", "open", "callback"})
FALLBACK_KINDS = INPUT_KINDS | {"transfer"}

Texts = Mapping[str, str]  # language -> text
# language -> the name of a prompt uploaded with ``ivr prompt upload`` (the format's
# ``upload:``); that language plays the upload, its text stays as transcript and TTS preview.
Uploads = Mapping[str, str]


# --------------------------------------------------------------------------- the flow
@dataclass(frozen=True)
class Option:
    """One key of a language menu, a choice or a callback question."""

    key: str  # one digit 0-9
    value: str  # what is stored (a language code for a language menu)
    label: Texts = _field(default_factory=dict)  # for reports and the UI; may be partial
    next: str | None = None  # None: the step's own next (always None in a callback question)


@dataclass(frozen=True)
class Question:
    """One question of a callback request (the format's ``steps``); the first is consent."""

    field: QuestionField
    text: Texts
    options: tuple[Option, ...]
    upload: Uploads = _field(default_factory=dict)  # the prompt's uploads


@dataclass(frozen=True)
class Hours:
    """Opening hours of a transfer: these days (``mon`` .. ``sun``), from .. to ("HH:MM")."""

    days: tuple[str, ...]
    from_time: str
    to_time: str


@dataclass(frozen=True)
class Defaults:
    """The flow's ``defaults``: what a step that waits for keys uses unless it says otherwise."""

    timeout: float = 6.0
    inter_digit_timeout: float = 3.0
    retries: int = 2
    no_input: Texts | None = None  # said before a re-prompt after silence
    invalid: Texts | None = None  # said before a re-prompt after a wrong key
    no_input_upload: Uploads = _field(default_factory=dict)  # ``no_input``'s uploads
    invalid_upload: Uploads = _field(default_factory=dict)  # ``invalid``'s uploads


@dataclass(frozen=True)
class Step:
    """One node of the flow. Fields that do not apply to ``kind`` keep their defaults.

    ``text`` is the prompt ({} = none; only callback, transfer and end may be silent).
    ``upload``, ``no_input_upload`` and ``invalid_upload`` are the uploaded prompts (per
    language) of ``text``, ``no_input`` and ``invalid``; a language with an upload plays it
    and its text stays beside it as the transcript (it may be left out, as in the format).
    A prompt with only uploads has ``{}`` texts (not None).
    ``timeout``, ``retries``, ``no_input``, ``invalid``, ``inter_digit_timeout`` and
    ``max_digits`` are None where the step takes the flow's default (or, for
    ``max_digits``, the digits of ``max_value``).
    """

    id: str
    kind: StepKind
    text: Texts = _field(default_factory=dict)
    next: str | None = None
    # waiting for keys (language, choice, scale, number, callback)
    timeout: float | None = None
    retries: int | None = None
    no_input: Texts | None = None
    invalid: Texts | None = None
    fallback: str | None = None  # also a transfer's: closed or no answer; None: the flow's
    # language, choice
    options: tuple[Option, ...] = ()
    # scale, number
    min_value: int = 0
    max_value: int = 0
    max_digits: int | None = None
    inter_digit_timeout: float | None = None
    # open (a recorded spoken answer)
    max_seconds: int = 60
    silence_seconds: int = 4
    beep: bool = True
    # callback
    consent_version: str = ""
    questions: tuple[Question, ...] = ()
    declined_next: str | None = None
    # transfer
    endpoint: str = ""
    hours: tuple[Hours, ...] = ()
    timezone: str = "Europe/Helsinki"
    ring_seconds: int = 30
    # uploaded prompts (language -> name) of text, no_input and invalid
    upload: Uploads = _field(default_factory=dict)
    no_input_upload: Uploads = _field(default_factory=dict)
    invalid_upload: Uploads = _field(default_factory=dict)


@dataclass(frozen=True)
class Editable:
    """A flow the form can show and save faithfully; steps in the file's order."""

    id: str
    name: str
    version: str
    languages: tuple[str, ...]
    default_language: str
    start: str
    steps: tuple[Step, ...]
    fallback: str | None = None  # where input failures go when a step names none
    anonymous: bool = False
    repeat_key: str = "*"
    switch_language_key: str = ""
    opt_out_key: str = ""
    opt_out_prompt: Texts | None = None
    defaults: Defaults = _field(default_factory=Defaults)
    opt_out_upload: Uploads = _field(default_factory=dict)  # ``opt_out_prompt``'s uploads

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def index(self, step_id: str) -> int | None:
        for i, step in enumerate(self.steps):
            if step.id == step_id:
                return i
        return None


# --------------------------------------------------------------------------- messages
LANGUAGE_NAMES: Mapping[str, str] = {"fi": "Finnish", "sv": "Swedish", "en": "English"}

MESSAGES: Mapping[str, str] = {
    # why a flow opens read-only
    "recording": "plays the {language_name} recording {file}; "
    "recorded prompts are not editable here",
    # (no longer given: flows with uploaded prompts are editable; kept for translations)
    "upload": "plays the {language_name} uploaded prompt {name}; "
    "uploaded prompts are not editable here",
    "unknown_key": "'{key}' is not editable here",
    "unknown_kind": "a '{kind}' step is not editable here",
    "unfaithful": "the editor would save {what} differently; edit the YAML instead",
    # why an operation is refused
    "step_in_use": "'{step}' is used here; say where to go instead",
    "last_step": "a flow needs at least one step",
    "no_such_step": "there is no step '{step}'",
    "no_such_prompt": "there is no prompt '{key}'",
    "already_first": "'{step}' is already the first step",
    "already_last": "'{step}' is already the last step",
    # form errors
    "required": "required",
    "missing_text": "write the {language_name} text",
    "bad_kind": "unknown step kind '{kind}'; use {choices}",
    "unknown_step": "there is no step '{step}'",
    "bad_key": "an option key is one digit 0-9, got '{key}'",
    "duplicate_key": "key {key} is already used by option {other}",
    "duplicate_value": "value '{value}' is already used by option {other}",
    "bad_id": "use 1-64 lowercase letters a-z, digits, '-' and '_', got '{id}'",
    "duplicate_id": "step id '{id}' is already used by step {other}",
    "bad_flow_id": "use 1-64 lowercase letters a-z, digits and '-', got '{id}'",
    "not_whole_number": "expected a whole number, got '{value}'",
    "not_seconds": "expected a number of seconds, got '{value}'",
    "not_on_off": "expected on or off, got '{value}'",
    "unknown_language": "unknown language '{language}'; use {choices}",
    "duplicate_language": "'{language}' is listed twice",
    "no_languages": "choose at least one language",
    "not_flow_language": "'{language}' is not one of the flow's languages ({choices})",
    "no_steps": "add at least one step",
    "no_options": "give at least one option",
    "no_questions": "give at least the consent question",
    "bad_question": "unknown question '{field}'; use {choices}",
    "bad_day": "unknown day '{day}'; use {choices}",
    "bad_upload_name": "an uploaded prompt's name is 1-64 of a-z, 0-9, '-' and '_', got '{name}'",
    "invalid": "{message}",  # the flow loader's own (English) words
    # the step kinds, for the page
    "kind.say": "Message",
    "kind.language": "Language menu",
    "kind.choice": "Choice",
    "kind.scale": "Scale",
    "kind.number": "Number",
    "kind.open": "Open answer (recorded)",
    "kind.callback": "Callback request",
    "kind.transfer": "Transfer to a person",
    "kind.end": "End",
}


class _Params(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(
    code: str,
    params: Mapping[str, str],
    templates: Mapping[str, str] = MESSAGES,
    language_names: Mapping[str, str] = LANGUAGE_NAMES,
) -> str:
    """The message ``code`` with ``params`` filled in (``{language_name}`` from ``language``).

    A translation passes its own ``templates`` and ``language_names``; a code it lacks falls
    back to English.
    """
    template = templates.get(code) or MESSAGES.get(code) or code
    values = _Params(params)
    if "language" in params:
        values.setdefault("language_name", language_names.get(params["language"], "?"))
    return string.Formatter().vformat(template, (), values)


@dataclass(frozen=True)
class Reason:
    """Why a flow is read-only or an operation was refused: a YAML path and a message."""

    path: str  # dotted YAML path, e.g. nodes.intro.prompt.recording.fi ("" = the flow)
    code: str
    params: Mapping[str, str] = _field(default_factory=dict)

    def render(
        self,
        templates: Mapping[str, str] = MESSAGES,
        language_names: Mapping[str, str] = LANGUAGE_NAMES,
    ) -> str:
        text = render(self.code, self.params, templates, language_names)
        return f"{self.path}: {text}" if self.path else text

    @property
    def message(self) -> str:
        """The English rendering, e.g. ``nodes.q3.when: 'when' is not editable here``."""
        return self.render()


@dataclass(frozen=True)
class ReadOnly:
    """A valid flow the form cannot represent faithfully: show it, do not edit it."""

    flow: Flow
    reasons: tuple[Reason, ...]

    @property
    def messages(self) -> list[str]:
        return [reason.message for reason in self.reasons]


@dataclass(frozen=True)
class FieldError:
    """One problem of a submitted form, beside the field ``field`` (e.g. ``steps-2-next``)."""

    field: str
    code: str
    params: Mapping[str, str] = _field(default_factory=dict)
    path: str = ""  # the YAML path when the flow loader found it

    def render(
        self,
        templates: Mapping[str, str] = MESSAGES,
        language_names: Mapping[str, str] = LANGUAGE_NAMES,
    ) -> str:
        return render(self.code, self.params, templates, language_names)

    @property
    def message(self) -> str:
        return self.render()


class FormErrors(Exception):
    """A form that does not make a valid flow; ``errors`` lists every problem."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = tuple(errors)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(f"{e.field}: {e.message}" for e in self.errors)

    @property
    def items(self) -> list[tuple[str, str]]:
        """``(field name, English message)`` for every problem, in order."""
        return [(e.field, e.message) for e in self.errors]

    def by_field(self) -> dict[str, list[str]]:
        """The English messages of each field, for showing beside it."""
        result: dict[str, list[str]] = {}
        for error in self.errors:
            result.setdefault(error.field, []).append(error.message)
        return result


class EditRefused(Exception):
    """An operation (remove, move, add) that cannot be done; ``reasons`` say why."""

    def __init__(self, reasons: list[Reason]) -> None:
        self.reasons = tuple(reasons)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(reason.message for reason in self.reasons)


def language_choices() -> str:
    return ", ".join(LANGUAGES)
