"""Small edits to a flow's YAML text that keep the rest of it as the author wrote it.

Used by the flow library (:mod:`ivr.flows.library`): find where a dotted path
(``nodes.q1.prompt``) is in the text (for line numbers), and point a prompt at an uploaded
recording (``upload: {fi: NAME}``) without losing the author's comments and layout. Each
edit is checked by re-reading the result; where the text edit cannot be made faithfully,
the document is written out again in full (comments are then lost, nothing else).

Only for flows the loader has accepted: they have no anchors, aliases, tags or merge keys.
"""

from __future__ import annotations

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.nodes import Node as YamlNode

from ivr.flows.loader import parse_flow
from ivr.flows.model import Flow, Node, Prompt


class EditFailed(Exception):
    """The YAML could not be changed as asked (the path is not a prompt mapping)."""


def compose(text: str) -> YamlNode | None:
    """The YAML node tree of an accepted flow (safe: the loader refused anything hostile)."""
    return yaml.compose(text, Loader=yaml.SafeLoader)


def locate(root: YamlNode | None, path: str) -> YamlNode | None:
    """The node at the dotted ``path`` (list items by 0-based index), or None."""
    node = root
    for part in path.split(".") if path else []:
        if isinstance(node, MappingNode):
            node = next(
                (v for k, v in node.value if isinstance(k, ScalarNode) and k.value == part), None
            )
        elif isinstance(node, SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
        else:
            return None
        if node is None:
            return None
    return node


def line_of(text: str, path: str) -> int | None:
    """The 1-based line where ``path`` (or the nearest part of it that exists) starts."""
    try:
        root = compose(text)
    except yaml.YAMLError:
        return None
    while True:
        node = locate(root, path)
        if node is not None:
            return int(node.start_mark.line) + 1
        if not path:
            return None
        path = path.rpartition(".")[0]


# --------------------------------------------------------------------------- prompts
def prompt_places(flow: Flow, text: str) -> list[tuple[str, Prompt]]:
    """Every prompt of ``flow`` where it is written in the YAML, in the order a caller meets
    them: each step's prompt, its callback questions, its no-input and wrong-key prompts
    (``defaults.no_input`` where the step has none of its own), then the opt-out prompt."""
    root = compose(text)
    places: list[tuple[str, Prompt]] = []
    seen: set[str] = set()

    def add(path: str, prompt: Prompt | None) -> None:
        if prompt is not None and path not in seen:
            seen.add(path)
            places.append((path, prompt))

    for node_id, node in flow.nodes.items():
        base = f"nodes.{node_id}"
        add(f"{base}.prompt", node.prompt)
        for i, step in enumerate(node.steps):
            add(f"{base}.steps.{i}.prompt", step.prompt)
        if node.kind in ("language", "choice", "scale", "number", "callback"):
            for name in ("no_input", "invalid"):
                own = locate(root, f"{base}.{name}") is not None
                add(f"{base}.{name}" if own else f"defaults.{name}", _prompt_of(node, name))
    add("opt_out_prompt", flow.opt_out_prompt)
    return places


def _prompt_of(node: Node, name: str) -> Prompt | None:
    value = getattr(node, name)
    return value if isinstance(value, Prompt) else None


def set_upload(text: str, path: str, language: str, name: str) -> str:
    """``text`` with the prompt at ``path`` playing the uploaded prompt ``name`` in
    ``language`` (its text stays, for the prompt list and reports). EditFailed if ``path``
    is not a prompt."""
    root = compose(text)
    node = locate(root, path)
    if not isinstance(node, MappingNode):
        raise EditFailed(f"{path} is not a prompt")
    expected = _by_full_dump(text, path, language, name)
    edited = _text_edit(text, node, language, name)
    if edited is not None and _same(edited, expected):
        return edited
    return expected


def _same(a: str, b: str) -> bool:
    try:
        first, second = parse_flow(a), parse_flow(b)
    except Exception:  # a text edit gone wrong is not an error: the full dump is used
        return False
    return first == second


def _by_full_dump(text: str, path: str, language: str, name: str) -> str:
    """The edit made on the node tree and the whole document written out again: every
    value keeps its source text (``yes`` stays ``yes``), the comments are lost."""
    root = compose(text)
    prompt = locate(root, path)
    if root is None or not isinstance(prompt, MappingNode):
        raise EditFailed(f"{path} is not a prompt")
    string = "tag:yaml.org,2002:str"
    uploads = _value(prompt, "upload")
    if not isinstance(uploads, MappingNode):
        uploads = MappingNode("tag:yaml.org,2002:map", [], flow_style=True)
        prompt.value = [(k, v) for k, v in prompt.value if _key(k) != "upload"]
        prompt.value.append((ScalarNode(string, "upload"), uploads))
    uploads.value = [(k, v) for k, v in uploads.value if _key(k) != language]
    uploads.value.append((ScalarNode(string, language), ScalarNode(string, name)))
    recordings = _value(prompt, "recording")
    if isinstance(recordings, MappingNode):
        recordings.value = [(k, v) for k, v in recordings.value if _key(k) != language]
        if not recordings.value:
            prompt.value = [(k, v) for k, v in prompt.value if _key(k) != "recording"]
    return str(yaml.serialize(root, Dumper=yaml.SafeDumper, allow_unicode=True, width=96))


def _key(node: YamlNode) -> str | None:
    return str(node.value) if isinstance(node, ScalarNode) else None


def _value(mapping: MappingNode, key: str) -> YamlNode | None:
    return next((v for k, v in mapping.value if _key(k) == key), None)


def _text_edit(text: str, prompt: MappingNode, language: str, name: str) -> str | None:
    """The edit made in place, or None where the layout is one this does not handle."""
    upload = next(
        (v for k, v in prompt.value if isinstance(k, ScalarNode) and k.value == "upload"), None
    )
    if upload is None:
        return _add_entry(text, prompt, "upload", f"{{{language}: {name}}}")
    if not isinstance(upload, MappingNode):
        return None
    existing = next(
        (v for k, v in upload.value if isinstance(k, ScalarNode) and k.value == language), None
    )
    if isinstance(existing, ScalarNode):
        start, end = existing.start_mark.index, existing.end_mark.index
        return text[:start] + name + text[end:]
    if existing is not None:
        return None
    return _add_entry(text, upload, language, name)


def _add_entry(text: str, mapping: MappingNode, key: str, value: str) -> str | None:
    if not mapping.value:
        return None
    if mapping.flow_style:
        close = mapping.end_mark.index - 1  # the closing brace
        if close < 0 or text[close] != "}":
            return None
        return f"{text[:close].rstrip()}, {key}: {value}{text[close:]}"
    first_key = mapping.value[0][0]
    indent = " " * int(first_key.start_mark.column)
    last = _last_leaf(mapping.value[-1][1])
    if last is None:
        return None
    if isinstance(last, ScalarNode) and last.style in ("|", ">"):
        at = last.end_mark.index
        if at > 0 and text[at - 1] != "\n":
            return None
        return f"{text[:at]}{indent}{key}: {value}\n{text[at:]}"
    end = text.find("\n", last.end_mark.index)
    if end < 0:
        return f"{text}\n{indent}{key}: {value}\n"
    return f"{text[:end]}\n{indent}{key}: {value}{text[end:]}"


def _last_leaf(node: YamlNode) -> YamlNode | None:
    """The last scalar of ``node``, or a collection written on one line (``{...}``, ``[...]``)."""
    while True:
        if isinstance(node, ScalarNode):
            return node
        if isinstance(node, MappingNode | SequenceNode) and node.flow_style:
            return node
        if isinstance(node, MappingNode) and node.value:
            node = node.value[-1][1]
        elif isinstance(node, SequenceNode) and node.value:
            node = node.value[-1]
        else:
            return None
