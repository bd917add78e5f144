"""The offline engine: faster-whisper (CTranslate2) with a model per language.

Models are never downloaded here. A model is a local CTranslate2 directory, or a name that
must already be on this machine (``models_dir/<name>`` or the Hugging Face cache); anything
else is a ModelError that says how to fetch it on a machine with internet.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faster_whisper import WhisperModel  # type: ignore[import-untyped]
from huggingface_hub import try_to_load_from_cache

from ivr.speech.stt.base import (
    FLAG_NO_SPEECH,
    ModelError,
    Segment,
    SttConfig,
    Transcript,
)
from ivr.speech.stt.hygiene import HygieneSettings, Prepared, prepare

log = logging.getLogger(__name__)

ENGINE_NAME = "faster-whisper"

# The files of a CTranslate2 Whisper model that loading needs. (Without tokenizer.json,
# faster-whisper would fetch a tokenizer from the Hub.)
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")

# Model names faster-whisper knows, and the Hub repository each is published in.
KNOWN_MODELS = {
    "tiny": "Systran/faster-whisper-tiny",
    "tiny.en": "Systran/faster-whisper-tiny.en",
    "base": "Systran/faster-whisper-base",
    "base.en": "Systran/faster-whisper-base.en",
    "small": "Systran/faster-whisper-small",
    "small.en": "Systran/faster-whisper-small.en",
    "medium": "Systran/faster-whisper-medium",
    "medium.en": "Systran/faster-whisper-medium.en",
    "large-v1": "Systran/faster-whisper-large-v1",
    "large-v2": "Systran/faster-whisper-large-v2",
    "large-v3": "Systran/faster-whisper-large-v3",
    "large": "Systran/faster-whisper-large-v3",
    "distil-large-v3": "Systran/faster-distil-whisper-large-v3",
    "large-v3-turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
    "turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
}


def fetch_hint(name: str) -> str:
    """How an operator puts model ``name`` on this machine (from one with internet)."""
    repo = KNOWN_MODELS.get(name, name if "/" in name else None)
    if repo is None:
        lines = [
            f"{name!r} is neither a model folder nor a known model name",
            f"  (known: {', '.join(KNOWN_MODELS)}; or a Hub id like Systran/faster-whisper-small).",
        ]
    else:
        folder = name.replace("/", "--")
        lines = [
            "models are never downloaded at run time. On a machine with internet, run",
            f"    huggingface-cli download {repo} --local-dir models/{folder}",
            "  (`hf download` with newer huggingface_hub), copy the folder to this machine",
            f"  and configure its path (or put it in the models directory as {folder}).",
        ]
    lines += [
        "A Whisper fine-tune in transformers format (e.g. a Finnish or Swedish one) must first",
        "be converted to CTranslate2 (pip install ctranslate2 transformers torch):",
        "    ct2-transformers-converter --model <hub id> --output_dir models/<name> \\",
        "        --copy_files tokenizer.json preprocessor_config.json --quantization int8",
    ]
    return "\n".join(lines)


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~")) or spec.endswith("/") or "\\" in spec


def _check_model_dir(spec: str, folder: Path) -> Path:
    if not folder.is_dir():
        raise ModelError(f"model {spec!r}: {folder} is not a directory")
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelError(
            f"model {spec!r}: {folder} is not a CTranslate2 Whisper model "
            f"(missing {', '.join(missing)})"
        )
    return folder


def _from_hub_cache(name: str) -> Path | None:
    """The folder of ``name`` in the Hugging Face cache, if it is there (no network)."""
    repo = KNOWN_MODELS.get(name, name if "/" in name else None)
    if repo is None:
        return None
    try:
        found = try_to_load_from_cache(repo, "model.bin")
    except ValueError:  # not a valid repository id
        return None
    if isinstance(found, str):
        return Path(found).parent
    return None


def resolve_model(spec: str, models_dir: Path | None = None) -> Path:
    """The local folder of model ``spec`` (a path or a name); ModelError when it is absent."""
    spec = spec.strip()
    if not spec:
        raise ModelError("empty model name")
    as_path = Path(spec).expanduser()
    if as_path.exists() or _looks_like_path(spec):
        if not as_path.exists():
            raise ModelError(f"model {spec!r}: {as_path.absolute()} does not exist")
        return _check_model_dir(spec, as_path.resolve())
    if models_dir is not None:
        for candidate in (models_dir / spec, models_dir / spec.replace("/", "--")):
            if candidate.is_dir():
                return _check_model_dir(spec, candidate)
    cached = _from_hub_cache(spec)
    if cached is not None:
        return _check_model_dir(spec, cached)
    where = f" (looked in {models_dir} and the Hugging Face cache)" if models_dir else ""
    raise ModelError(f"model {spec!r} is not on this machine{where}:\n{fetch_hint(spec)}")


@dataclass(frozen=True)
class LoadedModel:
    """A loaded model, what it is, and how long it took to load."""

    spec: str
    path: Path
    device: str
    compute_type: str
    multilingual: bool
    load_seconds: float
    model: Any  # a faster_whisper.WhisperModel (the package has no type information)


def _confidence(avg_logprob: float) -> float:
    """The geometric-mean token probability of a segment, in 0..1."""
    return max(0.0, min(1.0, math.exp(avg_logprob)))


class FasterWhisperEngine:
    """faster-whisper behind the SpeechEngine interface; loaded models are cached."""

    name = ENGINE_NAME

    def __init__(self, config: SttConfig, hygiene: HygieneSettings | None = None) -> None:
        if config.engine != ENGINE_NAME:
            raise ModelError(f"engine {config.engine!r} is not {ENGINE_NAME!r}")
        if config.threads < 0:
            raise ModelError(f"threads must be 0 (automatic) or more, not {config.threads}")
        self.config = config
        self.hygiene = hygiene or HygieneSettings()
        self.load_count = 0  # models actually loaded (not taken from the cache)
        self._models: dict[tuple[Path, str, str, int], LoadedModel] = {}
        self._lock = threading.Lock()

    def load(self, spec: str) -> LoadedModel:
        """Load model ``spec`` (a path or a name), or take it from the cache."""
        path = resolve_model(spec, self.config.models_dir)
        device, compute_type = self.config.device, self.config.resolved_compute_type()
        key = (path, device, compute_type, self.config.threads)
        with self._lock:
            loaded = self._models.get(key)
            if loaded is None:
                loaded = self._load(spec, path, device, compute_type)
                self._models[key] = loaded
            return loaded

    def _load(self, spec: str, path: Path, device: str, compute_type: str) -> LoadedModel:
        started = time.perf_counter()
        try:
            model = WhisperModel(
                str(path),
                device=device,
                compute_type=compute_type,
                cpu_threads=self.config.threads,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            where = "" if spec == str(path) else f" ({path})"
            raise ModelError(
                f"model {spec!r}{where} does not load on {device} with compute type "
                f"{compute_type}: {exc}"
            ) from None
        seconds = time.perf_counter() - started
        self.load_count += 1
        multilingual = bool(model.model.is_multilingual)
        log.info("loaded model %s from %s in %.2f s", spec, path, seconds)
        return LoadedModel(spec, path, device, compute_type, multilingual, seconds, model)

    def model_for(self, language: str) -> LoadedModel:
        """The loaded model for ``language``; ModelError if it cannot transcribe it."""
        spec = self.config.model_for(language)
        loaded = self.load(spec)
        if language not in loaded.model.supported_languages:
            only = "English-only" if not loaded.multilingual else "not trained for it"
            raise ModelError(
                f"model {spec!r} cannot transcribe language {language!r} ({only}); "
                f"configure a model for {language!r}"
            )
        return loaded

    def transcribe(self, path: Path, language: str) -> Transcript:
        """Transcribe the recording at ``path`` as ``language`` (never auto-detected).

        Silent and too-short recordings are flagged without loading or running a model.
        """
        language = language.strip().lower()
        if not language:
            raise ModelError("a language is required (fi, sv or en); it is never guessed")
        spec = self.config.model_for(language)
        prepared = prepare(Path(path), self.hygiene)
        if prepared.flagged is not None:
            return self._flagged(prepared, language, spec, prepared.flagged)
        loaded = self.model_for(language)
        return self._run(loaded, prepared, language)

    def _flagged(self, prepared: Prepared, language: str, spec: str, flag: str) -> Transcript:
        return Transcript(
            text="",
            language=language,
            engine=self.name,
            model=spec,
            confidence=None,
            segments=[],
            audio_seconds=round(prepared.measure.audio_seconds, 3),
            speech_seconds=round(prepared.measure.speech_seconds, 3),
            flagged=flag,
        )

    def _run(self, loaded: LoadedModel, prepared: Prepared, language: str) -> Transcript:
        pieces, _info = loaded.model.transcribe(
            prepared.samples,
            language=language,
            task="transcribe",
            beam_size=self.config.beam_size,
            # Each answer stands alone: conditioning on earlier text feeds hallucination loops.
            condition_on_previous_text=False,
            # Silero VAD (bundled with faster-whisper) skips long pauses inside an answer.
            vad_filter=True,
            vad_parameters={"min_silence_duration_ms": 700, "speech_pad_ms": 300},
        )
        segments: list[Segment] = []
        for piece in pieces:  # a generator: decoding happens here
            text = piece.text.strip()
            if not text:
                continue
            segments.append(
                Segment(
                    start=round(piece.start + prepared.offset, 3),
                    end=round(piece.end + prepared.offset, 3),
                    text=text,
                    confidence=round(_confidence(piece.avg_logprob), 4),
                )
            )
        audio_seconds = round(prepared.measure.audio_seconds, 3)
        speech_seconds = round(prepared.measure.speech_seconds, 3)
        if not segments:
            return Transcript(
                text="",
                language=language,
                engine=self.name,
                model=loaded.spec,
                confidence=None,
                segments=[],
                audio_seconds=audio_seconds,
                speech_seconds=speech_seconds,
                flagged=FLAG_NO_SPEECH,
            )
        weights = [max(s.end - s.start, 0.01) for s in segments]
        confidence = sum(
            w * (s.confidence or 0.0) for w, s in zip(weights, segments, strict=True)
        ) / sum(weights)
        return Transcript(
            text=" ".join(s.text for s in segments),
            language=language,
            engine=self.name,
            model=loaded.spec,
            confidence=round(confidence, 4),
            segments=segments,
            audio_seconds=audio_seconds,
            speech_seconds=speech_seconds,
            flagged=None,
        )
