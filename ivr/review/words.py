"""Pure helpers of the review queue: the words of a transcript with their times, the
queue's filter (from a query string and back), confidence bands and page cursors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

STATES = ("new", "reviewed", "second_look")
ORDERS = ("oldest", "confidence", "random")
# A band: (lowest included, highest excluded); None: open-ended.
BANDS: dict[str, tuple[float | None, float | None]] = {
    "low": (None, 0.5),
    "mid": (0.5, 0.8),
    "high": (0.8, None),
}


@dataclass(frozen=True)
class WordSpan:
    """One word of the machine transcript and when it is heard (seconds from the start)."""

    start: float
    end: float
    text: str


def _number(value: Any, default: float) -> float:
    try:
        found = float(value)
    except (TypeError, ValueError):
        return default
    return found if found == found else default  # NaN


def spread(start: float, end: float, text: str) -> list[WordSpan]:
    """A segment's words without their own times: spread evenly over the segment."""
    words = text.split()
    if not words:
        return []
    end = max(end, start)
    step = (end - start) / len(words)
    return [
        WordSpan(round(start + n * step, 3), round(start + (n + 1) * step, 3), word)
        for n, word in enumerate(words)
    ]


def word_spans(segments: str | list[Any]) -> list[WordSpan]:
    """The words of a transcript's segments (the stored JSON list) in time order: each
    segment's own word times, or its text spread evenly over it when it has none."""
    if isinstance(segments, str):
        try:
            segments = json.loads(segments or "[]")
        except ValueError:
            return []
    if not isinstance(segments, list):
        return []
    spans: list[WordSpan] = []
    for segment in segments:
        if not isinstance(segment, dict):
            continue
        start = _number(segment.get("start"), 0.0)
        end = _number(segment.get("end"), start)
        words = segment.get("words") or []
        own = [
            WordSpan(_number(w[0], start), _number(w[1], start), str(w[2]).strip())
            for w in words
            if isinstance(w, list | tuple) and len(w) >= 3 and str(w[2]).strip()
        ]
        spans += own if own else spread(start, end, str(segment.get("text") or ""))
    return spans


def band_of(confidence: float | None) -> str | None:
    """The band a confidence falls in (None: no confidence)."""
    if confidence is None:
        return None
    for name, (low, high) in BANDS.items():
        if (low is None or confidence >= low) and (high is None or confidence < high):
            return name
    return None


@dataclass(frozen=True)
class QueueFilter:
    """What the reviewer is working through: filters and an order. Empty: any."""

    state: str = "new"
    campaign: str = ""
    node: str = ""
    language: str = ""
    tag: int | None = None
    band: str = ""
    order: str = "oldest"

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> QueueFilter:
        """From a query string; unknown values fall back to the defaults."""
        state = args.get("state", "")
        order = args.get("order", "")
        band = args.get("band", "")
        tag = args.get("tag", "")
        return cls(
            state=state if state in STATES else "new",
            campaign=args.get("campaign", "").strip()[:36],
            node=args.get("node", "").strip()[:100],
            language=args.get("language", "").strip()[:8],
            tag=int(tag) if tag.isdigit() and len(tag) < 12 else None,
            band=band if band in BANDS else "",
            order=order if order in ORDERS else "oldest",
        )

    def args(self) -> dict[str, str]:
        """The query string that gives this filter back (defaults left out)."""
        found = {
            "state": self.state if self.state != "new" else "",
            "campaign": self.campaign,
            "node": self.node,
            "language": self.language,
            "tag": "" if self.tag is None else str(self.tag),
            "band": self.band,
            "order": self.order if self.order != "oldest" else "",
        }
        return {k: v for k, v in found.items() if v}

    def with_state(self, state: str) -> QueueFilter:
        return replace(self, state=state)


# ------------------------------------------------------------------ cursors
# A cursor names the last row of a page by its place in the order: "o:<iso time>:<id>"
# (oldest), "c:<confidence>:<id>" or "n:<id>" (lowest confidence; rows without a confidence
# come after those with one), "r:<sample key>:<id>" (random sample).


@dataclass(frozen=True)
class Cursor:
    kind: str  # "o", "c", "n", "r"
    value: str  # the ordered value as text ("" for "n")
    id: int


def encode_cursor(cursor: Cursor) -> str:
    if cursor.kind == "n":
        return f"n:{cursor.id}"
    return f"{cursor.kind}:{cursor.value}:{cursor.id}"


def decode_cursor(text: str | None, order: str) -> Cursor | None:
    """The cursor in a query string, or None (the first page) when it is missing, malformed
    or of another order."""
    if not text:
        return None
    kind, _, rest = text.partition(":")
    wanted = {"oldest": ("o",), "confidence": ("c", "n"), "random": ("r",)}.get(order, ())
    if kind not in wanted:
        return None
    if kind == "n":
        return Cursor("n", "", int(rest)) if rest.isdigit() else None
    value, _, ident = rest.rpartition(":")
    if not value or not ident.isdigit():
        return None
    if kind in ("c", "r"):
        try:
            float(value)
        except ValueError:
            return None
    return Cursor(kind, value, int(ident))
