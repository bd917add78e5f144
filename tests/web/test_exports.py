"""The downloads of a campaign's results (ivr/web/exports.py, ivr/exports), on SQLite and
PostgreSQL, checked against a seeded campaign whose every outcome is known (its plans):
CSV and XLSX read back row by row, the long format, the SPSS file with its labels, the
codebook, the speech dataset, the audit log and who may download what."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pyreadstat
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from ivr.reports import campaign_report
from ivr.services import Services
from ivr.store.models import Attempt, ReviewState, TranscriptRow
from ivr.store.org_models import AuditEntry
from ivr.store.work_models import Tag, TranscriptTag
from tests.support.results import Plan, Seeded, seed_results
from tests.web.conftest import BASE_URL, Site, Users, login, unique

# Each plan's outcomes -> the contact's AAPOR final disposition code (by hand, from the
# precedence in ivr/campaigns/aapor.py's table).
AAPOR_BY_OUTCOMES = {
    ("completed",): "1.1",
    ("no_answer", "completed"): "1.1",
    ("failed", "completed"): "1.1",
    ("partial",): "1.2",
    ("no_answer", "no_answer", "no_answer"): "3.13",
    ("busy", "declined"): "2.11",
    ("opted_out",): "2.10",
    ("unallocated",): "4.31",
}
# The strategy survey's labels in Finnish (the campaign's language), from its YAML.
FI_LABELS = {
    "q_develop_area": {
        "economy": "Elinvoima ja työpaikat",
        "education": "Koulut ja varhaiskasvatus",
        "transport": "Liikenneyhteydet",
        "leisure": "Kulttuuri, liikunta ja vapaa-aika",
        "environment": "Ympäristö ja luonto",
    },
    "q_recommend": {"yes": "Kyllä", "no": "Ei"},
    "q_age_group": {"18-29": "18–29", "30-49": "30–49", "50-64": "50–64", "65+": "65+"},
}
QUESTION_COLUMNS = {
    "services": "q_services",
    "develop-area": "q_develop_area",
    "recommend": "q_recommend",
    "age-group": "q_age_group",
}
CORRECTED = "Kevyen liikenteen väyliä pitää korjata"


@dataclass
class World:
    org_id: str  # organisation A's
    seeded: Seeded
    transcript_ids: list[int]  # in the plans' order
    reviewed: dict[int, str]  # transcript id -> the text the dataset must hold
    states: dict[int, str]  # transcript id -> review state
    corrected: dict[int, str]  # transcript id -> corrected text (where there is one)
    tags: dict[int, str]  # transcript id -> its tags as exported


@pytest.fixture(scope="module")
def world(services: Services, users: Users, tmp_path_factory: pytest.TempPathFactory) -> World:
    seeded = seed_results(
        services,
        users.a.manager.actor(),
        tmp_path_factory.mktemp("exports"),
        name=unique("Tulokset/ä"),
    )
    with services.factory.begin() as s:
        # the open answers' transcripts in the plans' order (the seed adds them by attempt)
        of_contact = dict(
            s.execute(
                sa.select(Attempt.contact_id, TranscriptRow.id)
                .join(TranscriptRow, TranscriptRow.call_id == Attempt.call_id)
                .where(TranscriptRow.id.in_(seeded.transcript_ids))
            ).all()
        )
        ids = [of_contact[c] for c in seeded.contact_ids if c in of_contact]
        rows = {
            t.id: t for t in s.scalars(sa.select(TranscriptRow).where(TranscriptRow.id.in_(ids)))
        }
        rows[ids[0]].review_state = ReviewState.REVIEWED
        rows[ids[0]].corrected_text = CORRECTED
        rows[ids[2]].review_state = ReviewState.REVIEWED  # accepted as the machine heard it
        rows[ids[3]].review_state = ReviewState.REVIEWED
        rows[ids[3]].corrected_text = "=Tiet ovat huonossa kunnossa"
        rows[ids[4]].review_state = ReviewState.SECOND_LOOK
        roads = Tag(org_id=users.a.manager.org_id, name=unique("Tiet"), key=None)
        health = Tag(org_id=users.a.manager.org_id, name=unique("Terveys"), key=None)
        s.add_all([roads, health])
        s.flush()
        s.add_all(
            [
                TranscriptTag(transcript_id=ids[0], tag_id=roads.id),
                TranscriptTag(transcript_id=ids[0], tag_id=health.id),
                TranscriptTag(transcript_id=ids[3], tag_id=roads.id),
            ]
        )
        reviewed = {
            tid: (t.corrected_text if t.corrected_text is not None else t.machine_text)
            for tid, t in rows.items()
            if t.review_state is ReviewState.REVIEWED
        }
        states = {tid: t.review_state.value for tid, t in rows.items()}
        corrected = {tid: t.corrected_text for tid, t in rows.items() if t.corrected_text}
        both = "; ".join(sorted([roads.name, health.name]))
        tags = {ids[0]: both, ids[3]: roads.name}
    return World(users.a.manager.org_id, seeded, ids, reviewed, states, corrected, tags)


def _client(site: Site, users: Users, org: str = "a", role: str = "manager") -> FlaskClient:
    who = getattr(users, org)[role]
    client = site.client()
    assert login(client, who.email, who.password).status_code == 302
    return client


@pytest.fixture(scope="module")
def manager(module_site: Site, users: Users, world: World) -> FlaskClient:
    """A's manager, logged in after the seed (which moves the clock by hours)."""
    return _client(module_site, users)


def _get(client: FlaskClient, world: World, what: str, **query: str) -> Any:
    path = f"/o/{world.org_id}/campaigns/{world.seeded.campaign_id}/export/{what}"
    return client.get(path, base_url=BASE_URL, query_string=query)


# --------------------------------------------------------------------------- expectations
def _open_index(world: World) -> Iterator[tuple[int, Plan, int | None]]:
    """Each plan with its transcript id (None without an open answer)."""
    ids = iter(world.transcript_ids)
    for n, plan in enumerate(world.seeded.plans):
        yield n, plan, next(ids) if plan.words else None


def _expected_wide(world: World, *, labels: bool) -> list[list[Any]]:
    """The wide rows the plans call for: contact columns, then the questions in the flow's
    order (lang, services, develop-area, recommend, age-group, develop-open x4, contact);
    None where there is no value."""
    out = []
    for n, plan, tid in _open_index(world):
        answers = plan.answers
        row: list[Any] = [
            world.seeded.contact_ids[n],
            len(plan.outcomes),
            plan.outcomes[-1],
            AAPOR_BY_OUTCOMES[plan.outcomes],
            plan.language,
            plan.age_group,
            plan.area,
            None,  # lang: not asked in the seed
            int(answers["services"]) if "services" in answers else None,
        ]
        for column, node in (
            ("q_develop_area", "develop-area"),
            ("q_recommend", "recommend"),
            ("q_age_group", "age-group"),
        ):
            value = answers.get(node)
            row.append(FI_LABELS[column][value] if labels and value else value)
        if tid is None:
            row.extend([None, None, None, None])
        else:
            row.append(" ".join(plan.words))
            row.append(world.corrected.get(tid))
            row.append(world.states[tid])
            row.append(world.tags.get(tid))
        row.append(None)  # contact (callback node): the seed stores the request only
        out.append(row)
    return out


def _comparable(row: list[Any], header: list[str]) -> list[Any]:
    """A row without the AAPOR label and the weight (checked apart)."""
    skip = {header.index("aapor_disposition"), header.index("weight")}
    return [cell for n, cell in enumerate(row) if n not in skip]


HEADER_START = [
    "contact_id", "attempts", "last_outcome", "aapor_code", "aapor_disposition",
    "language", "age_group", "area", "weight", "q_lang", "q_services", "q_develop_area",
    "q_recommend", "q_age_group", "q_develop_open_text", "q_develop_open_corrected",
    "q_develop_open_review", "q_develop_open_tags", "q_contact",
]  # fmt: skip


def _csv_cell(cell: str) -> Any:
    if cell == "":
        return None
    return int(cell) if cell.isdigit() else cell


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize("labels", [False, True])
def test_csv_has_one_row_per_contact_as_planned(
    manager: FlaskClient, world: World, labels: bool
) -> None:
    query = {"values": "labels"} if labels else {}
    response = _get(manager, world, "csv", **query)
    assert response.status_code == 200, response.status
    assert response.is_streamed
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM, for Excel
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    header, data = rows[0], rows[1:]
    assert header == HEADER_START
    expected = _expected_wide(world, labels=labels)
    assert len(data) == len(world.seeded.plans)
    for got, want in zip(data, expected, strict=True):
        cells = [_csv_cell(c) for c in got]
        # CSV keeps the ' guard before a text that a spreadsheet would run as a formula
        want = ["'" + w if isinstance(w, str) and w.startswith("=") else w for w in want]
        want = [None if w == "" else w for w in want]
        assert _comparable(cells, header) == want
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "contacts.csv" in disposition
    assert "Tulokset-" in disposition  # the campaign's name (its / made -)


def test_weights_are_the_reports_for_respondents_only(
    services: Services, manager: FlaskClient, world: World
) -> None:
    body = _get(manager, world, "csv").get_data().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body), delimiter=";"))
    completed = {
        world.seeded.contact_ids[n]
        for n, plan in enumerate(world.seeded.plans)
        if "completed" in plan.outcomes
    }
    weighted = {row["contact_id"]: float(row["weight"]) for row in rows if row["weight"]}
    assert set(weighted) == completed  # the respondents, and only they
    assert all(w > 0 for w in weighted.values())
    with services.factory() as s:
        report = campaign_report(s, world.seeded.campaign_id).weights
    assert weighted == pytest.approx(dict(report))


def test_xlsx_reads_back_with_typed_cells(manager: FlaskClient, world: World) -> None:
    response = _get(manager, world, "xlsx", values="labels")
    assert response.status_code == 200 and response.is_streamed
    book = openpyxl.load_workbook(io.BytesIO(response.get_data()), read_only=True)
    sheet = book["Contacts"]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    header, data = [str(h) for h in rows[0]], rows[1:]
    assert header == HEADER_START
    expected = _expected_wide(world, labels=True)
    for got, want in zip(data, expected, strict=True):
        assert _comparable(got, header) == [None if w == "" else w for w in want]
    assert len(data) == len(world.seeded.plans)


def test_long_format_has_one_row_per_answer(manager: FlaskClient, world: World) -> None:
    body = _get(manager, world, "csv", layout="long").get_data().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body), delimiter=";"))
    expected = sorted(
        (world.seeded.contact_ids[n], node, value)
        for n, plan in enumerate(world.seeded.plans)
        for node, value in [*plan.answers.items(), *([("develop-open", "")] if plan.words else [])]
    )
    got = sorted((r["contact_id"], r["node_id"], r["value"]) for r in rows)
    assert got == expected
    opened = [r for r in rows if r["kind"] == "open"]
    assert {r["transcript"] for r in opened} == {
        " ".join(p.words) for p in world.seeded.plans if p.words
    }
    assert all(r["value"] == "" for r in opened)  # never the recording's path on the server
    recommend = [r for r in rows if r["node_id"] == "recommend"]
    assert {(r["value"], r["label"]) for r in recommend} == {("yes", "Kyllä"), ("no", "Ei")}
    xlsx = _get(manager, world, "xlsx", layout="long").get_data()
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx), read_only=True)["Answers"]
    assert sum(1 for _ in sheet.iter_rows()) - 1 == len(expected)


def test_sav_has_codes_value_labels_and_variable_labels(
    manager: FlaskClient, world: World, tmp_path: Path
) -> None:
    response = _get(manager, world, "sav")
    assert response.status_code == 200
    path = tmp_path / "out.sav"
    path.write_bytes(response.get_data())
    frame, meta = pyreadstat.read_sav(str(path))
    assert len(frame) == len(world.seeded.plans)
    assert list(frame.columns) == HEADER_START
    assert meta.variable_value_labels["q_recommend"] == {1.0: "Kyllä", 2.0: "Ei"}
    areas = meta.variable_value_labels["q_develop_area"]  # codes: the options' keys
    labels = FI_LABELS["q_develop_area"].values()
    assert areas == {float(n): label for n, label in enumerate(labels, 1)}
    assert meta.column_names_to_labels["q_services"].startswith("Kuinka tyytyväinen")
    by_contact = {row["contact_id"]: row for row in frame.to_dict("records")}
    for n, plan in enumerate(world.seeded.plans):
        row = by_contact[world.seeded.contact_ids[n]]
        for column, node in (("q_recommend", "recommend"), ("q_develop_area", "develop-area")):
            value = plan.answers.get(node)
            if value is None:
                assert row[column] != row[column]  # NaN: missing
            else:
                label = meta.variable_value_labels[column][row[column]]
                assert label == FI_LABELS[column][value]
        if "services" in plan.answers:
            assert row["q_services"] == float(plan.answers["services"])
        assert row["attempts"] == len(plan.outcomes)


def test_codebook_lists_variables_and_values(manager: FlaskClient, world: World) -> None:
    body = _get(manager, world, "codebook").get_data().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body), delimiter=";"))
    variables = [r["variable"] for r in rows if r["type"]]
    assert variables == HEADER_START
    values = {(r["variable"], r["value"], r["value_label"]) for r in rows if not r["type"]}
    assert ("q_recommend", "1", "Kyllä") in values and ("q_recommend", "2", "Ei") in values


def test_speech_dataset_holds_the_reviewed_transcripts(manager: FlaskClient, world: World) -> None:
    response = _get(manager, world, "dataset")
    assert response.status_code == 200 and response.is_streamed
    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    lines = [json.loads(line) for line in archive.read("manifest.jsonl").decode().splitlines()]
    assert len(lines) == len(world.reviewed) == 3
    assert sorted(line["text"] for line in lines) == sorted(world.reviewed.values())
    for line in lines:
        audio = archive.read(line["audio"])
        assert audio.startswith(b"RIFF") and not line["audio"].startswith("/")
        assert line["language"] in ("fi", "sv") and line["duration"] > 0
        assert line["question"] == "develop-open"
        assert line["question_text"].startswith("Mitä kaupungin")


def test_every_download_is_audited(
    manager: FlaskClient, world: World, services: Services, users: Users
) -> None:
    _get(manager, world, "xlsx", layout="long").get_data()
    with services.factory() as s:
        entries = s.scalars(
            sa.select(AuditEntry)
            .where(
                AuditEntry.action == "export.download",
                AuditEntry.target_id == world.seeded.campaign_id,
            )
            .order_by(AuditEntry.id)
        ).all()
    assert entries, "no export.download in the audit log"
    last = json.loads(entries[-1].detail)
    assert last["format"] == "xlsx" and last["layout"] == "long"
    assert entries[-1].user_id == users.a.manager.user_id
    assert entries[-1].org_id == users.a.manager.org_id


def test_phone_numbers_only_for_an_admin(
    module_site: Site, manager: FlaskClient, world: World, users: Users
) -> None:
    assert _get(manager, world, "csv", phone="1").status_code == 403
    admin = _client(module_site, users, "a", "admin")
    body = _get(admin, world, "csv", phone="1").get_data().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body), delimiter=";"))
    assert [r["phone"] for r in rows] == [
        f"+35840{1000000 + n:07d}" for n in range(len(world.seeded.plans))
    ]
    plain = _get(admin, world, "csv").get_data().decode("utf-8-sig")
    assert "+35840" not in plain


def test_others_get_nothing(module_site: Site, world: World, users: Users) -> None:
    other = _client(module_site, users, "b", "manager")
    own_org = f"/o/{users.b.manager.org_id}/campaigns/{world.seeded.campaign_id}"
    for what in ("csv", "xlsx", "sav", "codebook", "dataset"):
        assert _get(other, world, what).status_code == 404  # A's org in the URL
        assert other.get(f"{own_org}/export/{what}", base_url=BASE_URL).status_code == 404
    assert other.get(f"{own_org}/exports", base_url=BASE_URL).status_code == 404
    reviewer = _client(module_site, users, "a", "reviewer")
    assert _get(reviewer, world, "csv").status_code == 403
    anonymous = module_site.client()
    assert _get(anonymous, world, "csv").status_code == 302


def test_exports_page_links_every_download(manager: FlaskClient, world: World) -> None:
    base = f"/o/{world.org_id}/campaigns/{world.seeded.campaign_id}"
    page = manager.get(f"{base}/exports", base_url=BASE_URL)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for what in ("csv", "xlsx", "sav", "codebook", "dataset"):
        assert f"{base}/export/{what}" in text
    assert "layout=long" in text and "values=labels" in text
    campaign = manager.get(base, base_url=BASE_URL).get_data(as_text=True)
    assert f"{base}/exports" in campaign
