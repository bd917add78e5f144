#!/usr/bin/env bash
# Set everything up (see setup.sh), then run the demo. `--once` runs it to the end and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/ivr demo "$@"
