"""The offline engine: faster-whisper (CTranslate2) with a model per language.

A recording is screened first (hygiene: silent and too-short ones are flagged and never
reach a model), its speech is packed into 30-s windows with the long pauses cut out (our
energy-based voice activity, already computed by the screening), and the windows are decoded
in batches by faster-whisper's BatchedInferencePipeline: one encoder pass per window, no
re-decoding at higher temperatures, timestamps mapped back to the original file; where the
model stopped before the end of a window's speech, the rest gets a pass of its own.
``transcribe_many`` batches the windows of several recordings together, which is where
batching saves CPU (see bench/stt_pipeline.py).

Models are never downloaded here. A model is a local CTranslate2 directory, or a name that
must already be on this machine (``models_dir/<name>`` or the Hugging Face cache); anything
else is a ModelError that says how to fetch it on a machine with internet.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from faster_whisper import (  # type: ignore[import-untyped]
    BatchedInferencePipeline,
    WhisperModel,
)
from huggingface_hub import try_to_load_from_cache

from ivr.speech.stt.base import (
    FLAG_NO_SPEECH,
    AudioError,
    ModelError,
    Segment,
    SttConfig,
    Transcript,
)
from ivr.speech.stt.hygiene import (
    WHISPER_RATE,
    HygieneSettings,
    Prepared,
    Window,
    prepare,
    windows,
)

log = logging.getLogger(__name__)

ENGINE_NAME = "faster-whisper"

WINDOW_SECONDS = 30.0  # what Whisper hears in one pass
# Whisper's own rule for a window without speech: likely silent, and what was decoded is
# improbable. Such text is dropped (it is what a model makes up from noise).
NO_SPEECH_PROBABILITY = 0.6
LOW_LOG_PROBABILITY = -1.0
# A window is decoded once; when the model stops before the end of the speech in it (it
# does, now and then, mostly on the last sentence), the rest is decoded again on its own,
# like Whisper's own sequential decoding does (at most this many more times per window).
MORE_PASSES = 2
LEFT_SPEECH_SECONDS = 1.0  # ...when at least this much speech is left

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
        if config.batch_size < 1:
            raise ModelError(f"batch size must be 1 or more, not {config.batch_size}")
        if config.beam_size < 1:
            raise ModelError(f"beam size must be 1 or more, not {config.beam_size}")
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
        AudioError for a file that is not usable audio.
        """
        (result,) = self.transcribe_many([path], language)
        if isinstance(result, AudioError):
            raise result
        return result

    def transcribe_many(
        self, paths: Sequence[Path], language: str
    ) -> list[Transcript | AudioError]:
        """Transcribe several recordings of one language, their windows decoded together.

        One result per path, in order: its Transcript, or the AudioError that says why the
        file is not usable (the others are transcribed all the same). ModelError when the
        language has no usable model (and a recording needs one).
        """
        language = language.strip().lower()
        if not language:
            raise ModelError("a language is required (fi, sv or en); it is never guessed")
        # Screening first: an empty, silent or too-short recording is flagged even when the
        # language has no model; the model is checked only when there is speech to decode.
        spec = self.config.models.get(language) or self.config.default_model or ""
        prepared: list[Prepared | AudioError] = []
        for path in paths:
            try:
                prepared.append(prepare(Path(path), self.hygiene))
            except AudioError as exc:
                prepared.append(exc)
        speech = [
            (index, item)
            for index, item in enumerate(prepared)
            if isinstance(item, Prepared) and item.flagged is None
        ]
        heard: dict[int, list[Segment]] = {}
        if speech:
            loaded = self.model_for(language)
            spec = loaded.spec
            work = deque(
                (index, window, 0)
                for index, item in speech
                for window in windows(item, self.hygiene, WINDOW_SECONDS)
            )
            while work:
                batch = [work.popleft() for _ in range(min(self.config.batch_size, len(work)))]
                decoded = self._decode(loaded, [(i, w) for i, w, _ in batch], language)
                for (index, window, passes), (segments, reached) in zip(
                    batch, decoded, strict=True
                ):
                    heard.setdefault(index, []).extend(segments)
                    left = window.speech_after(reached)
                    if (
                        segments
                        and passes < MORE_PASSES
                        and left >= self.hygiene.min_speech_seconds
                    ):
                        rest = window.after(reached)
                        if rest is not None:
                            work.append((index, rest, passes + 1))
        results: list[Transcript | AudioError] = []
        for index, item in enumerate(prepared):
            if isinstance(item, AudioError):
                results.append(item)
            elif item.flagged is not None:
                results.append(self._transcript(item, language, spec, [], item.flagged))
            else:
                found = sorted(heard.get(index, []), key=lambda s: (s.start, s.end))
                flag = None if found else FLAG_NO_SPEECH
                results.append(self._transcript(item, language, spec, found, flag))
        return results

    def _decode(
        self, loaded: LoadedModel, batch: Sequence[tuple[int, Window]], language: str
    ) -> list[tuple[list[Segment], float]]:
        """One batched pass over ``batch`` (recording index, window): for each window, the
        segments heard (times in the original file) and how far into the window the model's
        last segment reached (window seconds; 0 when it heard nothing)."""
        # The windows one after another, each as its own clip, starting a whole second (the
        # pipeline's seconds-to-samples conversion is exact) and more than a window (the
        # latest time a model can give) after the one before: a segment's start says whose
        # it is.
        spacing = math.ceil(WINDOW_SECONDS) + 1
        starts = [slot * spacing for slot in range(len(batch))]
        audio = np.zeros(len(batch) * spacing * WHISPER_RATE, dtype=np.float32)
        clips = []
        for second, (_, window) in zip(starts, batch, strict=True):
            first = second * WHISPER_RATE
            audio[first : first + len(window.samples)] = window.samples
            clips.append({"start": float(second), "end": second + window.seconds})
        pipeline = BatchedInferencePipeline(loaded.model)
        pieces, _info = pipeline.transcribe(
            audio,
            language=language,
            task="transcribe",
            beam_size=self.config.beam_size,
            batch_size=len(batch),
            without_timestamps=False,  # segments with times inside each window
            # No word timestamps: whisper's cross-attention alignment stretched a sentence's
            # last word over a long pause between windows (so its segment's end too), and
            # costs CPU; the review queue spreads a segment's words over its time instead.
            vad_filter=False,  # the windows hold speech already
            clip_timestamps=clips,
        )
        found: list[tuple[list[Segment], float]] = [([], 0.0) for _ in batch]
        for piece in pieces:  # a generator: decoding happens here
            text = piece.text.strip()
            if not text or (
                piece.no_speech_prob > NO_SPEECH_PROBABILITY
                and piece.avg_logprob < LOW_LOG_PROBABILITY
            ):
                continue
            slot = min(len(batch) - 1, int(piece.start // spacing))
            window = batch[slot][1]
            start = window.to_original(piece.start - starts[slot])
            end = max(start, window.to_original(piece.end - starts[slot], end=True))
            confidence = round(_confidence(piece.avg_logprob), 4)
            segments, reached = found[slot]
            segments.append(Segment(round(start, 3), round(end, 3), text, confidence))
            reached = max(reached, min(window.seconds, piece.end - starts[slot]))
            found[slot] = (segments, reached)
        return found

    def _transcript(
        self,
        prepared: Prepared,
        language: str,
        spec: str,
        segments: list[Segment],
        flagged: str | None,
    ) -> Transcript:
        confidence = None
        if segments:
            weights = [max(s.end - s.start, 0.01) for s in segments]
            confidence = sum(
                w * (s.confidence or 0.0) for w, s in zip(weights, segments, strict=True)
            ) / sum(weights)
        return Transcript(
            text=" ".join(s.text for s in segments),
            language=language,
            engine=self.name,
            model=spec,
            confidence=None if confidence is None else round(confidence, 4),
            segments=segments,
            audio_seconds=round(prepared.measure.audio_seconds, 3),
            speech_seconds=round(prepared.measure.speech_seconds, 3),
            flagged=flagged,
        )
