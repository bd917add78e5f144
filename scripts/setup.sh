#!/usr/bin/env bash
# Everything a fresh Debian 12 machine needs: apt packages, a virtual environment with the
# project installed, an initialised data directory and the Asterisk build (cached).
# Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3 python3-venv python3-dev ca-certificates git
  debootstrap            # builds the Asterisk tree (Debian sid) once
  espeak-ng ffmpeg sox   # speech prompts and audio conversion
  baresip-core sip-tester  # real SIP clients for the tests
  linphone-cli           # linphonec: the printed linphonerc registers (tests)
  redis-server           # the Redis job queue's tests start their own (loopback, a password)
  postgresql             # the PostgreSQL tests start their own server (initdb, loopback)
  docker.io docker-compose  # the Compose test runs its own private daemon (no bridge, no iptables)
  kamailio               # the SIP load balancer in front of several Asterisk nodes (tests)
  chromium fonts-dejavu-core  # the staff UI's browser tests (Playwright drives Debian's chromium)
  iproute2 procps strace
)
# axe-core for the browser tests comes from npm (package-lock.json). Debian 12 has no node or
# npm by default; a node installed otherwise (NodeSource's nodejs brings its own npm, and
# conflicts with Debian's npm package) is used as it is.
command -v npm >/dev/null || APT_PACKAGES+=(nodejs npm)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "setup: not root and no sudo: install these first: ${APT_PACKAGES[*]}" >&2
  fi
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing apt packages: ${missing[*]}"
  # Packages with a service (docker.io, kamailio, postgresql, redis-server) must not start
  # one here: Docker's default daemon would make a bridge network and firewall rules, and
  # Kamailio's default config listens on every interface. The tests start their own, on
  # loopback. A policy-rc.d that says "no" does that for the length of this install.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$guard" >/dev/null
    $SUDO chmod 755 "$guard"
    trap '$SUDO rm -f "$guard"' EXIT
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [ -n "$guard" ]; then $SUDO rm -f "$guard"; trap - EXIT; fi
fi

PYTHON="${PYTHON:-/usr/bin/python3}"
[ -x "$PYTHON" ] || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.ivr-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing the project into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi

# The browser tests' JavaScript (axe-core), pinned by package-lock.json; never a build step.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing node_modules (npm ci)"
  npm ci --no-audit --no-fund
fi

# The Asterisk build needs root (debootstrap + chroot); it is cached afterwards.
if [ "$(id -u)" -eq 0 ]; then
  .venv/bin/ivr pbx build
else
  $SUDO env "PATH=$PATH" "HOME=$HOME" .venv/bin/ivr pbx build
fi
