"""Contact lists from CSV and XLSX files: columns by name, numbers to E.164, every row
either kept or rejected with its line and the reason.

Columns are found by their header (case and accents ignored) in Finnish, Swedish or
English (``puhelin``, ``telefon``, ``phone`` ...); ``mapping`` names them when the file
uses other words. Columns that are not contact fields are kept in ``attributes``.

A CSV file may be UTF-8 (with or without a BOM), UTF-16 with a BOM (Excel's "Unicode
text"), or Windows-1252/Latin-1 (an older Excel's "CSV"); the delimiter (``,`` ``;`` or tab)
is found from the header. Line numbers are the file's lines, the header being line 1
(a quoted value may run over several lines: the row's first line is given). For XLSX the
line is the spreadsheet's row number.

Nothing valid is dropped: a row is either in ``rows``, a duplicate of an earlier row (same
number: the first is kept, the later counted in ``duplicates`` and listed with the line it
repeats), or in ``rejected`` with a reason. Empty rows are skipped silently.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Final

from ivr.campaigns.numbers import NumberError, normalise
from ivr.clock import system_clock
from ivr.store.campaigns import ContactRow

__all__ = [
    "ALIASES",
    "FIELDS",
    "ContactFileError",
    "ImportResult",
    "Rejection",
    "describe",
    "read_contacts",
]

FIELDS: Final = ("phone", "language", "age_group", "birth_year", "area", "postcode")
IGNORE: Final = "ignore"  # a mapping target: the column is not imported at all
ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "phone": (
        "phone",
        "puhelin",
        "puhelinnumero",
        "telefon",
        "number",
        "phone number",
        "telephone",
        "mobile",
        "matkapuhelin",
        "telefonnummer",
        "numero",
    ),
    "language": ("language", "kieli", "språk", "asiointikieli", "lang"),
    "age_group": ("age_group", "age group", "ikäryhmä", "åldersgrupp"),
    "birth_year": (
        "birth_year",
        "birth year",
        "year of birth",
        "syntymävuosi",
        "födelseår",
    ),
    "area": ("area", "alue", "område", "district", "kaupunginosa", "stadsdel"),
    "postcode": (
        "postcode",
        "postal code",
        "zip",
        "zip code",
        "postinumero",
        "postnummer",
    ),
}
# What people write for the three languages (compared without case and accents).
LANGUAGE_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "fi": ("fi", "fin", "fi-fi", "suomi", "suomeksi", "finnish", "finska"),
    "sv": ("sv", "swe", "sv-fi", "sv-se", "svenska", "ruotsi", "ruotsiksi", "swedish"),
    "en": ("en", "eng", "en-gb", "en-us", "english", "englanti", "englanniksi", "engelska"),
}
CSV_SUFFIXES: Final = frozenset({".csv", ".txt", ".tsv", ""})
XLSX_SUFFIXES: Final = frozenset({".xlsx", ".xlsm"})
DELIMITERS: Final = (";", ",", "\t")  # in this order when a header has as many of each
ZIP_MAGIC: Final = b"PK\x03\x04"
OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls, or an encrypted workbook
MAX_AGE_GROUP: Final = 32  # the column sizes in the database
MAX_POSTCODE: Final = 16
_DASHES = re.compile(r"\s*[-\u2010-\u2015\u2212]\s*")


class ContactFileError(ValueError):
    """The file cannot be read as a contact list at all; the message names the file."""


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportResult:
    rows: list[ContactRow]
    duplicates: int
    rejected: list[Rejection]
    encoding: str | None = None  # how a CSV file was decoded; None for XLSX
    notes: list[str] = field(default_factory=list)  # things staff should know (encoding ...)
    duplicate_lines: list[tuple[int, int]] = field(default_factory=list)  # (line, first line)


@functools.lru_cache(maxsize=4096)
def _key(text: str) -> str:
    """A header or a word compared loosely: no accents, no case, ``_`` between words."""
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^0-9a-z]+", "_", plain).strip("_")


_FIELD_OF: Final = {_key(alias): name for name, aliases in ALIASES.items() for alias in aliases}
_LANGUAGE_OF: Final = {_key(word): code for code, words in LANGUAGE_NAMES.items() for word in words}


# --------------------------------------------------------------------------- reading files
@dataclass
class _Table:
    """What a file gave: its header and its rows, each with its line."""

    header: list[str]
    header_line: int
    rows: Iterator[tuple[int, list[str]]]
    encoding: str | None
    notes: list[str]
    rejected: list[Rejection]  # rows the file format itself made unreadable


def _decode(data: bytes, where: str) -> tuple[str, str, list[str]]:
    """The text, the encoding used, and notes."""
    if data.startswith(codecs.BOM_UTF8):
        body = data[len(codecs.BOM_UTF8) :]
        try:
            return body.decode("utf-8"), "utf-8-sig", []
        except UnicodeDecodeError as exc:
            line = body[: exc.start].count(b"\n") + 1
            raise ContactFileError(
                f"{where}: line {line}: not UTF-8, although the file starts with a UTF-8 "
                "byte order mark; save it again as CSV UTF-8"
            ) from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16", []
        except UnicodeDecodeError:
            raise ContactFileError(
                f"{where}: not UTF-16, although the file starts with a UTF-16 byte order mark"
            ) from None
    try:
        return data.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
    for encoding, name in (("cp1252", "Windows-1252 (cp1252)"), ("latin-1", "Latin-1")):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        note = (
            f"the file is not UTF-8 (line {line} is not); it was read as {name}. "
            "Check that ä, ö and å look right; save as CSV UTF-8 to be sure"
        )
        return text, encoding, [note]
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def _delimiter(text: str) -> str:
    """The delimiter the header line uses most (outside quotes); ``,`` if it has none."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in first:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_records(
    text: str, delimiter: str, where: str, rejected: list[Rejection], notes: list[str]
) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    last = 0  # the last line read so far
    while True:
        start = last + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            end = reader.line_num
            if "unexpected end of data" in str(exc):
                raise ContactFileError(
                    f"{where}: line {start}: a quoted value is not closed before the end of "
                    f"the file (lines {start}-{end} would be one value); fix the quotes"
                ) from None
            lines = f"lines {start}-{end}" if end > start else f"line {start}"
            rejected.append(Rejection(start, f"unreadable CSV ({lines}): {exc}"))
            last = end
            continue
        last = reader.line_num
        if last > start and record:
            notes.append(f"line {start}: a quoted value runs over lines {start}-{last}")
        yield start, record


def _read_csv(data: bytes, where: str) -> _Table:
    text, encoding, notes = _decode(data, where)
    if "\x00" in text:
        raise ContactFileError(f"{where}: not a text file (it has NUL bytes); is it a CSV file?")
    rejected: list[Rejection] = []
    records = _csv_records(text, _delimiter(text), where, rejected, notes)
    for line, record in records:
        if any(cell.strip() for cell in record):
            return _Table(record, line, records, encoding, notes, rejected)
    raise ContactFileError(f"{where}: the file is empty")


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 358401234567.0, 1980.0
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _read_xlsx(path: Path, where: str, phone_keys: frozenset[str]) -> _Table:
    import openpyxl  # type: ignore[import-untyped,unused-ignore]
    from openpyxl.utils.exceptions import (  # type: ignore[import-untyped,unused-ignore]
        InvalidFileException,
    )

    # openpyxl goes by the file name's extension: a workbook saved as "contacts.csv" is
    # handed over as bytes.
    source: Path | io.BytesIO = (
        path if path.suffix.lower() in XLSX_SUFFIXES else io.BytesIO(path.read_bytes())
    )
    try:
        book = openpyxl.load_workbook(source, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise ContactFileError(f"{where}: not a readable XLSX workbook ({exc})") from None
    sheets: list[tuple[str, list[str], int, Iterator[tuple[int, list[str]]]]] = []
    for sheet in book.worksheets:
        sheet.reset_dimensions()  # some writers store a wrong size: read every row
        rows = _xlsx_rows(sheet.iter_rows())
        for line, cells in rows:
            if any(cell.strip() for cell in cells):
                sheets.append((str(sheet.title), cells, line, rows))
                break
    if not sheets:
        book.close()
        raise ContactFileError(f"{where}: the workbook is empty")
    with_phone = [s for s in sheets if any(_key(c) in phone_keys for c in s[1])]
    if len(with_phone) > 1:
        book.close()
        names = ", ".join(repr(s[0]) for s in with_phone)
        raise ContactFileError(
            f"{where}: sheets {names} all have a phone number column; put the contacts on "
            "one sheet (or delete the others)"
        )
    title, header, header_line, rows = (with_phone or sheets)[0]
    notes = [f"read the sheet {title!r}"] if len(sheets) > 1 else []
    return _Table(header, header_line, _closing(rows, book), None, notes, [])


def _xlsx_rows(cells_by_row: Iterator[tuple[object, ...]]) -> Iterator[tuple[int, list[str]]]:
    expected = 1
    for cells in cells_by_row:
        line = next((int(r) for c in cells if isinstance(r := getattr(c, "row", None), int)), 0)
        line = line or expected
        expected = line + 1
        yield line, [_cell_text(getattr(c, "value", None)) for c in cells]


def _closing(
    rows: Iterator[tuple[int, list[str]]], book: object
) -> Iterator[tuple[int, list[str]]]:
    try:
        yield from rows
    finally:
        close = getattr(book, "close", None)
        if close is not None:
            close()


def _open(path: Path, phone_keys: frozenset[str]) -> _Table:
    where = str(path)
    try:
        with path.open("rb") as file:
            head = file.read(8)
    except OSError as exc:
        raise ContactFileError(f"{where}: cannot read the file ({exc.strerror})") from None
    suffix = path.suffix.lower()
    if head.startswith(OLE_MAGIC) or suffix == ".xls":
        raise ContactFileError(
            f"{where}: an old Excel (.xls) or password-protected workbook; save it as .xlsx "
            "(without a password) or as CSV UTF-8"
        )
    if head.startswith(ZIP_MAGIC) and suffix in XLSX_SUFFIXES | CSV_SUFFIXES:
        return _read_xlsx(path, where, phone_keys)
    if suffix in XLSX_SUFFIXES:
        raise ContactFileError(f"{where}: not an XLSX workbook (it is not a ZIP file)")
    if suffix not in CSV_SUFFIXES:
        raise ContactFileError(
            f"{where}: not a CSV or XLSX file ({suffix!r}); save the list as .csv or .xlsx"
        )
    data = path.read_bytes()
    if not data.strip():
        raise ContactFileError(f"{where}: the file is empty")
    return _read_csv(data, where)


# --------------------------------------------------------------------------- columns
@dataclass
class _Columns:
    fields: dict[str, int]  # field -> column index
    attributes: list[tuple[int, str]]  # (column index, attribute name)


def _columns(header: list[str], mapping: dict[str, str] | None, where: str) -> _Columns:
    found = ", ".join(repr(h.strip()) for h in header if h.strip()) or "none"
    wanted: dict[str, str] = {}  # column key -> field, from the mapping
    for column, given in (mapping or {}).items():
        given_key = _key(given)
        resolved = IGNORE if given_key == IGNORE else _FIELD_OF.get(given_key)
        if resolved is None:
            raise ContactFileError(
                f"{where}: mapping {column!r} -> {given!r}: {given!r} is not a field "
                f"({', '.join(FIELDS)} or {IGNORE!r})"
            )
        if _key(column) not in {_key(h) for h in header}:
            raise ContactFileError(
                f"{where}: mapping {column!r} -> {given!r}: the file has no column "
                f"{column!r} (columns found: {found})"
            )
        wanted[_key(column)] = resolved
    mapped_fields = set(wanted.values())

    fields: dict[str, int] = {}
    attributes: list[tuple[int, str]] = []
    used_names: set[str] = set()
    for index, name in enumerate(header):
        key = _key(name)
        target = wanted.get(key)
        if target is None and key in _FIELD_OF and _FIELD_OF[key] not in mapped_fields:
            target = _FIELD_OF[key]
        if target == IGNORE:
            continue
        if target is not None:
            if target in fields:
                first = header[fields[target]].strip()
                raise ContactFileError(
                    f"{where}: columns {first!r} and {name.strip()!r} are both {target}; "
                    f"choose one with a mapping (e.g. {{{name.strip()!r}: 'ignore'}})"
                )
            fields[target] = index
            continue
        attribute = name.strip() or f"column {index + 1}"
        unique, n = attribute, 2
        while unique in used_names:
            unique, n = f"{attribute} ({n})", n + 1
        used_names.add(unique)
        attributes.append((index, unique))
    if "phone" not in fields:
        raise ContactFileError(
            f"{where}: no phone number column (columns found: {found}); name it "
            f"{', '.join(ALIASES['phone'][:4])} or {ALIASES['phone'][4]}, or map it "
            "(mapping={'<column>': 'phone'})"
        )
    return _Columns(fields, attributes)


# --------------------------------------------------------------------------- rows
@dataclass(frozen=True)
class _Rules:
    default_language: str
    region: str
    this_year: int


def _contact(
    values: list[str], line: int, columns: _Columns, rules: _Rules
) -> ContactRow | Rejection:
    def get(name: str) -> str:
        index = columns.fields.get(name)
        return values[index].strip() if index is not None and index < len(values) else ""

    problems: list[str] = []
    raw_phone = get("phone")
    phone = ""
    if not raw_phone:
        problems.append("no phone number")
    else:
        try:
            phone = normalise(raw_phone, rules.region)
        except NumberError as exc:
            problems.append(f"phone number {raw_phone!r}: {exc.reason}")

    raw_language = get("language")
    language = _LANGUAGE_OF.get(_key(raw_language)) if raw_language else rules.default_language
    if language is None:
        problems.append(
            f"language {raw_language!r} is not Finnish, Swedish or English (fi, sv, en)"
        )

    raw_year = get("birth_year")
    birth_year: int | None = None
    if raw_year:
        if raw_year.isdigit() and 1900 <= int(raw_year) <= rules.this_year:
            birth_year = int(raw_year)
        else:
            problems.append(f"birth year {raw_year!r} is not a year from 1900 to {rules.this_year}")

    age_group = " ".join(_DASHES.sub("-", get("age_group")).split()) or None
    if age_group is not None and len(age_group) > MAX_AGE_GROUP:
        problems.append(
            f"age group {age_group[:40]!r}... is longer than {MAX_AGE_GROUP} characters"
        )

    postcode = get("postcode") or None
    if postcode is not None and rules.region == "FI" and postcode.isdigit() and len(postcode) < 5:
        postcode = postcode.zfill(5)  # a spreadsheet made 00100 the number 100
    if postcode is not None and len(postcode) > MAX_POSTCODE:
        problems.append(f"postcode {postcode[:40]!r} is longer than {MAX_POSTCODE} characters")

    if problems:
        return Rejection(line, "; ".join(problems))
    attributes = {
        name: values[index].strip()
        for index, name in columns.attributes
        if index < len(values) and values[index].strip()
    }
    return ContactRow(
        phone=phone,
        language=language or rules.default_language,
        age_group=age_group,
        birth_year=birth_year,
        area=" ".join(get("area").split()) or None,
        postcode=postcode,
        attributes=attributes,
        source_line=line,
    )


def read_contacts(
    path: str | Path,
    *,
    mapping: dict[str, str] | None = None,
    default_language: str = "fi",
    region: str = "FI",
    this_year: int | None = None,
) -> ImportResult:
    """Read a contact list (CSV or XLSX); see the module's docstring.

    ``mapping`` maps a file column to a field (``{"GSM": "phone", "Henkilötunnus":
    "ignore"}``) and wins over the built-in names. A row without a language gets
    ``default_language``; numbers without a country code are read as ``region``'s.
    Birth years run from 1900 to ``this_year`` (the caller's clock; default: this year).
    A file that cannot be a contact list raises ``ContactFileError`` naming the file.
    """
    if default_language not in LANGUAGE_NAMES:
        raise ValueError(f"default_language {default_language!r}: use fi, sv or en")
    file = Path(path)
    phone_keys = {_key(alias) for alias in ALIASES["phone"]}
    phone_keys |= {
        _key(column) for column, target in (mapping or {}).items() if _key(target) in phone_keys
    }
    table = _open(file, frozenset(phone_keys))
    columns = _columns(table.header, mapping, str(file))
    year = this_year if this_year is not None else system_clock().year
    rules = _Rules(default_language, region.upper(), year)
    width = len(table.header)

    rows: list[ContactRow] = []
    rejected = table.rejected
    first_line: dict[str, int] = {}
    duplicate_lines: list[tuple[int, int]] = []
    for line, values in table.rows:
        if not any(v.strip() for v in values):
            continue  # an empty row
        extra = [v for v in values[width:] if v.strip()]
        if extra:
            rejected.append(
                Rejection(
                    line,
                    f"{len(values)} values but the header has {width} columns "
                    "(a delimiter inside a value that is not quoted?)",
                )
            )
            continue
        got = _contact(values, line, columns, rules)
        if isinstance(got, Rejection):
            rejected.append(got)
        elif got.phone in first_line:
            duplicate_lines.append((line, first_line[got.phone]))
        else:
            first_line[got.phone] = line
            rows.append(got)
    rejected.sort(key=lambda r: r.line)
    return ImportResult(
        rows=rows,
        duplicates=len(duplicate_lines),
        rejected=rejected,
        encoding=table.encoding,
        notes=table.notes,
        duplicate_lines=duplicate_lines,
    )


def describe(result: ImportResult, where: str = "") -> Sequence[str]:
    """Lines for staff: what was read, then each rejected row (``file: line N: reason``)."""
    prefix = f"{where}: " if where else ""
    lines = [
        f"{prefix}{len(result.rows)} contacts, {result.duplicates} duplicates, "
        f"{len(result.rejected)} rejected"
    ]
    lines += [f"{prefix}{note}" for note in result.notes]
    lines += [f"{prefix}{rejection}" for rejection in result.rejected]
    return lines
