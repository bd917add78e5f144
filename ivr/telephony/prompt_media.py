"""Prompts as ARI media: resolve each (prompt, language) to a cached WAV once."""

from __future__ import annotations

import logging
from pathlib import Path

from ivr.flows.model import Flow, Prompt
from ivr.flows.walk import iter_prompts
from ivr.speech.prompts import PromptStore

log = logging.getLogger(__name__)


def flow_dir(flow: Flow) -> Path:
    return Path(flow.source).parent if flow.source else Path.cwd()


class PromptMedia:
    """Implements the session's PromptResolver over a PromptStore."""

    def __init__(self, store: PromptStore) -> None:
        self.store = store
        self._media: dict[tuple[int, str], str] = {}

    def media(self, flow: Flow, prompt: Prompt, language: str) -> str:
        key = (id(prompt), language)
        found = self._media.get(key)
        if found is None:
            audio = self.store.resolve(flow, prompt, language, flow_dir(flow))
            # Asterisk takes a file path without its extension and picks the format.
            found = "sound:" + str(audio.path.with_suffix(""))
            self._media[key] = found
        return found

    def prerender(self, flow: Flow) -> int:
        """Render every prompt of ``flow`` in each of its languages now; returns the count."""
        count = 0
        for _path, language, prompt in iter_prompts(flow):
            self.media(flow, prompt, language)
            count += 1
        return count
