#!/bin/sh
# Install the slipway binary: no Rust toolchain needed.
#
#   curl --proto '=https' --tlsv1.2 -fsSL https://github.com/slipway-dev/slipway/releases/download/v0.2.0/install.sh | sh
#   sh install.sh [--version VERSION] [--prefix DIR] [--from DIR | --mirror URL]
#
# Downloads slipway-VERSION-TARGET.tar.gz for this machine and SHA256SUMS from the
# project's releases (or a mirror with the same layout, or a local directory such as
# `cargo xtask dist`'s target/dist), verifies the archive's SHA-256 against
# SHA256SUMS, and installs PREFIX/bin/slipway (default PREFIX: ~/.local). Nothing is
# installed when the checksum does not match. Only https:// URLs are fetched.
#
# Options (and the environment variables they override):
#   --version VERSION  slipway's version            (SLIPWAY_VERSION, default below)
#   --prefix DIR       install into DIR/bin         (SLIPWAY_PREFIX, default ~/.local)
#   --from DIR         take the files from DIR instead of downloading them
#   --mirror URL       download from URL/vVERSION/ instead of the releases URL
#                                                    (SLIPWAY_RELEASES_URL)
#   --target TRIPLE    the archive's target (default: this machine's)
set -eu

SLIPWAY_VERSION="${SLIPWAY_VERSION:-0.2.0}"
SLIPWAY_RELEASES_URL="${SLIPWAY_RELEASES_URL:-https://github.com/slipway-dev/slipway/releases/download}"
PREFIX="${SLIPWAY_PREFIX:-${HOME:-}/.local}"
FROM=""
TARGET=""
version_given=""

say() { printf 'install.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
usage() { sed -n '2,19p' "$0" 2>/dev/null | sed 's/^# \{0,1\}//' >&2; exit "${1:-2}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --version) [ $# -ge 2 ] || die "--version needs a value"; SLIPWAY_VERSION="${2#v}"; version_given=1; shift 2 ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX="$2"; shift 2 ;;
    --from) [ $# -ge 2 ] || die "--from needs a directory"; FROM="$2"; shift 2 ;;
    --mirror) [ $# -ge 2 ] || die "--mirror needs a URL"; SLIPWAY_RELEASES_URL="$2"; shift 2 ;;
    --target) [ $# -ge 2 ] || die "--target needs a triple"; TARGET="$2"; shift 2 ;;
    -h | --help) usage 0 ;;
    *) say "unknown option: $1"; usage 2 ;;
  esac
done
[ -n "$PREFIX" ] || die "no install prefix: HOME is not set (pass --prefix DIR)"

if [ -z "$TARGET" ]; then
  os=$(uname -s)
  arch=$(uname -m)
  case "$os" in
    Linux) ;;
    *) die "no slipway build for $os: build it with \`cargo install --path slipway\` from a clone" ;;
  esac
  case "$arch" in
    x86_64 | amd64) TARGET=x86_64-unknown-linux-gnu ;;
    aarch64 | arm64) TARGET=aarch64-unknown-linux-gnu ;;
    *) die "no slipway build for $os $arch: build it with \`cargo install --path slipway\` from a clone" ;;
  esac
fi

if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
  die "neither sha256sum nor shasum is installed: cannot verify the download"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/slipway-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

fetch() { # fetch URL FILE: https only, redirects included
  case "$1" in
    https://*) ;;
    *) die "refusing to download $1: only https:// URLs are fetched (use --mirror https://…, or --from DIR)" ;;
  esac
  if command -v curl >/dev/null 2>&1; then
    curl --proto '=https' --proto-redir '=https' --tlsv1.2 -fsSL --retry 2 -o "$2" "$1" ||
      die "cannot download $1"
  elif command -v wget >/dev/null 2>&1; then
    wget --https-only -q -O "$2" "$1" || die "cannot download $1"
  else
    die "neither curl nor wget is installed (or pass --from DIR)"
  fi
}

# SHA256SUMS first: it names the archive (with --from and no --version, the one for
# this target).
if [ -n "$FROM" ]; then
  [ -f "$FROM/SHA256SUMS" ] || die "$FROM/SHA256SUMS not found (\`cargo xtask dist\` writes it beside the archives)"
  cp "$FROM/SHA256SUMS" "$tmp/SHA256SUMS"
  source="$FROM"
else
  base="${SLIPWAY_RELEASES_URL%/}/v$SLIPWAY_VERSION"
  fetch "$base/SHA256SUMS" "$tmp/SHA256SUMS"
  source="$base"
fi

if [ -n "$FROM" ] && [ -z "$version_given" ]; then
  names=$(awk -v t="-$TARGET.tar.gz" '{ n = $2; sub(/^\*/, "", n) } length(n) > length(t) && substr(n, length(n) - length(t) + 1) == t && n ~ /^slipway-/ { print n }' "$tmp/SHA256SUMS")
  count=$(printf '%s\n' "$names" | grep -c . || true)
  [ "$count" -eq 1 ] || die "$FROM/SHA256SUMS lists $count archives for $TARGET (pass --version)"
  archive=$names
  SLIPWAY_VERSION=${archive#slipway-}
  SLIPWAY_VERSION=${SLIPWAY_VERSION%-"$TARGET".tar.gz}
else
  archive="slipway-$SLIPWAY_VERSION-$TARGET.tar.gz"
fi

want=$(awk -v n="$archive" '$2 == n || $2 == "*" n { print $1; exit }' "$tmp/SHA256SUMS")
[ -n "$want" ] || die "$source/SHA256SUMS has no entry for $archive (no build for $TARGET at $SLIPWAY_VERSION?)"

if [ -n "$FROM" ]; then
  [ -f "$FROM/$archive" ] || die "$FROM/$archive not found"
  cp "$FROM/$archive" "$tmp/$archive"
else
  fetch "$source/$archive" "$tmp/$archive"
fi

got=$(sha256 "$tmp/$archive")
if [ "$got" != "$want" ]; then
  die "$archive does not match SHA256SUMS (SHA-256 $got, expected $want): refusing to install it"
fi
say "verified $archive (SHA-256 $got, as SHA256SUMS says)"

# Only the binary is taken from the archive, whatever else it may hold.
dir="slipway-$SLIPWAY_VERSION-$TARGET"
tar -xzf "$tmp/$archive" -C "$tmp" "$dir/slipway" || die "$archive holds no $dir/slipway"
"$tmp/$dir/slipway" --version >/dev/null 2>&1 || die "the slipway in $archive does not run on this machine"

bindir="$PREFIX/bin"
mkdir -p "$bindir" || die "cannot create $bindir"
# A copy beside the destination, then a rename: a running slipway is never half-written.
cp "$tmp/$dir/slipway" "$bindir/.slipway.$$" && chmod 0755 "$bindir/.slipway.$$" &&
  mv -f "$bindir/.slipway.$$" "$bindir/slipway" || {
  rm -f "$bindir/.slipway.$$"
  die "cannot write $bindir/slipway"
}
say "installed $("$bindir/slipway" --version) to $bindir/slipway (from $source)"
case ":${PATH:-}:" in
  *":$bindir:"*) ;;
  *) say "$bindir is not on your PATH: add it, e.g. export PATH=\"$bindir:\$PATH\"" ;;
esac
