"""The call-flow model: one format for outbound surveys, call-in lines and information lines.

Pure data (frozen dataclasses); the YAML loader builds it and validates it, the engine runs it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

LANGUAGES = ("fi", "sv", "en")

NodeKind = Literal[
    "say", "language", "choice", "scale", "number", "open", "callback", "transfer", "end"
]
NODE_KINDS: tuple[str, ...] = (
    "say",
    "language",
    "choice",
    "scale",
    "number",
    "open",
    "callback",
    "transfer",
    "end",
)
DTMF_KEYS = "0123456789*#"
# The name of an uploaded prompt (`ivr prompt upload FILE --name NAME`).
UPLOAD_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


@dataclass(frozen=True)
class Prompt:
    """What to say: text per language, and optionally a recorded file per language.

    ``recording`` paths are relative to the flow file's folder; ``upload`` names prompts
    uploaded with ``ivr prompt upload`` (a language has one or the other). Where a language
    has neither, the text is synthesised (TTS).
    """

    text: Mapping[str, str]
    recording: Mapping[str, str] = field(default_factory=dict)
    upload: Mapping[str, str] = field(default_factory=dict)

    def languages(self) -> set[str]:
        return set(self.text) | set(self.recording) | set(self.upload)


@dataclass(frozen=True)
class Option:
    """One key of a choice (or language, or callback step): stored as ``value``."""

    key: str
    value: str
    next: str | None = None  # None: the node's own ``next``
    label: Mapping[str, str] = field(default_factory=dict)  # for reports and the UI


@dataclass(frozen=True)
class CallbackStep:
    """One question of a callback/consent node (consent, channel, time, interpreter)."""

    field: Literal["consent", "channel", "time_window", "interpreter"]
    prompt: Prompt
    options: tuple[Option, ...]


@dataclass(frozen=True)
class Node:
    id: str
    kind: NodeKind
    prompt: Prompt | None = None
    next: str | None = None
    # Input handling (choice, language, scale, number, callback).
    timeout: float = 6.0  # seconds to wait for the first key after the prompt
    inter_digit_timeout: float = 3.0  # scale/number: seconds between keys
    retries: int = 2  # re-prompts after no input or a wrong key, then ``fallback``
    no_input: Prompt | None = None  # said before a re-prompt after silence
    invalid: Prompt | None = None  # said before a re-prompt after a wrong key
    fallback: str | None = None  # after the retries; None: the flow's fallback
    # choice / language
    options: tuple[Option, ...] = ()
    # scale / number
    min_value: int = 0
    max_value: int = 0
    max_digits: int = 1
    # open
    max_seconds: int = 60
    silence_seconds: int = 4
    beep: bool = True
    # callback
    steps: tuple[CallbackStep, ...] = ()
    consent_version: str = ""
    declined_next: str | None = None  # where to go when consent is refused
    # transfer
    endpoint: str = ""  # e.g. PJSIP/softphone1
    hours: tuple[tuple[int, str, str], ...] = ()  # (weekday 0=Mon, "08:00", "16:00")
    timezone: str = "Europe/Helsinki"
    ring_seconds: int = 30
    # whether the node's answer is stored (say/end store nothing)
    store: bool = True


@dataclass(frozen=True)
class GlobalKeys:
    repeat: str = "*"
    switch_language: str = ""  # e.g. "9"; empty: no switching by key
    opt_out: str = ""  # e.g. "0"; empty: no opt-out key


@dataclass(frozen=True)
class Flow:
    id: str
    name: str
    version: str
    languages: tuple[str, ...]
    default_language: str
    start: str
    nodes: Mapping[str, Node]
    keys: GlobalKeys = field(default_factory=GlobalKeys)
    fallback: str | None = None  # where input failures go when a node names none
    anonymous: bool = False  # an information line that stores no caller number
    opt_out_prompt: Prompt | None = None  # said after the opt-out key, then hang up
    source: str = ""  # the file it came from

    def node(self, node_id: str) -> Node:
        return self.nodes[node_id]
