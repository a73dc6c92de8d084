#!/usr/bin/env bash
# Build a small Debian bookworm base image for one server, with no registry access:
#
#   scripts/debian-image.sh redis      → slipway-local/rootfs-redis:bookworm
#   scripts/debian-image.sh postgres   → slipway-local/rootfs-postgres:bookworm
#   scripts/debian-image.sh ci         → slipway-local/rootfs-ci:bookworm
#
# The rootfs is `debootstrap --variant=minbase` with only that server's packages (and
# what they depend on), stripped of apt lists, docs, man pages and translations, then
# `docker import`ed. examples/images/<name>/Dockerfile builds FROM it.
#
# Cached: the image carries the label dev.slipway.recipe, a digest of this script and
# the package list; when the image exists with the same recipe nothing is done. The
# .debs are kept under ${SLIPWAY_CACHE:-~/.cache/slipway}/debian/debs, so a rebuild
# (after a recipe change) downloads only the package indices. Prints each phase with
# its duration to stderr; the last line of stdout is the image name.
#
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), SLIPWAY_CACHE.
set -euo pipefail

NAME="${1:-}"
SUITE=bookworm
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE="${SLIPWAY_CACHE:-$HOME/.cache/slipway}/debian"

# Only the server package; debootstrap adds its Depends (not its Recommends).
#   redis     redis-server (brings redis-tools: redis-cli)
#   postgres  postgresql-15 (brings postgresql-client-15: psql, pg_isready; initdb is
#             in the server package); tzdata, locales and perl come as dependencies
#   ci        ca-certificates and curl: the base of slipway's CI image
#             (docker/ci.Dockerfile) and of the container the binary install is
#             tested in; curl is how slipway downloads the tools it provisions
case "$NAME" in
  redis) PACKAGES=redis-server ;;
  postgres) PACKAGES=postgresql-15 ;;
  ci) PACKAGES=ca-certificates,curl ;;
  *) echo "usage: $0 redis|postgres|ci" >&2; exit 2 ;;
esac
IMAGE="slipway-local/rootfs-$NAME:$SUITE"

say() { printf '[debian-image %s %s] %s\n' "$NAME" "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }
phase() {
  local name=$1 start; shift
  start=$(date +%s)
  say "$name: start"
  "$@" || die "$name (see the output above)"
  say "$name: done in $(($(date +%s) - start))s"
}
have_image() { docker image inspect "$1" >/dev/null 2>&1; }
apt_install() { # from Debian's packages; refresh the lists once if they are missing
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 && return 0
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# The recipe: this script (which holds the package lists and the clean-up) and the
# packages asked for.
recipe=$({ cat "${BASH_SOURCE[0]}"; echo "$SUITE $NAME $PACKAGES"; } | sha256sum | cut -c1-12)

command -v docker >/dev/null || die "docker is not on PATH"
if have_image "$IMAGE" && [[ "$(docker image inspect --format '{{index .Config.Labels "dev.slipway.recipe"}}' "$IMAGE")" == "$recipe" ]]; then
  say "$IMAGE is up to date (recipe $recipe)"
  echo "$IMAGE"
  exit 0
fi
docker info >/dev/null 2>&1 || die "the Docker daemon does not answer (docker info)"
[[ $(id -u) == 0 ]] || die "debootstrap needs root (run as root, or with sudo)"
mkdir -p "$CACHE/debs"
ROOT=""

cleanup() { # never let rm cross into a mount debootstrap left behind
  [[ -n "$ROOT" && -d "$ROOT" ]] || return 0
  local m
  for m in dev/pts dev/shm dev proc sys; do
    if mountpoint -q "$ROOT/$m" 2>/dev/null; then umount -l "$ROOT/$m" 2>/dev/null || true; fi
  done
  rm -rf --one-file-system "$ROOT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bootstrap() {
  command -v debootstrap >/dev/null || apt_install debootstrap || return 1
  local log="$CACHE/debootstrap-$NAME.log" i
  for i in 1 2 3; do
    # Under the cache, not /tmp: the chroot needs device nodes and executables, which
    # a nodev or noexec /tmp would refuse.
    ROOT=$(mktemp -d "$CACHE/rootfs-$NAME.XXXXXX")
    chmod 0755 "$ROOT"
    debootstrap --variant=minbase --include="$PACKAGES" --cache-dir="$CACHE/debs" \
      "$SUITE" "$ROOT" "$DEBIAN_MIRROR" >"$log" 2>&1 && return 0
    say "debootstrap attempt $i failed (log: $log)"; tail -5 "$log" >&2
    cleanup
    [[ $i == 3 ]] && return 1
    sleep $((i * 10))
  done
}

slim() { # what a server container never reads
  local r=$ROOT
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb \
    "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old \
    "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/lintian "$r"/usr/share/linda \
    "$r"/usr/share/locale/* "$r"/usr/share/i18n "$r"/usr/share/bug
  find "$r/var/log" -type f -delete
  # /usr/share/doc: only the copyright files stay (the licences of what is shipped).
  find "$r/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
  # Packages a derived image installs leave them out too.
  mkdir -p "$r/etc/dpkg/dpkg.cfg.d"
  cat >"$r/etc/dpkg/dpkg.cfg.d/01-slipway-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  # Every container is its own machine.
  if [[ -s "$r/etc/machine-id" ]]; then : >"$r/etc/machine-id"; fi
  case "$NAME" in
    postgres)
      # postgresql-15's postinst creates a cluster "main" (and ssl-cert a snakeoil key
      # pair): the image initialises its own data directory, and ships no private key.
      rm -rf "$r"/etc/postgresql/15/main "$r"/var/lib/postgresql/15 \
        "$r"/etc/ssl/private/ssl-cert-snakeoil.key "$r"/etc/ssl/certs/ssl-cert-snakeoil.pem
      # What only optional parts need, purged (dpkg --force-depends: the database says
      # they are gone; a derived image that installs packages runs `apt-get -f install`
      # first, which brings them back):
      #   libllvm14, libz3-4   JIT compilation (llvmjit.so, 130 MB): without it
      #                        PostgreSQL runs the same queries interpreted (jit = off)
      #   perl, libperl5.36,   postgresql-common's cluster tools (pg_ctlcluster,
      #   perl-modules-5.36    pg_createcluster…) and its pg_wrapper (50 MB); the
      #                        image runs initdb and postgres itself, and /usr/bin's
      #                        client commands point at the real binaries instead
      chroot "$r" dpkg --purge --force-depends libllvm14 libz3-4 perl libperl5.36 perl-modules-5.36 \
        >"$CACHE/purge-$NAME.log" 2>&1 || { tail -20 "$CACHE/purge-$NAME.log" >&2; return 1; }
      rm -f "$r"/usr/lib/postgresql/15/lib/llvmjit.so "$r"/usr/lib/postgresql/15/lib/llvmjit_types.bc
      rm -rf "$r"/usr/lib/postgresql/15/lib/bitcode
      local link bin
      for link in "$r"/usr/bin/*; do
        [[ -L "$link" && "$(readlink "$link")" == *pg_wrapper ]] || continue
        bin=/usr/lib/postgresql/15/bin/${link##*/}
        if [[ -x "$r$bin" ]]; then ln -sfn "$bin" "$link"; else rm -f "$link"; fi
      done
      # Every server and client binary still finds all its libraries.
      local missing
      missing=$(chroot "$r" sh -c 'for f in /usr/lib/postgresql/15/bin/* /usr/lib/postgresql/15/lib/*.so; do
        ldd "$f" 2>/dev/null | grep -q "not found" && echo "$f"; done; true')
      [[ -z "$missing" ]] || { say "libraries missing for: $missing"; return 1; }
      ;;
  esac
}

import_image() {
  local old path
  old=$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null) || old=""
  path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  [[ $NAME == postgres ]] && path=/usr/lib/postgresql/15/bin:$path
  # /dev, /proc and /sys are the runtime's; debootstrap's device nodes are not shipped.
  tar -C "$ROOT" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -cf - . \
    | docker import \
      --change "ENV PATH=$path" \
      --change 'ENV LANG=C.UTF-8' \
      --change "LABEL dev.slipway.recipe=$recipe dev.slipway.packages=$PACKAGES dev.slipway.suite=$SUITE" \
      --change 'CMD ["/bin/bash"]' \
      - "$IMAGE" >/dev/null || return 1
  # The image this one replaces, unless something else still uses it (a tag, a child).
  if [[ -n "$old" ]]; then docker image rm "$old" >/dev/null 2>&1 || true; fi
}

phase "rootfs (debootstrap $SUITE minbase + $PACKAGES)" bootstrap
phase "slim (apt lists, docs, man, locales)" slim
phase "import ($IMAGE)" import_image
say "built $IMAGE, recipe $recipe ($(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
echo "$IMAGE"
