#!/bin/sh
# PostgreSQL (Debian's package). First start: a cluster whose superuser `postgres` logs in
# only over the local socket (peer), and a role `ivr` (password: /secrets/postgres_password,
# generated now) owning the database `ivr`. TCP: PG_LISTEN:PG_PORT (loopback by default),
# scram-sha-256 from 127.0.0.1/::1 only (initdb's host lines).
set -eu
. /usr/local/lib/ivr/lib.sh
PGDATA=/var/lib/postgresql/data
PG_PORT="${PG_PORT:-5432}"
PG_LISTEN="${PG_LISTEN:-127.0.0.1}"
BIN=/usr/local/lib/pgbin
run_pg() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
case "${1:-postgres}" in
  postgres)
    ensure_secret postgres_password
    mkdir -p "$PGDATA" /run/postgresql
    chown postgres:postgres "$PGDATA" /run/postgresql
    chmod 0700 "$PGDATA"
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
      echo "postgres: first start: initdb, role ivr, database ivr"
      run_pg "$BIN/initdb" -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=peer --auth-host=scram-sha-256 >/dev/null
      run_pg "$BIN/pg_ctl" -D "$PGDATA" -w -s \
        -o "-c listen_addresses='' -c unix_socket_directories=/run/postgresql" start
      # The password goes through a psql variable read from the file (never a command line).
      run_pg "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h /run/postgresql -U postgres -d postgres <<'SQL'
\set pw `cat /secrets/postgres_password`
CREATE ROLE ivr LOGIN PASSWORD :'pw';
CREATE DATABASE ivr OWNER ivr;
SQL
      run_pg "$BIN/pg_ctl" -D "$PGDATA" -w -s -m fast stop
    fi
    as_user postgres "$BIN/postgres" -D "$PGDATA" -c "listen_addresses=$PG_LISTEN" \
      -c "port=$PG_PORT" -c unix_socket_directories=/run/postgresql ;;
  health) exec "$BIN/pg_isready" -q -h /run/postgresql -p "$PG_PORT" -d ivr -U ivr ;;
  *) exec "$@" ;;
esac
