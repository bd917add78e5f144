"""Prompts as ARI media: resolve each (prompt, language) to a cached WAV once.

The cache is keyed by what a prompt *is* (its flow's folder, its texts, recordings and
uploads, the language), never by the object's identity: two flows with the same prompt
share an entry, and a freed flow's entry can never be handed to another one. It holds at
most ``max_entries`` (least recently used dropped first; the WAV stays on disk and is found
again by its content key). A prompt not yet rendered is rendered in a thread, never on the
event loop; ``prerender`` renders a flow's prompts before its calls start.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from pathlib import Path

from ivr.flows.model import Flow, Prompt
from ivr.flows.walk import iter_prompts
from ivr.speech.prompts import PromptError, PromptStore

log = logging.getLogger(__name__)

MAX_ENTRIES = 4096

#: What a resident hears when a technical fault ends the call: (outbound, inbound) text.
APOLOGY: dict[str, tuple[str, str]] = {
    "fi": (
        "Pahoittelemme, teknisen vian vuoksi puhelu katkeaa. Soitamme teille uudelleen.",
        "Pahoittelemme, teknisen vian vuoksi puhelu katkeaa. Soittakaa uudelleen hetken kuluttua.",
    ),
    "sv": (
        "Vi ber om ursäkt, samtalet avbryts på grund av ett tekniskt fel. Vi ringer upp er igen.",
        "Vi ber om ursäkt, samtalet avbryts på grund av ett tekniskt fel. Ring gärna igen om "
        "en stund.",
    ),
    "en": (
        "We are sorry, a technical fault ends this call. We will call you again.",
        "We are sorry, a technical fault ends this call. Please call again later.",
    ),
}

PromptKey = tuple[
    str, str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]
]


def flow_dir(flow: Flow) -> Path:
    return Path(flow.source).parent if flow.source else Path.cwd()


def prompt_key(flow: Flow, prompt: Prompt, language: str) -> PromptKey:
    """What makes a prompt's audio: the same key, the same sound."""
    return (
        str(flow_dir(flow)),
        language,
        tuple(sorted(prompt.text.items())),
        tuple(sorted(prompt.recording.items())),
        tuple(sorted(prompt.upload.items())),
    )


class PromptMedia:
    """Implements the session's PromptResolver over a PromptStore."""

    def __init__(self, store: PromptStore, max_entries: int = MAX_ENTRIES) -> None:
        self.store = store
        self.max_entries = max_entries
        self._media: OrderedDict[PromptKey, str] = OrderedDict()
        self._lock = threading.Lock()  # rendering threads and the loop share the cache
        self._apology: dict[tuple[str, bool], str] = {}

    def cached(self, flow: Flow, prompt: Prompt, language: str) -> str | None:
        key = prompt_key(flow, prompt, language)
        with self._lock:
            found = self._media.get(key)
            if found is not None:
                self._media.move_to_end(key)
            return found

    def render(self, flow: Flow, prompt: Prompt, language: str) -> str:
        """The media URI, rendering the prompt now if needed (blocking: not on the loop)."""
        found = self.cached(flow, prompt, language)
        if found is not None:
            return found
        audio = self.store.resolve(flow, prompt, language, flow_dir(flow))
        # Asterisk takes a file path without its extension and picks the format.
        found = "sound:" + str(audio.path.with_suffix(""))
        with self._lock:
            self._media[prompt_key(flow, prompt, language)] = found
            while len(self._media) > self.max_entries:
                self._media.popitem(last=False)
        return found

    async def media(self, flow: Flow, prompt: Prompt, language: str) -> str:
        found = self.cached(flow, prompt, language)
        if found is None:
            found = await asyncio.to_thread(self.render, flow, prompt, language)
        return found

    def apology(self, language: str, inbound: bool) -> str | None:
        return self._apology.get((language, inbound)) or self._apology.get(("en", inbound))

    def prerender_apologies(self) -> list[str]:
        """Render the fault apology in every language; returns the problems (a language
        without a voice plays no apology: the call is hung up all the same)."""
        problems = []
        for language, texts in APOLOGY.items():
            for inbound, text in ((False, texts[0]), (True, texts[1])):
                try:
                    audio = self.store.synthetic(text, language, f"apology ({language})")
                except PromptError as exc:
                    problems.append(str(exc))
                    continue
                self._apology[(language, inbound)] = "sound:" + str(audio.path.with_suffix(""))
        for problem in problems:
            log.warning("no fault apology: %s", problem)
        return problems

    def prerender(self, flow: Flow) -> int:
        """Render every prompt of ``flow`` in each of its languages now; returns the count."""
        count = 0
        for _path, language, prompt in iter_prompts(flow):
            self.render(flow, prompt, language)
            count += 1
        return count
