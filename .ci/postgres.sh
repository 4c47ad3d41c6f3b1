#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the test suite and print its SQLAlchemy URL.
#
# Installs Debian's postgresql when its server binaries are missing, then runs its own cluster
# (own data directory, own port, loopback only, trust auth) so it never touches a system
# cluster. Usage: eval "$(.ci/postgres.sh start)"  ...  .ci/postgres.sh stop
set -euo pipefail

PGPORT="${ARCHE_PG_PORT:-55432}"
PGDATA="${ARCHE_PG_DATA:-/tmp/arche-predict-pg}"
RUNAS=postgres

pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

ensure_installed() {
  if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/initdb" ]; then
    echo "installing PostgreSQL from Debian..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
  fi
}

as_pg() {
  if [ "$(id -u)" = "0" ]; then
    su -s /bin/bash "$RUNAS" -c "$*"
  else
    bash -c "$*"
  fi
}

start() {
  ensure_installed
  local bin; bin="$(pg_bin)"
  if [ "$(id -u)" != "0" ]; then RUNAS="$(id -un)"; fi
  if [ -f "$PGDATA/postmaster.pid" ] && as_pg "'$bin/pg_ctl' -D '$PGDATA' status" >/dev/null 2>&1; then
    echo "PostgreSQL already running on port $PGPORT" >&2
  else
    rm -rf "$PGDATA"
    mkdir -p "$PGDATA"
    chown "$RUNAS" "$PGDATA" 2>/dev/null || true
    as_pg "'$bin/initdb' -D '$PGDATA' -A trust -U postgres -E UTF8 --locale=C.UTF-8" >/dev/null
    as_pg "'$bin/pg_ctl' -D '$PGDATA' -l '$PGDATA/server.log' -w -o \"-p $PGPORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200\" start" >&2
  fi
  echo "export ARCHE_PREDICT_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$PGPORT/postgres"
}

stop() {
  local bin; bin="$(pg_bin)"
  if [ "$(id -u)" != "0" ]; then RUNAS="$(id -un)"; fi
  if [ -n "$bin" ] && [ -f "$PGDATA/postmaster.pid" ]; then
    as_pg "'$bin/pg_ctl' -D '$PGDATA' -m fast -w stop" >&2 || true
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
