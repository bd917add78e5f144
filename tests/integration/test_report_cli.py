"""`ivr report CAMPAIGN` as a user types it, on a seeded campaign whose every outcome is
known (tests/support/results.py): the report's numbers as JSON, CSV, XLSX and SPSS files,
the speech dataset, the audit log, and clear errors."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pyreadstat
import pytest
import sqlalchemy as sa

from ivr.accounts.audit import Actor
from ivr.bootstrap import App
from ivr.services import Services
from ivr.store.models import ReviewState, TranscriptRow
from ivr.store.org_models import AuditEntry
from tests.support.cli import run_ivr
from tests.support.instance import initialised_instance
from tests.support.results import Seeded, seed_results

ORG = "Uudenkaupungin kaupunki"
CAMPAIGN = "Strategia 2026"


@dataclass
class World:
    app: App
    env: dict[str, str]
    services: Services
    seeded: Seeded
    reviewed: int


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    app, env = initialised_instance("ivr-report-")
    services = app.services()
    try:
        org = services.accounts.add_org(Actor.cli(), ORG)
        seeded = seed_results(
            services, Actor.cli(org.id), tmp_path_factory.mktemp("seed"), name=CAMPAIGN
        )
        with services.factory.begin() as s:
            for tid in seeded.transcript_ids[:2]:
                s.get_one(TranscriptRow, tid).review_state = ReviewState.REVIEWED
        yield World(app, env, services, seeded, 2)
    finally:
        services.close()
        shutil.rmtree(app.settings.data_dir, ignore_errors=True)


def ivr(world: World, *args: str) -> tuple[int, str, str]:
    done = run_ivr(world.env, "report", *args)
    return done.returncode, done.stdout, done.stderr


def test_json_holds_the_reports_numbers(world: World) -> None:
    from ivr.reports import campaign_report

    code, out, err = ivr(world, CAMPAIGN, "--org", ORG)
    assert code == 0, err
    with world.services.factory() as s:
        expected = campaign_report(s, world.seeded.campaign_id).to_dict()
    assert json.loads(out) == json.loads(json.dumps(expected, ensure_ascii=False))
    got = json.loads(out)
    for part in ("funnel", "aapor", "questions", "representativeness", "cost"):
        assert got[part], part
    assert "weights" not in got  # per-contact weights are in the table exports only


def test_csv_to_stdout_and_long_to_a_file(world: World, tmp_path: Path) -> None:
    code, out, err = ivr(world, CAMPAIGN, "--org", ORG, "--format", "csv", "--delimiter", ",")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out.removeprefix("\ufeff"))))
    assert len(rows) == len(world.seeded.plans)
    assert [r["contact_id"] for r in rows] == world.seeded.contact_ids
    assert [int(r["attempts"]) for r in rows] == [len(p.outcomes) for p in world.seeded.plans]
    assert "phone" not in rows[0]
    target = tmp_path / "answers.csv"
    code, out, err = ivr(
        world, CAMPAIGN, "--org", ORG, "--format", "csv", "--long", "-o", str(target)
    )
    assert code == 0 and out == "", err
    answers = list(csv.DictReader(io.StringIO(target.read_text("utf-8-sig")), delimiter=";"))
    expected = sum(len(p.answers) + (1 if p.words else 0) for p in world.seeded.plans)
    assert len(answers) == expected


def test_xlsx_and_sav_files(world: World, tmp_path: Path) -> None:
    book = tmp_path / "tulokset.xlsx"
    code, _, err = ivr(
        world,
        CAMPAIGN,
        "--org",
        ORG,
        "--format",
        "xlsx",
        "--labels",
        "--with-phone",
        "-o",
        str(book),
    )
    assert code == 0, err
    sheet = openpyxl.load_workbook(book, read_only=True)["Contacts"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("contact_id", "phone", "attempts")
    assert [r[1] for r in rows[1:]] == [
        f"+35840{1000000 + n:07d}" for n in range(len(world.seeded.plans))
    ]
    sav = tmp_path / "tulokset.sav"
    code, _, err = ivr(world, CAMPAIGN, "--org", ORG, "--format", "sav", "-o", str(sav))
    assert code == 0, err
    frame, meta = pyreadstat.read_sav(str(sav))
    assert len(frame) == len(world.seeded.plans)
    assert meta.variable_value_labels["q_recommend"] == {1.0: "Kyllä", 2.0: "Ei"}
    codebook = (tmp_path / "tulokset-codebook.csv").read_text("utf-8-sig")
    assert "q_recommend;;;1;Kyllä" in codebook


def test_speech_dataset_folder(world: World, tmp_path: Path) -> None:
    folder = tmp_path / "dataset"
    code, _, err = ivr(world, CAMPAIGN, "--org", ORG, "--dataset", str(folder))
    assert code == 0, err
    lines = (folder / "manifest.jsonl").read_text("utf-8").splitlines()
    assert len(lines) == world.reviewed
    for line in map(json.loads, lines):
        assert (folder / line["audio"]).read_bytes().startswith(b"RIFF")
        assert line["campaign"] == CAMPAIGN and line["text"]
    code, _, err = ivr(world, CAMPAIGN, "--org", ORG, "--dataset", str(folder))
    assert code == 2 and "not empty" in err


def test_every_run_is_audited(world: World) -> None:
    assert ivr(world, CAMPAIGN, "--org", ORG, "--format", "csv")[0] == 0
    with world.services.factory() as s:
        entries = s.scalars(
            sa.select(AuditEntry)
            .where(AuditEntry.action == "export.download")
            .order_by(AuditEntry.id)
        ).all()
    assert entries and entries[-1].actor.startswith("cli:")
    assert json.loads(entries[-1].detail)["format"] == "csv"
    phones = [e for e in entries if json.loads(e.detail).get("with_phone")]
    assert all(e.target_id == world.seeded.campaign_id for e in phones)


def test_errors_name_what_is_wrong(world: World, tmp_path: Path) -> None:
    code, out, err = ivr(world, "ei-ole", "--org", ORG)
    assert code == 2 and "no campaign named 'ei-ole'" in err and out == ""
    code, _, err = ivr(world, CAMPAIGN)  # without --org: the campaigns of no organisation
    assert code == 2 and "no campaign named" in err
    code, _, err = ivr(world, CAMPAIGN, "--org", "Ei ole")
    assert code == 2 and "--org" in err
    code, _, err = ivr(world, CAMPAIGN, "--org", ORG, "--format", "pdf")
    assert code == 2 and "invalid choice: 'pdf'" in err
    code, _, err = ivr(world, CAMPAIGN, "--org", ORG, "--format", "sav")
    assert code == 2 and "-o FILE" in err
    code, _, err = ivr(world, CAMPAIGN, "--org", ORG, "--long")
    assert code == 2 and "--long" in err
    code, _, err = ivr(
        world, CAMPAIGN, "--org", ORG, "--format", "csv", "-o", str(tmp_path / "no" / "x.csv")
    )
    assert code == 2 and "does not exist" in err
    assert "Traceback" not in err
