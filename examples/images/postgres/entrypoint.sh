#!/bin/bash
# Initialise the cluster on the first start, then exec postgres in the foreground (PID
# 1: docker stop / the kubelet's signal reaches the server).
#   PGDATA             the volume (default /var/lib/postgresql/data); the cluster is
#                      $PGDATA/pgdata, or $PGDATA itself if it already holds one
#   POSTGRES_USER      superuser created by initdb (default app)
#   POSTGRES_PASSWORD  its password, required on the first start; read from the
#                      environment only (never argv, never logged)
#   POSTGRES_DB        database created on the first start (default app)
# Arguments: `postgres [options]` (options starting with - are given to postgres);
# anything else is run as is (docker run IMAGE psql …).
set -euo pipefail

if [[ "${1:-}" == -* ]]; then set -- postgres "$@"; fi
[[ "${1:-}" == postgres ]] || exec "$@"
shift

PGDATA="${PGDATA:-/var/lib/postgresql/data}"
POSTGRES_USER="${POSTGRES_USER:-app}"
POSTGRES_DB="${POSTGRES_DB:-app}"

log() { printf '%s [entrypoint] %s\n' "$(date -u '+%F %T UTC')" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

if [[ -s "$PGDATA/PG_VERSION" ]]; then
  cluster=$PGDATA
else
  cluster=$PGDATA/pgdata
fi

init() {
  [[ -n "${POSTGRES_PASSWORD:-}" ]] || die "POSTGRES_PASSWORD is not set: the first start needs it (the password of $POSTGRES_USER)"
  mkdir -p "$PGDATA" 2>/dev/null || true
  [[ -w "$PGDATA" ]] || die "$PGDATA is not writable by uid $(id -u) (owner $(stat -c '%u:%g, mode %a' "$PGDATA")): mount a volume it can write, or set the pod's fsGroup"
  # initdb works in a scratch directory renamed when everything is done, so a start
  # interrupted half-way initialises again instead of running a half-made cluster.
  local work=$cluster.init
  rm -rf "$work"
  umask 0077
  mkdir "$work"
  log "initialising the cluster in $cluster (superuser $POSTGRES_USER, database $POSTGRES_DB)"
  initdb --pgdata="$work" --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 --no-instructions >&2
  cat >>"$work/postgresql.conf" <<'CONF'

# set by the image's entrypoint
listen_addresses = '*'
password_encryption = scram-sha-256
# the image ships without LLVM
jit = off
CONF
  cat >>"$work/pg_hba.conf" <<'HBA'

# set by the image's entrypoint: every other host, with the password
host    all             all             0.0.0.0/0               scram-sha-256
host    all             all             ::/0                    scram-sha-256
HBA
  if [[ "$POSTGRES_DB" != postgres ]]; then
    # A server on the socket only, for the CREATE DATABASE.
    pg_ctl --pgdata="$work" --wait --timeout=60 --silent -o "-c listen_addresses=''" start >&2
    psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 --username="$POSTGRES_USER" --dbname=postgres \
      -v db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";' >&2
    pg_ctl --pgdata="$work" --wait --timeout=60 --silent --mode=fast stop >&2
  fi
  mv "$work" "$cluster"
  log "cluster ready"
}

if [[ ! -s "$cluster/PG_VERSION" ]]; then
  if [[ -d "$cluster" ]]; then
    rmdir "$cluster" 2>/dev/null || die "$cluster exists and is not a PostgreSQL cluster (no PG_VERSION): move it away"
  fi
  init
else
  log "reusing the cluster in $cluster"
fi

unset POSTGRES_PASSWORD
export PGDATA=$cluster
exec postgres -D "$cluster" "$@"
