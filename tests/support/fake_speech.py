"""A local stand-in for Google Cloud Speech v2: a real gRPC server on 127.0.0.1.

It serves ``google.cloud.speech.v2.Speech/Recognize`` with the package's own message types,
records every request (and its metadata), and answers from a script the test sets: each
reply is a RecognizeResponse, a ``Status`` (an error code and message), or a function of the
request that returns one of those. Without a scripted reply it answers FAILED_PRECONDITION
naming the request, so a test that sends more than it expects fails clearly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc  # type: ignore[import-untyped]
from google.cloud.speech_v2.types import cloud_speech

SERVICE = "google.cloud.speech.v2.Speech"


@dataclass(frozen=True)
class Status:
    """An error answer: a gRPC status code and its message."""

    code: grpc.StatusCode
    message: str


Reply = cloud_speech.RecognizeResponse | Status
Script = Reply | Callable[[cloud_speech.RecognizeRequest], Reply]


@dataclass(frozen=True)
class Received:
    """One request the server got, and its metadata (e.g. the routing header)."""

    request: cloud_speech.RecognizeRequest
    metadata: dict[str, str]


class FakeSpeech:
    """The server; ``replies`` are used in order, then ``default`` (if set) for the rest."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.replies: list[Script] = []
        self.default: Script | None = None
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.unary_unary_rpc_method_handler(
            self._recognize,
            request_deserializer=cloud_speech.RecognizeRequest.deserialize,
            response_serializer=cloud_speech.RecognizeResponse.serialize,
        )
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"Recognize": handler}),)
        )
        self.port = int(self._server.add_insecure_port("127.0.0.1:0"))
        if self.port == 0:
            raise RuntimeError("the fake Speech server could not bind a port on 127.0.0.1")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeSpeech:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None)

    def channel(self) -> Any:
        """A new insecure client channel to this server (close it when done)."""
        return grpc.insecure_channel(self.address)

    def script(self, *replies: Script) -> None:
        """Set the replies to the next requests, in order (forgetting earlier ones)."""
        with self._lock:
            self.replies = list(replies)

    def requests(self) -> list[cloud_speech.RecognizeRequest]:
        with self._lock:
            return [r.request for r in self.received]

    def _recognize(
        self, request: cloud_speech.RecognizeRequest, context: Any
    ) -> cloud_speech.RecognizeResponse:
        metadata = {str(k): str(v) for k, v in context.invocation_metadata()}
        with self._lock:
            self.received.append(Received(request, metadata))
            number = len(self.received)
            script = self.replies.pop(0) if self.replies else self.default
        if script is None:
            script = Status(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"fake Speech server: no reply scripted for request {number}",
            )
        reply = script(request) if callable(script) else script
        if isinstance(reply, Status):
            context.abort(reply.code, reply.message)  # raises: the client gets the status
            raise AssertionError("grpc's context.abort returned")
        return reply


@contextmanager
def fake_speech_server() -> Iterator[FakeSpeech]:
    """A started fake server on a free loopback port; stopped afterwards."""
    server = FakeSpeech().start()
    try:
        yield server
    finally:
        server.stop()


def word(text: str, start: float, end: float, confidence: float = 0.0) -> cloud_speech.WordInfo:
    return cloud_speech.WordInfo(
        word=text,
        start_offset=timedelta(seconds=start),
        end_offset=timedelta(seconds=end),
        confidence=confidence,
    )


def result(
    transcript: str,
    words: Sequence[cloud_speech.WordInfo] = (),
    *,
    confidence: float = 0.0,
    end: float | None = None,
    language_code: str = "",
) -> cloud_speech.SpeechRecognitionResult:
    """One result with one alternative; ``end`` is its result_end_offset (if given)."""
    alternative = cloud_speech.SpeechRecognitionAlternative(
        transcript=transcript, confidence=confidence, words=list(words)
    )
    found = cloud_speech.SpeechRecognitionResult(
        alternatives=[alternative], language_code=language_code
    )
    if end is not None:
        found.result_end_offset = timedelta(seconds=end)
    return found


def response(*results: cloud_speech.SpeechRecognitionResult) -> cloud_speech.RecognizeResponse:
    return cloud_speech.RecognizeResponse(results=list(results))
