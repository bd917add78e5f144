"""CSV, streamed: a generator of encoded chunks, so that an export of any size is written
(or sent) while it is read, in constant memory.

The format, chosen for the people who open it (municipal staff, in Finnish or Swedish
Excel) and kept readable by tools: UTF-8 with a byte order mark (Excel then reads the
letters ä, ö and å right), ``;`` between fields by default (the list separator of Finnish
and Swedish Excel, and free-text answers are full of commas; ``,`` on request), CRLF line
ends, fields quoted only where needed, numbers with a decimal point (``1.25``), empty for
no value. A text cell that a spreadsheet would run as a formula (starting with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return) gets a leading ``'``, the usual guard
against formula injection; numbers are never changed.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence

from ivr.exports.columns import Cell

BOM = "\ufeff"
DELIMITERS = (";", ",")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 500
PHONE = re.compile(r"\+[0-9]+\Z")


def safe(cell: Cell) -> Cell:
    """A text cell with a leading ``'`` if a spreadsheet would read it as a formula (a
    phone number such as +358401234567, digits only, is left as it is)."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS) and not PHONE.match(cell):
        return "'" + cell
    return cell


def _text(cell: Cell) -> str | int | float:
    if cell is None:
        return ""
    if isinstance(cell, float):
        return repr(cell)
    return cell


def _risky(delimiter: str) -> re.Pattern[str]:
    """Where a written chunk may hold a field that :func:`safe` would change: a field
    (after a line start or ``delimiter``) starting with a formula character, quoted or not,
    other than an unquoted phone number. An unquoted ``\r`` is the line's end, never a
    field's start (the writer quotes a field holding one). It may find more (a negative
    number, a line of a multi-line text), never less."""
    d = re.escape(delimiter)
    return re.compile(rf'(?:^|{d})(?:"[=+\-@\t\r]|[=\-@\t]|\+(?![0-9]+(?:{d}|\r|$)))', re.MULTILINE)


def chunks(
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    delimiter: str = ";",
    rows_per_chunk: int = ROWS_PER_CHUNK,
) -> Iterator[bytes]:
    """The CSV file as UTF-8 chunks of ``rows_per_chunk`` rows (the first holds the BOM
    and the header).

    Written a chunk at a time as the rows are (the writer writes None as an empty field
    and a float as its repr: :func:`_text`'s rule); only a chunk in which a field may need
    :func:`safe` is written again cell by cell (rare: a call per cell is most of the
    writing's time)."""
    if delimiter not in DELIMITERS:
        raise ValueError(f"delimiter {delimiter!r}: use one of {' '.join(DELIMITERS)}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    risky = _risky(delimiter)
    writer.writerow(header)
    head = BOM + _take(buffer)
    source = iter(rows)
    while batch := list(itertools.islice(source, rows_per_chunk)):
        writer.writerows(batch)
        text = _take(buffer)
        if risky.search(text):
            writer.writerows([[safe(cell) for cell in row] for row in batch])
            text = _take(buffer)
        yield (head + text).encode("utf-8")
        head = ""
    if head:
        yield head.encode("utf-8")


def _take(buffer: io.StringIO) -> str:
    """What ``buffer`` holds, emptying it."""
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
