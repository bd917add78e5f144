"""Languages (Finnish, Swedish, English via flask-babel), dates in the organisation's time
zone, and the message catalogues, compiled from the committed ``.po`` files when missing
or older (so every install, editable or not, serves current translations)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, g, request, session
from flask_babel import Babel, format_datetime, format_decimal, get_locale
from flask_babel import gettext as _

LANGUAGES = ("fi", "sv", "en")
LANGUAGE_NAMES = {"fi": "suomi", "sv": "svenska", "en": "English"}
TRANSLATIONS = Path(__file__).parent / "translations"
# "29.11.2026 klo 10.00" (fi), "29.11.2026 kl. 10.00" (sv), "29 Nov 2026, 10:00" (en).
DATETIME_PATTERNS = {
    "fi": "d.M.yyyy 'klo' H.mm",
    "sv": "d.M.yyyy 'kl.' H.mm",
    "en": "d MMM yyyy, HH:mm",
}
DATE_PATTERNS = {"fi": "d.M.yyyy", "sv": "d.M.yyyy", "en": "d MMM yyyy"}
TIME_PATTERNS = {"fi": "H.mm", "sv": "H.mm", "en": "HH:mm"}


def compile_catalogues(folder: Path = TRANSLATIONS) -> list[Path]:
    """Write each ``messages.mo`` whose ``.po`` is newer (or that is missing)."""
    written = []
    for po in sorted(folder.glob("*/LC_MESSAGES/messages.po")):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as fh:
            catalogue = read_po(fh, locale=po.parent.parent.name)
        # A name of this process's own: gunicorn's workers each compile at start, at once.
        tmp = mo.with_suffix(f".mo.{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            write_mo(fh, catalogue, use_fuzzy=False)
        tmp.replace(mo)
        written.append(mo)
    return written


def select_locale() -> str:
    chosen = session.get("language")
    if chosen in LANGUAGES:
        return str(chosen)
    user = getattr(g, "user", None)
    if user is not None and user.language in LANGUAGES:
        return str(user.language)
    return request.accept_languages.best_match(LANGUAGES) or "fi"


def select_timezone() -> str:
    org = getattr(g, "org", None)
    return org.timezone if org is not None else "Europe/Helsinki"


def language() -> str:
    return str(get_locale() or "fi")


def fmt_datetime(value: datetime | None) -> str:
    if value is None:
        return "–"
    return str(format_datetime(value, DATETIME_PATTERNS.get(language(), DATETIME_PATTERNS["en"])))


def fmt_date(value: datetime | None) -> str:
    if value is None:
        return "–"
    return str(format_datetime(value, DATE_PATTERNS.get(language(), DATE_PATTERNS["en"])))


def fmt_time(value: datetime | None) -> str:
    if value is None:
        return "–"
    return str(format_datetime(value, TIME_PATTERNS.get(language(), TIME_PATTERNS["en"])))


def fmt_number(value: float | int | None) -> str:
    """A number in the user's locale (1 234 in Finnish and Swedish, 1,234 in English)."""
    if value is None:
        return "–"
    return str(format_decimal(value))


def role_name(role: str) -> str:
    names = {
        "admin": _("Administrator"),
        "manager": _("Campaign manager"),
        "reviewer": _("Reviewer"),
    }
    return str(names.get(role, role))


def init_i18n(app: Flask) -> None:
    compile_catalogues()
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    app.config["BABEL_DEFAULT_LOCALE"] = "fi"
    Babel(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.jinja_env.filters["datetime"] = fmt_datetime
    app.jinja_env.filters["date"] = fmt_date
    app.jinja_env.filters["time"] = fmt_time
    app.jinja_env.filters["number"] = fmt_number
    app.jinja_env.globals["LANGUAGE_NAMES"] = LANGUAGE_NAMES
    app.jinja_env.globals["current_language"] = language
    app.jinja_env.globals["role_name"] = role_name
