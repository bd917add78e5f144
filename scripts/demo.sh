#!/usr/bin/env bash
# Set everything up (see setup.sh), then run the demo (`ivr demo`, see README.md): the PBX,
# the telephony and job workers and the staff web UI, a campaign to simulated residents,
# its funnel, the web UI's address and logins. It keeps running until Ctrl-C; `--once` runs
# the campaign to its end, stops everything and exits (non-zero on any failure).
# `--data-dir DIR` chooses the demo's own data directory (default ~/.local/share/ivr-demo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/ivr demo "$@"
