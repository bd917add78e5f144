"""The form-based flow editor: an ordered list of steps, the flow's languages side by side.

The page is the editor model's flat form (:func:`ivr.flows.editor.to_form`); what is
submitted is read back with ``from_form`` (every problem beside its field and in the
summary). Adding, removing and moving a step are submit buttons (``op`` =
``add``, ``remove:<row>``, ``up:<row>``, ``down:<row>``), so they work without JavaScript;
they change the form, not the stored flow, until Save. A flow the form cannot show
faithfully opens read-only with the reasons and its YAML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import redirect, render_template, request
from flask_babel import gettext as _

from ivr.accounts.audit import Forbidden, NotFound
from ivr.flows import editor
from ivr.flows.library import FlowChanged
from ivr.flows.loader import FlowError
from ivr.flows.model import LANGUAGES
from ivr.store.org_models import Role
from ivr.web.access import actor, requires
from ivr.web.flow_messages import language_names, templates
from ivr.web.flows import bp, get_flow, library, problem_rows, refuse, url_for

EXTRA_OPTIONS = 2  # blank option rows offered under a step's options
_SKIP = frozenset({"csrf_token", "op", "revision", "add_kind"})


# --------------------------------------------------------------------------- the layout
@dataclass
class Rows:
    """The rows under a prefix (``steps-3-options``): the filled ones, then blank ones."""

    prefixes: list[str] = field(default_factory=list)
    blank: list[str] = field(default_factory=list)

    @property
    def all(self) -> list[str]:
        return self.prefixes + self.blank


@dataclass
class Question:
    prefix: str
    options: Rows


@dataclass
class StepBox:
    prefix: str  # steps-N
    number: int  # 1-based place in the list
    id: str
    kind: str
    options: Rows
    questions: list[Question]
    hours: Rows


@dataclass
class Layout:
    languages: list[str]
    steps: list[StepBox]

    @property
    def step_ids(self) -> list[str]:
        return [s.id for s in self.steps if s.id]


def _numbers(form: Mapping[str, str], prefix: str) -> tuple[list[int], int]:
    """The filled row numbers under ``prefix`` and the next free number."""
    pattern = re.compile(re.escape(prefix) + r"-([0-9]{1,6})-")
    seen: set[int] = set()
    filled: set[int] = set()
    for name, value in form.items():
        match = pattern.match(name)
        if match:
            seen.add(int(match.group(1)))
            if value.strip():
                filled.add(int(match.group(1)))
    return sorted(filled), (max(seen) + 1 if seen else 0)


def _rows(form: Mapping[str, str], prefix: str, extra: int) -> Rows:
    filled, free = _numbers(form, prefix)
    return Rows([f"{prefix}-{n}" for n in filled], [f"{prefix}-{free + k}" for k in range(extra)])


def layout(form: Mapping[str, str]) -> Layout:
    """What the page shows for ``form`` (from ``to_form`` or as submitted)."""
    languages = [x for x in re.split(r"[\s,]+", form.get("languages", "")) if x in LANGUAGES]
    steps: list[StepBox] = []
    filled, _free = _numbers(form, "steps")
    for n in filled:
        p = f"steps-{n}"
        kind = form.get(f"{p}-kind", "")
        questions: list[Question] = []
        if kind == "callback":
            q_rows = _rows(form, f"{p}-questions", 1)
            questions = [
                Question(qp, _rows(form, f"{qp}-options", EXTRA_OPTIONS)) for qp in q_rows.all
            ]
        steps.append(
            StepBox(
                prefix=p,
                number=len(steps) + 1,
                id=form.get(f"{p}-id", ""),
                kind=kind,
                options=_rows(form, f"{p}-options", EXTRA_OPTIONS)
                if kind in ("language", "choice")
                else Rows(),
                questions=questions,
                hours=_rows(form, f"{p}-hours", 1) if kind == "transfer" else Rows(),
            )
        )
    return Layout(languages, steps)


def submitted() -> dict[str, str]:
    """The editor's fields as submitted (the language checkboxes joined: ``fi,sv``)."""
    form = {k: v for k, v in request.form.items() if k not in _SKIP}
    form["languages"] = ",".join(x for x in request.form.getlist("languages") if x)
    return form


def read(form: Mapping[str, str]) -> tuple[editor.Editable | None, list[editor.FieldError]]:
    """The flow the form describes and its problems. Where the editor offers a lenient
    reader (``read_form``: the flow even with problems), steps can be added, removed and
    moved in a form that still has problems; otherwise the problems must be put right
    first."""
    lenient = getattr(editor, "read_form", None)
    if lenient is not None:
        flow, errors = lenient(form)
        return flow, list(errors)
    try:
        return editor.from_form(form), []
    except editor.FormErrors as exc:
        return None, list(exc.errors)


# --------------------------------------------------------------------------- labels
def part_labels() -> dict[str, str]:
    """The label of each field of a step (and of the flow), by the last part of its name."""
    labels = {
        "id": _("Identifier"),
        "name": _("Name"),
        "version": _("Version"),
        "languages": _("Languages"),
        "default_language": _("Language when the caller's is not known"),
        "start": _("First step"),
        "flow_fallback": _("Where to go when a step has no fallback of its own"),
        "anonymous": _("Anonymous: store no caller numbers"),
        "keys-repeat": _("Key that repeats the prompt"),
        "keys-switch_language": _("Key that switches the language"),
        "keys-opt_out": _("Key that puts the number on the do-not-call list"),
        "opt_out_prompt": _("What the caller hears after the opt-out key"),
        "defaults-timeout": _("Seconds to wait for a key"),
        "defaults-inter_digit_timeout": _("Seconds to wait between digits"),
        "defaults-retries": _("Retries after no key or a wrong key"),
        "defaults-no_input": _("When no key is pressed"),
        "defaults-invalid": _("When a wrong key is pressed"),
        "steps": _("Steps"),
        "step_id": _("Step identifier"),
        "kind": _("Kind"),
        "text": _("What the caller hears"),
        "next": _("Next step"),
        "fallback": _("After the last retry, go to"),
        "timeout": _("Seconds to wait for a key"),
        "retries": _("Retries"),
        "no_input": _("When no key is pressed"),
        "invalid": _("When a wrong key is pressed"),
        "options": _("Options"),
        "key": _("Key"),
        "value": _("Stored as"),
        "label": _("Label"),
        "option_next": _("Then go to"),
        "min": _("Lowest"),
        "max": _("Highest"),
        "max_digits": _("Most digits"),
        "inter_digit_timeout": _("Seconds to wait between digits"),
        "max_seconds": _("Longest answer in seconds"),
        "silence_seconds": _("Seconds of silence that end the answer"),
        "beep": _("A beep before the answer"),
        "consent_version": _("Version of the consent wording"),
        "declined_next": _("If permission is refused, go to"),
        "questions": _("Questions"),
        "field": _("Question"),
        "endpoint": _("Extension to ring (PJSIP/...)"),
        "timezone": _("Time zone"),
        "ring_seconds": _("Seconds to ring"),
        "hours": _("Opening hours"),
        "days": _("Days (mon,tue,...)"),
        "from": _("From"),
        "to": _("To"),
    }
    return {k: str(v) for k, v in labels.items()}


def field_label(name: str, view: Layout, labels: Mapping[str, str]) -> str:
    """A person's words for the form field ``name`` (for the error summary)."""
    if not name:
        return str(_("The flow"))
    upload = re.fullmatch(r"(.+)-upload-([a-z]{2})", name)
    if upload:
        text = field_label(f"{upload.group(1)}-{upload.group(2)}", view, labels)
        if upload.group(1).startswith("steps-") and not upload.group(1).endswith(
            ("no_input", "invalid")
        ):
            text = field_label(f"{upload.group(1)}-text-{upload.group(2)}", view, labels)
        return f"{text}: {_('uploaded recording')}"
    names = language_names()
    head, _sep, last = name.rpartition("-")
    language = f" ({names[last]})" if head and last in LANGUAGES else ""
    base = head if language else name
    if base == "fallback":
        return labels["flow_fallback"] + language
    if base in labels and not base.startswith("steps-"):
        return labels[base] + language
    match = re.fullmatch(r"(steps-[0-9]+)(?:-(.*))?", base)
    if not match:
        return name
    step = next((s for s in view.steps if s.prefix == match.group(1)), None)
    where = (
        str(_("Step %(number)d (%(id)s)", number=step.number, id=step.id))
        if step is not None
        else str(_("A step"))
    )
    rest = match.group(2) or ""
    parts: list[str] = []
    for kind, number in re.findall(r"(options|questions|hours)-([0-9]+)", rest):
        if kind == "options":
            parts.append(str(_("option %(number)d", number=int(number) + 1)))
        elif kind == "questions":
            parts.append(str(_("question %(number)d", number=int(number) + 1)))
        else:
            parts.append(str(_("opening hours %(number)d", number=int(number) + 1)))
    tail = re.sub(r"(options|questions|hours)-[0-9]+-?", "", rest)
    key = {"id": "step_id"}.get(tail, tail)
    if key == "next" and "options" in rest:
        key = "option_next"
    if key:
        parts.append(labels.get(key, key))
    return ", ".join([where, *parts]) + language


# --------------------------------------------------------------------------- messages
def error_messages(errors: list[editor.FieldError]) -> dict[str, list[str]]:
    words, names = templates(), language_names()
    found: dict[str, list[str]] = {}
    for e in errors:
        found.setdefault(e.field, []).append(editor.render(e.code, e.params, words, names))
    return found


def reason_messages(reasons: tuple[editor.Reason, ...] | list[editor.Reason]) -> list[str]:
    words, names = templates(), language_names()
    return [
        (f"{r.path}: " if r.path else "") + editor.render(r.code, r.params, words, names)
        for r in reasons
    ]


# --------------------------------------------------------------------------- the page
@bp.route("/<flow_id>/edit", methods=["GET", "POST"])
@requires(Role.MANAGER)
def edit(org_id: str, flow_id: str) -> Any:
    record = get_flow(flow_id)
    if request.method == "GET":
        try:
            opened = editor.open_flow(record.yaml)
        except FlowError as exc:
            return render_template(
                "flows/read_only.html", record=record, reasons=[], problems=problem_rows(exc)
            )
        if isinstance(opened, editor.ReadOnly):
            return render_template(
                "flows/read_only.html",
                record=record,
                reasons=reason_messages(opened.reasons),
                problems=[],
            )
        notice = _("Saved.") if request.args.get("done") == "saved" else ""
        return _page(record, editor.to_form(opened), {}, notice=notice)

    form = submitted()
    revision = request.form.get("revision", "")
    op = request.form.get("op", "save")
    flow, errors = read(form)
    if op == "save":
        if flow is None or errors:
            return _page(record, form, error_messages(errors), revision=revision, status=400)
        return _save(org_id, record, flow, form, revision)
    if flow is None:
        message = _("Put these problems right first; then add, remove or move steps.")
        return _page(
            record, form, error_messages(errors), revision=revision, status=400, notice=message
        )
    try:
        changed, focus = _operate(flow, op, form)
    except editor.EditRefused as exc:
        refused = {
            editor.field_for_path(flow, r.path) or "steps": [m]
            for r, m in zip(exc.reasons, reason_messages(exc.reasons), strict=True)
        }
        return _page(record, form, refused, revision=revision, status=400)
    notice = _("Not saved yet: press Save to keep the changes.")
    return _page(
        record,
        editor.to_form(changed),
        {},
        revision=revision,
        notice=notice,
        focus=focus,
        unsaved=True,
    )


def _operate(
    flow: editor.Editable, op: str, form: Mapping[str, str]
) -> tuple[editor.Editable, str]:
    """Apply ``op`` to ``flow``; returns the new flow and the step to bring into view."""
    verb, _sep, row = op.partition(":")
    if verb == "add":
        kind = request.form.get("add_kind", "")
        changed = editor.add_step(flow, kind)
        added = next(s for s in changed.steps if flow.index(s.id) is None)
        return changed, f"steps-{changed.index(added.id)}"
    step_id = form.get(f"{row}-id", "") if re.fullmatch(r"steps-[0-9]{1,6}", row) else ""
    if verb == "remove":
        return editor.remove_step(flow, step_id), ""
    if verb in ("up", "down"):
        changed = editor.move_step(flow, step_id, -1 if verb == "up" else 1)
        return changed, f"steps-{changed.index(step_id)}"
    raise editor.EditRefused([editor.Reason("", "no_such_step", {"step": step_id or op})])


def _save(
    org_id: str,
    record: Any,
    flow: editor.Editable,
    form: dict[str, str],
    revision: str,
) -> Any:
    try:
        library().save(actor(), record.id, editor.save_flow(flow), revision=revision or None)
    except FlowChanged:
        message = _(
            "Someone else saved this flow after you opened it, so nothing was saved. Open the "
            "flow again to see their changes."
        )
        return _page(record, form, {"": [message]}, revision=revision, status=409)
    except FlowError as exc:
        found: dict[str, list[str]] = {}
        for problem in exc.problems:
            where = editor.field_for_path(flow, problem.path) if problem.path else ""
            found.setdefault(where, []).append(problem.message)
        return _page(record, form, found, revision=revision, status=400)
    except (NotFound, Forbidden) as exc:
        refuse(exc)
    return redirect(url_for("flows.edit", org_id=org_id, flow_id=record.id, done="saved"))


def _page(
    record: Any,
    form: Mapping[str, str],
    errors: dict[str, list[str]],
    *,
    revision: str = "",
    status: int = 200,
    notice: str = "",
    focus: str = "",
    unsaved: bool = False,
) -> Any:
    view = layout(form)
    labels = part_labels()
    summary = [
        (name, field_label(name, view, labels), message)
        for name, messages in errors.items()
        for message in messages
    ]
    return render_template(
        "flows/edit.html",
        record=record,
        form=form,
        view=view,
        errors=errors,
        summary=summary,
        revision=revision or record.revision,
        notice=notice,
        focus=focus,
        unsaved=unsaved or request.method == "POST",
        labels=labels,
        errors_match=lambda pattern: any(re.match(pattern, name) for name in errors),
        kinds=editor.STEP_KINDS,
        question_fields=editor.QUESTION_FIELDS,
        all_languages=LANGUAGES,
    ), status
