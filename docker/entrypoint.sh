#!/bin/sh
# Initialise the data volume (idempotent), then run the requested service.
set -e
ivr init
case "$1" in
  pbx)
    ivr pbx start
    # Keep the container alive as long as Asterisk runs; stop it cleanly on SIGTERM.
    trap 'ivr pbx stop; exit 0' TERM INT
    while ivr pbx status >/dev/null 2>&1; do sleep 5 & wait $!; done
    echo "Asterisk is no longer healthy:"; ivr pbx logs -n 40; exit 1 ;;
  demo) ivr pbx start && exec ivr demo ;;
  *) exec ivr "$@" ;;
esac
