"""Open a flow's YAML for the form editor, and save an edited flow back as YAML.

:func:`open_flow` validates with the project's loader first (an invalid flow raises its
:class:`~ivr.flows.loader.FlowError`), then reads which keys the file sets (a step that sets
``retries`` keeps it; one that does not follows ``defaults``). Anything the editor does not
model makes the flow read-only with a reason naming its YAML path (a prompt's
``recording:``, say; its ``upload:`` is modelled); and as a last guard, a flow opens
editable only if saving it gives the very same flow to the loader.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.nodes import Node as YamlNode

from ivr.flows.editor_model import (
    FALLBACK_KINDS,
    INPUT_KINDS,
    NEXT_KINDS,
    OPTION_KINDS,
    Defaults,
    Editable,
    Hours,
    Option,
    Question,
    ReadOnly,
    Reason,
    Step,
    Texts,
    Uploads,
)
from ivr.flows.loader import FlowError, parse_flow
from ivr.flows.model import LANGUAGES, Flow, Node, Prompt
from ivr.flows.model import Option as FlowOption

SOURCE = "<editor>"
_COMPOSER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
HEADER = "# Saved by the flow editor (comments are not kept).\n"

_INPUT = ("timeout", "retries", "no_input", "invalid", "fallback")
# What the editor models, in the format's names (the loader may know more one day).
_TOP_FIELDS = (
    "id",
    "name",
    "version",
    "languages",
    "default_language",
    "start",
    "anonymous",
    "fallback",
    "keys",
    "opt_out_prompt",
    "defaults",
    "nodes",
)
_KEY_FIELDS = ("repeat", "switch_language", "opt_out")
_DEFAULT_FIELDS = ("timeout", "inter_digit_timeout", "retries", "no_input", "invalid")
NODE_FIELDS: Mapping[str, tuple[str, ...]] = {
    "say": ("prompt", "next"),
    "language": ("prompt", "options", "next", *_INPUT),
    "choice": ("prompt", "options", "next", *_INPUT),
    "scale": ("prompt", "min", "max", "next", *_INPUT),
    "number": ("prompt", "min", "max", "max_digits", "inter_digit_timeout", "next", *_INPUT),
    "open": ("prompt", "max_seconds", "silence_seconds", "beep", "next"),
    "callback": ("prompt", "consent_version", "steps", "declined_next", "next", *_INPUT),
    "transfer": ("prompt", "endpoint", "hours", "timezone", "ring_seconds", "fallback"),
    "end": ("prompt",),
}
_OPTION_FIELDS = ("key", "value", "label", "next")
_QUESTION_FIELDS = ("field", "prompt", "options")
_HOURS_FIELDS = ("days", "from", "to")


# --------------------------------------------------------------------------- opening
def open_flow(yaml_text: str) -> Editable | ReadOnly:
    """The flow in ``yaml_text`` as an :class:`Editable`, or :class:`ReadOnly` with reasons.

    Raises :class:`~ivr.flows.loader.FlowError` (every problem, with paths and lines) when
    the project's loader refuses the flow.
    """
    flow = parse_flow(yaml_text, SOURCE)
    root = yaml.compose(yaml_text, Loader=_COMPOSER)  # safe: the loader checked it
    top = _mapping(_tree(root) if root is not None else None)
    reasons = not_editable(top)
    if reasons:
        return ReadOnly(flow, tuple(reasons))
    editable = _editable(flow, top)
    reasons = _differences(flow, editable)
    if reasons:
        return ReadOnly(flow, tuple(reasons))
    return editable


def _tree(node: YamlNode) -> object:
    """The YAML as dicts and lists keyed by the keys' source text; scalars stay nodes."""
    if isinstance(node, MappingNode):
        return {str(key.value): _tree(value) for key, value in node.value}
    if isinstance(node, SequenceNode):
        return [_tree(item) for item in node.value]
    return node


def _mapping(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _items(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _text(value: object) -> str:
    """A scalar as the loader reads text: its source text (``yes`` stays ``yes``)."""
    return str(value.value) if isinstance(value, ScalarNode) else ""


def _number(value: object) -> float:
    loaded: Any = yaml.safe_load(_text(value))  # a plain number: the loader checked it
    return float(loaded)


def not_editable(top: Mapping[str, object]) -> list[Reason]:
    """Every reason the editor cannot show this (already valid) flow's YAML faithfully."""
    reasons: list[Reason] = []
    _only(top, "", _TOP_FIELDS, reasons)
    _only(_mapping(top.get("keys")), "keys", _KEY_FIELDS, reasons)
    if "opt_out_prompt" in top:
        _prompt_reasons(top["opt_out_prompt"], "opt_out_prompt", reasons)
    defaults = _mapping(top.get("defaults"))
    _only(defaults, "defaults", _DEFAULT_FIELDS, reasons)
    for name in ("no_input", "invalid"):
        if name in defaults:
            _prompt_reasons(defaults[name], f"defaults.{name}", reasons)
    for node_id, raw in _mapping(top.get("nodes")).items():
        path = f"nodes.{node_id}"
        node = _mapping(raw)
        kind = _text(node.get("kind"))
        if kind not in NODE_FIELDS:
            reasons.append(Reason(f"{path}.kind", "unknown_kind", {"kind": kind}))
            continue
        _only(node, path, ("kind", *NODE_FIELDS[kind]), reasons)
        for name in ("prompt", "no_input", "invalid"):
            if name in node:
                _prompt_reasons(node[name], f"{path}.{name}", reasons)
        _options_reasons(node.get("options"), f"{path}.options", _OPTION_FIELDS, reasons)
        for i, item in enumerate(_items(node.get("steps"))):
            where = f"{path}.steps.{i}"
            question = _mapping(item)
            _only(question, where, _QUESTION_FIELDS, reasons)
            if "prompt" in question:
                _prompt_reasons(question["prompt"], f"{where}.prompt", reasons)
            options = question.get("options")
            _options_reasons(options, f"{where}.options", ("key", "value", "label"), reasons)
        for i, item in enumerate(_items(node.get("hours"))):
            _only(_mapping(item), f"{path}.hours.{i}", _HOURS_FIELDS, reasons)
    return reasons


def _only(m: Mapping[str, object], path: str, known: Iterable[str], out: list[Reason]) -> None:
    known = tuple(known)
    for key in m:
        if key not in known:
            out.append(Reason(f"{path}.{key}" if path else key, "unknown_key", {"key": key}))


def _options_reasons(value: object, path: str, known: tuple[str, ...], out: list[Reason]) -> None:
    for i, item in enumerate(_items(value)):
        option = _mapping(item)
        _only(option, f"{path}.{i}", known, out)
        _only(_mapping(option.get("label")), f"{path}.{i}.label", LANGUAGES, out)


def _prompt_reasons(value: object, path: str, out: list[Reason]) -> None:
    prompt = _mapping(value)
    for key, item in prompt.items():
        if key == "recording":
            for language, file in _mapping(item).items():
                params = {"language": language, "file": _text(file)}
                out.append(Reason(f"{path}.recording.{language}", "recording", params))
        elif key == "upload":
            _only(_mapping(item), f"{path}.upload", LANGUAGES, out)
        elif key not in LANGUAGES:
            out.append(Reason(f"{path}.{key}", "unknown_key", {"key": key}))


def _texts(prompt: Prompt | None) -> dict[str, str]:
    return dict(prompt.text) if prompt is not None else {}


def _uploads(prompt: Prompt | None) -> dict[str, str]:
    return dict(prompt.upload) if prompt is not None else {}


def _raw_texts(value: object) -> dict[str, str]:
    return {key: _text(item) for key, item in _mapping(value).items() if key in LANGUAGES}


def _raw_uploads(value: object) -> dict[str, str]:
    return _raw_texts(_mapping(value).get("upload"))


def _editable(flow: Flow, top: Mapping[str, object]) -> Editable:
    raw_defaults = _mapping(top.get("defaults"))
    built_in = Defaults()
    defaults = Defaults(
        timeout=_number(raw_defaults["timeout"]) if "timeout" in raw_defaults else 6.0,
        inter_digit_timeout=(
            _number(raw_defaults["inter_digit_timeout"])
            if "inter_digit_timeout" in raw_defaults
            else built_in.inter_digit_timeout
        ),
        retries=int(_number(raw_defaults["retries"])) if "retries" in raw_defaults else 2,
        no_input=_raw_texts(raw_defaults["no_input"]) if "no_input" in raw_defaults else None,
        invalid=_raw_texts(raw_defaults["invalid"]) if "invalid" in raw_defaults else None,
        no_input_upload=_raw_uploads(raw_defaults.get("no_input")),
        invalid_upload=_raw_uploads(raw_defaults.get("invalid")),
    )
    raw_nodes = _mapping(top.get("nodes"))
    steps = tuple(
        _step(node, _mapping(raw_nodes.get(node_id))) for node_id, node in flow.nodes.items()
    )
    return Editable(
        id=flow.id,
        name=flow.name,
        version=flow.version,
        languages=tuple(flow.languages),
        default_language=flow.default_language,
        start=flow.start,
        steps=steps,
        fallback=flow.fallback,
        anonymous=flow.anonymous,
        repeat_key=flow.keys.repeat,
        switch_language_key=flow.keys.switch_language,
        opt_out_key=flow.keys.opt_out,
        opt_out_prompt=_texts(flow.opt_out_prompt) if flow.opt_out_prompt else None,
        defaults=defaults,
        opt_out_upload=_uploads(flow.opt_out_prompt),
    )


def _options(options: Iterable[FlowOption]) -> tuple[Option, ...]:
    return tuple(
        Option(key=o.key, value=o.value, label=dict(o.label), next=o.next) for o in options
    )


def _step(node: Node, raw: Mapping[str, object]) -> Step:
    kind = node.kind
    fields: dict[str, Any] = {
        "id": node.id,
        "kind": kind,
        "text": _texts(node.prompt),
        "upload": _uploads(node.prompt),
    }
    if kind in NEXT_KINDS:
        fields["next"] = node.next
    if kind in FALLBACK_KINDS:
        fields["fallback"] = node.fallback
    if kind in INPUT_KINDS:
        fields["timeout"] = node.timeout if "timeout" in raw else None
        fields["retries"] = node.retries if "retries" in raw else None
        fields["no_input"] = _texts(node.no_input) if "no_input" in raw else None
        fields["invalid"] = _texts(node.invalid) if "invalid" in raw else None
        fields["no_input_upload"] = _uploads(node.no_input) if "no_input" in raw else {}
        fields["invalid_upload"] = _uploads(node.invalid) if "invalid" in raw else {}
    if kind in OPTION_KINDS:
        fields["options"] = _options(node.options)
    if kind in ("scale", "number"):
        fields["min_value"], fields["max_value"] = node.min_value, node.max_value
    if kind == "number":
        fields["max_digits"] = node.max_digits if "max_digits" in raw else None
        fields["inter_digit_timeout"] = (
            node.inter_digit_timeout if "inter_digit_timeout" in raw else None
        )
    if kind == "open":
        fields["max_seconds"] = node.max_seconds
        fields["silence_seconds"] = node.silence_seconds
        fields["beep"] = node.beep
    if kind == "callback":
        fields["consent_version"] = node.consent_version
        fields["declined_next"] = node.declined_next
        fields["questions"] = tuple(
            Question(
                field=s.field,
                text=_texts(s.prompt),
                options=_options(s.options),
                upload=_uploads(s.prompt),
            )
            for s in node.steps
        )
    if kind == "transfer":
        fields["endpoint"] = node.endpoint
        fields["timezone"] = node.timezone
        fields["ring_seconds"] = node.ring_seconds
        fields["hours"] = tuple(
            Hours(
                days=tuple(_text(day).lower() for day in _items(row.get("days"))),
                from_time=_text(row.get("from")),
                to_time=_text(row.get("to")),
            )
            for row in map(_mapping, _items(raw.get("hours")))
        )
    return Step(**fields)


def _differences(flow: Flow, editable: Editable) -> list[Reason]:
    """Where saving ``editable`` would not give ``flow`` back (empty: it is faithful)."""
    try:
        again = parse_flow(save_flow(editable), SOURCE)
    except FlowError:
        return [Reason("", "unfaithful")]
    reasons: list[Reason] = []
    for f in dataclasses.fields(Flow):
        if f.name not in ("nodes", "source") and getattr(flow, f.name) != getattr(again, f.name):
            reasons.append(Reason(f.name, "unfaithful"))
    for node_id, node in flow.nodes.items():
        if again.nodes.get(node_id) != node:
            reasons.append(Reason(f"nodes.{node_id}", "unfaithful"))
    if not reasons and list(again.nodes) != list(flow.nodes):
        reasons.append(Reason("nodes", "unfaithful"))
    return reasons


# --------------------------------------------------------------------------- saving
class _Inline(dict[str, object]):
    """A mapping written on one line: ``{key: '1', value: fi}``."""


class _InlineList(list[str]):
    """A list written on one line: ``[mon, tue]``."""


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # the loader refuses anchors and aliases

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # indent lists under their key


def _represent_inline(dumper: yaml.SafeDumper, data: _Inline) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)


def _represent_inline_list(dumper: yaml.SafeDumper, data: _InlineList) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


_Dumper.add_representer(_Inline, _represent_inline)
_Dumper.add_representer(_InlineList, _represent_inline_list)


def save_flow(flow: Editable) -> str:
    """``flow`` as YAML in the project's flow format (stable: the same flow, the same text).

    It does not check the flow: see :func:`ivr.flows.editor.check_flow`.
    """
    doc: dict[str, object] = {
        "id": flow.id,
        "name": flow.name,
        "version": flow.version,
        "languages": _InlineList(flow.languages),
        "default_language": flow.default_language,
        "start": flow.start,
        "anonymous": flow.anonymous,
    }
    if flow.fallback is not None:
        doc["fallback"] = flow.fallback
    doc["keys"] = _Inline(
        repeat=flow.repeat_key,
        switch_language=flow.switch_language_key,
        opt_out=flow.opt_out_key,
    )
    if flow.opt_out_prompt is not None or flow.opt_out_upload:
        doc["opt_out_prompt"] = _prompt(flow.opt_out_prompt, flow.languages, flow.opt_out_upload)
    d = flow.defaults
    defaults: dict[str, object] = {
        "timeout": _seconds(d.timeout),
        "inter_digit_timeout": _seconds(d.inter_digit_timeout),
        "retries": d.retries,
    }
    if d.no_input is not None or d.no_input_upload:
        defaults["no_input"] = _prompt(d.no_input, flow.languages, d.no_input_upload)
    if d.invalid is not None or d.invalid_upload:
        defaults["invalid"] = _prompt(d.invalid, flow.languages, d.invalid_upload)
    doc["defaults"] = defaults
    doc["nodes"] = {step.id: _node(step, flow.languages) for step in flow.steps}
    body = yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=96,
    )
    return HEADER + body


def _seconds(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _ordered(texts: Texts, languages: Iterable[str]) -> dict[str, str]:
    """The texts, the flow's languages first (in its order)."""
    order = [lang for lang in languages if lang in texts]
    order += [lang for lang in texts if lang not in order]
    return {lang: texts[lang] for lang in order}


def _prompt(
    texts: Texts | None, languages: Iterable[str], upload: Uploads | None = None
) -> dict[str, object]:
    """A prompt: its texts, then ``upload: {fi: name}`` where a language has an upload."""
    languages = tuple(languages)
    out: dict[str, object] = dict(_ordered(texts or {}, languages))
    if upload:
        out["upload"] = _Inline(_ordered(upload, languages))
    return out


def _option(option: Option, languages: tuple[str, ...]) -> _Inline:
    out = _Inline(key=option.key, value=option.value)
    if option.label:
        out["label"] = _Inline(_ordered(option.label, languages))
    if option.next is not None:
        out["next"] = option.next
    return out


def _node(step: Step, languages: tuple[str, ...]) -> dict[str, object]:
    kind = step.kind
    out: dict[str, object] = {"kind": kind}
    if step.text or step.upload:
        out["prompt"] = _prompt(step.text, languages, step.upload)
    if kind in OPTION_KINDS:
        out["options"] = [_option(o, languages) for o in step.options]
    if kind in ("scale", "number"):
        out["min"] = step.min_value
        out["max"] = step.max_value
    if kind == "number":
        if step.max_digits is not None:
            out["max_digits"] = step.max_digits
        if step.inter_digit_timeout is not None:
            out["inter_digit_timeout"] = _seconds(step.inter_digit_timeout)
    if kind == "open":
        out["max_seconds"] = step.max_seconds
        out["silence_seconds"] = step.silence_seconds
        out["beep"] = step.beep
    if kind == "callback":
        out["consent_version"] = step.consent_version
        out["steps"] = [
            {
                "field": q.field,
                "prompt": _prompt(q.text, languages, q.upload),
                "options": [_option(o, languages) for o in q.options],
            }
            for q in step.questions
        ]
    if kind == "transfer":
        out["endpoint"] = step.endpoint
        if step.hours:
            out["hours"] = [
                _Inline(days=_InlineList(h.days), **{"from": h.from_time, "to": h.to_time})
                for h in step.hours
            ]
        out["timezone"] = step.timezone
        out["ring_seconds"] = step.ring_seconds
    if kind in INPUT_KINDS:
        if step.timeout is not None:
            out["timeout"] = _seconds(step.timeout)
        if step.retries is not None:
            out["retries"] = step.retries
        if step.no_input is not None or step.no_input_upload:
            out["no_input"] = _prompt(step.no_input, languages, step.no_input_upload)
        if step.invalid is not None or step.invalid_upload:
            out["invalid"] = _prompt(step.invalid, languages, step.invalid_upload)
    if kind in NEXT_KINDS and step.next is not None:
        out["next"] = step.next
    if kind == "callback" and step.declined_next is not None:
        out["declined_next"] = step.declined_next
    if kind in FALLBACK_KINDS and step.fallback is not None:
        out["fallback"] = step.fallback
    return out
