"""Reading contact lists: CSV in its many dialects, XLSX, and every reason a row is refused.

Every file is written by the test itself into ``tmp_path``.
"""

from __future__ import annotations

import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl  # type: ignore[import-untyped,unused-ignore]
import pytest

from ivr.campaigns.contacts import (
    ContactFileError,
    ImportResult,
    Rejection,
    describe,
    read_contacts,
)
from ivr.store.campaigns import ContactRow

THIS_YEAR = datetime.now(UTC).year


def write(tmp_path: Path, text: str, name: str = "contacts.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(tmp_path: Path, sheets: dict[str, list[list[Any]]], name: str = "c.xlsx") -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row_no, row in enumerate(rows, start=1):
            for col_no, value in enumerate(row, start=1):
                if value is not None:
                    sheet.cell(row=row_no, column=col_no, value=value)
    path = tmp_path / name
    book.save(path)
    return path


def phones(result: ImportResult) -> list[str]:
    return [row.phone for row in result.rows]


def reasons(result: ImportResult) -> list[tuple[int, str]]:
    return [(r.line, r.reason) for r in result.rejected]


# --------------------------------------------------------------------------- CSV dialects
def test_finnish_headers_semicolons_and_a_bom(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "\ufeffPuhelinnumero;KIELI;Ikäryhmä;Syntymävuosi;Alue;Postinumero;Koulu;Huom\r\n"
        "040 123 4567;suomi;18 – 29;1990;Keskusta;00100;Lyseo;\r\n"
        "+358 50 765 4321;Ruotsi;65+;1950; Länsi  ;2100;;soita iltaisin\r\n",
    )
    result = read_contacts(path)
    assert result.encoding == "utf-8-sig" and result.notes == []
    assert (result.duplicates, result.rejected) == (0, [])
    assert result.rows == [
        ContactRow(
            phone="+358401234567", language="fi", age_group="18-29", birth_year=1990,
            area="Keskusta", postcode="00100", attributes={"Koulu": "Lyseo"}, source_line=2,
        ),
        ContactRow(
            phone="+358507654321", language="sv", age_group="65+", birth_year=1950,
            area="Länsi", postcode="02100",  # a spreadsheet had dropped the leading zero
            attributes={"Huom": "soita iltaisin"}, source_line=3,
        ),
    ]  # fmt: skip


def test_swedish_headers_with_commas(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'Telefon,Språk,Åldersgrupp,Födelseår,Område,Postnummer,"Skola, klass"\n'
        '"040 123 4567",svenska,30-49,1980,Centrum,65100,"Vasa, 9B"\n'
        "0401234568,,,,,,\n",
    )
    result = read_contacts(path, default_language="sv")
    assert [(r.phone, r.language, r.area, r.attributes) for r in result.rows] == [
        ("+358401234567", "sv", "Centrum", {"Skola, klass": "Vasa, 9B"}),
        ("+358401234568", "sv", None, {}),  # no language given: the default
    ]
    assert result.rows[0].birth_year == 1980 and result.rows[0].postcode == "65100"


def test_english_headers_with_tabs_and_every_language_word(tmp_path: Path) -> None:
    words = ["fi", "FIN", "Suomi", "finnish", "sv", "SV-FI", "ruotsi", "Swedish", "en", "English",
             "englanti", "engelska", ""]  # fmt: skip
    lines = ["Number\tLanguage\tAge group\tBirth year\tArea\tPostcode"]
    lines += [f"040 100 {i:04d}\t{word}\t\t\t\t" for i, word in enumerate(words)]
    result = read_contacts(write(tmp_path, "\n".join(lines) + "\n"), default_language="en")
    assert result.rejected == []
    assert [r.language for r in result.rows] == ["fi"] * 4 + ["sv"] * 4 + ["en"] * 5


def test_latin1_and_cp1252_files_are_read_and_said_so(tmp_path: Path) -> None:
    text = "puhelin;kieli;alue\n0401234567;suomi;Itäkeskus\n0401234568;ruotsi;Östermalm\n"
    latin = read_contacts(write(tmp_path, text, "latin.csv", encoding="latin-1"))
    assert [r.area for r in latin.rows] == ["Itäkeskus", "Östermalm"]
    assert latin.encoding == "cp1252"
    [note] = latin.notes
    assert "not UTF-8 (line 2 is not)" in note and "Windows-1252" in note
    # A byte cp1252 does not define (0x81) leaves only Latin-1.
    raw = "puhelin;alue\n0401234567;Itä\x81\n".encode("latin-1")
    (tmp_path / "odd.csv").write_bytes(raw)
    odd = read_contacts(tmp_path / "odd.csv")
    assert odd.encoding == "latin-1" and "read as Latin-1" in odd.notes[0]
    assert odd.rows[0].area == "Itä\x81"


def test_utf16_with_a_bom_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffpuhelin\tkieli\n0401234567\tsv\n", encoding="utf-16-le")
    result = read_contacts(path)
    assert result.encoding == "utf-16"
    assert [(r.phone, r.language) for r in result.rows] == [("+358401234567", "sv")]


def test_region_decides_numbers_without_a_country_code(tmp_path: Path) -> None:
    path = write(tmp_path, "phone\n070-123 45 67\n+358 40 1234567\n")
    assert phones(read_contacts(path, region="SE")) == ["+46701234567", "+358401234567"]


# --------------------------------------------------------------------------- lines
def test_empty_lines_are_skipped_and_lines_are_the_files(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "\n"  # line 1: blank, before the header
        "puhelin;alue;huom\n"  # line 2: the header
        "0401234561;A;\n"  # 3
        "\n"  # 4
        ";;\n"  # 5: only delimiters: an empty row too
        '0401234562;B;"two\n'  # 6 (a value over two lines)
        'lines"\n'  # 7
        "0401234563;C;\n"  # 8
        "   \n"  # 9
        "0401234564;D;\n",  # 10
    )
    result = read_contacts(path)
    assert [(r.source_line, r.area) for r in result.rows] == [(3, "A"), (6, "B"), (8, "C"),
                                                              (10, "D")]  # fmt: skip
    assert result.rows[1].attributes == {"huom": "two\nlines"}
    assert result.rejected == [] and result.duplicates == 0
    assert result.notes == ["line 6: a quoted value runs over lines 6-7"]


# --------------------------------------------------------------------------- rejections
def test_every_rejection_reason_with_its_line(tmp_path: Path) -> None:
    rows = [
        "phone;language;age_group;birth_year;area;postcode",  # 1
        "0401234561;fi;18-29;1990;A;00100",  # 2: fine
        ";fi;;;A;",  # 3
        "123;;;;;",  # 4
        "040 12x 4567;;;;;",  # 5
        "+999 123;;;;;",  # 6
        "0401234566;de;;;;",  # 7
        "0401234567;;;1899;;",  # 8
        f"0401234568;;;{THIS_YEAR + 1};;",  # 9
        "0401234569;;;19x0;;",  # 10
        f"0401234570;;{'x' * 33};;;",  # 11
        f"0401234571;;;;;{'1' * 17}",  # 12
        "0401234572;fi;;;A;;extra value",  # 13
        "0401234573;fi;;;A;;",  # 14: a trailing empty value is fine
        "040;muu;;2100;;",  # 15: everything wrong at once
        '0401234575;"fi"x;;;;',  # 16: a stray character after a quote
        "0401234576;sv;;;;",  # 17: fine
    ]
    result = read_contacts(write(tmp_path, "\n".join(rows) + "\n"))
    assert [r.source_line for r in result.rows] == [2, 14, 17]
    assert reasons(result) == [
        (3, "no phone number"),
        (4, "phone number '123': too short"),
        (5, "phone number '040 12x 4567': not a phone number"),
        (6, "phone number '+999 123': unknown country code"),
        (7, "language 'de' is not Finnish, Swedish or English (fi, sv, en)"),
        (8, f"birth year '1899' is not a year from 1900 to {THIS_YEAR}"),
        (9, f"birth year '{THIS_YEAR + 1}' is not a year from 1900 to {THIS_YEAR}"),
        (10, f"birth year '19x0' is not a year from 1900 to {THIS_YEAR}"),
        (11, f"age group '{'x' * 33}'... is longer than 32 characters"),
        (12, f"postcode '{'1' * 17}' is longer than 16 characters"),
        (13, "7 values but the header has 6 columns (a delimiter inside a value that is not "
             "quoted?)"),
        (15, "phone number '040': too short; language 'muu' is not Finnish, Swedish or English "
             f"(fi, sv, en); birth year '2100' is not a year from 1900 to {THIS_YEAR}"),
        (16, "unreadable CSV (line 16): ';' expected after '\"'"),
    ]  # fmt: skip
    assert str(result.rejected[0]) == "line 3: no phone number"
    assert describe(result, "contacts.csv")[:2] == [
        "contacts.csv: 3 contacts, 0 duplicates, 13 rejected",
        "contacts.csv: line 3: no phone number",
    ]


def test_duplicates_are_merged_first_kept_and_counted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "puhelin,kieli,alue\n"
        "040 123 4567,fi,first\n"  # 2
        "0401234568,sv,other\n"  # 3
        "+358401234567,sv,second\n"  # 4: the same number written otherwise
        "358 40 123 4567,en,third\n"  # 5: as a spreadsheet leaves +358...
        "040 123 4567,xx,bad\n",  # 6: refused for its language, not a duplicate
    )
    result = read_contacts(path)
    assert [(r.phone, r.area) for r in result.rows] == [
        ("+358401234567", "first"),
        ("+358401234568", "other"),
    ]
    assert result.duplicates == 2
    assert result.duplicate_lines == [(4, 2), (5, 2)]
    assert reasons(result) == [(6, "language 'xx' is not Finnish, Swedish or English (fi, sv, en)")]


def test_an_unclosed_quote_is_an_error_naming_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'puhelin;alue\n0401234561;A\n0401234562;"B\n0401234563;C\n')
    with pytest.raises(ContactFileError, match=re.escape(
        f"{path}: line 3: a quoted value is not closed before the end of the file "
        "(lines 3-4 would be one value)"
    )):  # fmt: skip
        read_contacts(path)


# --------------------------------------------------------------------------- columns
def test_other_columns_are_kept_as_attributes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "puhelin;Koulu;;Koulu;Luokka\n0401234567;Lyseo;x;Normaalikoulu;\n0401234568;;;;\n",
    )
    result = read_contacts(path)
    assert [r.attributes for r in result.rows] == [
        {"Koulu": "Lyseo", "column 3": "x", "Koulu (2)": "Normaalikoulu"},
        {},
    ]


def test_a_mapping_names_columns_and_wins_over_the_built_in_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "GSM;Puhelin;Henkilötunnus;Asuinalue;Kieli\n0401234567;09 310 1691;010190-123A;Kallio;sv\n",
    )
    result = read_contacts(
        path,
        mapping={"gsm": "phone", "HENKILÖTUNNUS": "ignore", "Asuinalue": "alue"},
    )
    [row] = result.rows
    assert (row.phone, row.area, row.language) == ("+358401234567", "Kallio", "sv")
    # The built-in phone column lost to the mapping: it is kept, the ignored one is not.
    assert row.attributes == {"Puhelin": "09 310 1691"}


def test_bad_mappings_are_errors_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "GSM;Nimi\n0401234567;Anna\n")
    with pytest.raises(ContactFileError, match=re.escape(
        f"{path}: mapping 'GSM' -> 'shoe size': 'shoe size' is not a field (phone, language, "
        "age_group, birth_year, area, postcode or 'ignore')"
    )):  # fmt: skip
        read_contacts(path, mapping={"GSM": "shoe size"})
    with pytest.raises(ContactFileError, match=re.escape(
        f"{path}: mapping 'Mobile' -> 'phone': the file has no column 'Mobile' (columns found: "
        "'GSM', 'Nimi')"
    )):  # fmt: skip
        read_contacts(path, mapping={"Mobile": "phone"})


def test_two_phone_columns_are_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "puhelin;matkapuhelin\n0401234567;0501234567\n")
    with pytest.raises(ContactFileError, match=re.escape(
        f"{path}: columns 'puhelin' and 'matkapuhelin' are both phone; choose one with a "
        "mapping (e.g. {'matkapuhelin': 'ignore'})"
    )):  # fmt: skip
        read_contacts(path)
    result = read_contacts(path, mapping={"matkapuhelin": "ignore"})
    assert phones(result) == ["+358401234567"] and result.rows[0].attributes == {}


# --------------------------------------------------------------------------- XLSX
def test_xlsx_with_numbers_as_numbers_and_gaps(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path,
        {
            "Ohje": [["Täytä yhteystiedot toiselle välilehdelle"]],
            "Yhteystiedot": [
                [],  # row 1 blank
                ["Puhelin", "Kieli", "Syntymävuosi", "Postinumero", "Alue", "Lisätieto"],  # 2
                [358401234567, "sv", 1980.0, 100, "Kallio", datetime(2025, 1, 2, 3, 4)],  # 3
                [],  # 4
                ["040 123 4568", None, 1990, "00500", None, 1.5],  # 5
                [None, "fi", None, None, "Vallila", None],  # 6
                [401234569, "xx", None, None, None, True],  # 7
            ],
        },
    )
    result = read_contacts(path)
    assert result.encoding is None and result.notes == ["read the sheet 'Yhteystiedot'"]
    assert [
        (r.source_line, r.phone, r.language, r.birth_year, r.postcode, r.area, r.attributes)
        for r in result.rows
    ] == [
        (3, "+358401234567", "sv", 1980, "00100", "Kallio",
         {"Lisätieto": "2025-01-02T03:04:00"}),
        (5, "+358401234568", "fi", 1990, "00500", None, {"Lisätieto": "1.5"}),
    ]  # fmt: skip
    assert reasons(result) == [
        (6, "no phone number"),
        (7, "language 'xx' is not Finnish, Swedish or English (fi, sv, en)"),
    ]


def test_xlsx_with_two_contact_sheets_is_an_error(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path, {"A": [["phone"], ["0401234567"]], "B": [["puhelin"], ["0401234568"]]}
    )
    with pytest.raises(ContactFileError, match="sheets 'A', 'B' all have a phone number column"):
        read_contacts(path)


def test_a_workbook_named_csv_is_read_as_a_workbook(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path, {"List": [["puhelin"], ["0401234567"]]}, name="export.csv")
    result = read_contacts(path)
    assert phones(result) == ["+358401234567"] and result.encoding is None


def test_xlsx_with_a_mapped_phone_column(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path, {"Notes": [["x"], ["y"]], "List": [["GSM"], ["0401234567"]]})
    assert phones(read_contacts(path, mapping={"GSM": "puhelin"})) == ["+358401234567"]


# --------------------------------------------------------------------------- bad files
@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("c.csv", b"", "the file is empty"),
        ("c.csv", b"\n \r\n\t\n", "the file is empty"),
        ("c.csv", "\ufeff".encode(), "the file is empty"),
        ("c.csv", b"name;address\nAnna;Kotikatu 1\n",
         "no phone number column (columns found: 'name', 'address'); name it phone, puhelin, "
         "puhelinnumero, telefon or number, or map it"),
        ("c.pdf", b"%PDF-1.4", "not a CSV or XLSX file ('.pdf'); save the list as .csv or .xlsx"),
        ("c.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest",
         "an old Excel (.xls) or password-protected workbook"),
        ("c.xlsx", b"just text", "not an XLSX workbook (it is not a ZIP file)"),
        ("c.csv", b"puhelin\x00;x\n", "not a text file (it has NUL bytes)"),
        ("c.csv", b"\xef\xbb\xbfpuhelin\n\xff\xfe\n",
         "line 2: not UTF-8, although the file starts with a UTF-8 byte order mark"),
    ],
)  # fmt: skip
def test_files_that_are_not_contact_lists(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ContactFileError, match=re.escape(f"{path}: {message}")):
        read_contacts(path)


def test_a_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "c.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(ContactFileError, match=re.escape(f"{path}: not a readable XLSX")):
        read_contacts(path)


def test_a_missing_file_and_a_bad_default_language(tmp_path: Path) -> None:
    with pytest.raises(ContactFileError, match="nothing.csv: cannot read the file"):
        read_contacts(tmp_path / "nothing.csv")
    with pytest.raises(ValueError, match="default_language 'de': use fi, sv or en"):
        read_contacts(write(tmp_path, "phone\n0401234567\n"), default_language="de")


def test_a_header_without_rows_gives_no_contacts(tmp_path: Path) -> None:
    result = read_contacts(write(tmp_path, "puhelin;kieli\n\n"))
    assert (result.rows, result.rejected, result.duplicates) == ([], [], 0)


def test_rejection_text() -> None:
    assert str(Rejection(12, "no phone number")) == "line 12: no phone number"
