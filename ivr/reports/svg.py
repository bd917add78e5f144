"""Bar charts as SVG text, drawn on the server (pure).

Readable without JavaScript and without styles: the chart is an ``<svg role="img">`` named
by its ``<title>`` and described by its ``<desc>`` (which says every bar's number, for a
screen reader); the page puts the same numbers in a table beside it. No ``style``
attributes (the content security policy forbids inline styles): the colours come from the
classes ``chart-bar``, ``chart-bar-weighted``, ``chart-label`` and ``chart-value`` in
site.css, and the geometry from plain SVG attributes. Every text is escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

WIDTH: Final = 640
LABEL_WIDTH: Final = 220  # the labels' column, right-aligned to it
VALUE_WIDTH: Final = 70  # the numbers after the bars
ROW: Final = 30
BAR: Final = 18
MAX_LABEL: Final = 30  # characters; the table beside the chart has the whole label


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float  # the bar's length in the chart's unit (a share 0..1, a count)
    text: str  # how the number reads, e.g. "42 %" or "12"
    second: float | None = None  # a second, thinner bar (the weighted result)
    second_text: str = ""


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1].rstrip() + "…"


def _number(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def bar_chart(chart_id: str, title: str, description: str, bars: Sequence[Bar]) -> str:
    """An SVG horizontal bar chart; ``chart_id`` makes the title's and description's ids
    unique on the page (letters, digits and dashes)."""
    safe_id = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in chart_id)
    top = max((max(b.value, b.second or 0.0) for b in bars), default=0.0)
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 10
    height = max(ROW * len(bars), ROW) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'aria-labelledby="{safe_id}-title {safe_id}-desc" focusable="false">',
        f'<title id="{safe_id}-title">{escape(title)}</title>',
        f'<desc id="{safe_id}-desc">{escape(description)}</desc>',
    ]
    for n, bar in enumerate(bars):
        y = 5 + n * ROW
        length = span * bar.value / top if top > 0 else 0.0
        parts.append(
            f'<text class="chart-label" x="{LABEL_WIDTH - 8}" y="{y + BAR - 4}" '
            f'text-anchor="end">{escape(_short(bar.label))}</text>'
        )
        if bar.second is None:
            end = length
            parts.append(_rect("chart-bar", y, length, BAR))
            text = bar.text
        else:
            second = span * bar.second / top if top > 0 else 0.0
            end = max(length, second)
            parts.append(_rect("chart-bar", y, length, BAR // 2))
            parts.append(_rect("chart-bar-weighted", y + BAR // 2, second, BAR // 2))
            text = f"{bar.text} / {bar.second_text}"
        parts.append(
            f'<text class="chart-value" x="{_number(LABEL_WIDTH + end + 6)}" '
            f'y="{y + BAR - 4}">{escape(text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _rect(css_class: str, y: int, length: float, height: int) -> str:
    return (
        f'<rect class="{css_class}" x="{LABEL_WIDTH}" y="{y}" '
        f'width="{_number(length)}" height="{height}"/>'
    )
