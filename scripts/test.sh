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
# Most tests wait on real calls in real time, so they run in parallel even on 2 cores;
# each worker has its own Asterisk, ports and databases. PYTEST_WORKERS=0 runs them serially.
exec .venv/bin/pytest -q -p no:cacheprovider -n "${PYTEST_WORKERS:-4}" --dist worksteal "$@"
