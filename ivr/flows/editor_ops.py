"""Operations of the flow editor: a new flow, add / remove / move a step, the prompts.

Every operation returns a new :class:`Editable` (or raises :class:`EditRefused` with
reasons); none checks the whole flow, so a page can add a step and let the person fill it in
before :func:`ivr.flows.editor.check_flow` or ``from_form`` judges it. They work as well on
a flow with problems as ``read_form`` gives it (texts left empty, a ``next`` to a step that
does not exist, a step without an id, two steps with one id: the first is the one named).

The steps' order is the order the form shows. Adding and moving keep a plain sequence a
sequence: a step whose ``next`` (or ``fallback``) is the step below it in the list goes on
to whichever step is below it after the change, and the start follows the first step.
Branches (option ``next``, ``declined_next``) are never rewired.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Iterator, Sequence
from typing import NamedTuple, cast

from ivr.flows.editor_check import STEP_ID
from ivr.flows.editor_model import (
    FALLBACK_KINDS,
    NEXT_KINDS,
    STEP_KINDS,
    Defaults,
    Editable,
    EditRefused,
    Option,
    Question,
    Reason,
    Step,
    StepKind,
    Texts,
)
from ivr.flows.editor_uploads import prompt_slots
from ivr.flows.model import LANGUAGES

_ID_PREFIX = {"say": "message"}
_WELCOME = {"fi": "Hei! Tervetuloa.", "sv": "Hej! Välkommen.", "en": "Hello! Welcome."}
_QUESTION = {
    "fi": "Kyllä, paina 1. Ei, paina 2.",
    "sv": "Ja, tryck 1. Nej, tryck 2.",
    "en": "Yes, press 1. No, press 2.",
}
_GOODBYE = {"fi": "Kiitos! Hei hei!", "sv": "Tack! Hej då!", "en": "Thank you! Goodbye!"}
_NO_INPUT = {
    "fi": "En kuullut valintaasi.",
    "sv": "Jag hörde inte ditt val.",
    "en": "I did not hear your choice.",
}
_INVALID = {
    "fi": "Tätä numeroa ei ole vaihtoehdoissa.",
    "sv": "Det numret finns inte bland alternativen.",
    "en": "That key is not one of the choices.",
}
_YES = {"fi": "Kyllä", "sv": "Ja", "en": "Yes"}
_NO = {"fi": "Ei", "sv": "Nej", "en": "No"}
_LANGUAGE_LABELS = {
    "fi": {"fi": "suomi", "sv": "finska", "en": "Finnish"},
    "sv": {"fi": "ruotsi", "sv": "svenska", "en": "Swedish"},
    "en": {"fi": "englanti", "sv": "engelska", "en": "English"},
}


def _only(texts: Texts, languages: Sequence[str]) -> dict[str, str]:
    return {lang: texts[lang] for lang in languages if lang in texts}


def _slug(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:64].strip("-") or "flow"


def new_flow(
    name: str, languages: Sequence[str] = ("fi", "sv"), *, flow_id: str | None = None
) -> Editable:
    """A minimal valid flow: a greeting, a yes/no question and an end, in ``languages``.

    The id is made from ``name`` unless ``flow_id`` is given. ValueError for an empty name
    or languages that are not ``fi``, ``sv``, ``en`` (each once).
    """
    if not name.strip():
        raise ValueError("a flow needs a name")
    langs = tuple(languages)
    if not langs or len(set(langs)) != len(langs) or not set(langs) <= set(LANGUAGES):
        raise ValueError(f"languages must be some of {', '.join(LANGUAGES)}, each once")
    yes_no = _yes_no(langs)
    steps = (
        Step(id="welcome", kind="say", text=_only(_WELCOME, langs), next="question"),
        Step(
            id="question",
            kind="choice",
            text=_only(_QUESTION, langs),
            options=yes_no,
            next="end",
        ),
        Step(id="end", kind="end", text=_only(_GOODBYE, langs)),
    )
    return Editable(
        id=flow_id if flow_id is not None else _slug(name),
        name=name.strip(),
        version="1",
        languages=langs,
        default_language=langs[0],
        start="welcome",
        steps=steps,
        fallback="end",
        defaults=Defaults(no_input=_only(_NO_INPUT, langs), invalid=_only(_INVALID, langs)),
    )


def _yes_no(languages: Sequence[str]) -> tuple[Option, ...]:
    return (
        Option(key="1", value="yes", label=_only(_YES, languages)),
        Option(key="2", value="no", label=_only(_NO, languages)),
    )


def new_step(flow: Editable, kind: StepKind, step_id: str) -> Step:
    """A step of ``kind`` with sensible defaults; its texts are left for the person."""
    langs = flow.languages
    if kind == "language":
        options = tuple(
            Option(key=str(n), value=lang, label=_only(_LANGUAGE_LABELS[lang], langs))
            for n, lang in enumerate((x for x in langs if x in LANGUAGES), start=1)
        )
        return Step(id=step_id, kind=kind, options=options)
    if kind == "choice":
        return Step(id=step_id, kind=kind, options=_yes_no(langs))
    if kind == "scale":
        return Step(id=step_id, kind=kind, min_value=1, max_value=5)
    if kind == "number":
        return Step(id=step_id, kind=kind, min_value=0, max_value=100)
    if kind == "callback":
        consent = Question(field="consent", text={}, options=_yes_no(langs))
        return Step(id=step_id, kind=kind, questions=(consent,))
    return Step(id=step_id, kind=kind)


def _free_id(flow: Editable, kind: str) -> str:
    used = {step.id for step in flow.steps}
    prefix = _ID_PREFIX.get(kind, kind)
    n = 1
    while f"{prefix}-{n}" in used:
        n += 1
    return f"{prefix}-{n}"


def add_step(
    flow: Editable, kind: str, *, at: int | None = None, step_id: str | None = None
) -> Editable:
    """``flow`` with a new step of ``kind`` at position ``at`` (default: before the ending
    ``end`` steps), going on to the step it was put in front of.

    EditRefused for an unknown kind, or a ``step_id`` that is not a valid, unused id.
    """
    if kind not in STEP_KINDS:
        choices = ", ".join(STEP_KINDS)
        raise EditRefused([Reason("", "bad_kind", {"kind": kind, "choices": choices})])
    if step_id is None:
        step_id = _free_id(flow, kind)
    elif not STEP_ID.fullmatch(step_id):
        raise EditRefused([Reason("", "bad_id", {"id": step_id})])
    elif (other := flow.index(step_id)) is not None:
        raise EditRefused([Reason("", "duplicate_id", {"id": step_id, "other": str(other + 1)})])
    steps = list(flow.steps)
    if at is None:
        at = len(steps)
        while at > 0 and steps[at - 1].kind == "end":
            at -= 1
    at = max(0, min(at, len(steps)))
    step = new_step(flow, cast(StepKind, kind), step_id)
    follower = steps[at].id if at < len(steps) else None
    start = flow.start
    if follower is not None and kind != "end":
        step = _continue_to(step, follower)
        if at > 0:
            steps[at - 1] = _repoint(steps[at - 1], follower, step_id)
        if at == 0 and start == follower:
            start = step_id
    if not steps:
        start = step_id
    steps.insert(at, step)
    return dataclasses.replace(flow, steps=tuple(steps), start=start)


def _continue_to(step: Step, target: str) -> Step:
    if not target:  # a step without an id (in a flow still being written): nowhere to go
        return step
    if step.kind in NEXT_KINDS:
        return dataclasses.replace(step, next=target)
    if step.kind == "transfer":
        return dataclasses.replace(step, fallback=target)
    return step


def _repoint(step: Step, old: str, new: str | None) -> Step:
    """``step`` going on to ``new`` where its next or fallback went to ``old``."""
    if not new:  # None, or a step without an id
        return step
    next_ = new if step.kind in NEXT_KINDS and step.next == old else step.next
    fallback = new if step.kind in FALLBACK_KINDS and step.fallback == old else step.fallback
    return dataclasses.replace(step, next=next_, fallback=fallback)


def _references(flow: Editable, target: str) -> Iterator[str]:
    """The YAML paths that refer to step ``target`` (outside ``target`` itself)."""
    if not target:  # a step without an id: nothing can name it
        return
    if flow.start == target:
        yield "start"
    if flow.fallback == target:
        yield "fallback"
    for step in flow.steps:
        if step.id == target:
            continue
        base = f"nodes.{step.id}"
        for name in ("next", "fallback", "declined_next"):
            if getattr(step, name) == target:
                yield f"{base}.{name}"
        for j, option in enumerate(step.options):
            if option.next == target:
                yield f"{base}.options.{j}.next"


def _retarget(value: str | None, old: str, new: str) -> str | None:
    return new if value == old else value


def remove_step(flow: Editable, step_id: str, *, redirect: str | None = None) -> Editable:
    """``flow`` without step ``step_id``; what went to it goes to ``redirect``, or else to
    where the removed step went on to (its ``next``; a transfer's ``fallback``).

    EditRefused when there is no such step, it is the only one, or something goes to it
    and there is nowhere to send it instead (a reason names each such place).
    """
    i = flow.index(step_id)
    if i is None:
        raise EditRefused([Reason("", "no_such_step", {"step": step_id})])
    if len(flow.steps) == 1:
        raise EditRefused([Reason("nodes", "last_step")])
    removed = flow.steps[i]
    target = redirect
    if target is None:
        target = removed.next if removed.kind in NEXT_KINDS else None
        if removed.kind == "transfer":
            target = removed.fallback
    elif target == step_id or flow.index(target) is None:
        raise EditRefused([Reason("", "no_such_step", {"step": target})])
    if any(step.id == step_id for step in flow.steps[i + 1 :]):
        # Another step has the same id (a flow with problems): what went to the id goes on
        # to that one, so nothing is redirected.
        return dataclasses.replace(flow, steps=flow.steps[:i] + flow.steps[i + 1 :])
    if target == step_id:
        target = None
    references = list(_references(flow, step_id))
    if references and target is None:
        raise EditRefused([Reason(path, "step_in_use", {"step": step_id}) for path in references])
    steps: list[Step] = []
    for step in flow.steps:
        if step.id == step_id:
            continue
        if target is not None:
            step = dataclasses.replace(
                step,
                next=_retarget(step.next, step_id, target),
                fallback=_retarget(step.fallback, step_id, target),
                declined_next=_retarget(step.declined_next, step_id, target),
                options=tuple(
                    dataclasses.replace(o, next=_retarget(o.next, step_id, target))
                    for o in step.options
                ),
            )
        steps.append(step)
    start = target if flow.start == step_id and target is not None else flow.start
    fallback = _retarget(flow.fallback, step_id, target) if target is not None else flow.fallback
    return dataclasses.replace(flow, steps=tuple(steps), start=start, fallback=fallback)


def move_step(flow: Editable, step_id: str, by: int) -> Editable:
    """``flow`` with step ``step_id`` moved ``by`` places (-1: up one, 1: down one).

    EditRefused when there is no such step or it would move past the first or last place.
    """
    i = flow.index(step_id)
    if i is None:
        raise EditRefused([Reason("", "no_such_step", {"step": step_id})])
    if i + by < 0:
        raise EditRefused([Reason(f"nodes.{step_id}", "already_first", {"step": step_id})])
    if i + by >= len(flow.steps):
        raise EditRefused([Reason(f"nodes.{step_id}", "already_last", {"step": step_id})])
    while by < 0:
        flow, i, by = _swap(flow, i - 1), i - 1, by + 1
    while by > 0:
        flow, i, by = _swap(flow, i), i + 1, by - 1
    return flow


def _swap(flow: Editable, i: int) -> Editable:
    """Steps ``i`` and ``i + 1`` change places; the sequence through them follows."""
    steps = list(flow.steps)
    a, b = steps[i], steps[i + 1]
    c = steps[i + 2].id if i + 2 < len(steps) else None
    if i > 0:
        steps[i - 1] = _repoint(steps[i - 1], a.id, b.id)
    steps[i], steps[i + 1] = _repoint(b, c, a.id) if c else b, _repoint(a, b.id, c)
    start = b.id if i == 0 and flow.start == a.id else flow.start
    return dataclasses.replace(flow, steps=tuple(steps), start=start)


# --------------------------------------------------------------------------- prompts
class PromptText(NamedTuple):
    """One prompt to preview: its key (the path ``ivr flow prompts`` uses), language, text."""

    key: str
    language: str
    text: str


def prompts_of(flow: Editable) -> list[PromptText]:
    """Every prompt of ``flow`` in every language it has text for, keyed and ordered as
    :func:`ivr.flows.walk.iter_prompts` does for the saved flow (a default no-input or
    invalid-key prompt is listed once, under the first step that uses it).

    Each is spoken with ``PromptStore.synthetic(text, language, where=key)``: the same
    cache file as the worker's, since a synthetic prompt is keyed by its text and voice.
    A language that plays an upload is listed too (its text is the transcript); which
    upload it plays: :func:`ivr.flows.editor.upload_of` or
    :func:`ivr.flows.editor.prompt_audio_of`.
    """
    return [
        PromptText(key, language, text)
        for key, texts, _uploads in prompt_slots(flow)
        for language in flow.languages
        if (text := (texts or {}).get(language))
    ]
