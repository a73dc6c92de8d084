#!/usr/bin/env bash
# Build a static release binary of a workspace package (glibc with crt-static: no
# musl toolchain or base image needed) and install it where its Dockerfile copies it.
# pipeline.toml runs this as the image's pre_build command.
#
# Usage: scripts/build-static.sh PACKAGE DEST
set -euo pipefail
pkg=${1:?usage: build-static.sh PACKAGE DEST}
dest=${2:?usage: build-static.sh PACKAGE DEST}
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
# --target keeps RUSTFLAGS off build scripts and proc-macros (which must stay dynamic).
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --release --locked --quiet -p "$pkg" --target "$host"
# Images that share this binary run their pre-builds at the same time (cargo's own
# lock serialises the builds): each copies to a file of its own, then renames it into
# place, which is atomic, so neither sees the other's half-written or vanished file.
mkdir -p "$(dirname "$dest")"
tmp=$(mktemp "$dest.XXXXXX")
install -m 0755 "${CARGO_TARGET_DIR:-target}/$host/release/$pkg" "$tmp"
mv -f "$tmp" "$dest"
echo "built $dest ($(du -h "$dest" | cut -f1), static)" >&2
