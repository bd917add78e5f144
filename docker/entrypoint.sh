#!/bin/sh
# The application image's entrypoint: the secrets (generated on first start into the
# /secrets volume), the settings that point at the composed PostgreSQL, Redis and Asterisk,
# then `ivr COMMAND` as the unprivileged user ivr.
#   init       ivr init (config, secrets.toml, database schema) + ivr pbx render; then exits
#   telephony | worker | web | any other ivr command
#   health telephony|worker|web   the compose health checks (docker/health.py)
set -eu
. /opt/ivr/docker/lib.sh
ensure_secret postgres_password
ensure_secret redis_password
export IVR_DATA_DIR=/data IVR_CACHE_DIR=/data/cache IVR_PBX_EXTERNAL=true
IVR_DATABASE_URL="postgresql+psycopg://ivr:$(cat /secrets/postgres_password)@${PG_HOST:-127.0.0.1}:${PG_PORT:-5432}/ivr"
IVR_JOBS_REDIS_URL="redis://:$(cat /secrets/redis_password)@${REDIS_HOST:-127.0.0.1}:${REDIS_PORT:-6379}/0"
export IVR_DATABASE_URL IVR_JOBS_REDIS_URL IVR_JOBS_BACKEND=redis
[ "$(stat -c %u /data)" = "$IVR_UID" ] || chown "$IVR_UID:$IVR_GID" /data
case "${1:-telephony}" in
  init)
    setpriv --reuid=ivr --regid=ivr --init-groups -- ivr init
    as_user ivr ivr pbx render ;;
  health)
    as_user ivr python /opt/ivr/docker/health.py "${2:-}" ;;
  ivr)
    shift
    as_user ivr ivr "$@" ;;
  *)
    as_user ivr ivr "$@" ;;
esac
