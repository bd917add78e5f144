"""The one speech-to-text interface: a transcript, its segments, the engine protocol, errors.

Every engine takes the call's language (fi, sv, en) explicitly: audio from a Finnish
campaign is transcribed as Finnish even where a model would guess otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

# What `Transcript.flagged` can say. A flagged transcript has no text.
FLAG_EMPTY = "empty"  # no audio at all (0 s, e.g. a hang-up at the beep): the model was not run
FLAG_SILENT = "silent"  # nothing louder than the silence threshold: the model was not run
FLAG_TOO_SHORT = "too_short"  # less speech than the minimum: the model was not run
FLAG_NO_SPEECH = "no_speech"  # the model ran and heard no words

FLAG_DESCRIPTIONS: Mapping[str, str] = {
    FLAG_EMPTY: "the recording is empty (0 s); it was not transcribed",
    FLAG_SILENT: "the recording is silent; it was not transcribed",
    FLAG_TOO_SHORT: "the recording has too little speech; it was not transcribed",
    FLAG_NO_SPEECH: "the model heard no words in the recording",
}


class SttError(Exception):
    """A speech-to-text problem a user can act on; the message says what and where."""


class AudioError(SttError):
    """A file that cannot be used as audio (missing, empty, corrupt, not audio)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class ModelError(SttError):
    """A model that is not configured, not on this machine, or does not load."""


@dataclass(frozen=True)
class Word:
    """One word of a segment and when it was said (seconds from the start of the file)."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Segment:
    """A stretch of the recording; times in seconds from the start of the original file.
    ``words`` are its words with their times where the engine gives them (else empty)."""

    start: float
    end: float
    text: str
    confidence: float | None
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Transcript:
    """What an engine heard in one recording, and how sure it was.

    ``confidence`` is in 0..1 (None when the engine gives none, or for a flagged
    recording). ``audio_seconds`` is the file's length and ``speech_seconds`` the part of it
    that the energy-based voice-activity measure counts as speech. ``flagged`` is None or
    one of the FLAG_* codes.
    """

    text: str
    language: str
    engine: str
    model: str
    confidence: float | None
    segments: list[Segment] = field(default_factory=list)
    audio_seconds: float = 0.0
    speech_seconds: float = 0.0
    flagged: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (segments as dicts)."""
        return asdict(self)


@runtime_checkable
class SpeechEngine(Protocol):
    """A speech-to-text engine. ``language`` is the call's language; never auto-detected."""

    @property
    def name(self) -> str: ...

    def transcribe(self, path: Path, language: str) -> Transcript: ...


@dataclass(frozen=True, kw_only=True)
class SttConfig:
    """How to build the speech-to-text engine (plain values; the app's config fills them).

    ``models`` maps a language to a model: a local CTranslate2 model directory, or a name
    (``small``, ``large-v3``, ``Systran/faster-whisper-small``…) that must already be on this
    machine: in ``models_dir/<name>`` or the Hugging Face cache. Nothing is ever downloaded.
    A language without an entry uses ``default_model``. ``compute_type`` None means int8 on
    the CPU and float16 on a GPU.
    """

    engine: str = "faster-whisper"
    models: Mapping[str, str] = field(default_factory=dict)
    default_model: str | None = None
    device: str = "cpu"
    compute_type: str | None = None
    threads: int = 2
    models_dir: Path | None = None
    beam_size: int = 5
    # Google Cloud Speech v2 (engine "google"); endpoint "" = derived from the location.
    google_project: str = ""
    google_location: str = "eu"
    google_endpoint: str = ""
    google_model: str = "long"
    # faster-whisper: how many 30-s windows one model pass decodes together (speech of one
    # recording, or of several with ``transcribe_many``).
    batch_size: int = 8

    def model_for(self, language: str) -> str:
        """The model configured for ``language``; ModelError if there is none."""
        model = self.models.get(language) or self.default_model
        if not model:
            raise ModelError(
                f"no speech-to-text model is configured for language {language!r} "
                "(and no default model)"
            )
        return model

    def resolved_compute_type(self) -> str:
        if self.compute_type:
            return self.compute_type
        return "int8" if self.device == "cpu" else "float16"
