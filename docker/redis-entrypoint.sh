#!/bin/sh
# Redis (Debian's package) with a password (/secrets/redis_password, generated now) on
# REDIS_BIND:REDIS_PORT (loopback by default), append-only file in the volume.
set -eu
. /usr/local/lib/ivr/lib.sh
REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_BIND="${REDIS_BIND:-127.0.0.1}"
case "${1:-redis}" in
  redis)
    ensure_secret redis_password
    mkdir -p /run/redis /var/lib/redis
    chown redis:redis /run/redis /var/lib/redis
    conf=/run/redis/redis.conf
    umask 077
    {
      echo "bind $REDIS_BIND"
      echo "port $REDIS_PORT"
      echo "protected-mode yes"
      echo "daemonize no"
      echo "dir /var/lib/redis"
      echo "appendonly yes"
      echo "save 60 1000"
      echo "logfile \"\""
      echo "requirepass $(cat /secrets/redis_password)"
    } >"$conf"
    chown redis:redis "$conf"
    as_user redis /usr/bin/redis-server "$conf" ;;
  health)
    host="$REDIS_BIND"
    case "$host" in 0.0.0.0|::|"*") host=127.0.0.1 ;; esac
    REDISCLI_AUTH="$(cat /secrets/redis_password)" \
      redis-cli -h "$host" -p "$REDIS_PORT" ping | grep -q PONG ;;
  *) exec "$@" ;;
esac
