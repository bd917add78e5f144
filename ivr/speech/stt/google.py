"""The cloud engine: Google Cloud Speech-to-Text v2 (optional extra ``ivr[google]``).

The call's language is always sent (fi -> fi-FI, sv -> sv-SE, en -> en-US); nothing is left
to auto-detection. The same audio hygiene as the offline engine runs first, so a silent or
too-short recording is flagged without a request (and without a cost). The rest is trimmed,
resampled to 16 kHz and sent as headerless 16-bit linear PCM, mono, with an explicit decoding
config. A synchronous Recognize takes at most about 60 s of audio, so longer speech is cut
into chunks of at most ``MAX_CHUNK_SECONDS``, at pauses where there are any, and the results
are joined in order. Times count from the start of the original file.

The recognizer is the implicit one, ``projects/{project}/locations/{location}/recognizers/_``,
on the regional endpoint ``{location}-speech.googleapis.com`` (``speech.googleapis.com`` for
the global location) unless an endpoint is configured. Credentials come from
GOOGLE_APPLICATION_CREDENTIALS (application default credentials); the channel is TLS.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import google.auth
import numpy as np
import numpy.typing as npt
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud import speech_v2
from google.cloud.speech_v2.services.speech.transports import SpeechGrpcTransport
from google.cloud.speech_v2.types import cloud_speech

from ivr.speech.stt.base import (
    FLAG_NO_SPEECH,
    ModelError,
    Segment,
    SttConfig,
    SttError,
    Transcript,
    Word,
)
from ivr.speech.stt.hygiene import (
    HygieneSettings,
    Prepared,
    Samples,
    frame_levels,
    prepare,
    speech_frames,
)

log = logging.getLogger(__name__)

ENGINE_NAME = "google"
CREDENTIALS_VARIABLE = "GOOGLE_APPLICATION_CREDENTIALS"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)

# The call's language -> the BCP-47 code Google expects.
LANGUAGE_CODES = {"fi": "fi-FI", "sv": "sv-SE", "en": "en-US"}

SEND_RATE = 16_000  # Hz: what the audio is resampled to and declared as
MAX_CHUNK_SECONDS = 55.0  # a synchronous Recognize takes about 60 s of audio at most
MIN_CHUNK_SECONDS = 20.0  # a cut at a pause is looked for this far into a chunk and later
REQUEST_TIMEOUT = 120.0  # seconds for one Recognize call

# gRPC status codes after which sending the same request again cannot succeed.
PERMANENT_CODES = {
    "PERMISSION_DENIED": "check that the Speech-to-Text API is enabled in project {project} "
    "and that the credentials' service account has the Cloud Speech Client role "
    "(roles/speech.client)",
    "UNAUTHENTICATED": f"the credentials ({CREDENTIALS_VARIABLE}) were not accepted",
    "INVALID_ARGUMENT": "check stt.google_model ({model!r}) is offered for {code} in location "
    "{location}, and the project and location settings",
    "NOT_FOUND": "check stt.google_project ({project!r}) and stt.google_location ({location!r})",
    "FAILED_PRECONDITION": "the project or recognizer is not set up for this request",
    "OUT_OF_RANGE": "the request is outside what the API accepts",
    "UNIMPLEMENTED": "the endpoint {endpoint} does not offer Speech-to-Text v2 Recognize",
}
# gRPC status codes of a passing problem: the transcription job tries again later.
TEMPORARY_CODES = {
    "UNAVAILABLE": "the service is unavailable",
    "DEADLINE_EXCEEDED": "no answer in time",
    "RESOURCE_EXHAUSTED": "a quota is used up for now",
    "INTERNAL": "an internal error of the service",
    "ABORTED": "the request was aborted",
    "UNKNOWN": "an unknown error",
    "CANCELLED": "the request was cancelled",
}


class GoogleSpeechError(SttError):
    """An error answer of the Speech API; ``retryable`` says whether trying later may help."""

    def __init__(self, message: str, code: str, retryable: bool) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


def endpoint_for(config: SttConfig) -> str:
    """The API host: the configured endpoint, else the location's regional endpoint."""
    if config.google_endpoint.strip():
        return config.google_endpoint.strip()
    location = config.google_location.strip()
    if not location:
        raise ModelError("stt.google_location is empty (e.g. eu, us, global or europe-west4)")
    if location == "global":
        return "speech.googleapis.com"
    return f"{location}-speech.googleapis.com"


def recognizer_for(config: SttConfig) -> str:
    """The implicit recognizer of the configured project and location."""
    return (
        f"projects/{config.google_project.strip()}/locations/"
        f"{config.google_location.strip()}/recognizers/_"
    )


def language_code(language: str) -> str:
    """The BCP-47 code of the call's language; ModelError for a language we do not send."""
    code = LANGUAGE_CODES.get(language.strip().lower())
    if code is None:
        raise ModelError(
            f"the google engine transcribes fi, sv and en, not {language!r} "
            "(the call's language is always sent, never guessed)"
        )
    return code


def load_credentials() -> Any:
    """Application default credentials; ModelError naming the variable when there are none."""
    try:
        credentials, _project = google.auth.default(scopes=list(SCOPES))
    except auth_exceptions.DefaultCredentialsError as exc:
        raise ModelError(
            f"no usable Google credentials: {exc} -- set {CREDENTIALS_VARIABLE} to the path "
            "of a service account key file (JSON) that this user can read"
        ) from None
    return credentials


def plan_chunks(
    samples: Samples,
    rate: int,
    settings: HygieneSettings,
    max_seconds: float = MAX_CHUNK_SECONDS,
    min_seconds: float = MIN_CHUNK_SECONDS,
) -> list[tuple[int, int]]:
    """(start, end) sample ranges of at most ``max_seconds`` covering ``samples`` in order.

    Each cut is in the middle of the longest pause between ``min_seconds`` and
    ``max_seconds`` into the chunk; where there is no pause, at the quietest frame there.
    """
    if max_seconds <= 0 or not 0 <= min_seconds < max_seconds:
        raise ValueError(f"chunk lengths must be 0 <= min < max, not {min_seconds}, {max_seconds}")
    total = len(samples)
    limit = int(max_seconds * rate)
    if total <= limit:
        return [(0, total)] if total else []
    frame = max(1, rate * settings.frame_ms // 1000)
    levels = frame_levels(samples, rate, settings.frame_ms)
    pause = ~speech_frames(levels, settings)
    chunks: list[tuple[int, int]] = []
    start = 0
    while total - start > limit:
        first = -(-(start + int(min_seconds * rate)) // frame)  # whole frames in the window
        last = (start + limit) // frame  # exclusive
        cut = _cut_frame(pause[first:last], levels[first:last])
        end = (first + cut) * frame if cut is not None else start + limit
        end = min(max(end, start + frame), start + limit)
        chunks.append((start, end))
        start = end
    chunks.append((start, total))
    return chunks


def _cut_frame(pause: npt.NDArray[np.bool_], levels: npt.NDArray[np.float64]) -> int | None:
    """The frame (index into the window) to cut at: mid longest pause, else the quietest."""
    if len(pause) == 0:
        return None
    best: tuple[int, int] | None = None
    run_start: int | None = None
    for i, quiet in enumerate([*pause.tolist(), False]):
        if quiet and run_start is None:
            run_start = i
        elif not quiet and run_start is not None:
            if best is None or i - run_start >= best[1] - best[0]:
                best = (run_start, i)
            run_start = None
    if best is not None:
        return (best[0] + best[1]) // 2
    return int(np.argmin(levels))


def pcm16(samples: Samples) -> bytes:
    """Float samples in -1..1 as headerless 16-bit signed little-endian PCM."""
    scaled = np.clip(np.round(samples.astype(np.float64) * 32767.0), -32768, 32767)
    return scaled.astype("<i2").tobytes()


def _seconds(value: object) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    seconds = getattr(value, "seconds", 0)
    nanos = getattr(value, "nanos", 0)
    return float(seconds) + float(nanos) / 1e9


def _confidence(value: float) -> float | None:
    """Google's confidence; 0.0 is its sentinel for 'not given'."""
    return round(float(value), 4) if value > 0 else None


@dataclass(frozen=True)
class Chunk:
    """One request's worth of audio: where it starts in the file, and its samples."""

    index: int
    count: int
    start_seconds: float  # from the start of the original file
    samples: Samples


class GoogleSpeechEngine:
    """Google Cloud Speech-to-Text v2 behind the SpeechEngine interface.

    ``channel`` is for tests only: a gRPC channel (e.g. insecure, to a local fake server)
    used instead of the TLS channel with credentials that production always builds.
    """

    name = ENGINE_NAME

    def __init__(
        self,
        config: SttConfig,
        hygiene: HygieneSettings | None = None,
        *,
        channel: Any = None,
        max_chunk_seconds: float = MAX_CHUNK_SECONDS,
    ) -> None:
        if config.engine != ENGINE_NAME:
            raise ModelError(f"engine {config.engine!r} is not {ENGINE_NAME!r}")
        if not config.google_project.strip():
            raise ModelError(
                "stt.google_project is not set: the google engine needs the Google Cloud "
                "project that has the Speech-to-Text API enabled"
            )
        if not config.google_model.strip():
            raise ModelError("stt.google_model is empty (e.g. long, short, chirp_2)")
        if not 1.0 <= max_chunk_seconds <= 60.0:
            raise ModelError(f"max_chunk_seconds must be 1..60, not {max_chunk_seconds}")
        self.config = config
        self.hygiene = hygiene or HygieneSettings()
        self.endpoint = endpoint_for(config)
        self.recognizer = recognizer_for(config)
        self.model = config.google_model.strip()
        self.max_chunk_seconds = max_chunk_seconds
        self.request_count = 0  # Recognize calls made (each one is billed)
        self._channel = channel
        self._client: speech_v2.SpeechClient | None = None
        self._lock = threading.Lock()

    def client(self) -> speech_v2.SpeechClient:
        """The Speech client, built on first use (credentials are read then)."""
        with self._lock:
            if self._client is None:
                self._client = self._build_client()
            return self._client

    def _build_client(self) -> speech_v2.SpeechClient:
        if self._channel is not None:
            transport = SpeechGrpcTransport(host=self.endpoint, channel=self._channel)
            return speech_v2.SpeechClient(transport=transport)
        credentials = load_credentials()
        return speech_v2.SpeechClient(
            credentials=credentials,
            transport="grpc",
            client_options={"api_endpoint": self.endpoint},
        )

    def transcribe(self, path: Path, language: str) -> Transcript:
        """Transcribe the recording at ``path`` as ``language`` (never auto-detected).

        Silent and too-short recordings are flagged without any request.
        """
        language = language.strip().lower()
        if not language:
            raise ModelError("a language is required (fi, sv or en); it is never guessed")
        code = language_code(language)
        path = Path(path)
        prepared = prepare(path, self.hygiene, rate=SEND_RATE)
        if prepared.flagged is not None:
            return self._transcript(prepared, language, [], prepared.flagged)
        chunks = self.chunks(prepared)
        segments: list[Segment] = []
        for chunk in chunks:
            response = self._recognize(path, code, chunk)
            segments.extend(self._segments(response, chunk))
        return self._transcript(prepared, language, segments, None)

    def chunks(self, prepared: Prepared) -> list[Chunk]:
        """The prepared audio cut into requests under the synchronous limit."""
        ranges = plan_chunks(
            prepared.samples,
            SEND_RATE,
            self.hygiene,
            max_seconds=self.max_chunk_seconds,
            min_seconds=min(MIN_CHUNK_SECONDS, self.max_chunk_seconds / 2),
        )
        return [
            Chunk(i, len(ranges), prepared.offset + start / SEND_RATE, prepared.samples[start:end])
            for i, (start, end) in enumerate(ranges)
        ]

    def request(self, code: str, chunk: Chunk) -> cloud_speech.RecognizeRequest:
        """The Recognize request of one chunk."""
        config = cloud_speech.RecognitionConfig(
            explicit_decoding_config=cloud_speech.ExplicitDecodingConfig(
                encoding=cloud_speech.ExplicitDecodingConfig.AudioEncoding.LINEAR16,
                sample_rate_hertz=SEND_RATE,
                audio_channel_count=1,
            ),
            model=self.model,
            language_codes=[code],
            features=cloud_speech.RecognitionFeatures(
                enable_word_time_offsets=True,
                enable_word_confidence=True,
            ),
        )
        return cloud_speech.RecognizeRequest(
            recognizer=self.recognizer, config=config, content=pcm16(chunk.samples)
        )

    def _recognize(self, path: Path, code: str, chunk: Chunk) -> cloud_speech.RecognizeResponse:
        request = self.request(code, chunk)
        client = self.client()
        self.request_count += 1
        try:
            # No retries here: a failed job is retried as a whole, later.
            return client.recognize(request=request, retry=None, timeout=REQUEST_TIMEOUT)
        except api_exceptions.GoogleAPICallError as exc:
            raise self._api_error(exc, path, code, chunk) from None
        except auth_exceptions.GoogleAuthError as exc:
            raise ModelError(
                f"Google credentials failed for {path} ({exc}); check {CREDENTIALS_VARIABLE}"
            ) from None

    def _api_error(
        self, exc: api_exceptions.GoogleAPICallError, path: Path, code: str, chunk: Chunk
    ) -> GoogleSpeechError:
        status = exc.grpc_status_code
        name = status.name if status is not None else type(exc).__name__
        where = f"{path}" + (
            f" (part {chunk.index + 1} of {chunk.count})" if chunk.count > 1 else ""
        )
        said = exc.message or str(exc)
        context = f"project {self.config.google_project!r}, {self.endpoint}"
        values = {
            "project": self.config.google_project,
            "location": self.config.google_location,
            "model": self.model,
            "code": code,
            "endpoint": self.endpoint,
        }
        if name in TEMPORARY_CODES:
            return GoogleSpeechError(
                f"Google Speech-to-Text {name} for {where} ({context}): {said} -- "
                f"temporary ({TEMPORARY_CODES[name]}); the transcription will be retried",
                name,
                retryable=True,
            )
        hint = PERMANENT_CODES.get(name, "an unexpected answer of the service")
        return GoogleSpeechError(
            f"Google Speech-to-Text {name} for {where} ({context}): {said} -- "
            f"not retryable: {hint.format(**values)}",
            name,
            retryable=False,
        )

    def _segments(self, response: cloud_speech.RecognizeResponse, chunk: Chunk) -> list[Segment]:
        """One segment per result (its top alternative), times from the file's start."""
        segments: list[Segment] = []
        previous_end = 0.0  # within the chunk
        for result in response.results:
            if not result.alternatives:
                continue
            top = result.alternatives[0]
            text = top.transcript.strip()
            result_end = (
                _seconds(result.result_end_offset) if "result_end_offset" in result else 0.0
            )
            if not text:
                previous_end = max(previous_end, result_end)
                continue
            timed = [w for w in top.words if "end_offset" in w]
            start = _seconds(timed[0].start_offset) if timed else previous_end
            end = result_end or (_seconds(timed[-1].end_offset) if timed else start)
            end = max(end, start)
            confidence = _confidence(top.confidence)
            if confidence is None:
                word_scores = [w.confidence for w in top.words if w.confidence > 0]
                if word_scores:
                    confidence = round(sum(word_scores) / len(word_scores), 4)
            segments.append(
                Segment(
                    start=round(chunk.start_seconds + start, 3),
                    end=round(chunk.start_seconds + end, 3),
                    text=text,
                    confidence=confidence,
                    words=tuple(
                        Word(
                            round(chunk.start_seconds + _seconds(w.start_offset), 3),
                            round(chunk.start_seconds + _seconds(w.end_offset), 3),
                            w.word,
                        )
                        for w in timed
                        if w.word
                    ),
                )
            )
            previous_end = end
        return segments

    def _transcript(
        self, prepared: Prepared, language: str, segments: list[Segment], flagged: str | None
    ) -> Transcript:
        audio_seconds = round(prepared.measure.audio_seconds, 3)
        speech_seconds = round(prepared.measure.speech_seconds, 3)
        if flagged is None and not segments:
            flagged = FLAG_NO_SPEECH
        if flagged is not None:
            return Transcript(
                text="",
                language=language,
                engine=self.name,
                model=self.model,
                confidence=None,
                segments=[],
                audio_seconds=audio_seconds,
                speech_seconds=speech_seconds,
                flagged=flagged,
            )
        scored = [s for s in segments if s.confidence is not None]
        confidence: float | None = None
        if scored:
            weights = [max(s.end - s.start, 0.01) for s in scored]
            confidence = round(
                sum(w * (s.confidence or 0.0) for w, s in zip(weights, scored, strict=True))
                / sum(weights),
                4,
            )
        return Transcript(
            text=" ".join(s.text for s in segments),
            language=language,
            engine=self.name,
            model=self.model,
            confidence=confidence,
            segments=segments,
            audio_seconds=audio_seconds,
            speech_seconds=speech_seconds,
            flagged=None,
        )
