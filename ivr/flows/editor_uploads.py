"""Uploaded prompts in the flow editor: which prompt plays which upload, and setting one.

A prompt (a step's, its no-input or invalid-key prompt, a callback question's, the flow's
defaults and its opt-out prompt) may play, per language, a prompt uploaded with
``ivr prompt upload`` (the format's ``upload: {fi: NAME}``); its text stays beside it as
the transcript and the TTS preview. A prompt is named by the key :func:`prompts_of` gives
(``nodes.q1.prompt``, ``nodes.q1.no_input``, ``nodes.cb.steps.0.prompt``,
``opt_out_prompt``); ``defaults.no_input`` and ``defaults.invalid`` name the defaults. A
step's ``no_input`` / ``invalid`` key names the step's own prompt, or, where it has none,
the flow's default it plays (shared by every step that uses it).

A ``recording:`` (a file beside the flow) is not modelled: such a flow opens read-only.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from ivr.flows.editor_model import (
    INPUT_KINDS,
    Editable,
    EditRefused,
    Reason,
    Step,
    Texts,
    Uploads,
)
from ivr.flows.model import UPLOAD_NAME

_NUMBER = re.compile(r"[0-9]{1,6}")


class PromptAudio(NamedTuple):
    """One prompt in one language: its key, language, text ("" if none) and the name of
    the uploaded prompt it plays (None: the text is spoken)."""

    key: str
    language: str
    text: str
    upload: str | None


def prompt_slots(flow: Editable) -> Iterator[tuple[str, Texts | None, Uploads]]:
    """``(key, texts, uploads)`` of every prompt of ``flow``, keyed and ordered as
    :func:`ivr.flows.walk.iter_prompts` does for the saved flow (a default no-input or
    invalid-key prompt once, under the first step that uses it). ``texts`` is None for a
    prompt with uploads only that the flow leaves unset (it has no text then)."""
    used_defaults: set[str] = set()
    for step in flow.steps:
        base = f"nodes.{step.id}"
        if step.text or step.upload:
            yield f"{base}.prompt", step.text, step.upload
        for q, question in enumerate(step.questions if step.kind == "callback" else ()):
            yield f"{base}.steps.{q}.prompt", question.text, question.upload
        if step.kind not in INPUT_KINDS:
            continue
        for name in ("no_input", "invalid"):
            own: Texts | None = getattr(step, name)
            own_upload: Uploads = getattr(step, f"{name}_upload")
            default: Texts | None = getattr(flow.defaults, name)
            default_upload: Uploads = getattr(flow.defaults, f"{name}_upload")
            if own is not None or own_upload:
                yield f"{base}.{name}", own, own_upload
            elif name not in used_defaults and (default is not None or default_upload):
                used_defaults.add(name)
                yield f"{base}.{name}", default, default_upload
    if flow.opt_out_prompt is not None or flow.opt_out_upload:
        yield "opt_out_prompt", flow.opt_out_prompt, flow.opt_out_upload


def prompt_audio_of(flow: Editable) -> list[PromptAudio]:
    """Every prompt of ``flow`` in every one of the flow's languages (the keys and order of
    :func:`prompts_of`, and as :func:`ivr.flows.walk.iter_prompts` gives them for the saved
    flow), with its text and the upload it plays, if any."""
    return [
        PromptAudio(key, language, (texts or {}).get(language, ""), uploads.get(language))
        for key, texts, uploads in prompt_slots(flow)
        for language in flow.languages
    ]


# --------------------------------------------------------------------------- one prompt
@dataclass(frozen=True)
class _Slot:
    texts: Texts | None
    uploads: Uploads
    optional: bool  # the prompt may be left out (None): no_input, invalid, opt-out
    put: Callable[[Texts | None, Uploads], Editable]


def _with_step(flow: Editable, i: int, step: Step) -> Editable:
    return dataclasses.replace(flow, steps=flow.steps[:i] + (step,) + flow.steps[i + 1 :])


def _step_slot(flow: Editable, i: int, name: str) -> _Slot:
    step = flow.steps[i]
    upload_name = "upload" if name == "text" else f"{name}_upload"

    def put(texts: Texts | None, uploads: Uploads) -> Editable:
        fields: dict[str, Any] = {name: texts, upload_name: uploads}
        return _with_step(flow, i, dataclasses.replace(step, **fields))

    return _Slot(getattr(step, name), getattr(step, upload_name), name != "text", put)


def _default_slot(flow: Editable, name: str) -> _Slot:
    d = flow.defaults

    def put(texts: Texts | None, uploads: Uploads) -> Editable:
        fields: dict[str, Any] = {name: texts, f"{name}_upload": uploads}
        return dataclasses.replace(flow, defaults=dataclasses.replace(d, **fields))

    return _Slot(getattr(d, name), getattr(d, f"{name}_upload"), True, put)


def _question_slot(flow: Editable, i: int, q: int) -> _Slot:
    step = flow.steps[i]
    question = step.questions[q]

    def put(texts: Texts | None, uploads: Uploads) -> Editable:
        changed = dataclasses.replace(question, text=texts or {}, upload=uploads)
        questions = step.questions[:q] + (changed,) + step.questions[q + 1 :]
        return _with_step(flow, i, dataclasses.replace(step, questions=questions))

    return _Slot(question.text, question.upload, False, put)


def _slot(flow: Editable, key: str) -> _Slot | None:
    """The prompt ``key`` names, or None where ``flow`` has no such prompt."""
    parts = key.split(".")
    if parts == ["opt_out_prompt"]:

        def put(texts: Texts | None, uploads: Uploads) -> Editable:
            return dataclasses.replace(flow, opt_out_prompt=texts, opt_out_upload=uploads)

        return _Slot(flow.opt_out_prompt, flow.opt_out_upload, True, put)
    if len(parts) == 2 and parts[0] == "defaults" and parts[1] in ("no_input", "invalid"):
        return _default_slot(flow, parts[1])
    if len(parts) < 3 or parts[0] != "nodes":
        return None
    i = flow.index(parts[1])
    if i is None:
        return None
    step, rest = flow.steps[i], parts[2:]
    if rest == ["prompt"]:
        return _step_slot(flow, i, "text")
    if len(rest) == 1 and rest[0] in ("no_input", "invalid") and step.kind in INPUT_KINDS:
        name = rest[0]
        if getattr(step, name) is not None or getattr(step, f"{name}_upload"):
            return _step_slot(flow, i, name)
        default = _default_slot(flow, name)
        return default if default.texts is not None or default.uploads else None
    if (
        len(rest) == 3
        and rest[0] == "steps"
        and _NUMBER.fullmatch(rest[1])
        and rest[2] == "prompt"
        and step.kind == "callback"
        and int(rest[1]) < len(step.questions)
    ):
        return _question_slot(flow, i, int(rest[1]))
    return None


def _no_such_prompt(key: str) -> EditRefused:
    return EditRefused([Reason(key, "no_such_prompt", {"key": key})])


def _ordered(uploads: dict[str, str], languages: tuple[str, ...]) -> dict[str, str]:
    order = [lang for lang in languages if lang in uploads]
    order += [lang for lang in uploads if lang not in order]
    return {lang: uploads[lang] for lang in order}


def upload_of(flow: Editable, prompt_key: str, language: str) -> str | None:
    """The name of the uploaded prompt that ``prompt_key`` plays in ``language``; None
    where it speaks its text (or there is no such prompt)."""
    slot = _slot(flow, prompt_key)
    return slot.uploads.get(language) if slot is not None else None


def set_upload(flow: Editable, prompt_key: str, language: str, name: str) -> Editable:
    """``flow`` with prompt ``prompt_key`` playing the uploaded prompt ``name`` in
    ``language`` (its texts are kept: the transcript and the TTS preview).

    ``prompt_key`` is a key of :func:`prompts_of` (or ``defaults.no_input``,
    ``defaults.invalid``, ``opt_out_prompt``, ``nodes.<id>.prompt``, which may be silent
    yet). EditRefused (``no_such_prompt``, ``not_flow_language``, ``bad_upload_name``, at
    the YAML path ``<prompt_key>.upload.<language>``) when there is no such prompt,
    ``language`` is not one of the flow's or ``name`` is not a name ``ivr prompt upload``
    gives (1-64 of a-z, 0-9, '-' and '_'). Whether the upload exists is not checked here.
    """
    slot = _slot(flow, prompt_key)
    if slot is None:
        raise _no_such_prompt(prompt_key)
    where = f"{prompt_key}.upload.{language}"
    reasons: list[Reason] = []
    if language not in flow.languages:
        choices = ", ".join(flow.languages)
        reasons.append(
            Reason(where, "not_flow_language", {"language": language, "choices": choices})
        )
    if not UPLOAD_NAME.fullmatch(name):
        reasons.append(Reason(where, "bad_upload_name", {"name": name}))
    if reasons:
        raise EditRefused(reasons)
    uploads = _ordered({**slot.uploads, language: name}, flow.languages)
    return slot.put(slot.texts if slot.texts is not None else {}, uploads)


def clear_upload(flow: Editable, prompt_key: str, language: str) -> Editable:
    """``flow`` with prompt ``prompt_key`` speaking its text in ``language`` again (the same
    flow where it plays no upload there). A no-input, invalid-key or opt-out prompt left
    with neither text nor upload is unset. EditRefused (``no_such_prompt``) when there is
    no such prompt."""
    slot = _slot(flow, prompt_key)
    if slot is None:
        raise _no_such_prompt(prompt_key)
    if language not in slot.uploads:
        return flow
    uploads = {lang: name for lang, name in slot.uploads.items() if lang != language}
    texts = slot.texts
    if slot.optional and not texts and not uploads:
        texts = None
    return slot.put(texts, uploads)
