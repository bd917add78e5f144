"""SPSS ``.sav`` (pyreadstat) and its codebook.

The ``.sav`` holds the wide layout (one row per contact) with SPSS's own metadata: each
variable's label (the question's prompt), and for every question with options numeric
codes with value labels (the option's key where the keys are digits, else its place; a
stored value that is no option of the flow gets the next free code, labelled with the
value itself, so nothing is lost). Scales and numbers are numeric; the rest is text.

Unlike the CSV and XLSX exports this one is not constant in memory: pyreadstat writes
from a pandas DataFrame, so the whole table is built in memory first (about the size of
the CSV). The codebook (CSV: variable, label, type, value, value label) describes the
same variables and codes and is written by scanning the rows, in constant memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ivr.exports import csv_out
from ivr.exports.columns import NUMERIC_KINDS, Cell, Question

NUMERIC_CONTACT_COLUMNS = frozenset({"attempts", "weight"})
CODEBOOK_HEADER = ("variable", "label", "type", "value", "value_label")


@dataclass
class Variable:
    name: str
    label: str
    numeric: bool
    codes: dict[str, int] = field(default_factory=dict)  # stored value -> code
    value_labels: dict[int | float, str] = field(default_factory=dict)  # code -> label


def coded(question: Question) -> bool:
    return question.kind not in NUMERIC_KINDS and question.kind != "open"


def variables(
    header: Sequence[tuple[str, str]],
    found: Sequence[Question],
    extras: dict[str, set[str]] | None = None,
) -> list[Variable]:
    """The variables of the wide layout's ``header``; ``extras``: per question column,
    stored values that are no option (they get codes after the options')."""
    by_name = {q.name: q for q in found}
    out = []
    for name, label in header:
        question = by_name.get(name)
        if question is None:  # a contact column, or one of an open question's texts
            out.append(Variable(name, label, name in NUMERIC_CONTACT_COLUMNS))
            continue
        if not coded(question):
            out.append(Variable(name, label, question.kind in NUMERIC_KINDS))
            continue
        codes = question.codes()
        value_labels: dict[int | float, str] = {codes[v]: text for v, text in question.options}
        following = max(codes.values(), default=0) + 1
        for value in sorted((extras or {}).get(name, set()) - set(codes)):
            codes[value] = following
            value_labels[following] = value
            following += 1
        out.append(Variable(name, label, True, codes, value_labels))
    return out


def scan_extras(
    found: Sequence[Question], header: Sequence[str], rows: Iterable[Sequence[Cell]]
) -> dict[str, set[str]]:
    """The stored values of coded questions that are no option (read row by row)."""
    wanted = {q.name: (header.index(q.name), {v for v, _ in q.options}) for q in found if coded(q)}
    extras: dict[str, set[str]] = {name: set() for name in wanted}
    for row in rows:
        for name, (col, known) in wanted.items():
            value = row[col]
            if value is not None and value not in known:
                extras[name].add(str(value))
    return extras


def codebook_rows(found: Sequence[Variable]) -> Iterator[list[Cell]]:
    for variable in found:
        kind = "numeric" if variable.numeric else "string"
        yield [variable.name, variable.label, kind, None, None]
        for code, label in sorted(variable.value_labels.items()):
            yield [variable.name, None, None, code, label]


def codebook_chunks(found: Sequence[Variable], *, delimiter: str = ";") -> Iterator[bytes]:
    return csv_out.chunks(CODEBOOK_HEADER, codebook_rows(found), delimiter=delimiter)


def write(path: Path, found: Sequence[Variable], rows: Iterable[Sequence[Cell]]) -> int:
    """Write the ``.sav`` (codes for coded variables); the number of rows."""
    import pandas as pd  # type: ignore[import-untyped]
    import pyreadstat

    columns: list[list[object]] = [[] for _ in found]
    count = 0
    for row in rows:
        count += 1
        for values, variable, cell in zip(columns, found, row, strict=True):
            values.append(_sav_value(variable, cell))
    frame = pd.DataFrame(
        {
            v.name: pd.Series(values, dtype="float64" if v.numeric else "object")
            for v, values in zip(found, columns, strict=True)
        }
    )
    pyreadstat.write_sav(
        frame,
        str(path),
        column_labels=[v.label for v in found],
        variable_value_labels={v.name: dict(v.value_labels) for v in found if v.value_labels},
    )
    return count


def _sav_value(variable: Variable, cell: Cell) -> object:
    if variable.codes:
        return float("nan") if cell is None else float(variable.codes[str(cell)])
    if variable.numeric:
        if cell is None:
            return float("nan")
        try:
            return float(cell)
        except ValueError:
            return float("nan")  # a scale answer that is no number: missing in SPSS
    return "" if cell is None else str(cell)
