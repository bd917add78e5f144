#!/bin/sh
# Asterisk (Debian's package) on the config that `ivr pbx render` wrote into the shared
# data volume (the compose file's `init` service does that before this one starts).
set -eu
. /usr/local/lib/ivr/lib.sh
CONF=/data/pbx/etc/asterisk.conf
case "${1:-asterisk}" in
  asterisk)
    if [ ! -s "$CONF" ]; then
      echo "asterisk: $CONF is missing: the init service (ivr init; ivr pbx render) has not run" >&2
      exit 1
    fi
    # The control socket's folder and the recordings folder (ARI records into it).
    mkdir -p /data/pbx/run /data/pbx/spool/recording /data/pbx/log
    chown "$IVR_UID:$IVR_GID" /data/pbx/run /data/pbx/spool /data/pbx/spool/recording /data/pbx/log
    ulimit -n 65536 2>/dev/null || true
    as_user ivr /usr/sbin/asterisk -C "$CONF" -f -n ;;
  health)
    # Fully booted, asked over its control socket.
    out="$(/usr/sbin/asterisk -C "$CONF" -rx 'core waitfullybooted' 2>&1)" || { echo "$out"; exit 1; }
    case "$out" in *"fully booted"*) exit 0 ;; *) echo "$out"; exit 1 ;; esac ;;
  *) exec "$@" ;;
esac
