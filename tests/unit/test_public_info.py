"""The public page's content (pure): the stored JSON, the manager's form and its problems
(each naming its field), the calling hours in words and the caller number as read."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ivr.campaigns import public_info
from ivr.campaigns.admin_checks import CampaignSettings, check_settings, parse_price
from ivr.campaigns.public_info import PublicInfo, PublicInfoInvalid
from ivr.flows.loader import load_flow

EXAMPLE = Path(__file__).parents[2] / "examples" / "flows" / "strategy-survey.yaml"
COMPLETE = {
    "enabled": "1",
    "purpose_fi": "Kysymme asukkaiden mielipiteitä.\n\nVastaaminen on vapaaehtoista.",
    "purpose_sv": "Vi frågar invånarnas åsikter.",
    "period_start": "2027-03-01",
    "period_end": "31.3.2027",
    "inbound_number": "029 123 4500",
    "contact": "kirjaamo@alfala.example",
    "privacy_fi": "Vastaukset käsitellään luottamuksellisesti.",
    "controller": "Alfalan kunta, PL 1, 00100 Alfala",
}


def _problems(values: dict[str, str], language: str = "fi") -> dict[str, str]:
    with pytest.raises(PublicInfoInvalid) as caught:
        public_info.check(values, default_language=language)
    return {p.field: p.code for p in caught.value.problems}


def test_a_complete_form_is_read_and_kept_as_json() -> None:
    info = public_info.check(COMPLETE, default_language="fi")
    assert info.enabled
    assert info.period_start == date(2027, 3, 1)
    assert info.period_end == date(2027, 3, 31)  # the Finnish way of writing a date
    assert info.inbound_number == "+358291234500"
    assert info.purpose == {"fi": COMPLETE["purpose_fi"], "sv": COMPLETE["purpose_sv"]}
    again = public_info.loads(public_info.dumps(info))
    assert again == info
    assert again.form_values()["period_end"] == "2027-03-31"


def test_a_published_page_needs_its_texts_in_the_default_language() -> None:
    assert _problems({"enabled": "1"}) == {
        "purpose_fi": "required",
        "period_start": "required",
        "period_end": "required",
        "contact": "required",
        "privacy_fi": "required",
        "controller": "required",
    }
    # A Swedish-speaking campaign needs the Swedish texts instead.
    values = {**COMPLETE, "purpose_sv": ""}
    found = _problems(values, language="sv")
    assert found == {"purpose_sv": "required", "privacy_sv": "required"}
    # Not published: a draft may be half-written.
    assert not public_info.check({"purpose_fi": "Luonnos"}, default_language="fi").enabled


def test_each_bad_value_is_named_by_its_field() -> None:
    values = {
        **COMPLETE,
        "period_start": "32.13.2027",
        "inbound_number": "not a number",
        "privacy_sv": "x" * (public_info.MAX_TEXT + 1),
        "contact": "y" * (public_info.MAX_LINE + 1),
    }
    with pytest.raises(PublicInfoInvalid) as caught:
        public_info.check(values, default_language="fi")
    by_field = caught.value.by_field()
    assert by_field["period_start"].code == public_info.INVALID_DATE
    assert "period_start" in by_field["period_start"].message
    assert by_field["inbound_number"].code == "invalid_number"
    assert "inbound_number" in by_field["inbound_number"].message
    assert by_field["privacy_sv"].code == "too_long"
    assert by_field["contact"].code == "too_long"
    # The form's order (the error summary lists them so).
    fields = [p.field for p in caught.value.problems]
    assert fields == sorted(fields, key=public_info.FIELDS.index)


def test_the_end_cannot_be_before_the_start() -> None:
    found = _problems({**COMPLETE, "period_start": "2027-04-01", "period_end": "2027-03-31"})
    assert found == {"period_end": public_info.END_BEFORE_START}


def test_stored_json_of_the_wrong_shape_reads_as_defaults() -> None:
    assert public_info.loads("") == PublicInfo()
    assert public_info.loads("[1, 2]") == PublicInfo()
    odd = public_info.loads(
        '{"enabled": "yes", "purpose": {"fi": 3, "de": "x"}, "period_start": "x"}'
    )
    assert odd == PublicInfo()


def test_a_text_falls_back_to_the_default_language() -> None:
    info = PublicInfo(purpose={"fi": "Hei", "sv": "Hej"})
    assert info.text("purpose", "sv", "fi") == ("Hej", "sv")
    assert info.text("purpose", "en", "fi") == ("Hei", "fi")
    assert info.text("privacy", "en", "fi") == ("", "en")


@pytest.mark.parametrize(
    ("windows", "language", "expected"),
    [
        ("mon-fri 10-20", "fi", ["Maanantaista perjantaihin klo 10–20"]),
        ("mon-fri 10-20", "sv", ["Måndag–fredag kl. 10–20"]),
        ("mon-fri 10-20", "en", ["Monday to Friday 10:00–20:00"]),
        ("mon-fri 10-20, sat 10-14", "fi",
         ["Maanantaista perjantaihin klo 10–20", "Lauantaisin klo 10–14"]),
        ("mon-fri 9:30-12, mon-fri 13-16", "fi",
         ["Maanantaista perjantaihin klo 9.30–12 ja 13–16"]),
        ("mon+wed 17-19", "sv", ["Måndagar och onsdagar kl. 17–19"]),
        ("sat-sun 12-24", "en", ["Saturdays and Sundays 12:00–24:00"]),
        ("mon-sun 0-24", "fi", ["Joka päivä klo 0–24"]),
        ("ma-ke 10-18", "fi", ["Maanantaista keskiviikkoon klo 10–18"]),
    ],
)  # fmt: skip
def test_hours_in_words(windows: str, language: str, expected: list[str]) -> None:
    assert public_info.hours_in_words(windows, language) == expected


def test_hours_that_do_not_parse_are_refused() -> None:
    with pytest.raises(ValueError):
        public_info.hours_in_words("mon-fri 20-10", "fi")


@pytest.mark.parametrize(
    ("number", "shown"),
    [
        ("+358291234567", "029 123 4567"),
        ("+358912345678", "09 1234 5678"),
        ("+358401234567", "040 123 4567"),
        ("+46812345678", "+46 8 123 456 78"),
        (None, ""),
    ],
)
def test_the_number_as_a_resident_reads_it(number: str | None, shown: str) -> None:
    assert public_info.display_number(number) == shown


def test_the_questions_of_a_flow_in_every_language() -> None:
    flow = load_flow(EXAMPLE)
    found = public_info.questions(flow)
    kinds = {node.kind for node in flow.nodes.values()}
    asking = [n for n, node in flow.nodes.items() if node.kind in public_info.QUESTION_KINDS]
    assert [q.node_id for q in found] == asking
    assert "say" in kinds and all(q.kind != "say" for q in found)
    first = found[0]
    assert first.text["fi"].startswith("Kuinka tyytyväinen")
    assert first.text["sv"].startswith("Hur nöjd")
    assert "\n" not in first.text["fi"]


def test_price_and_billing_rule_on_the_campaign_settings() -> None:
    assert parse_price("0,0125") == 0.0125
    assert parse_price(" 0.02 € ") == 0.02
    assert parse_price("") is None
    with pytest.raises(ValueError):
        parse_price("kaksi senttiä")
    good = check_settings(
        "Kysely", CampaignSettings(price_per_minute=0.0125, billing_rule=" 30 / 6 ")
    )
    assert not good.problems
    assert good.values["billing_rule"] == "30/6"
    assert good.values["price_per_minute"] == 0.0125
    bad = check_settings("Kysely", CampaignSettings(price_per_minute=-1, billing_rule="minute"))
    codes = {p.field: p.code for p in bad.problems}
    assert codes == {"price_per_minute": "invalid_price", "billing_rule": "invalid_billing_rule"}
    fine = check_settings("Kysely", CampaignSettings(price_per_minute=0.00125))
    assert {p.field: p.code for p in fine.problems} == {"price_per_minute": "price_precision"}
