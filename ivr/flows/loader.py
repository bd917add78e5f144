"""Read a call flow from YAML, check it completely, and build the model.

Every problem is reported at once, each with its dotted path (``nodes.q3.options.2.next``,
0-based list indexes) and the YAML line it came from. Hostile input is refused early and
cheaply: size before parsing, UTF-8, depth, value counts, and no anchors, aliases, tags or
merge keys at all (a flow never needs them, and they are how "billion laughs" files work).

The only I/O is :func:`load_flow` reading the file; :func:`parse_flow` is pure.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.nodes import Node as YamlNode

from ivr.flows.model import (
    LANGUAGES,
    NODE_KINDS,
    UPLOAD_NAME,
    CallbackStep,
    Flow,
    GlobalKeys,
    Node,
    NodeKind,
    Option,
    Prompt,
)

MAX_FILE_BYTES = 1024 * 1024  # 1 MB
MAX_DEPTH = 20  # nested mappings/lists
MAX_NODES = 500  # flow nodes
MAX_VALUES = 40_000  # YAML values in all (keeps the worst case well under a second)
MAX_PROBLEMS = 200  # then stop collecting: a file this broken needs rewriting, not a list

INPUT_KINDS = frozenset({"language", "choice", "scale", "number", "callback"})
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CALLBACK_FIELDS = ("consent", "channel", "time_window", "interpreter")
OPTION_KEYS = "0123456789"
GLOBAL_KEY_CHOICES = "0123456789*"

_FLOW_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}\Z")
_NODE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")
_ENDPOINT = re.compile(r"PJSIP/[A-Za-z0-9_.+-]+(@[A-Za-z0-9_.-]+)?\Z")
_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]\Z")

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
_TOP_REQUIRED = ("id", "name", "version", "languages", "start", "nodes")
_INPUT_FIELDS = ("timeout", "retries", "no_input", "invalid", "fallback")
_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "say": ("prompt", "next"),
    "language": ("prompt", "options", "next", *_INPUT_FIELDS),
    "choice": ("prompt", "options", "next", *_INPUT_FIELDS),
    "scale": ("prompt", "min", "max", "next", *_INPUT_FIELDS),
    "number": ("prompt", "min", "max", "max_digits", "inter_digit_timeout", "next", *_INPUT_FIELDS),
    "open": ("prompt", "max_seconds", "silence_seconds", "beep", "next"),
    "callback": ("prompt", "consent_version", "steps", "declined_next", "next", *_INPUT_FIELDS),
    "transfer": ("prompt", "endpoint", "hours", "timezone", "ring_seconds", "fallback"),
    "end": ("prompt",),
}
_KIND_REQUIRED: dict[str, tuple[str, ...]] = {
    "say": ("prompt",),
    "language": ("prompt", "options"),
    "choice": ("prompt", "options"),
    "scale": ("prompt", "min", "max"),
    "number": ("prompt", "min", "max"),
    "open": ("prompt",),
    "callback": ("consent_version", "steps"),
    "transfer": ("endpoint",),
    "end": (),
}


# --------------------------------------------------------------------------- errors
@dataclass(frozen=True)
class Problem:
    """One thing wrong with a flow: where (dotted path, YAML line) and what."""

    path: str
    message: str
    line: int | None = None

    def format(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line is not None else source
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class FlowError(Exception):
    """A flow file that cannot be used; ``problems`` lists everything wrong with it."""

    def __init__(self, problems: list[Problem], source: str = "<string>") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(p.format(self.source) for p in self.problems)


# --------------------------------------------------------------------------- reading
def load_flow(path: str | Path) -> Flow:
    """Read, check and build the flow in ``path``; raises :class:`FlowError`."""
    source = str(path)
    file = Path(path)
    try:
        if not file.is_file():
            what = "is not a file" if file.exists() else "no such file"
            raise FlowError([Problem("", what)], source)
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            raise FlowError([Problem("", _too_big(size))], source)
        with file.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        message = f"cannot read the file: {exc.strerror or exc}"
        raise FlowError([Problem("", message)], source) from None
    if len(data) > MAX_FILE_BYTES:  # it grew while we looked
        raise FlowError([Problem("", _too_big(len(data)))], source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start : exc.start + 1].hex()
        raise FlowError(
            [Problem("", f"not UTF-8 text (byte 0x{byte}); save the file as UTF-8", line)],
            source,
        ) from None
    return parse_flow(text, source)


def validate_file(path: str | Path) -> list[Problem]:
    """Everything wrong with the flow in ``path`` (empty: it is valid)."""
    try:
        load_flow(path)
    except FlowError as exc:
        return exc.problems
    return []


def parse_flow(text: str, source: str = "<string>") -> Flow:
    """Check and build a flow from YAML text; raises :class:`FlowError`."""
    size = len(text.encode("utf-8", "replace"))
    if size > MAX_FILE_BYTES:
        raise FlowError([Problem("", _too_big(size))], source)
    if not text.strip():
        raise FlowError([Problem("", "the file is empty; a flow is a YAML mapping")], source)
    root = _compose(text, source)
    builder = _Builder(source)
    value = builder.plain(root, "")
    flow = builder.build(value)
    if builder.problems or flow is None:
        problems = sorted(builder.problems, key=lambda p: (p.line is None, p.line or 0, p.path))
        if builder.truncated:
            problems.append(
                Problem("", f"stopped after {MAX_PROBLEMS} problems; fix these and check again")
            )
        raise FlowError(problems, source)
    return flow


def _too_big(size: int) -> str:
    return f"the file is {size / MAX_FILE_BYTES:.1f} MB; a flow file may be at most 1 MB"


# --------------------------------------------------------------------------- YAML
class _Refused(Exception):
    def __init__(self, message: str, mark: yaml.Mark | None, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = mark.line + 1 if mark is not None else None


class _Composer:
    """Builds the YAML node tree from parser events, refusing what a flow never needs."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.values = 0

    def document(self) -> YamlNode | None:
        events = self.loader
        events.get_event()  # stream start
        if events.check_event(StreamEndEvent):
            return None
        events.get_event()  # document start
        node = self.node(1, nodes_mapping=False)
        events.get_event()  # document end
        if not events.check_event(StreamEndEvent):
            mark = events.peek_event().start_mark
            raise _Refused("more than one YAML document ('---'); a flow is one document", mark)
        return node

    def node(self, depth: int, *, nodes_mapping: bool) -> YamlNode:
        events = self.loader
        event = events.peek_event()
        mark: Any = event.start_mark
        if isinstance(event, AliasEvent):
            raise _Refused(
                f"YAML aliases (*{event.anchor}) are not allowed; write the value out "
                '(a "*" key must be quoted)',
                mark,
            )
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise _Refused(f"YAML anchors (&{anchor}) are not allowed; write each value out", mark)
        tag = getattr(event, "tag", None)
        if tag is not None:
            shown = tag.replace("tag:yaml.org,2002:", "!!")
            raise _Refused(f"YAML tags ({shown}) are not allowed in a flow", mark)
        self.values += 1
        if self.values > MAX_VALUES:
            raise _Refused(f"too many values (more than {MAX_VALUES}) for a flow", mark)
        if isinstance(event, ScalarEvent):
            events.get_event()
            resolved = events.resolve(ScalarNode, event.value, event.implicit)
            end_mark: Any = event.end_mark
            return ScalarNode(resolved, event.value, mark, end_mark, style=event.style)
        if depth > MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels", mark)
        if isinstance(event, SequenceStartEvent):
            events.get_event()
            items: list[YamlNode] = []
            while not events.check_event(SequenceEndEvent):
                items.append(self.node(depth + 1, nodes_mapping=False))
            end = events.get_event()
            return SequenceNode("tag:yaml.org,2002:seq", items, mark, end.end_mark)
        if isinstance(event, MappingStartEvent):
            events.get_event()
            pairs: list[tuple[YamlNode, YamlNode]] = []
            while not events.check_event(MappingEndEvent):
                key = self.node(depth + 1, nodes_mapping=False)
                if isinstance(key, ScalarNode) and key.tag == "tag:yaml.org,2002:merge":
                    raise _Refused("merge keys (<<) are not allowed in a flow", key.start_mark)
                is_nodes = depth == 1 and isinstance(key, ScalarNode) and key.value == "nodes"
                value = self.node(depth + 1, nodes_mapping=is_nodes)
                pairs.append((key, value))
                if nodes_mapping and len(pairs) > MAX_NODES:
                    raise _Refused(
                        f"more than {MAX_NODES} nodes; split the flow", key.start_mark, "nodes"
                    )
            end = events.get_event()
            return MappingNode("tag:yaml.org,2002:map", pairs, mark, end.end_mark)
        raise _Refused(f"unexpected YAML event {type(event).__name__}", mark)  # pragma: no cover


class _SafeFlowLoader(yaml.SafeLoader):
    """SafeLoader that composes with :class:`_Composer` (no aliases, anchors or tags)."""

    def get_single_node(self) -> YamlNode | None:
        return _Composer(self).document()


if getattr(yaml, "__with_libyaml__", False):

    class _CSafeFlowLoader(yaml.CSafeLoader):
        """The same on libyaml's faster parser."""

        def get_single_node(self) -> YamlNode | None:
            return _Composer(self).document()

    _LOADER: Any = _CSafeFlowLoader
else:  # pragma: no cover - PyYAML built without libyaml
    _LOADER = _SafeFlowLoader


def _compose(text: str, source: str) -> _Loaded:
    try:
        loader = _LOADER(text)  # the pure-Python reader checks characters already here
        root = loader.get_single_node()
    except _Refused as exc:
        raise FlowError([Problem(exc.path, exc.message, exc.line)], source) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "syntax error"
        if exc.context and exc.problem:
            what = f"{exc.context}: {exc.problem}"
        if "alias" in what or "anchor" in what:
            what += ' (a "*" or "&" value must be quoted: "*")'
        line = mark.line + 1 if mark is not None else None
        raise FlowError([Problem("", f"not valid YAML: {what}", line)], source) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else None
        message = f"not valid YAML: {exc.reason} ({_describe_character(exc.character)})"
        raise FlowError([Problem("", message, line)], source) from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise FlowError([Problem("", f"not valid YAML: {first}")], source) from None
    except RecursionError:  # pragma: no cover - the depth limit comes first
        raise FlowError([Problem("", f"nested deeper than {MAX_DEPTH} levels")], source) from None
    if root is None or (isinstance(root, ScalarNode) and root.tag.endswith(":null")):
        loader.dispose()
        raise FlowError([Problem("", "the file is empty; a flow is a YAML mapping")], source)
    if not isinstance(root, MappingNode):
        kind = "a list" if isinstance(root, SequenceNode) else "a single value"
        loader.dispose()
        raise FlowError(
            [Problem("", f"a flow is a YAML mapping (id:, nodes:, ...), not {kind}", 1)], source
        )
    return _Loaded(loader, root)


@dataclass
class _Loaded:
    loader: Any  # to construct scalars (ints, bools) the YAML way
    root: MappingNode


# --------------------------------------------------------------------------- checking
def _describe_character(character: object) -> str:
    if isinstance(character, str) and len(character) == 1:
        return f"character U+{ord(character):04X}"
    if isinstance(character, int):
        return f"character U+{character:04X}"
    return "a character YAML does not allow"


def _join(path: str, key: str | int) -> str:
    return f"{path}.{key}" if path else str(key)


def _describe(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"text {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__} ({value})"


def _names(items: Iterable[str]) -> str:
    return ", ".join(items)


class _Builder:
    """Turns the composed YAML into the model, collecting problems as it goes."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self.lines: dict[str, int] = {}
        self.raw: dict[str, str] = {}  # source text of plain scalars YAML read as non-text
        self.languages: tuple[str, ...] = ()
        self.keys = GlobalKeys()
        self.prompts: list[tuple[str, Prompt]] = []
        self.refs: list[tuple[str, str]] = []  # (path, node id referred to)
        self.loader: Any = None
        self.node_ids: set[str] = set()
        self.truncated = False

    @property
    def full(self) -> bool:
        return len(self.problems) >= MAX_PROBLEMS

    # ---------------------------------------------------------------- plumbing
    def add(self, path: str, message: str, line: int | None = None) -> None:
        if self.full:
            self.truncated = True
            return
        self.problems.append(Problem(path, message, line or self.line(path)))

    def line(self, path: str) -> int | None:
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path.rpartition(".")[0]

    def plain(self, loaded: _Loaded, path: str) -> dict[str, object]:
        self.loader = loaded.loader
        try:
            value = self._plain(loaded.root, path)
        finally:
            loaded.loader.dispose()
        assert isinstance(value, dict)
        return value

    def _plain(self, node: YamlNode, path: str) -> object:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, ScalarNode):
            try:
                value: object = self.loader.construct_object(node)
            except (yaml.YAMLError, ValueError, OverflowError):
                value = node.value
            if not isinstance(value, str) and value is not None:  # only plain scalars
                self.raw[path] = node.value
            return value
        if isinstance(node, SequenceNode):
            return [self._plain(item, _join(path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, MappingNode)
        result: dict[str, object] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                self.add(path, "a key must be plain text", line)
                continue
            key = key_node.value
            if key in result:
                message = f"duplicate key {key!r} (first on line {first_line[key]})"
                self.add(_join(path, key), message, line)
                continue
            first_line[key] = line
            self.lines[_join(path, key)] = line
            result[key] = self._plain(value_node, _join(path, key))
        return result

    def mapping(
        self,
        value: object,
        path: str,
        allowed: Iterable[str],
        required: Iterable[str] = (),
        what: str = "",
    ) -> dict[str, object] | None:
        """``value`` as a mapping with only ``allowed`` fields; None (reported) if not one."""
        if not isinstance(value, dict):
            self.add(path, f"expected a mapping{what}, got {_describe(value)}")
            return None
        for key in required:
            if key not in value:
                self.add(_join(path, key), "missing required field")
        allowed = tuple(allowed)
        for key in value:
            if self.full:
                self.truncated = True
                break
            if key not in allowed:
                hint = difflib.get_close_matches(key, allowed, n=1)
                maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
                self.add(
                    _join(path, key),
                    f"unknown field {key!r}{maybe}; allowed: {_names(allowed)}",
                )
        return value

    def text(self, m: Mapping[str, object], path: str, key: str) -> str | None:
        """A text field (None if absent or wrong, reported). Digits and yes/no count as text."""
        if key not in m:
            return None
        where = _join(path, key)
        value = m[key]
        if isinstance(value, str):
            return value
        if where in self.raw and not isinstance(value, list | dict):
            return self.raw[where]
        self.add(where, f"expected text, got {_describe(value)}")
        return None

    def ref(self, m: Mapping[str, object], path: str, key: str) -> str | None:
        target = self.text(m, path, key)
        if target is not None:
            self.refs.append((_join(path, key), target))
        return target

    def integer(
        self, m: Mapping[str, object], path: str, key: str, lo: int, hi: int, default: int
    ) -> int:
        if key not in m:
            return default
        where = _join(path, key)
        value = m[key]
        if isinstance(value, bool) or not isinstance(value, int):
            quoted = " (write it without quotes)" if isinstance(value, str) else ""
            self.add(where, f"expected a whole number, got {_describe(value)}{quoted}")
            return default
        if not lo <= value <= hi:
            self.add(where, f"must be between {lo} and {hi}, got {value}")
            return default
        return value

    def seconds(
        self, m: Mapping[str, object], path: str, key: str, lo: float, hi: float, default: float
    ) -> float:
        if key not in m:
            return default
        where = _join(path, key)
        value = m[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            self.add(where, f"expected a number of seconds, got {_describe(value)}")
            return default
        if not lo <= value <= hi:
            self.add(where, f"must be between {lo:g} and {hi:g} seconds, got {value:g}")
            return default
        return float(value)

    def boolean(self, m: Mapping[str, object], path: str, key: str, default: bool) -> bool:
        if key not in m:
            return default
        value = m[key]
        if not isinstance(value, bool):
            self.add(_join(path, key), f"expected true or false, got {_describe(value)}")
            return default
        return value

    def language_map(self, value: object, path: str, what: str) -> dict[str, str]:
        """``{fi: ..., sv: ...}`` of non-empty text."""
        m = self.mapping(value, path, LANGUAGES, what=f" of language to {what} ({{fi: ...}})")
        if m is None:
            return {}
        return self.language_texts(m, path, what)

    def language_texts(self, m: Mapping[str, object], path: str, what: str) -> dict[str, str]:
        """The language entries of an already checked mapping."""
        result: dict[str, str] = {}
        for language in m:
            if language not in LANGUAGES:
                continue
            text = self.text(m, path, language)
            if text is None:
                continue
            if not text.strip():
                self.add(_join(path, language), f"empty {what}")
                continue
            if self.languages and language not in self.languages:
                self.add(
                    _join(path, language),
                    f"language {language!r} is not declared in languages "
                    f"({_names(self.languages)})",
                )
            result[language] = text
        return result

    def prompt(self, value: object, path: str) -> Prompt | None:
        m = self.mapping(
            value,
            path,
            (*LANGUAGES, "recording", "upload"),
            what=" of language to text ({fi: ...})",
        )
        if m is None:
            return None
        text = self.language_texts(m, path, "text")
        recording: dict[str, str] = {}
        if "recording" in m:
            where = _join(path, "recording")
            for language, file in self.language_map(m["recording"], where, "file name").items():
                problem = _bad_relative_path(file)
                if problem:
                    self.add(_join(where, language), problem)
                else:
                    recording[language] = file
        upload: dict[str, str] = {}
        if "upload" in m:
            where = _join(path, "upload")
            for language, name in self.language_map(m["upload"], where, "prompt name").items():
                if not UPLOAD_NAME.fullmatch(name):
                    self.add(
                        _join(where, language),
                        f"bad prompt name {name!r}: the name given to `ivr prompt upload` "
                        "(1-64 of a-z, 0-9, '-' and '_')",
                    )
                elif language in recording:
                    self.add(
                        _join(where, language),
                        f"{language} has both a recording and an upload: give one",
                    )
                else:
                    upload[language] = name
        if not m:
            self.add(path, f"empty prompt: give text for {_names(self.languages or LANGUAGES)}")
        result = Prompt(text=text, recording=recording, upload=upload)
        self.prompts.append((path, result))
        return result

    # ---------------------------------------------------------------- the flow
    def build(self, top: dict[str, object]) -> Flow | None:
        m = self.mapping(top, "", _TOP_FIELDS, _TOP_REQUIRED)
        assert m is not None
        flow_id = self.text(m, "", "id")
        if flow_id is not None and not _FLOW_ID.match(flow_id):
            self.add("id", f"bad id {flow_id!r}: use lowercase letters a-z, digits and '-'")
        name = self.text(m, "", "name")
        if name is not None and not name.strip():
            self.add("name", "must not be empty")
        version = self.text(m, "", "version")
        if version is not None and not version.strip():
            self.add("version", "must not be empty")
        self.languages = self.flow_languages(m)
        default_language = self.languages[0] if self.languages else "fi"
        if "default_language" in m:
            chosen = self.text(m, "", "default_language")
            if chosen is not None and self.languages and chosen not in self.languages:
                self.add(
                    "default_language",
                    f"{chosen!r} is not one of the flow's languages ({_names(self.languages)})",
                )
            elif chosen is not None:
                default_language = chosen
        anonymous = self.boolean(m, "", "anonymous", False)
        start = self.ref(m, "", "start")
        fallback = self.ref(m, "", "fallback")
        self.keys = self.global_keys(m.get("keys"), "keys") if "keys" in m else GlobalKeys()
        opt_out_prompt = None
        if "opt_out_prompt" in m:
            opt_out_prompt = self.prompt(m["opt_out_prompt"], "opt_out_prompt")
        if self.keys.opt_out and opt_out_prompt is None and "opt_out_prompt" not in m:
            self.add("opt_out_prompt", "missing: keys.opt_out is set, so say what opting out does")
        defaults = self.defaults(m.get("defaults", {}), "defaults")
        nodes = self.nodes(m["nodes"], "nodes", defaults, fallback) if "nodes" in m else None
        if nodes is not None:
            self.check_references()
            self.check_graph(nodes, start, fallback)
        self.check_prompt_languages()
        if self.problems or nodes is None:
            return None
        assert flow_id is not None and name is not None and version is not None
        assert start is not None
        return Flow(
            id=flow_id,
            name=name,
            version=version,
            languages=self.languages,
            default_language=default_language,
            start=start,
            nodes=nodes,
            keys=self.keys,
            fallback=fallback,
            anonymous=anonymous,
            opt_out_prompt=opt_out_prompt,
            source=self.source,
        )

    def flow_languages(self, m: Mapping[str, object]) -> tuple[str, ...]:
        if "languages" not in m:
            return ()
        value = m["languages"]
        if not isinstance(value, list):
            self.add("languages", f"expected a list like [fi, sv], got {_describe(value)}")
            return ()
        if not value:
            self.add("languages", "give at least one language")
            return ()
        found: list[str] = []
        for i, item in enumerate(value):
            where = _join("languages", i)
            if not isinstance(item, str) or item not in LANGUAGES:
                self.add(where, f"unknown language {_describe(item)}; use {_names(LANGUAGES)}")
            elif item in found:
                self.add(where, f"{item!r} is listed twice")
            else:
                found.append(item)
        return tuple(found) if len(found) == len(value) else ()

    def global_keys(self, value: object, path: str) -> GlobalKeys:
        m = self.mapping(value, path, ("repeat", "switch_language", "opt_out"))
        if m is None:
            return GlobalKeys()
        chosen: dict[str, str] = {}
        for name in ("repeat", "switch_language", "opt_out"):
            key = self.text(m, path, name)
            if key is None:
                continue
            if key and (len(key) != 1 or key not in GLOBAL_KEY_CHOICES):
                self.add(
                    _join(path, name),
                    f"must be one key 0-9 or * ('' turns it off; # ends number input), got {key!r}",
                )
                continue
            for other, used in chosen.items():
                if key and key == used:
                    self.add(_join(path, name), f"key {key!r} is already the {other} key")
                    break
            else:
                chosen[name] = key
        return GlobalKeys(**chosen)

    def defaults(self, value: object, path: str) -> dict[str, Any]:
        fields = ("timeout", "inter_digit_timeout", "retries", "no_input", "invalid")
        m = self.mapping(value, path, fields)
        result: dict[str, Any] = {
            "timeout": 6.0,
            "inter_digit_timeout": 3.0,
            "retries": 2,
            "no_input": None,
            "invalid": None,
        }
        if m is None:
            return result
        result["timeout"] = self.seconds(m, path, "timeout", 1, 60, 6.0)
        result["inter_digit_timeout"] = self.seconds(m, path, "inter_digit_timeout", 1, 60, 3.0)
        result["retries"] = self.integer(m, path, "retries", 0, 5, 2)
        for name in ("no_input", "invalid"):
            if name in m:
                result[name] = self.prompt(m[name], _join(path, name))
        return result

    def nodes(
        self, value: object, path: str, defaults: dict[str, Any], fallback: str | None
    ) -> dict[str, Node] | None:
        if not isinstance(value, dict):
            self.add(path, f"expected a mapping of node id to node, got {_describe(value)}")
            return None
        if not value:
            self.add(path, "a flow needs at least one node")
            return None
        if len(value) > MAX_NODES:
            self.add(path, f"more than {MAX_NODES} nodes; split the flow")
            return None
        self.node_ids = set(value)
        result: dict[str, Node] = {}
        for node_id, raw in value.items():
            where = _join(path, node_id)
            if not _NODE_ID.match(node_id):
                self.add(
                    where,
                    f"bad node id {node_id!r}: use lowercase letters a-z, digits, '-' and '_'",
                )
            node = self.node(node_id, raw, where, defaults, fallback)
            if node is not None:
                result[node_id] = node
        return result

    def node(
        self,
        node_id: str,
        value: object,
        path: str,
        defaults: dict[str, Any],
        flow_fallback: str | None,
    ) -> Node | None:
        if not isinstance(value, dict):
            self.add(path, f"expected a node (a mapping with kind:), got {_describe(value)}")
            return None
        kind = self.text(value, path, "kind")
        if kind is None:
            if "kind" not in value:
                self.add(
                    _join(path, "kind"), f"missing required field; one of {_names(NODE_KINDS)}"
                )
            self.generic_refs(value, path)
            return None
        if kind not in NODE_KINDS:
            hint = difflib.get_close_matches(kind, NODE_KINDS, n=1)
            maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
            self.add(
                _join(path, "kind"), f"unknown node kind {kind!r}{maybe}; use {_names(NODE_KINDS)}"
            )
            self.generic_refs(value, path)
            return None
        allowed = ("kind", *_KIND_FIELDS[kind])
        if kind == "end" and "next" in value:
            self.add(_join(path, "next"), "an end node hangs up: it must not have next")
            value = {k: v for k, v in value.items() if k != "next"}
        m = self.mapping(value, path, allowed, _KIND_REQUIRED[kind])
        assert m is not None
        fields: dict[str, Any] = {"id": node_id, "kind": cast(NodeKind, kind)}
        fields["store"] = kind not in ("say", "end", "transfer")
        if "prompt" in m:
            fields["prompt"] = self.prompt(m["prompt"], _join(path, "prompt"))
        fields["next"] = self.ref(m, path, "next")
        fields["timeout"] = self.seconds(m, path, "timeout", 1, 60, defaults["timeout"])
        fields["inter_digit_timeout"] = self.seconds(
            m, path, "inter_digit_timeout", 1, 60, defaults["inter_digit_timeout"]
        )
        fields["retries"] = self.integer(m, path, "retries", 0, 5, defaults["retries"])
        fields["fallback"] = self.ref(m, path, "fallback")
        if kind in INPUT_KINDS:
            for name in ("no_input", "invalid"):
                given = m.get(name)
                fields[name] = (
                    self.prompt(given, _join(path, name)) if name in m else defaults[name]
                )
        if kind in ("language", "choice") and "options" in m:
            fields["options"] = self.options(m["options"], _join(path, "options"), kind)
        if kind in ("scale", "number"):
            self.bounds(m, path, kind, fields)
        if kind == "open":
            fields["max_seconds"] = self.integer(m, path, "max_seconds", 1, 600, 60)
            fields["silence_seconds"] = self.integer(m, path, "silence_seconds", 1, 60, 4)
            fields["beep"] = self.boolean(m, path, "beep", True)
        if kind == "callback":
            self.callback(m, path, fields)
        if kind == "transfer":
            self.transfer(m, path, fields, flow_fallback)
        self.check_next(kind, path, fields)
        return Node(**fields)

    def generic_refs(self, m: Mapping[str, object], path: str) -> None:
        """Record the references of a node we cannot build, so others are not unreachable."""
        for key in ("next", "fallback", "declined_next"):
            if isinstance(m.get(key), str):
                self.refs.append((_join(path, key), cast(str, m[key])))
        options = m.get("options")
        if isinstance(options, list):
            for i, option in enumerate(options):
                if isinstance(option, dict) and isinstance(option.get("next"), str):
                    self.refs.append((_join(path, f"options.{i}.next"), option["next"]))

    def options(self, value: object, path: str, kind: str) -> tuple[Option, ...]:
        if not isinstance(value, list):
            self.add(path, f"expected a list of options, got {_describe(value)}")
            return ()
        if not value:
            self.add(path, "give at least one option")
            return ()
        allowed = ("key", "value", "label") if kind == "step" else ("key", "value", "label", "next")
        result: list[Option] = []
        keys: dict[str, int] = {}
        values: dict[str, int] = {}
        for i, item in enumerate(value):
            where = _join(path, i)
            m = self.mapping(item, where, allowed, ("key", "value"))
            if m is None:
                continue
            key = self.text(m, where, "key")
            option_value = self.text(m, where, "value")
            next_id = self.ref(m, where, "next")
            label = (
                self.language_map(m["label"], _join(where, "label"), "label")
                if ("label" in m)
                else {}
            )
            if key is not None:
                self.check_option_key(key, _join(where, "key"), keys, i)
            if option_value is not None:
                if not option_value.strip():
                    self.add(_join(where, "value"), "must not be empty")
                elif option_value in values:
                    self.add(
                        _join(where, "value"),
                        f"value {option_value!r} is already used by option {values[option_value]}",
                    )
                else:
                    values[option_value] = i
                if kind == "language" and self.languages and option_value not in self.languages:
                    self.add(
                        _join(where, "value"),
                        f"{option_value!r} is not one of the flow's languages "
                        f"({_names(self.languages)})",
                    )
            if key is not None and option_value is not None:
                result.append(Option(key=key, value=option_value, next=next_id, label=label))
        return tuple(result)

    def check_option_key(self, key: str, where: str, seen: dict[str, int], index: int) -> None:
        if len(key) != 1 or key not in OPTION_KEYS:
            self.add(where, f"an option key is one digit 0-9, got {key!r}")
            return
        if key in seen:
            self.add(where, f"key {key!r} is already used by option {seen[key]}")
            return
        seen[key] = index
        for name in ("repeat", "switch_language", "opt_out"):
            if key == getattr(self.keys, name):
                self.add(where, f"key {key!r} is the flow's {name} key (keys.{name})")

    def bounds(self, m: Mapping[str, object], path: str, kind: str, fields: dict[str, Any]) -> None:
        hi = 9 if kind == "scale" else 10**15 - 1
        low = self.integer(m, path, "min", 0, hi, 0)
        top = m.get("max")
        if kind == "scale" and isinstance(top, int) and not isinstance(top, bool) and top > 9:
            self.add(
                _join(path, "max"),
                f"a scale is one key: max must be at most 9 (got {top}); "
                "use a number node for more",
            )
            fields["min_value"], fields["max_value"] = low, low
            return
        high = self.integer(m, path, "max", 0, hi, low)
        if "min" in m and "max" in m and low > high:
            self.add(_join(path, "min"), f"min ({low}) is greater than max ({high})")
        fields["min_value"], fields["max_value"] = low, high
        if kind == "number":
            needed = len(str(high))
            digits = self.integer(m, path, "max_digits", 1, 15, needed)
            if "max_digits" in m and digits < needed:
                self.add(
                    _join(path, "max_digits"),
                    f"max_digits {digits} is too short for max {high} ({needed} digits)",
                )
            fields["max_digits"] = digits

    def callback(self, m: Mapping[str, object], path: str, fields: dict[str, Any]) -> None:
        version = self.text(m, path, "consent_version")
        if version is not None and not version.strip():
            self.add(_join(path, "consent_version"), "must not be empty: name the consent wording")
        fields["consent_version"] = version or ""
        fields["declined_next"] = self.ref(m, path, "declined_next")
        if "steps" not in m:
            return
        where = _join(path, "steps")
        value = m["steps"]
        if not isinstance(value, list):
            self.add(where, f"expected a list of steps, got {_describe(value)}")
            return
        if not value:
            self.add(where, "give at least the consent step")
            return
        steps: list[CallbackStep] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(value):
            at = _join(where, i)
            s = self.mapping(
                item, at, ("field", "prompt", "options"), ("field", "prompt", "options")
            )
            if s is None:
                continue
            name = self.text(s, at, "field")
            if name is not None:
                if name not in CALLBACK_FIELDS:
                    self.add(
                        _join(at, "field"),
                        f"unknown field {name!r}; use {_names(CALLBACK_FIELDS)}",
                    )
                    name = None
                elif name in seen:
                    self.add(_join(at, "field"), f"{name!r} is already step {seen[name]}")
                    name = None
                else:
                    seen[name] = i
            if i == 0 and name is not None and name != "consent":
                self.add(_join(at, "field"), "the first step must be consent")
            prompt = self.prompt(s["prompt"], _join(at, "prompt")) if "prompt" in s else None
            options = (
                self.options(s["options"], _join(at, "options"), "step") if ("options" in s) else ()
            )
            if name == "consent" and options:
                values = {o.value for o in options}
                if "yes" not in values or not values <= {"yes", "no"}:
                    self.add(
                        _join(at, "options"),
                        "the consent step's option values are yes and no (yes = consent given)",
                    )
            if name is not None and prompt is not None and options:
                field = cast(Literal["consent", "channel", "time_window", "interpreter"], name)
                steps.append(CallbackStep(field=field, prompt=prompt, options=options))
        fields["steps"] = tuple(steps)

    def transfer(
        self,
        m: Mapping[str, object],
        path: str,
        fields: dict[str, Any],
        flow_fallback: str | None,
    ) -> None:
        endpoint = self.text(m, path, "endpoint")
        if endpoint is not None and not _ENDPOINT.match(endpoint):
            self.add(
                _join(path, "endpoint"),
                f"expected a PJSIP endpoint like PJSIP/softphone1, got {endpoint!r}",
            )
        fields["endpoint"] = endpoint or ""
        fields["ring_seconds"] = self.integer(m, path, "ring_seconds", 5, 300, 30)
        timezone = self.text(m, path, "timezone")
        if timezone is not None:
            if _valid_timezone(timezone):
                fields["timezone"] = timezone
            else:
                self.add(
                    _join(path, "timezone"),
                    f"unknown time zone {timezone!r} (e.g. Europe/Helsinki)",
                )
        if "hours" in m:
            fields["hours"] = self.hours(m["hours"], _join(path, "hours"))
        if fields.get("fallback") is None and flow_fallback is None:
            self.add(
                _join(path, "fallback"),
                "missing: a transfer needs a fallback for closed hours or no answer "
                "(here or the flow's fallback)",
            )

    def hours(self, value: object, path: str) -> tuple[tuple[int, str, str], ...]:
        if not isinstance(value, list):
            self.add(path, f"expected a list of opening hours, got {_describe(value)}")
            return ()
        result: list[tuple[int, str, str]] = []
        for i, item in enumerate(value):
            where = _join(path, i)
            m = self.mapping(item, where, ("days", "from", "to"), ("days", "from", "to"))
            if m is None:
                continue
            times: list[str] = []
            for name in ("from", "to"):
                text = self.text(m, where, name)
                if text is not None:
                    if _HHMM.match(text):
                        times.append(text)
                    else:
                        self.add(_join(where, name), f'expected a time "HH:MM", got {text!r}')
            if len(times) == 2 and times[0] >= times[1]:
                self.add(_join(where, "to"), f"{times[1]} is not after {times[0]}")
                times = []
            days: list[int] = []
            raw_days = m.get("days")
            if "days" in m and not isinstance(raw_days, list):
                self.add(
                    _join(where, "days"),
                    f"expected a list like [mon, tue], got {_describe(raw_days)}",
                )
            elif isinstance(raw_days, list):
                if not raw_days:
                    self.add(_join(where, "days"), "give at least one day")
                for j, day in enumerate(raw_days):
                    if isinstance(day, str) and day.lower() in DAYS:
                        days.append(DAYS.index(day.lower()))
                    else:
                        self.add(
                            _join(where, f"days.{j}"),
                            f"unknown day {_describe(day)}; use {_names(DAYS)}",
                        )
            if len(times) == 2:
                result.extend((day, times[0], times[1]) for day in days)
        return tuple(result)

    def check_next(self, kind: str, path: str, fields: dict[str, Any]) -> None:
        """A node other than ``end`` must have somewhere to go."""
        if fields.get("next") is not None or kind in ("end", "transfer"):
            return
        if kind in ("language", "choice"):
            for i, option in enumerate(fields.get("options", ())):
                if option.next is None:
                    self.add(
                        _join(path, f"options.{i}.next"),
                        f"option {option.key!r} has nowhere to go: give it a next, "
                        "or give the node a next",
                    )
            return
        self.add(_join(path, "next"), f"missing: a {kind} node needs next (it has nowhere to go)")

    # ---------------------------------------------------------------- the whole graph
    def check_references(self) -> None:
        ids = sorted(self.node_ids)
        for where, target in self.refs:
            if self.full:
                self.truncated = True
                break
            if target not in ids:
                hint = difflib.get_close_matches(target, ids, n=1)
                maybe = f"; did you mean {hint[0]!r}?" if hint else ""
                self.add(where, f"no node {target!r}{maybe}")

    def check_graph(
        self, nodes: Mapping[str, Node], start: str | None, fallback: str | None
    ) -> None:
        ids = self.node_ids
        if not ids:
            return
        edges: dict[str, set[str]] = {node_id: set() for node_id in ids}
        sinks: set[str] = set()
        for where, target in self.refs:
            if where == "fallback" or where == "start":
                continue
            parts = where.split(".")
            source = parts[1]
            if source in edges and target in ids:
                edges[source].add(target)
            elif source in edges:
                sinks.add(source)  # a dangling reference, already reported
        for node_id in ids:
            node = nodes.get(node_id)
            if node is None:
                sinks.add(node_id)  # could not be built: reported already
                continue
            uses_flow_fallback = node.kind in INPUT_KINDS or node.kind == "transfer"
            if uses_flow_fallback and node.fallback is None and fallback in ids:
                edges[node_id].add(fallback)
            if node.kind == "end":
                sinks.add(node_id)
        for problem in self.problems:
            parts = problem.path.split(".")
            if (
                len(parts) >= 2
                and parts[0] == "nodes"
                and (parts[-1] == "next" or problem.path.endswith(".fallback"))
            ):
                sinks.add(parts[1])  # "nowhere to go": do not also call it a loop
        reachable: set[str] = set()
        if start is not None and start in ids:
            todo = [start]
            while todo:
                current = todo.pop()
                if current not in reachable:
                    reachable.add(current)
                    todo.extend(edges[current] - reachable)
            for node_id in nodes:
                if node_id not in reachable:
                    self.add(
                        _join("nodes", node_id),
                        f"unreachable: nothing leads here from start ({start!r})",
                    )
        incoming: dict[str, set[str]] = {node_id: set() for node_id in ids}
        for source, targets in edges.items():
            for target in targets:
                incoming[target].add(source)
        can_end = set(sinks)
        todo = list(sinks)
        while todo:
            current = todo.pop()
            for source in incoming[current] - can_end:
                can_end.add(source)
                todo.append(source)
        for node_id in nodes:
            if node_id not in can_end and (node_id in reachable or not reachable):
                self.add(
                    _join("nodes", node_id),
                    "no end node can be reached from here: the call could never finish "
                    "(check next and fallback)",
                )

    def check_prompt_languages(self) -> None:
        if not self.languages:
            return
        for path, prompt in self.prompts:
            missing = [lang for lang in self.languages if lang not in prompt.languages()]
            if missing and (prompt.text or prompt.recording or prompt.upload):
                self.add(
                    path,
                    f"no text or recording for {_names(missing)} "
                    f"(the flow's languages are {_names(self.languages)})",
                )


def _bad_relative_path(file: str) -> str | None:
    if "\\" in file:
        return f"use '/' in file names, got {file!r}"
    pure = PurePosixPath(file)
    if pure.is_absolute():
        return f"the file must be relative to the flow's folder, got {file!r}"
    if ".." in pure.parts:
        return f"the file must be inside the flow's folder ('..' is not allowed), got {file!r}"
    return None


def _valid_timezone(name: str) -> bool:
    if not name or name.startswith("/") or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True
