"""The export file writers (ivr/exports/csv_out, xlsx_out, sav_out, dataset), fed with
rows made here and read back with the csv module, openpyxl, pyreadstat and zipfile."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import openpyxl
import pyreadstat
import pytest

from ivr.exports import csv_out, dataset, sav_out, xlsx_out
from ivr.exports.columns import Question
from ivr.exports.rows import Clip


def test_csv_has_a_bom_semicolons_and_streams_in_chunks() -> None:
    rows = [["a;b", 1, 2.5, None], ["=SUM(A1)", -3, "+358401234567", "rivi\nkaksi"]] * 3
    chunks = list(csv_out.chunks(["x", "y", "z", "w"], rows, rows_per_chunk=2))
    assert len(chunks) == 3  # the header with two rows, two rows, two rows
    text = b"".join(chunks).decode("utf-8")
    assert text.startswith("\ufeffx;y;z;w\r\n")
    back = list(csv.reader(io.StringIO(text.removeprefix("\ufeff")), delimiter=";"))
    assert back[1] == ["a;b", "1", "2.5", ""]
    # a formula is guarded, a negative number and a phone number are not
    assert back[2] == ["'=SUM(A1)", "-3", "+358401234567", "rivi\nkaksi"]
    comma = b"".join(csv_out.chunks(["x"], [["a,b"]], delimiter=",")).decode()
    assert comma == '\ufeffx\r\n"a,b"\r\n'
    with pytest.raises(ValueError, match="delimiter"):
        list(csv_out.chunks(["x"], [], delimiter="\t"))


def test_an_empty_table_is_its_header() -> None:
    assert b"".join(csv_out.chunks(["a", "b"], [])) == "\ufeffa;b\r\n".encode()


def test_xlsx_cells_are_typed_and_never_formulas(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    rows = [["=1+1", 3, 0.5, None, "http://example.org"]]
    with path.open("wb") as out:
        assert xlsx_out.write(out, "Contacts", ["a", "b", "c", "d", "e"], rows) == 1
    sheet = openpyxl.load_workbook(path)["Contacts"]
    assert [c.value for c in sheet[2]] == ["=1+1", 3, 0.5, None, "http://example.org"]
    assert sheet["A2"].data_type == "s"  # text, not a formula


def test_xlsx_goes_on_to_another_sheet_at_the_row_limit(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    with path.open("wb") as out:
        xlsx_out.write(out, "Answers", ["n"], ([n] for n in range(5)), max_rows=3)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Answers", "Answers 2", "Answers 3"]
    values = [c.value for name in book.sheetnames for c in book[name]["A"]]
    assert values == ["n", 0, 1, "n", 2, 3, "n", 4]
    assert b"".join(xlsx_out.chunks("S", ["h"], [])).startswith(b"PK")


CHOICE = Question("c", "q_c", "choice", "Mikä?", (("a", "Aa"), ("b", "Bee")), ("1", "2"))
SCALE = Question("s", "q_s", "scale", "Paljonko?")


def test_sav_codes_unknown_values_after_the_options(tmp_path: Path) -> None:
    header = [
        ("contact_id", "Contact"),
        ("attempts", "Attempts"),
        ("q_c", "Mikä?"),
        ("q_s", "Paljonko?"),
    ]
    rows = [["x1", 1, "b", 4], ["x2", 2, "zz", None], ["x3", 0, None, "oops"]]
    names = [n for n, _ in header]
    extras = sav_out.scan_extras([CHOICE, SCALE], names, rows)
    assert extras == {"q_c": {"zz"}}
    found = sav_out.variables(header, [CHOICE, SCALE], extras)
    path = tmp_path / "t.sav"
    assert sav_out.write(path, found, rows) == 3
    frame, meta = pyreadstat.read_sav(str(path))
    assert meta.variable_value_labels == {"q_c": {1.0: "Aa", 2.0: "Bee", 3.0: "zz"}}
    assert meta.column_names_to_labels["q_s"] == "Paljonko?"
    assert list(frame["contact_id"]) == ["x1", "x2", "x3"]
    assert list(frame["q_c"].fillna(0)) == [2.0, 3.0, 0.0]
    assert list(frame["q_s"].fillna(-1)) == [4.0, -1.0, -1.0]  # "oops" is no number
    book = b"".join(sav_out.codebook_chunks(found)).decode("utf-8-sig").splitlines()
    assert book[0] == "variable;label;type;value;value_label"
    assert "q_c;Mikä?;numeric;;" in book and "q_c;;;3;zz" in book
    assert "contact_id;Contact;string;;" in book


def test_dataset_zip_streams_manifest_and_audio(tmp_path: Path) -> None:
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"RIFF" + b"\0" * 200_000)
    clips = [
        Clip(7, str(wav), "korjattu", "kone", "fi", 1.23456, "open"),
        Clip(8, str(tmp_path / "gone.wav"), "x", "x", "sv", 1.0, "open"),  # file missing
    ]
    chunks = list(dataset.zip_chunks(lambda: iter(clips), "Kysely", {"open": "Kerro"}))
    assert len(chunks) > 3  # sent while written, not in one piece
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.namelist() == ["manifest.jsonl", "audio/7.wav"]
    [line] = archive.read("manifest.jsonl").decode().splitlines()
    assert json.loads(line) == {
        "audio": "audio/7.wav", "text": "korjattu", "machine_text": "kone", "language": "fi",
        "duration": 1.235, "campaign": "Kysely", "question": "open", "question_text": "Kerro",
    }  # fmt: skip
    assert archive.read("audio/7.wav") == wav.read_bytes()
    folder = tmp_path / "out"
    assert dataset.write_folder(folder, clips, "Kysely", {}) == 1
    assert (folder / "audio" / "7.wav").read_bytes() == wav.read_bytes()


def test_csv_guards_a_formula_wherever_it_is_in_a_chunk() -> None:
    """Rows are written a chunk at a time and a chunk is written again cell by cell
    only when a field may need the guard: the guard must hold in either path."""
    rows = [["plain", 1, "+358401234567"]] * 4 + [["ok", "-x", "+5;x"]] + [["a\n=b", 2, None]]
    for delimiter in (";", ","):
        text = b"".join(csv_out.chunks(["a", "b", "c"], rows, delimiter=delimiter)).decode()
        back = list(csv.reader(io.StringIO(text.removeprefix("\ufeff")), delimiter=delimiter))
        assert back[1] == ["plain", "1", "+358401234567"]
        assert back[5] == ["ok", "'-x", "'+5;x"]
        assert back[6] == ["a\n=b", "2", ""]  # "=" inside a text: no formula


def test_xlsx_text_keeps_spaces_and_control_characters(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    rows = [[" lead", "a\x01b", "x & <y>", "_x0041_", 1e20, float("nan")]]
    with path.open("wb") as out:
        xlsx_out.write(out, "S", ["a", "b", "c", "d", "e", "f"], rows)
    sheet = openpyxl.load_workbook(path)["S"]
    # A character XML cannot hold is Excel's _xHHHH_ escape (Excel reads it back as the
    # character; openpyxl shows the escape), and a text that looks like one is escaped.
    assert [c.value for c in sheet[2]] == [
        " lead", "a_x0001_b", "x & <y>", "_x005F_x0041_", 1e20, None,
    ]  # fmt: skip
    assert sheet["A1"].font.b and sheet.freeze_panes == "A2"


def test_the_formula_check_reads_a_row_ending_in_an_empty_field_as_plain() -> None:
    """Rows whose last field is empty end in ";\r\n": that is no field starting with "\r"
    (a check that thought so wrote every chunk twice, cell by cell, at a third of the
    speed), while a real formula, quoted or not, is still caught."""
    risky = csv_out._risky(";")
    assert risky.search("a;1;\r\nb;;\r\n") is None
    assert risky.search("a;=1+1\r\n") and risky.search('a;"-x;y"\r\n')
    assert risky.search("a;+3581\r\n") is None and risky.search("a;+x\r\n")
