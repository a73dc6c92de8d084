#!/usr/bin/env bash
# Build the command-line tools slipway's tests drive (kind, helm, kubectl) from the Go
# module proxy, and cache them under ~/.cache/slipway/toolchain/<versions>/bin.
#
# Idempotent: a tool already built for the pinned version is reused. Prints each
# phase with its duration, retries module downloads, and names the component that
# failed. On success the last line of stdout is the bin directory to put on PATH.
#
# Usage: scripts/toolchain.sh [kind|helm|helm3|kubectl ...]   (default: all four)
# `helm3` builds Helm 3 beside Helm 4 without touching the `helm` link; it is linked as
# <cache>/toolchain/helm3/helm, a directory to put first on PATH for the Helm 3 leg.
set -euo pipefail

KIND_VERSION="${SLIPWAY_KIND_VERSION:-v0.30.0}"
HELM_VERSION="${SLIPWAY_HELM_VERSION:-v4.3.1}"    # the tested default
HELM3_VERSION="${SLIPWAY_HELM3_VERSION:-v3.22.0}" # the compatibility leg
KUBE_VERSION="${SLIPWAY_KUBE_VERSION:-v1.34.13}"   # kubectl; staging modules are v0.34.13

CACHE_ROOT="${SLIPWAY_CACHE:-$HOME/.cache/slipway}"
BIN="$CACHE_ROOT/toolchain/bin"
mkdir -p "$BIN"

say() { printf '[toolchain %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

retry() { # retry N cmd...: network fetches through the module proxy can flake
  local n=$1 i; shift
  for ((i = 1; i <= n; i++)); do
    "$@" && return 0
    say "attempt $i/$n failed: $*"; sleep $((i * 5))
  done
  return 1
}

phase() { # phase NAME fn: run fn, print its duration, fail with the component's name
  local name=$1 start; shift
  start=$(date +%s)
  say "$name: start"
  "$@" || die "$name (see the output above)"
  say "$name: done in $(($(date +%s) - start))s"
}

# A tool is cached as $BIN/<tool>-<version>; $BIN/<tool> links to the pinned one.
have() { [[ -x "$BIN/$1-$2" ]]; }
link() { ln -sf "$1-$2" "$BIN/$1"; }

build_kind() {
  have kind "$KIND_VERSION" && { say "kind $KIND_VERSION cached"; link kind "$KIND_VERSION"; return; }
  local gobin; gobin=$(mktemp -d)
  retry 3 env GOBIN="$gobin" CGO_ENABLED=0 go install "sigs.k8s.io/kind@$KIND_VERSION" || return 1
  mv "$gobin/kind" "$BIN/kind-$KIND_VERSION" && rm -rf "$gobin" && link kind "$KIND_VERSION"
}

build_helm() { # build_helm VERSION: build one helm, cached as helm-VERSION
  local version=$1 major gobin gomod kminor ld
  have helm "$version" && { say "helm $version cached"; return; }
  major=${version%%.*}
  case "$major" in v3|v4) ;; *) say "unsupported helm major $major"; return 1 ;; esac
  gobin=$(mktemp -d)
  ld="-s -w -X helm.sh/helm/$major/internal/version.version=$version"
  if [[ $major == v3 ]]; then
    # Helm 3's default Kubernetes version (for `helm template` and lint) comes from the
    # client-go it is built with, passed by ldflags as helm's own Makefile does. Helm 4
    # reads it from the binary's build info, so it needs nothing.
    gomod=$(retry 3 go mod download -json "helm.sh/helm/v3@$version" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p') || return 1
    kminor=$(sed -n 's#^[[:space:]]*k8s.io/client-go v0\.\([0-9]*\)\..*#\1#p' "$gomod" | head -n1)
    [[ -n "$kminor" ]] || { say "cannot find helm's client-go version in $gomod"; return 1; }
    for pkg in pkg/lint/rules pkg/chartutil; do
      ld="$ld -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$kminor"
    done
  fi
  retry 3 env GOBIN="$gobin" CGO_ENABLED=0 go install -trimpath -ldflags "$ld" \
    "helm.sh/helm/$major/cmd/helm@$version" || return 1
  mv "$gobin/helm" "$BIN/helm-$version" && rm -rf "$gobin"
}
build_helm4() { build_helm "$HELM_VERSION" && link helm "$HELM_VERSION"; }
build_helm3() {
  build_helm "$HELM3_VERSION" || return 1
  mkdir -p "$CACHE_ROOT/toolchain/helm3" && ln -sf "../bin/helm-$HELM3_VERSION" "$CACHE_ROOT/toolchain/helm3/helm"
}

# kubectl lives in k8s.io/kubernetes, whose go.mod cannot be built from the proxy
# directly; its published staging module k8s.io/kubectl carries the whole command, so
# a three-line main in a throwaway module builds the same binary.
build_kubectl() {
  have kubectl "$KUBE_VERSION" && { say "kubectl $KUBE_VERSION cached"; link kubectl "$KUBE_VERSION"; return; }
  local staging="v0.${KUBE_VERSION#v1.}" dir; dir=$(mktemp -d)
  cat >"$dir/main.go" <<'GO'
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}
GO
  (
    cd "$dir"
    go mod init slipway.local/kubectl >/dev/null 2>&1
    retry 3 go get "k8s.io/kubectl@$staging" "k8s.io/component-base@$staging" >/dev/null || exit 1
    retry 3 go mod tidy >/dev/null || exit 1
    local ver="-X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION"
    ver="$ver -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
    ver="$ver -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/component-base/version.gitMajor=1"
    local minor; minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
    ver="$ver -X k8s.io/client-go/pkg/version.gitMinor=$minor -X k8s.io/component-base/version.gitMinor=$minor"
    CGO_ENABLED=0 go build -ldflags "-s -w $ver" -o "$BIN/kubectl-$KUBE_VERSION" .
  ) || return 1
  rm -rf "$dir"
  link kubectl "$KUBE_VERSION"
}

command -v go >/dev/null || die "go is not on PATH (needed to build the toolchain)"
tools=("$@"); ((${#tools[@]})) || tools=(kind helm helm3 kubectl)
for t in "${tools[@]}"; do
  case "$t" in
    kind|kubectl|helm3) phase "$t" "build_$t" ;;
    helm) phase helm build_helm4 ;;
    *) die "unknown tool '$t' (expected kind, helm, helm3 or kubectl)" ;;
  esac
done
echo "$BIN"
