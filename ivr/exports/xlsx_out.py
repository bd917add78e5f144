"""XLSX in constant memory: xlsxwriter's ``constant_memory`` mode writes each row to a
temporary file as it comes (nothing of earlier rows stays in memory), then zips the
workbook into the given file. The HTTP response streams that file in chunks when the
workbook is done (an XLSX is a zip archive whose directory is written last).

Cells are typed: numbers as numbers, text as text (never read as a formula or a link);
a sheet holds at most 1,048,576 rows, so a larger export goes on to a second sheet with
the same header.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import IO

import xlsxwriter  # type: ignore[import-untyped]

from ivr.exports.columns import Cell

MAX_ROWS = 1_048_576  # Excel's limit, the header included
READ_CHUNK = 64 * 1024


def write(
    out: IO[bytes],
    sheet_name: str,
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    max_rows: int = MAX_ROWS,
) -> int:
    """Write the workbook to ``out``; the number of data rows written."""
    workbook = xlsxwriter.Workbook(
        out,
        {
            "constant_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    bold = workbook.add_format({"bold": True})
    sheets = 0
    sheet = None
    row_no = max_rows  # start a sheet at the first row
    written = 0
    for row in rows:
        if row_no >= max_rows:
            sheets += 1
            sheet = workbook.add_worksheet(sheet_name if sheets == 1 else f"{sheet_name} {sheets}")
            sheet.write_row(0, 0, header, bold)
            sheet.freeze_panes(1, 0)
            row_no = 1
        assert sheet is not None
        for col, cell in enumerate(row):
            if cell is None:
                continue
            if isinstance(cell, (int, float)):
                sheet.write_number(row_no, col, cell)
            else:
                sheet.write_string(row_no, col, cell)
        row_no += 1
        written += 1
    if sheet is None:  # no rows: the header alone
        sheet = workbook.add_worksheet(sheet_name)
        sheet.write_row(0, 0, header, bold)
    workbook.close()
    return written


def chunks(
    sheet_name: str, header: Sequence[str], rows: Iterable[Sequence[Cell]]
) -> Iterator[bytes]:
    """The workbook as chunks, written through a temporary file (deleted at the end)."""
    with tempfile.TemporaryFile() as out:
        write(out, sheet_name, header, rows)
        out.seek(0)
        while data := out.read(READ_CHUNK):
            yield data
