"""The speech dataset: reviewed transcripts with their audio, so that a municipality can
measure or improve its speech-to-text model on its own residents' speech.

A manifest in JSON Lines (``manifest.jsonl``), one object per clip::

    {"audio": "audio/123.wav", "text": "...", "machine_text": "...", "language": "fi",
     "duration": 4.2, "campaign": "Strategy 2026", "question": "develop-open",
     "question_text": "What should the town develop?"}

``audio`` is relative to the manifest; ``text`` is the reviewer's corrected text (the
machine text where the reviewer accepted it unchanged), ``machine_text`` what the engine
heard (so that a word error rate can be measured straight away). A recording whose file
is missing is left out of the manifest.

Two containers: a ZIP streamed while it is written (``zip_chunks``: the archive goes out
in chunks, the manifest first, then each WAV read 64 KiB at a time, nothing kept) and a
folder (``write_folder``, the command line's ``--dataset DIR``).
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ivr.exports.rows import Clip

MANIFEST = "manifest.jsonl"
READ_CHUNK = 64 * 1024


def audio_name(clip: Clip) -> str:
    suffix = Path(clip.path).suffix.lower() or ".wav"
    return f"audio/{clip.transcript_id}{suffix}"


def manifest_line(clip: Clip, campaign: str, question_texts: Mapping[str, str]) -> str:
    entry: dict[str, Any] = {
        "audio": audio_name(clip),
        "text": clip.text,
        "machine_text": clip.machine_text,
        "language": clip.language,
        "duration": round(clip.duration, 3),
        "campaign": campaign,
        "question": clip.question,
        "question_text": question_texts.get(clip.question, ""),
    }
    return json.dumps(entry, ensure_ascii=False) + "\n"


class _Pipe:
    """A write-only, unseekable file whose bytes are taken out as they come (zipfile then
    writes data descriptors instead of seeking back)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def zip_chunks(
    clips: Callable[[], Iterable[Clip]], campaign: str, question_texts: Mapping[str, str]
) -> Iterator[bytes]:
    """The dataset as a ZIP archive, in chunks: the manifest first (compressed), then the
    WAVs as they are. ``clips`` gives the clips afresh for each of the two passes (read
    in keyset-paged chunks: nothing is kept between them)."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", zipfile.ZIP_STORED) as archive:
        info = zipfile.ZipInfo(MANIFEST)
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w") as manifest:
            for clip in clips():
                if Path(clip.path).is_file():
                    manifest.write(manifest_line(clip, campaign, question_texts).encode())
                    yield pipe.take()
        for clip in clips():
            source = Path(clip.path)
            if not source.is_file():
                continue
            with source.open("rb") as audio, archive.open(audio_name(clip), "w") as entry:
                while data := audio.read(READ_CHUNK):
                    entry.write(data)
                    yield pipe.take()
            yield pipe.take()
    yield pipe.take()


def write_folder(
    folder: Path, clips: Iterable[Clip], campaign: str, question_texts: Mapping[str, str]
) -> int:
    """The dataset into ``folder`` (``manifest.jsonl`` and ``audio/``); the clips written."""
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    count = 0
    with (folder / MANIFEST).open("w", encoding="utf-8") as manifest:
        for clip in clips:
            source = Path(clip.path)
            if not source.is_file():
                continue
            shutil.copyfile(source, folder / audio_name(clip))
            manifest.write(manifest_line(clip, campaign, question_texts))
            count += 1
    return count
