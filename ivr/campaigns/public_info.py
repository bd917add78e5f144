"""What a campaign's public page says (pure; no I/O).

The page (no login, one address per campaign) tells residents who is calling and why, when,
from which number, what will be asked, how to call in, how to refuse further calls, and how
their data is handled. What the campaign does not already know is kept as a JSON object in
``Campaign.public_info``; this module reads and writes that object, checks a manager's form
(every problem at once, each naming its field), and puts the campaign's calling windows and
caller number into words a resident reads.

Fields of the JSON object (every one optional in storage; ``check`` says which a published
page needs):

- ``enabled``: the page is published (its address stays when it is turned off);
- ``purpose``: ``{"fi": ..., "sv": ..., "en": ...}``, who is calling and why;
- ``privacy``: ``{"fi": ..., "sv": ..., "en": ...}``, the data-protection notice;
- ``controller``: the controller's name and contact details (address, e-mail, phone);
- ``contact``: whom a resident contacts to refuse further calls or to ask;
- ``period_start``, ``period_end``: the calling period, ISO dates (``2027-03-01``);
- ``inbound_number``: the number a resident calls to take part (E.164), or absent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any, Final

import phonenumbers as pn

from ivr.campaigns import rules
from ivr.campaigns.errors import INVALID_NUMBER, REQUIRED, TOO_LONG, FieldProblem
from ivr.campaigns.numbers import NumberError, normalise
from ivr.flows.model import Flow

LANGUAGES: Final = ("fi", "sv", "en")
TEXTS: Final = ("purpose", "privacy")  # the texts kept per language
MAX_TEXT: Final = 4000  # characters in a purpose or privacy text
MAX_LINE: Final = 500  # characters in the controller's or the contact's details
INVALID_DATE: Final = "invalid_date"
END_BEFORE_START: Final = "end_before_start"
# Node kinds that ask the resident something (their prompts are the page's questions).
QUESTION_KINDS: Final = frozenset({"choice", "scale", "number", "open"})
# The order of the form's fields (an error summary lists them in this order).
FIELDS: Final = (
    "enabled",
    *(f"purpose_{lang}" for lang in LANGUAGES),
    "period_start",
    "period_end",
    "inbound_number",
    "contact",
    *(f"privacy_{lang}" for lang in LANGUAGES),
    "controller",
)
_FI_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")


@dataclass(frozen=True)
class PublicInfo:
    enabled: bool = False
    purpose: Mapping[str, str] = field(default_factory=dict)
    privacy: Mapping[str, str] = field(default_factory=dict)
    controller: str = ""
    contact: str = ""
    period_start: date | None = None
    period_end: date | None = None
    inbound_number: str | None = None  # E.164

    def text(self, name: str, language: str, fallback: str) -> tuple[str, str]:
        """``(text, its language)`` of the text ``name`` in ``language``, else in
        ``fallback``, else in any language it has; ``("", language)`` when it has none."""
        texts: Mapping[str, str] = getattr(self, name)
        for lang in (language, fallback, *LANGUAGES):
            if texts.get(lang):
                return texts[lang], lang
        return "", language

    def as_dict(self) -> dict[str, Any]:
        """The JSON object as stored (and as the audit log compares it)."""
        return {
            "enabled": self.enabled,
            "purpose": {k: v for k, v in self.purpose.items() if v},
            "privacy": {k: v for k, v in self.privacy.items() if v},
            "controller": self.controller,
            "contact": self.contact,
            "period_start": self.period_start.isoformat() if self.period_start else None,
            "period_end": self.period_end.isoformat() if self.period_end else None,
            "inbound_number": self.inbound_number,
        }

    def form_values(self) -> dict[str, str]:
        """The form's fields filled with what is stored (dates as ISO, for ``type=date``)."""
        values = {
            "enabled": "1" if self.enabled else "",
            "controller": self.controller,
            "contact": self.contact,
            "period_start": self.period_start.isoformat() if self.period_start else "",
            "period_end": self.period_end.isoformat() if self.period_end else "",
            "inbound_number": self.inbound_number or "",
        }
        for name in TEXTS:
            texts: Mapping[str, str] = getattr(self, name)
            for lang in LANGUAGES:
                values[f"{name}_{lang}"] = texts.get(lang, "")
        return values


class PublicInfoInvalid(ValueError):
    """The form's problems, every one, each naming its field (``problems``)."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(p.message for p in self.problems))

    def by_field(self) -> dict[str, FieldProblem]:
        found: dict[str, FieldProblem] = {}
        for problem in self.problems:
            found.setdefault(problem.field, problem)
        return found


def dumps(info: PublicInfo) -> str:
    return json.dumps(info.as_dict(), ensure_ascii=False, sort_keys=True)


def loads(text: str | None) -> PublicInfo:
    """The stored JSON object read back; what is missing or not of its type is left at its
    default (the column is written only by ``dumps``, so this is tolerance, not repair)."""
    try:
        raw = json.loads(text or "{}")
    except ValueError:
        raw = {}
    if not isinstance(raw, dict):
        raw = {}

    def texts(key: str) -> dict[str, str]:
        value = raw.get(key)
        if not isinstance(value, dict):
            return {}
        return {k: v for k, v in value.items() if k in LANGUAGES and isinstance(v, str) and v}

    def day(key: str) -> date | None:
        value = raw.get(key)
        try:
            return date.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            return None

    def line(key: str) -> str:
        value = raw.get(key)
        return value if isinstance(value, str) else ""

    return PublicInfo(
        enabled=raw.get("enabled") is True,
        purpose=texts("purpose"),
        privacy=texts("privacy"),
        controller=line("controller"),
        contact=line("contact"),
        period_start=day("period_start"),
        period_end=day("period_end"),
        inbound_number=line("inbound_number") or None,
    )


def parse_date(text: str) -> date:
    """``2027-03-01`` (a date field) or ``1.3.2027`` (as a Finn or a Swede writes it)."""
    clean = text.strip()
    found = _FI_DATE.fullmatch(clean)
    if found:
        return date(int(found.group(3)), int(found.group(2)), int(found.group(1)))
    return date.fromisoformat(clean)


def check(values: Mapping[str, str], *, default_language: str) -> PublicInfo:
    """The form's ``values`` (field name → text, ``FIELDS``) as ``PublicInfo``, or
    ``PublicInfoInvalid`` with every problem. A published page (``enabled``) needs the
    purpose and the privacy notice in the campaign's ``default_language``, the calling
    period, the contact for refusals and the controller; a page not published may be saved
    half-written."""
    problems: list[FieldProblem] = []

    def get(name: str) -> str:
        return str(values.get(name, "") or "").strip().replace("\r\n", "\n")

    enabled = get("enabled") in ("1", "on", "true", "yes")
    texts: dict[str, dict[str, str]] = {}
    for name in TEXTS:
        texts[name] = {}
        for lang in LANGUAGES:
            key = f"{name}_{lang}"
            value = get(key)
            if len(value) > MAX_TEXT:
                problems.append(
                    FieldProblem(
                        key, TOO_LONG, f"{key}: {len(value)} characters; at most {MAX_TEXT}"
                    )
                )
            elif value:
                texts[name][lang] = value
    lines: dict[str, str] = {}
    for key in ("controller", "contact"):
        lines[key] = get(key)
        if len(lines[key]) > MAX_LINE:
            problems.append(
                FieldProblem(
                    key, TOO_LONG, f"{key}: {len(lines[key])} characters; at most {MAX_LINE}"
                )
            )
    days: dict[str, date | None] = {}
    for key in ("period_start", "period_end"):
        raw = get(key)
        days[key] = None
        if raw:
            try:
                days[key] = parse_date(raw)
            except ValueError:
                problems.append(
                    FieldProblem(
                        key, INVALID_DATE, f"{key}: {raw!r} is not a date such as 1.3.2027"
                    )
                )
    start, end = days["period_start"], days["period_end"]
    if start and end and end < start:
        problems.append(
            FieldProblem(
                "period_end", END_BEFORE_START, f"period_end: {end} is before period_start {start}"
            )
        )
    inbound: str | None = get("inbound_number") or None
    if inbound is not None:
        try:
            inbound = normalise(inbound)
        except NumberError as exc:
            problems.append(
                FieldProblem("inbound_number", INVALID_NUMBER, f"inbound_number {inbound!r}: {exc}")
            )
    if enabled:
        lang = default_language if default_language in LANGUAGES else "fi"
        needed = [f"purpose_{lang}", "period_start", "period_end", "contact",
                  f"privacy_{lang}", "controller"]  # fmt: skip
        given = {f"{n}_{lang}": bool(texts[n].get(lang)) for n in TEXTS}
        given.update({k: bool(v) for k, v in lines.items()})
        given.update({"period_start": bool(get("period_start")),
                      "period_end": bool(get("period_end"))})  # fmt: skip
        for key in needed:
            if not given[key]:
                problems.append(FieldProblem(key, REQUIRED, f"{key}: a published page needs it"))
    if problems:
        rank = {name: i for i, name in enumerate(FIELDS)}
        problems.sort(key=lambda p: rank.get(p.field, len(rank)))
        raise PublicInfoInvalid(problems)
    return PublicInfo(
        enabled=enabled,
        purpose=texts["purpose"],
        privacy=texts["privacy"],
        controller=lines["controller"],
        contact=lines["contact"],
        period_start=start,
        period_end=end,
        inbound_number=inbound,
    )


# --------------------------------------------------------------------------- the flow
@dataclass(frozen=True)
class Question:
    node_id: str
    kind: str
    text: Mapping[str, str]  # language -> the prompt's text


def questions(flow: Flow) -> list[Question]:
    """The questions a resident will hear, in the flow's order: each asking node's prompt
    text per language (a node without text, only a recording, is listed with none)."""
    found = []
    for node_id, node in flow.nodes.items():
        if node.kind not in QUESTION_KINDS:
            continue
        text = dict(node.prompt.text) if node.prompt is not None else {}
        found.append(
            Question(node_id, node.kind, {k: " ".join(v.split()) for k, v in text.items()})
        )
    return found


# --------------------------------------------------------------------------- numbers
def display_number(e164: str | None) -> str:
    """A number as residents read it: a Finnish one in the national form with the
    subscriber part grouped (``+358291234567`` → ``029 123 4567``, ``+358912345678`` →
    ``09 1234 5678``), another country's in the international form; "" for none."""
    if not e164:
        return ""
    try:
        parsed = pn.parse(e164, "FI")
    except pn.NumberParseException:
        return e164
    if parsed.country_code != 358:
        return str(pn.format_number(parsed, pn.PhoneNumberFormat.INTERNATIONAL))
    national = str(pn.format_number(parsed, pn.PhoneNumberFormat.NATIONAL))
    prefix, _, rest = national.partition(" ")
    digits = rest.replace(" ", "")
    if not digits:
        return national
    return f"{prefix} {_group(digits)}"


def _group(digits: str) -> str:
    n = len(digits)
    if n <= 4:
        return digits
    if n == 5:
        return f"{digits[:2]} {digits[2:]}"
    if n == 6:
        return f"{digits[:3]} {digits[3:]}"
    if n == 7:
        return f"{digits[:3]} {digits[3:]}"
    if n == 8:
        return f"{digits[:4]} {digits[4:]}"
    return f"{digits[:3]} {_group(digits[3:])}"


def tel_uri(e164: str | None) -> str:
    return f"tel:{e164}" if e164 else ""


# --------------------------------------------------------------------------- hours
# Days 0 = Monday .. 6 = Sunday.
_DAYS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "fi": {
        "from": ("maanantaista", "tiistaista", "keskiviikosta", "torstaista", "perjantaista",
                 "lauantaista", "sunnuntaista"),
        "to": ("maanantaihin", "tiistaihin", "keskiviikkoon", "torstaihin", "perjantaihin",
               "lauantaihin", "sunnuntaihin"),
        "on": ("maanantaisin", "tiistaisin", "keskiviikkoisin", "torstaisin", "perjantaisin",
               "lauantaisin", "sunnuntaisin"),
    },
    "sv": {
        "from": ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag"),
        "to": ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag"),
        "on": ("måndagar", "tisdagar", "onsdagar", "torsdagar", "fredagar", "lördagar",
               "söndagar"),
    },
    "en": {
        "from": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        "to": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        "on": ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays",
               "Sundays"),
    },
}  # fmt: skip
_WORDS: Final = {
    "fi": {"range": "{a} {b}", "and": "ja", "every": "joka päivä", "at": "klo"},
    "sv": {"range": "{a}–{b}", "and": "och", "every": "varje dag", "at": "kl."},
    "en": {"range": "{a} to {b}", "and": "and", "every": "every day", "at": ""},
}


def _clock(value: time, language: str, *, end: bool = False) -> str:
    if end and value == rules.END_OF_DAY:
        return "24" if language != "en" else "24:00"
    if language == "en":
        return f"{value.hour:02d}:{value.minute:02d}"
    return str(value.hour) if value.minute == 0 else f"{value.hour}.{value.minute:02d}"


def _runs(days: frozenset[int]) -> list[tuple[int, int]]:
    """Consecutive days as (first, last), Monday first."""
    runs: list[tuple[int, int]] = []
    for day in sorted(days):
        if runs and runs[-1][1] == day - 1:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _join(parts: list[str], word: str) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} {word} {parts[-1]}"


def _days_in_words(days: frozenset[int], language: str) -> str:
    words = _WORDS[language]
    if len(days) == 7:
        return words["every"]
    names = _DAYS[language]
    parts = []
    for first, last in _runs(days):
        if last - first >= 2:
            parts.append(words["range"].format(a=names["from"][first], b=names["to"][last]))
        else:
            parts.extend(names["on"][d] for d in range(first, last + 1))
    return _join(parts, words["and"])


def hours_in_words(windows: str, language: str) -> list[str]:
    """A campaign's calling windows (``"mon-fri 10-20, sat 10-14"``) as sentences in
    ``language`` (fi, sv or en): ``["Maanantaista perjantaihin klo 10–20", "Lauantaisin klo
    10–14"]``. Windows on the same days are said together; ValueError if they do not parse."""
    lang = language if language in _WORDS else "en"
    words = _WORDS[lang]
    by_days: dict[frozenset[int], list[tuple[time, time]]] = {}
    for window in rules.parse_windows(windows):
        by_days.setdefault(window.days, []).append((window.start, window.end))
    sentences = []
    for days, hours in sorted(by_days.items(), key=lambda kv: (min(kv[0]), kv[1])):
        spans = [
            f"{_clock(start, lang)}–{_clock(end, lang, end=True)}" for start, end in sorted(hours)
        ]
        at = f" {words['at']}" if words["at"] else ""
        sentence = f"{_days_in_words(days, lang)}{at} {_join(spans, words['and'])}"
        sentences.append(sentence[:1].upper() + sentence[1:])
    return sentences
