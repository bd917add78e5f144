"""Phone numbers for campaigns: normalise contacts to E.164, vet caller IDs (pure; no I/O).

Validation uses Google's numbering metadata through the ``phonenumbers`` library; this module
adds the rules a contact import and a campaign set-up need on top of it: letters are never
"converted" (``0800-FLOWERS`` is a typo here, not a vanity number), reasons are short and
human, and a caller ID is judged by whether residents would trust it and could call it back.
"""

from __future__ import annotations

import re

import phonenumbers as pn
from phonenumbers import PhoneNumberType

__all__ = ["NumberError", "caller_id_warnings", "normalise"]

# Characters people legitimately write in a phone number (NBSP and the en dash come from
# spreadsheets and word processors). Anything else, letters above all, is rejected.
_ALLOWED = re.compile(r"[0-9+\s().\-\u2013/]+")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_HIDDEN = frozenset({"anonymous", "hidden", "private", "restricted", "unknown", "withheld"})

# Finnish "palvelunumerot" (service numbers) 0100, 0200, 0300 are billed at a price the
# operator of the number sets, 0600 and 0700 are premium rate. The library classifies
# 0600/0700 as PREMIUM_RATE but 0100/0200/0300 as UAN together with the ordinary corporate
# numbers (010, 020, 029, 030x, 075) that municipalities use, so they are told apart here by
# their national prefix.
_FI_SERVICE_PREFIXES = ("100", "200", "300")
_NO_CALLBACK_TYPES = {
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.PAGER: "a pager number",
    PhoneNumberType.VOICEMAIL: "a voicemail access number",
}


class NumberError(ValueError):
    """A phone number that cannot be used; ``reason`` is short and meant for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalise(raw: str, region: str = "FI") -> str:
    """``raw`` as E.164 (``+358401234567``), or :class:`NumberError` with the reason.

    Numbers written without a country code are read as numbers of ``region``; numbers written
    with ``+`` or ``00`` may be from any country and must be valid there. A ``358`` prefix
    without ``+`` (what a spreadsheet leaves of ``+358...``) is accepted when the digits do not
    make a valid national number on their own.
    """
    parsed = _parse(raw, region)
    if not pn.is_valid_number(parsed):
        raise NumberError(_invalid_reason(parsed, region))
    return pn.format_number(parsed, pn.PhoneNumberFormat.E164)


def caller_id_warnings(number: str, home_region: str = "FI") -> list[str]:
    """What would make residents of ``home_region`` distrust or be unable to return a call
    from the caller ID ``number``. An empty list means no objection."""
    home_cc = _country_code(home_region)
    text = number.strip()
    if not text or text.lower() in _HIDDEN:
        return [
            "the caller ID is empty or hidden: residents do not answer hidden numbers "
            "and cannot call back"
        ]
    try:
        parsed = _parse(text, home_region)
    except NumberError as exc:
        return [f"{text!r} is not a phone number residents can call back: {exc.reason}"]
    warnings: list[str] = []
    e164 = pn.format_number(parsed, pn.PhoneNumberFormat.E164)
    if not _E164.fullmatch(text):
        warnings.append(f"{text!r} is not in E.164 form; write it as {e164}")
    country = parsed.country_code or 0
    if country != home_cc:
        warnings.append(
            f"{e164} looks foreign: +{country} is the country code of "
            f"{_countries(country)}, not {_countries(home_cc)}; residents ignore "
            "or fear foreign numbers (the Uusikaupunki pilot's +75... caller ID scared people)"
        )
        meant = _domestic_reading(e164, home_region)
        if meant is not None:
            warnings.append(f"if you meant the domestic number {meant[0]}, write it as {meant[1]}")
    if not pn.is_valid_number(parsed):
        warnings.append(f"{e164} is not a valid number: {_invalid_reason(parsed, home_region)}")
        return warnings
    kind = _NO_CALLBACK_TYPES.get(pn.number_type(parsed))
    nsn = pn.national_significant_number(parsed)
    if kind is None and country == 358 and nsn.startswith(_FI_SERVICE_PREFIXES):
        kind = "a Finnish service number (0100/0200/0300, priced by its operator)"
    if kind is not None:
        warnings.append(
            f"{e164} is {kind}: residents calling back pay extra or cannot get through; "
            "use an ordinary landline or mobile number"
        )
    return warnings


def _parse(raw: str, region: str) -> pn.PhoneNumber:
    """The number ``raw`` denotes (not yet checked for validity), or :class:`NumberError`."""
    _country_code(region)
    text = raw.strip()
    if not text:
        raise NumberError("empty")
    if not _ALLOWED.fullmatch(text) or "+" in text[1:] or not any(c.isdigit() for c in text):
        raise NumberError("not a phone number")
    try:
        # A leading "+" is read with no default region so that the library cannot fall back
        # to reading it as a national number (it otherwise turns "+999 1234567" into +1...).
        parsed = pn.parse(text, None if text.startswith("+") else region)
    except pn.NumberParseException as exc:
        raise NumberError(_PARSE_REASONS.get(exc.error_type, "not a phone number")) from None
    possible = pn.is_possible_number_with_reason(parsed)
    if possible == pn.ValidationResult.INVALID_COUNTRY_CODE:
        raise NumberError("unknown country code")
    if possible == pn.ValidationResult.TOO_LONG:
        raise NumberError("too long")
    return parsed


_PARSE_REASONS = {
    pn.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    pn.NumberParseException.NOT_A_NUMBER: "not a phone number",
    pn.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    pn.NumberParseException.TOO_SHORT_NSN: "too short",
    pn.NumberParseException.TOO_LONG: "too long",
}


def _invalid_reason(parsed: pn.PhoneNumber, region: str) -> str:
    """Why a parsed number is not valid: too short, too long, or not a number of its country.

    The metadata allows many lengths per country, so "too short" means "some longer number
    with these leading digits is valid" and "too long" means "dropping up to four trailing digits
    gives a valid number"."""
    nsn = pn.national_significant_number(parsed)
    for drop in range(1, 5):
        if len(nsn) - drop >= 2 and _valid_nsn(parsed, nsn[:-drop]):
            return "too long"
    if pn.is_possible_number_with_reason(parsed) == pn.ValidationResult.TOO_SHORT:
        return "too short"
    for extra in range(1, 5):
        if any(_valid_nsn(parsed, nsn + digit * extra) for digit in "0123456789"):
            return "too short"
    country = parsed.country_code or 0
    if country == _country_code(region):
        return f"not a valid {region} number"
    regions = "/".join(_regions(country)) or "non-geographic"
    return f"not a valid +{country} number ({regions})"


def _valid_nsn(like: pn.PhoneNumber, nsn: str) -> bool:
    candidate = pn.PhoneNumber(
        country_code=like.country_code,
        national_number=int(nsn),
        italian_leading_zero=like.italian_leading_zero,
        number_of_leading_zeros=like.number_of_leading_zeros,
    )
    return pn.is_valid_number(candidate)


def _country_code(region: str) -> int:
    code = pn.country_code_for_region(region)
    if code == 0:
        raise ValueError(f"unknown region {region!r} (use an ISO 3166 code such as 'FI')")
    return code


def _regions(country_code: int) -> list[str]:
    """ISO regions using ``country_code``, without the library's "001" (non-geographic)."""
    return [
        region
        for region in pn.region_codes_for_country_code(country_code)
        if region != pn.REGION_CODE_FOR_NON_GEO_ENTITY
    ]


def _countries(country_code: int) -> str:
    """'Russia/Kazakhstan' for 7, 'Finland/Åland Islands' for 358."""
    # Imported here: the geocoder's data is ~100 MB in memory and takes 0.3 s to load,
    # which every `ivr` command and web worker paid at start for this rare warning.
    from phonenumbers import geocoder

    names: list[str] = []
    for region in _regions(country_code):
        example = pn.example_number(region)
        name = geocoder.country_name_for_number(example, "en") if example else ""
        names.append(name or region)
    return "/".join(names) or "a non-geographic service"


def _domestic_reading(e164: str, home_region: str) -> tuple[str, str] | None:
    """For ``+75...`` the domestic number ``075...`` when that is valid (a trunk-prefixed
    national number written with a plus instead of the country code)."""
    national = "0" + e164[1:]
    try:
        parsed = pn.parse(national, home_region)
    except pn.NumberParseException:
        return None
    if not pn.is_valid_number(parsed) or parsed.country_code != _country_code(home_region):
        return None
    written = pn.format_number(parsed, pn.PhoneNumberFormat.NATIONAL)
    return written, pn.format_number(parsed, pn.PhoneNumberFormat.E164)
