"""Prompt audio for a flow: recordings, uploaded prompts, or synthetic speech.

Every rendered file lives in one cache folder as ``<hash>.wav`` (8 kHz mono 16-bit,
silence trimmed, loudness-normalised to ``prompts.loudness_lufs``), written atomically.
Recordings and synthetic speech go through one conversion, :func:`prompt_audio.convert`;
an uploaded prompt was converted by it when it was uploaded and is copied as it is.

A recording is keyed by the hash of its file's content, an upload by the hash of the
converted file, a synthetic prompt by the hash of (engine, voice, text, language); all with
the conversion's settings, so a prompt is rendered once and again only when what it is made
of changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ivr.config import PromptSettings, Settings
from ivr.flows.model import Flow, Prompt
from ivr.flows.walk import prompt_paths
from ivr.speech import prompt_audio, tts

log = logging.getLogger(__name__)

PromptSource = Literal["recorded", "synthetic"]

SPEED = 150  # espeak-ng words per minute


class PromptError(Exception):
    """A prompt cannot be made: the message names the prompt's path and the file."""


@dataclass(frozen=True)
class PromptAudio:
    path: Path  # 8 kHz mono 16-bit WAV in the cache
    source: PromptSource
    key: str  # the cache key (the file's stem)
    engine: str = ""  # synthetic: "espeak-ng" or "piper"
    voice: str = ""  # synthetic: the engine's voice
    fallback: str = ""  # why espeak-ng spoke where piper was asked for


def prompt_source(prompt: Prompt, language: str) -> PromptSource:
    """Whether ``prompt`` is said from a recording (or upload) or by TTS in ``language``."""
    return "recorded" if language in prompt.recording or language in prompt.upload else "synthetic"


def voices_dir(settings: Settings) -> Path:
    """Where piper voices are looked for: ``prompts.piper_voices_dir`` or <data dir>/voices."""
    configured = settings.prompts.piper_voices_dir
    return Path(configured).expanduser() if configured else settings.data_dir / "voices"


class PromptStore:
    """Renders prompts into ``cache_dir`` once and hands out the files.

    ``settings`` give the loudness target and the TTS engine (default: espeak-ng);
    ``voices_dir`` is where piper voices are; ``uploads_dir`` holds the prompts uploaded
    with ``ivr prompt upload`` (see :meth:`from_settings`).
    """

    def __init__(
        self,
        cache_dir: Path,
        settings: PromptSettings | None = None,
        *,
        voices_dir: Path | None = None,
        uploads_dir: Path | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.settings = settings or PromptSettings()
        self.voices_dir = voices_dir
        self.uploads_dir = uploads_dir

    @classmethod
    def from_settings(cls, settings: Settings, cache_dir: Path | None = None) -> PromptStore:
        """A store with the settings' prompt options, piper voices and uploads folder,
        rendering into ``settings.prompt_cache_dir`` (the worker's and the CLI's one cache)."""
        return cls(
            cache_dir if cache_dir is not None else settings.prompt_cache_dir,
            settings.prompts,
            voices_dir=voices_dir(settings),
            uploads_dir=prompt_audio.uploads_dir(settings.data_dir),
        )

    def voice(self, language: str) -> tts.Voice:
        """Who would speak ``language`` (TtsError when nobody can)."""
        return tts.choose_voice(language, self.settings, self.voices_dir)

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
        if language in prompt.upload:
            return self._uploaded(prompt.upload[language], language, where)
        if language in prompt.recording:
            return self._recorded(prompt.recording[language], language, flow_dir, where)
        text = prompt.text.get(language)
        if not text:
            raise PromptError(f"{where}: no {language} text or recording in flow {flow.id!r}")
        return self._synthetic(text, language, where)

    def _conversion(self) -> bytes:
        return prompt_audio.conversion_key(self.settings).encode() + b"\0"

    def _recorded(self, relative: str, language: str, flow_dir: Path, where: str) -> PromptAudio:
        file = Path(flow_dir) / relative
        try:
            key = _digest(self._conversion(), file)
        except FileNotFoundError:
            raise PromptError(
                f"{where}: the {language} recording {relative} is missing (looked for {file})"
            ) from None
        except OSError as exc:
            raise PromptError(
                f"{where}: cannot read the {language} recording {relative}: {exc.strerror}"
            ) from None

        def convert(target: Path) -> None:
            try:
                prompt_audio.convert(file, target, self.settings)
            except prompt_audio.PromptAudioError as exc:
                raise PromptError(
                    f"{where}: cannot convert the {language} recording {relative}: {exc.reason}"
                ) from None
            except (OSError, RuntimeError, ValueError) as exc:
                raise PromptError(
                    f"{where}: cannot convert the {language} recording {relative}: {exc}"
                ) from exc

        return PromptAudio(self._render(key, convert), "recorded", key)

    def _uploaded(self, name: str, language: str, where: str) -> PromptAudio:
        if self.uploads_dir is None:
            raise PromptError(
                f"{where}: the {language} upload {name!r} cannot be found: this prompt store "
                "has no uploads folder"
            )
        file = self.uploads_dir / f"{name}.wav"
        try:
            key = _digest(b"upload\0", file)
        except FileNotFoundError:
            raise PromptError(
                f"{where}: the {language} upload {name!r} is missing (looked for {file}): "
                f"upload it with `ivr prompt upload FILE --name {name}`"
            ) from None
        except OSError as exc:
            raise PromptError(
                f"{where}: cannot read the {language} upload {name!r}: {exc.strerror}"
            ) from None
        return PromptAudio(
            self._render(key, lambda target: shutil.copyfile(file, target)), "recorded", key
        )

    def synthetic(self, text: str, language: str, where: str) -> PromptAudio:
        """``text`` spoken by TTS in ``language`` (not from a flow: system messages)."""
        return self._synthetic(text, language, where)

    def _synthetic(self, text: str, language: str, where: str) -> PromptAudio:
        try:
            voice = self.voice(language)
        except tts.TtsError as exc:
            raise PromptError(f"{where}: {exc}") from None
        try:
            return self._speak(voice, text, language, where)
        except tts.TtsError as exc:
            if voice.engine != "piper":
                raise PromptError(f"{where}: {exc}") from None
            log.warning("%s %s: piper failed, espeak-ng speaks instead: %s", where, language, exc)
            try:
                stand_in = tts.espeak_voice(language, f"piper failed: {exc}")
                return self._speak(stand_in, text, language, where)
            except tts.TtsError as again:
                raise PromptError(f"{where}: {again}") from None

    def _speak(self, voice: tts.Voice, text: str, language: str, where: str) -> PromptAudio:
        material = json.dumps(
            [
                voice.engine,
                voice.version,
                voice.name,
                SPEED,
                language,
                text,
                prompt_audio.conversion_key(self.settings),
            ],
            ensure_ascii=False,
        )
        key = hashlib.sha256(material.encode()).hexdigest()

        def make(target: Path) -> None:
            with tempfile.TemporaryDirectory() as tmp:
                raw = Path(tmp) / "tts.wav"
                tts.speak(voice, text, raw, SPEED)
                try:
                    prompt_audio.convert(raw, target, self.settings)
                except prompt_audio.PromptAudioError as exc:
                    raise PromptError(
                        f"{where}: the {language} speech of {voice.engine} ({voice.name}) "
                        f"cannot be used: {exc.reason}"
                    ) from None

        path = self._render(key, make)
        return PromptAudio(path, "synthetic", key, voice.engine, voice.name, voice.fallback)

    def _render(self, key: str, make: Callable[[Path], object]) -> Path:
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


def _digest(prefix: bytes, file: Path) -> str:
    """The cache key of a prompt made from ``file``: its bytes after ``prefix`` (OSError if
    the file cannot be read)."""
    digest = hashlib.sha256(prefix)
    with file.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()
