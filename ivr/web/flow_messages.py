"""The flow editor's messages in the page's language.

The editor (:mod:`ivr.flows.editor`) answers with message codes and English templates
(``MESSAGES``); here each template is written out once more through ``_()`` so the message
catalogues carry it, and :func:`templates` gives them translated for
``reason.render(templates)`` and ``error.render(templates)``. A code missing here falls
back to the editor's English (tests/web/test_flows_editor.py checks the two agree).
"""

from __future__ import annotations

from collections.abc import Callable

from flask_babel import gettext as _

_TEMPLATES: dict[str, Callable[[], str]] = {
    "recording": lambda: _(
        "plays the {language_name} recording {file}; recorded prompts are not editable here"
    ),
    "upload": lambda: _(
        "plays the {language_name} uploaded prompt {name}; uploaded prompts are not editable here"
    ),
    "unknown_key": lambda: _("'{key}' is not editable here"),
    "unknown_kind": lambda: _("a '{kind}' step is not editable here"),
    "unfaithful": lambda: _("the editor would save {what} differently; edit the YAML instead"),
    "step_in_use": lambda: _("'{step}' is used here; say where to go instead"),
    "last_step": lambda: _("a flow needs at least one step"),
    "no_such_step": lambda: _("there is no step '{step}'"),
    "already_first": lambda: _("'{step}' is already the first step"),
    "already_last": lambda: _("'{step}' is already the last step"),
    "required": lambda: _("required"),
    "missing_text": lambda: _("write the {language_name} text"),
    "bad_kind": lambda: _("unknown step kind '{kind}'; use {choices}"),
    "unknown_step": lambda: _("there is no step '{step}'"),
    "bad_key": lambda: _("an option key is one digit 0-9, got '{key}'"),
    "duplicate_key": lambda: _("key {key} is already used by option {other}"),
    "duplicate_value": lambda: _("value '{value}' is already used by option {other}"),
    "bad_id": lambda: _("use 1-64 lowercase letters a-z, digits, '-' and '_', got '{id}'"),
    "duplicate_id": lambda: _("step id '{id}' is already used by step {other}"),
    "bad_flow_id": lambda: _("use 1-64 lowercase letters a-z, digits and '-', got '{id}'"),
    "not_whole_number": lambda: _("expected a whole number, got '{value}'"),
    "not_seconds": lambda: _("expected a number of seconds, got '{value}'"),
    "not_on_off": lambda: _("expected on or off, got '{value}'"),
    "unknown_language": lambda: _("unknown language '{language}'; use {choices}"),
    "duplicate_language": lambda: _("'{language}' is listed twice"),
    "no_languages": lambda: _("choose at least one language"),
    "not_flow_language": lambda: _("'{language}' is not one of the flow's languages ({choices})"),
    "no_steps": lambda: _("add at least one step"),
    "no_options": lambda: _("give at least one option"),
    "no_questions": lambda: _("give at least the consent question"),
    "bad_question": lambda: _("unknown question '{field}'; use {choices}"),
    "bad_day": lambda: _("unknown day '{day}'; use {choices}"),
    "bad_upload_name": lambda: _(
        "an uploaded prompt's name is 1-64 of a-z, 0-9, '-' and '_', got '{name}'"
    ),
    "no_such_prompt": lambda: _("there is no prompt '{key}'"),
    "invalid": lambda: "{message}",
    "kind.say": lambda: _("Message"),
    "kind.language": lambda: _("Language menu"),
    "kind.choice": lambda: _("Choice"),
    "kind.scale": lambda: _("Scale"),
    "kind.number": lambda: _("Number"),
    "kind.open": lambda: _("Open answer (recorded)"),
    "kind.callback": lambda: _("Callback request"),
    "kind.transfer": lambda: _("Transfer to a person"),
    "kind.end": lambda: _("End"),
}

ENGLISH_CODES = frozenset(_TEMPLATES)


def templates() -> dict[str, str]:
    """Every editor message template in the page's language."""
    return {code: str(make()) for code, make in _TEMPLATES.items()}


def language_names() -> dict[str, str]:
    return {"fi": str(_("Finnish")), "sv": str(_("Swedish")), "en": str(_("English"))}


def kind_name(kind: str) -> str:
    make = _TEMPLATES.get(f"kind.{kind}")
    return str(make()) if make is not None else kind


def part_name(part: str, index: int | None = None) -> str:
    """What a prompt of a step is, for the prompt list and the preview."""
    if part == "question":
        return str(_("Question %(number)d of the callback request", number=(index or 0) + 1))
    names = {
        "prompt": _("Prompt"),
        "no_input": _("When no key is pressed"),
        "invalid": _("When a wrong key is pressed"),
        "opt_out": _("After the opt-out key"),
    }
    return str(names.get(part, part))
