#!/bin/bash
# Start redis-server with a configuration written at start and read from stdin (the
# last argument "-"), so REDIS_PASSWORD is neither in argv nor in a file. Arguments
# after redis-server (or starting with --) are passed on and override it:
#   docker run IMAGE                        redis-server
#   docker run IMAGE --maxmemory 64mb       redis-server --maxmemory 64mb
#   docker run IMAGE redis-cli -h other     anything else is run as is
set -euo pipefail

if [[ "${1:-}" == -* ]]; then set -- redis-server "$@"; fi
[[ "${1:-}" == redis-server ]] || exec "$@"
shift

if [[ ! -w /data ]]; then
  echo "redis: /data is not writable by uid $(id -u) (owner $(stat -c '%u:%g, mode %a' /data)):" \
    "mount a volume it can write, or set the pod's fsGroup" >&2
  exit 1
fi

hex() { # every byte as \xHH: any password survives redis' quoted-string parser
  printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n' | sed 's/../\\x&/g'
}

config() {
  cat <<'CONF'
bind * -::*
port 6379
protected-mode no
daemonize no
logfile ""
dir /data
appendonly yes
appendfsync everysec
CONF
  if [[ -n "${REDIS_PASSWORD:-}" ]]; then
    printf 'requirepass "%s"\n' "$(hex "$REDIS_PASSWORD")"
  fi
}

if [[ -n "${REDIS_PASSWORD:-}" ]]; then auth="password set"; else auth="no password"; fi
echo "redis: starting on :6379, data in /data (append-only), $auth" >&2
exec redis-server "$@" - < <(config)
