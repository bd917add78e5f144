#!/usr/bin/env bash
# The staff UI's message catalogues (ivr/web/translations).
#
#   bash scripts/translations.sh          extract the messages (ivr/web/babel.cfg) into
#                                         messages.pot and update fi, sv and en .po files
#                                         (new strings appear with an empty msgstr; English
#                                         is filled in from the source text)
#   bash scripts/translations.sh --check  change nothing; exit 1 if messages.pot is out of
#                                         date, or a .po lacks a string, has one the code no
#                                         longer uses, or has a fuzzy or empty translation
#
# Translate the empty msgstr "" entries of fi and sv (plain public-sector language), then
# check. The app compiles the .po files into .mo at start (ivr/web/i18n.py).
set -euo pipefail
cd "$(dirname "$0")/.."

PYBABEL=.venv/bin/pybabel
PYTHON=.venv/bin/python
[ -x "$PYBABEL" ] || PYBABEL=pybabel
[ -x "$PYTHON" ] || PYTHON=python3
DIR=ivr/web/translations
POT=$DIR/messages.pot
LOCALES="fi sv en"

extract() {  # extract OUTPUT
  "$PYBABEL" --quiet extract -F ivr/web/babel.cfg \
    -k lazy_gettext -k _l -k lazy_ngettext:1,2 \
    --ignore-dirs ".* ._ __pycache__ data build node_modules test-artifacts tests bench docker" \
    --project "ivr staff UI" --copyright-holder "ivr contributors" \
    --msgid-bugs-address "" --width 100 \
    -o "$1" .
}

case "${1:-}" in
  --check)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    extract "$tmp/messages.pot"
    exec "$PYTHON" - "$tmp/messages.pot" "$POT" "$DIR" $LOCALES <<'PY'
import sys
from pathlib import Path

from babel.messages.pofile import read_po

fresh_path, pot_path, folder, *locales = sys.argv[1:]


def keys(catalogue):
    return {(m.id if isinstance(m.id, str) else tuple(m.id), m.context) for m in catalogue if m.id}


def load(path, locale=None):
    with open(path, "rb") as fh:
        return read_po(fh, locale=locale)


problems = []
fresh = keys(load(fresh_path))
if not Path(pot_path).exists():
    problems.append(f"{pot_path} is missing")
else:
    committed = keys(load(pot_path))
    for key in sorted(fresh - committed, key=str):
        problems.append(f"{pot_path}: lacks {key[0]!r} (new in the code)")
    for key in sorted(committed - fresh, key=str):
        problems.append(f"{pot_path}: has {key[0]!r}, which the code no longer uses")
for locale in locales:
    po_path = Path(folder) / locale / "LC_MESSAGES" / "messages.po"
    if not po_path.exists():
        problems.append(f"{po_path} is missing")
        continue
    catalogue = load(po_path, locale)
    have = keys(catalogue)
    for key in sorted(fresh - have, key=str):
        problems.append(f"{po_path}: lacks {key[0]!r}")
    for key in sorted(have - fresh, key=str):
        problems.append(f"{po_path}: has {key[0]!r}, which the code no longer uses")
    for message in catalogue:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy:
            problems.append(f"{po_path}: fuzzy: {message.id!r}")
        elif not all(strings):
            problems.append(f"{po_path}: untranslated: {message.id!r}")
    for msgid in catalogue.obsolete:
        problems.append(f"{po_path}: obsolete entry: {msgid!r}")
for line in problems:
    print(line)
if problems:
    print(f"{len(problems)} problem(s): run bash scripts/translations.sh and translate", file=sys.stderr)
    sys.exit(1)
print(f"translations: {len(fresh)} messages, all translated in {', '.join(locales)}")
PY
    ;;
  "")
    extract "$POT"
    for locale in $LOCALES; do
      po=$DIR/$locale/LC_MESSAGES/messages.po
      if [ -f "$po" ]; then
        "$PYBABEL" --quiet update -i "$POT" -d "$DIR" -l "$locale" -w 100 \
          --no-fuzzy-matching --ignore-obsolete
      else
        "$PYBABEL" --quiet init -i "$POT" -d "$DIR" -l "$locale" -w 100
      fi
    done
    # English is the source language: an empty English entry gets the source text.
    "$PYTHON" - "$DIR/en/LC_MESSAGES/messages.po" <<'PY'
import sys

from babel.messages.pofile import read_po, write_po

path = sys.argv[1]
with open(path, "rb") as fh:
    catalogue = read_po(fh, locale="en")
for message in catalogue:
    if not message.id:
        continue
    if isinstance(message.id, tuple):
        if not all(message.string):
            message.string = tuple(message.id)
    elif not message.string:
        message.string = message.id
with open(path, "wb") as fh:
    write_po(fh, catalogue, width=100)
PY
    "$PYTHON" - "$DIR" $LOCALES <<'PY'
import sys
from pathlib import Path

from babel.messages.pofile import read_po

folder, *locales = sys.argv[1:]
for locale in locales:
    path = Path(folder) / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        catalogue = read_po(fh, locale=locale)
    empty = [m.id for m in catalogue if m.id and not (all(m.string) if isinstance(m.string, tuple) else m.string)]
    print(f"{path}: {len(empty)} to translate")
PY
    ;;
  *)
    echo "usage: bash scripts/translations.sh [--check]" >&2
    exit 2
    ;;
esac
