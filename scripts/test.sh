#!/usr/bin/env bash
# Set everything up (see setup.sh), then lint, type-check and run the whole test suite
# against a real Asterisk. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff"
.venv/bin/ruff check ivr tests bench
.venv/bin/ruff format --check ivr tests bench
echo "== mypy (the pure core, strict)"
.venv/bin/mypy
echo "== pytest"
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
