"""Finnish, Swedish and English throughout: every message of the templates and of the web
and account code translated into all three (no fuzzy, no obsolete, placeholders kept),
the page language from the user's setting or else the browser, and dates in the
organisation's time zone as Finnish and Swedish readers write them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from ivr.store.org_models import Organisation
from tests.web.conftest import Site, login, post, text

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "ivr" / "web"
TRANSLATIONS = WEB / "translations"
LOCALES = ("fi", "sv", "en")
# The keywords scripts/translations.sh gives pybabel beside its defaults.
KEYWORDS = {**DEFAULT_KEYWORDS, "lazy_gettext": None, "_l": None, "lazy_ngettext": (1, 2)}
NAMED = re.compile(r"%\((\w+)\)[#0\- +]*\d*(?:\.\d+)?[sdifr]")
BRACES = re.compile(r"(?<!\{)\{(\w*)(?:[!:][^{}]*)?\}(?!\})")
POSITIONAL = re.compile(r"%[#0\- +]*\d*(?:\.\d+)?[sdifr]")


def extracted() -> dict[tuple[str | tuple[str, ...], str | None], list[str]]:
    """Every message the code and templates use (as ivr/web/babel.cfg says), with where."""
    with (WEB / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh, str(WEB / "babel.cfg"))

    def only_ivr(path: str) -> bool:
        relative = os.path.relpath(path, ROOT)
        return relative == "." or relative == "ivr" or relative.startswith("ivr" + os.sep)

    found: dict[tuple[str | tuple[str, ...], str | None], list[str]] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        ROOT, method_map, options_map, keywords=KEYWORDS, directory_filter=only_ivr
    ):
        key = (message, context)
        found.setdefault(key, []).append(f"{filename}:{lineno}")
    return found


def catalogue(locale: str) -> Catalog:
    with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=locale)


def _placeholders(text: str) -> tuple[list[str], list[str], int]:
    return (
        sorted(NAMED.findall(text)),
        sorted(BRACES.findall(text)),
        len(POSITIONAL.findall(NAMED.sub("", text).replace("%%", ""))),
    )


def _strings(message: Message) -> list[str]:
    value = message.string
    return list(value) if isinstance(value, tuple | list) else [value]


@pytest.fixture(scope="module")
def messages() -> dict[tuple[str | tuple[str, ...], str | None], list[str]]:
    found = extracted()
    assert len(found) > 50, "the extraction found almost nothing: is babel.cfg right?"
    return found


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_is_translated(
    messages: dict[tuple[str | tuple[str, ...], str | None], list[str]], locale: str
) -> None:
    po = catalogue(locale)
    problems = []
    for (msgid, context), where in sorted(messages.items(), key=str):
        entry = po.get(msgid, context)
        place = where[0]
        if entry is None:
            problems.append(f"{place}: {msgid!r} is not in {locale}/messages.po")
        elif entry.fuzzy:
            problems.append(f"{place}: {msgid!r} is fuzzy in {locale}")
        elif not all(s.strip() for s in _strings(entry)):
            problems.append(f"{place}: {msgid!r} has no {locale} translation")
        else:
            source = msgid if isinstance(msgid, str) else msgid[0]
            for translated in _strings(entry):
                if _placeholders(translated) != _placeholders(source):
                    problems.append(
                        f"{place}: the {locale} translation of {source!r} has other "
                        f"placeholders: {translated!r}"
                    )
    assert not problems, "run `bash scripts/translations.sh`, then translate:\n" + "\n".join(
        problems
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_no_stale_fuzzy_or_obsolete_entries(
    messages: dict[tuple[str | tuple[str, ...], str | None], list[str]], locale: str
) -> None:
    po = catalogue(locale)
    stale = [m.id for m in po if m.id and (m.id, m.context) not in messages]
    fuzzy = [m.id for m in po if m.id and m.fuzzy]
    assert not stale, f"{locale}: entries the code no longer uses (run translations.sh): {stale}"
    assert not fuzzy, f"{locale}: fuzzy entries: {fuzzy}"
    assert not po.obsolete, f"{locale}: obsolete (#~) entries: {list(po.obsolete)}"


def test_the_template_catalogue_is_current(
    messages: dict[tuple[str | tuple[str, ...], str | None], list[str]],
) -> None:
    with (TRANSLATIONS / "messages.pot").open("rb") as fh:
        pot = read_po(fh)
    committed = {(m.id, m.context) for m in pot if m.id}
    assert committed == set(messages), (
        "ivr/web/translations/messages.pot is out of date: run bash scripts/translations.sh "
        f"(new: {sorted(set(messages) - committed, key=str)}, "
        f"gone: {sorted(committed - set(messages), key=str)})"
    )


def test_no_gettext_outside_the_extracted_folders() -> None:
    """A translated string in a module babel.cfg does not read would never be translated."""
    outside = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "ivr").rglob("*.py")
        if "flask_babel" in path.read_text(encoding="utf-8")
        and not path.is_relative_to(WEB)
        and not path.is_relative_to(ROOT / "ivr" / "accounts")
    ]
    assert not outside, f"gettext used outside ivr/web and ivr/accounts: {outside}"


# --------------------------------------------------------------------------- the script
@pytest.fixture()
def copy(tmp_path: Path) -> Iterator[Path]:
    """The parts of the repository scripts/translations.sh reads, to change freely."""
    target = tmp_path / "repo"
    (target / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "translations.sh", target / "scripts")
    ignore = shutil.ignore_patterns("__pycache__", "*.mo", "static")
    shutil.copytree(ROOT / "ivr" / "web", target / "ivr" / "web", ignore=ignore)
    shutil.copytree(ROOT / "ivr" / "accounts", target / "ivr" / "accounts", ignore=ignore)
    (target / ".venv").symlink_to(ROOT / ".venv")
    yield target


def _script(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(repo / "scripts" / "translations.sh"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_script_finds_a_new_string_and_check_mode_fails_until_translated(
    copy: Path,
) -> None:
    base = copy / "ivr" / "web" / "templates" / "login.html"
    base.write_text(
        base.read_text().replace(
            "{% endblock %}", '<p>{{ _("Brand new words") }}</p>\n{% endblock %}'
        )
    )
    stale = _script(copy, "--check")
    assert stale.returncode == 1
    assert "messages.pot: lacks 'Brand new words'" in stale.stdout
    assert _script(copy).returncode == 0
    untranslated = _script(copy, "--check")
    assert untranslated.returncode == 1
    assert "fi/LC_MESSAGES/messages.po: untranslated: 'Brand new words'" in untranslated.stdout
    assert "en/LC_MESSAGES" not in untranslated.stdout  # English: the source text
    for locale, words in (("fi", "Aivan uudet sanat"), ("sv", "Helt nya ord")):
        po = copy / "ivr" / "web" / "translations" / locale / "LC_MESSAGES" / "messages.po"
        po.write_text(
            po.read_text().replace(
                'msgid "Brand new words"\nmsgstr ""', f'msgid "Brand new words"\nmsgstr "{words}"'
            )
        )
    checked = _script(copy, "--check")
    # Whatever else is untranslated in the real catalogues, this string is not listed.
    assert "Brand new words" not in checked.stdout
    assert _script(copy, "--bogus").returncode == 2


# --------------------------------------------------------------------------- the pages
def test_a_page_in_the_browsers_language(site: Site) -> None:
    client = site.client()
    swedish = client.get("/login", headers={"Accept-Language": "sv-FI,sv;q=0.9,en;q=0.5"})
    assert '<html lang="sv">' in text(swedish) and "Logga in" in text(swedish)
    english = client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert '<html lang="en">' in text(english) and "Log in" in text(english)
    default = client.get("/login", headers={"Accept-Language": "de-DE"})
    assert '<html lang="fi">' in text(default) and "Kirjaudu sisään" in text(default)


def test_the_users_saved_language_wins_over_the_browsers(site: Site) -> None:
    who = site.person("A", "manager")
    site.services.accounts.set_language(who.user_id, "sv")
    client = site.client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "fi-FI,fi;q=0.9"
    assert login(client, who.email, who.password).status_code == 302
    page = text(client.get(f"/o/{site.orgs['A']}/campaigns/"))
    assert '<html lang="sv">' in page and "Kampanjer" in page
    # The language switch saves the choice for the next login, in any browser.
    assert post(client, "/language", {"language": "en", "next": "/"}).status_code == 302
    later = site.client()
    later.environ_base["HTTP_ACCEPT_LANGUAGE"] = "sv"
    login(later, who.email, who.password)
    assert '<html lang="en">' in text(later.get(f"/o/{site.orgs['A']}/campaigns/"))


def test_the_language_switch_refuses_an_unknown_language(site: Site) -> None:
    client = site.client()
    assert post(client, "/language", {"language": "de"}).status_code == 400


@pytest.mark.parametrize(
    ("language", "shown"),
    [("fi", "29.11.2026 klo 10.00"), ("sv", "29.11.2026 kl. 10.00"), ("en", "29 Nov 2026, 10:00")],
)
def test_dates_in_the_users_language_and_the_organisations_time_zone(
    site: Site, language: str, shown: str
) -> None:
    site.clock.set(datetime(2026, 11, 29, 8, 0, tzinfo=UTC))  # 10.00 in Helsinki
    reviewer = site.person("A", "reviewer")
    assert login(site.client(), reviewer.email, reviewer.password).status_code == 302
    admin = site.logged_in("A", "admin")
    post(admin, "/language", {"language": language, "next": "/"})
    users = f"/o/{site.orgs['A']}/users/"
    assert shown in text(admin.get(users))
    with site.services.factory.begin() as s:
        org = s.get(Organisation, site.orgs["A"])
        assert org is not None
        org.timezone = "Europe/Stockholm"
    stockholm = shown.replace("10.00", "9.00").replace("10:00", "09:00")
    assert stockholm in text(admin.get(users))
