"""Speech-to-text: one interface (SpeechEngine -> Transcript), one module per engine.

Importing this package is cheap; an engine's libraries load when the engine is built.
"""

from __future__ import annotations

from ivr.speech.stt.base import (
    FLAG_DESCRIPTIONS,
    FLAG_EMPTY,
    FLAG_NO_SPEECH,
    FLAG_SILENT,
    FLAG_TOO_SHORT,
    AudioError,
    ModelError,
    Segment,
    SpeechEngine,
    SttConfig,
    SttError,
    Transcript,
)

ENGINES = ("faster-whisper", "google")


def make_engine(config: SttConfig) -> SpeechEngine:
    """The engine ``config`` names; ModelError for an unknown one."""
    if config.engine == "faster-whisper":
        from ivr.speech.stt.faster_whisper import FasterWhisperEngine

        return FasterWhisperEngine(config)
    if config.engine == "google":
        try:
            from ivr.speech.stt.google import GoogleSpeechEngine
        except ImportError as exc:
            raise ModelError(
                f"the google engine needs the optional extra: pip install 'ivr[google]' "
                f"(google-cloud-speech); importing it failed: {exc}"
            ) from None
        return GoogleSpeechEngine(config)
    raise ModelError(
        f"unknown speech-to-text engine {config.engine!r} (known: {', '.join(ENGINES)})"
    )


__all__ = [
    "ENGINES",
    "FLAG_DESCRIPTIONS",
    "FLAG_EMPTY",
    "FLAG_NO_SPEECH",
    "FLAG_SILENT",
    "FLAG_TOO_SHORT",
    "AudioError",
    "ModelError",
    "Segment",
    "SpeechEngine",
    "SttConfig",
    "SttError",
    "Transcript",
    "make_engine",
]
