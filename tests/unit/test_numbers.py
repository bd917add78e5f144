from __future__ import annotations

import phonenumbers
import pytest

from ivr.campaigns.numbers import NumberError, caller_id_warnings, normalise


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Finnish mobiles in the ways residents and spreadsheets write them
        ("040 123 4567", "+358401234567"),
        ("0401234567", "+358401234567"),
        ("040-123 4567", "+358401234567"),
        ("040\u2013123 4567", "+358401234567"),  # en dash from a word processor
        ("040\u00a0123\u00a04567", "+358401234567"),  # no-break spaces from a spreadsheet
        ("  040 123 4567  ", "+358401234567"),
        ("+358 40 123 4567", "+358401234567"),
        ("+358 (0) 40 123 4567", "+358401234567"),
        ("+358401234567", "+358401234567"),
        ("00358401234567", "+358401234567"),
        ("00 358 40 123 4567", "+358401234567"),
        # decided: a spreadsheet that ate the "+" (358...) or the trunk 0 (40...) is accepted
        ("358401234567", "+358401234567"),
        ("401234567", "+358401234567"),
        ("050 701 9999", "+358507019999"),
        # landlines
        ("(09) 123 4567", "+35891234567"),
        ("09 1234567", "+35891234567"),
        ("02 123 4567", "+35821234567"),
        ("019 123 4567", "+358191234567"),
        ("018 12345", "+3581812345"),  # Åland shares +358
        # other countries, written with + or 00
        ("+46 8 123 456 78", "+46812345678"),
        ("0046812345678", "+46812345678"),
        ("+1 202 555 0143", "+12025550143"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+7 495 123 45 67", "+74951234567"),
    ],
)
def test_normalise_accepts(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("040 abc 4567", "not a phone number"),
        ("0800-FLOWERS", "not a phone number"),  # letters are never read as keypad digits
        ("tel:+358401234567", "not a phone number"),
        ("++358401234567", "not a phone number"),
        ("040+1234567", "not a phone number"),
        ("---", "not a phone number"),
        ("040 123 4567 ext. 5", "not a phone number"),
        ("040 123", "too short"),
        ("+358 40", "too short"),
        ("+358 9 123", "too short"),
        ("112", "too short"),
        ("+75 7531 000", "too short"),
        ("+1 202 555 01", "too short"),
        ("040 123 45678 9", "too long"),
        ("0401234567890123456789", "too long"),
        ("+44 20 7946 095812", "too long"),
        ("+999 1234567", "unknown country code"),
        ("99000 12345", "not a valid FI number"),
    ],
)
def test_normalise_rejects_with_reason(raw: str, reason: str) -> None:
    with pytest.raises(NumberError) as info:
        normalise(raw)
    assert info.value.reason == reason
    assert str(info.value) == reason
    assert isinstance(info.value, ValueError)


def test_foreign_number_without_plus_is_not_guessed() -> None:
    # 46... without + or 00 is read as a Finnish number, and it is not one.
    with pytest.raises(NumberError):
        normalise("46812345678")


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("08 123 456 78", "SE", "+46812345678"),
        ("08 123 456 78", "FI", "+358812345678"),  # 08 is the Oulu area code in Finland
        ("0 40 123 4567", "FI", "+358401234567"),
        ("+358 40 123 4567", "SE", "+358401234567"),
    ],
)
def test_normalise_reads_national_numbers_in_the_given_region(
    raw: str, region: str, expected: str
) -> None:
    assert normalise(raw, region) == expected


def test_unknown_region_is_a_programming_error_not_a_bad_number() -> None:
    with pytest.raises(ValueError, match="unknown region") as info:
        normalise("040 123 4567", region="XX")
    assert not isinstance(info.value, NumberError)


@pytest.mark.parametrize(
    "number", ["+358507010000", "+358507019999", "+358507020123", "+358507990001"]
)
def test_simulated_resident_numbers_are_valid_finnish_mobiles(number: str) -> None:
    assert normalise(number) == number
    parsed = phonenumbers.parse(number)
    assert phonenumbers.is_valid_number(parsed)
    assert phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE
    assert phonenumbers.region_code_for_number(parsed) == "FI"


@pytest.mark.parametrize(
    "number",
    [
        "+358401234567",  # mobile
        "+358507010000",  # mobile (Elisa)
        "+35891234567",  # Helsinki landline
        "+358201234567",  # 020 corporate number
        "+358291234567",  # 029 (used by the state and municipalities)
        "+358757531000",  # 075 corporate number
        "+358800123456",  # toll free: free for the resident to call back
    ],
)
def test_domestic_caller_ids_raise_no_warning(number: str) -> None:
    assert caller_id_warnings(number) == []


@pytest.mark.parametrize(
    ("number", "fragments"),
    [
        ("", [["empty or hidden"]]),
        ("   ", [["empty or hidden"]]),
        ("anonymous", [["empty or hidden"]]),
        ("Restricted", [["empty or hidden"]]),
        # The Uusikaupunki pilot: "075..." sent as "+75..." reads as Russia/Kazakhstan.
        (
            "+757531000",
            [
                ["+757531000 looks foreign", "+7", "Russia/Kazakhstan", "Finland"],
                ["075 7531000", "+358757531000"],
                ["not a valid number", "too short"],
            ],
        ),
        ("+74951234567", [["looks foreign", "+7", "Russia/Kazakhstan"]]),
        ("+46812345678", [["looks foreign", "+46", "Sweden"]]),
        ("+12025550143", [["looks foreign", "+1", "United States"]]),
        ("+88212345678", [["looks foreign", "non-geographic"], ["not a valid number"]]),
        ("+358600123456", [["premium-rate", "call", "back"]]),
        ("+358700123456", [["premium-rate"]]),
        ("+35810012345", [["service number", "0100"]]),
        ("+358200123456", [["service number"]]),
        ("040 123 4567", [["not in E.164 form", "+358401234567"]]),
        ("+358 40 123 4567", [["not in E.164 form", "+358401234567"]]),
        ("+35840123", [["not a valid number", "too short"]]),
        ("abc", [["not a phone number"]]),
        ("+999 1234567", [["unknown country code"]]),
    ],
)
def test_caller_id_warnings(number: str, fragments: list[list[str]]) -> None:
    warnings = caller_id_warnings(number)
    assert len(warnings) == len(fragments), warnings
    for warning, expected in zip(warnings, fragments, strict=True):
        for fragment in expected:
            assert fragment in warning, (fragment, warning)


def test_caller_id_home_region_decides_what_is_foreign() -> None:
    assert caller_id_warnings("+46812345678", home_region="SE") == []
    (warning,) = caller_id_warnings("+358401234567", home_region="SE")
    assert "looks foreign" in warning and "Finland" in warning
