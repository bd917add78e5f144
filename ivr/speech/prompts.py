"""Prompt audio for a flow: recorded files converted for Asterisk, or espeak-ng speech.

Every rendered file lives in one cache folder as ``<hash>.wav`` (8 kHz mono 16-bit,
loudness-normalised), written atomically. A recording is keyed by the hash of its file's
content, a synthetic prompt by the hash of (text, language, voice, engine version), so a
prompt is rendered once and re-rendered only when what it is made of changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ivr.flows.model import Flow, Prompt
from ivr.flows.walk import prompt_paths
from ivr.speech import tts

PromptSource = Literal["recorded", "synthetic"]

# Bump when the conversion changes, so cached files are made again.
CONVERSION = "asterisk-wav-8k-mono-s16/loudness-20dBFS/v1"
TARGET_DBFS = -20.0
SPEED = 150  # espeak-ng words per minute


class PromptError(Exception):
    """A prompt cannot be made: the message names the prompt's path and the file."""


@dataclass(frozen=True)
class PromptAudio:
    path: Path  # 8 kHz mono 16-bit WAV in the cache
    source: PromptSource
    key: str  # the cache key (the file's stem)


def prompt_source(prompt: Prompt, language: str) -> PromptSource:
    """Whether ``prompt`` is said from a recording or by TTS in ``language``."""
    return "recorded" if language in prompt.recording else "synthetic"


class PromptStore:
    """Renders prompts into ``cache_dir`` once and hands out the files."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = Path(cache_dir)

    def resolve(
        self,
        flow: Flow,
        prompt: Prompt,
        language: str,
        flow_dir: Path,
        *,
        where: str | None = None,
    ) -> PromptAudio:
        """The audio for ``prompt`` in ``language``, rendering it if it is not cached yet.

        ``flow_dir`` is the folder recordings are relative to; ``where`` names the prompt in
        errors (default: its first path in ``flow``, e.g. ``nodes.intro.prompt``).
        """
        if where is None:
            where = prompt_paths(flow).get(id(prompt), "prompt")
        if prompt_source(prompt, language) == "recorded":
            return self._recorded(prompt.recording[language], language, flow_dir, where)
        text = prompt.text.get(language)
        if not text:
            raise PromptError(f"{where}: no {language} text or recording in flow {flow.id!r}")
        return self._synthetic(text, language, where)

    def _recorded(self, relative: str, language: str, flow_dir: Path, where: str) -> PromptAudio:
        file = Path(flow_dir) / relative
        try:
            digest = hashlib.sha256(CONVERSION.encode() + b"\0")
            with file.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 16), b""):
                    digest.update(chunk)
        except FileNotFoundError:
            raise PromptError(
                f"{where}: the {language} recording {relative} is missing (looked for {file})"
            ) from None
        except OSError as exc:
            raise PromptError(
                f"{where}: cannot read the {language} recording {relative}: {exc.strerror}"
            ) from None
        key = digest.hexdigest()

        def convert(target: Path) -> None:
            try:
                tts.to_asterisk_wav(file, target, target_dbfs=TARGET_DBFS)
            except Exception as exc:  # pydub/ffmpeg raise many kinds
                raise PromptError(
                    f"{where}: cannot convert the {language} recording {relative}: {exc}"
                ) from exc

        return PromptAudio(self._render(key, convert), "recorded", key)

    def _synthetic(self, text: str, language: str, where: str) -> PromptAudio:
        try:
            voice = tts.voice_for(language)
            engine = tts.engine_version()
        except tts.TtsError as exc:
            raise PromptError(f"{where}: {exc}") from None
        material = json.dumps(
            ["espeak-ng", engine, voice, SPEED, language, text, CONVERSION], ensure_ascii=False
        )
        key = hashlib.sha256(material.encode()).hexdigest()

        def speak(target: Path) -> None:
            try:
                tts.synthesize_wav(text, language, target, SPEED, target_dbfs=TARGET_DBFS)
            except tts.TtsError as exc:
                raise PromptError(f"{where}: {exc}") from None

        return PromptAudio(self._render(key, speak), "synthetic", key)

    def _render(self, key: str, make: Callable[[Path], None]) -> Path:
        target = self.cache_dir / f"{key}.wav"
        if target.is_file():
            return target
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.cache_dir, prefix=f".{key}.", suffix=".tmp")
        os.close(handle)
        temporary = Path(name)
        try:
            make(temporary)
            os.replace(temporary, target)  # atomic: readers see the old state or the whole file
        finally:
            temporary.unlink(missing_ok=True)
        return target
