#!/usr/bin/env bash
# Build every Go binary a kind node needs from the Go module proxy, statically, into
# $OUT (default ~/.cache/slipway/node/<k8s version>/bin). Idempotent: a binary already
# there is kept. Part of kind-node-image.sh; runnable on its own.
#
# Kubernetes' own module (k8s.io/kubernetes) points its staging modules at local
# directories; a throwaway wrapper module replaces each with its published v0.x tag,
# which is exactly what that directory holds at the release.
set -euo pipefail
K8S="${K8S_VERSION:-v1.34.4}"
ETCD="${ETCD_VERSION:-v3.6.5}"
COREDNS="${COREDNS_VERSION:-v1.12.1}"
LOCAL_PATH="${LOCAL_PATH_VERSION:-v0.0.33}"
OUT="${OUT:-$HOME/.cache/slipway/node/$K8S/bin}"
mkdir -p "$OUT"
say() { printf '[node-binaries %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
retry() { local i; for i in 1 2 3; do "$@" && return 0; say "attempt $i failed: $*"; sleep $((i * 5)); done; return 1; }
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
staging="v0.${K8S#v1.}"
minor=$(echo "$K8S" | cut -d. -f2)
ver=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ver="$ver -X $p.gitVersion=$K8S -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done

need() { for b in "$@"; do [[ -x "$OUT/$b" ]] || return 0; done; return 1; }

k8s_bins=(kubeadm kubelet kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl)
if need "${k8s_bins[@]}"; then
  say "kubernetes $K8S: ${k8s_bins[*]}"
  dir=$(mktemp -d)
  (
    cd "$dir"
    kdir=$(retry go mod download -json "k8s.io/kubernetes@$K8S" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
    [[ -d "$kdir" ]] || { say "cannot download k8s.io/kubernetes@$K8S"; exit 1; }
    {
      echo "module slipway.local/k8s-node"
      echo "go 1.24"
      echo "require k8s.io/kubernetes $K8S"
      echo "replace ("
      sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 '"$staging"'#p' "$kdir/go.mod"
      echo ")"
    } >go.mod
    printf 'package tools\n\nimport (\n' >tools.go
    for b in "${k8s_bins[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$b" >>tools.go; done
    printf ')\n' >>tools.go
    retry go mod tidy
    for b in "${k8s_bins[@]}"; do
      [[ -x "$OUT/$b" ]] && continue
      say "  go build $b"
      go build -trimpath -tags providerless -ldflags "-s -w $ver" -o "$OUT/$b" "k8s.io/kubernetes/cmd/$b"
    done
  )
  rm -rf "$dir"
fi

# wrapper_build NAME MODULE@VERSION MAIN_GO: build a command whose main package is not
# installable from the proxy (replace directives) from a two-line main of our own.
wrapper_build() {
  local name=$1 module=$2 main=$3 dir
  need "$name" || return 0
  say "$name ($module)"
  dir=$(mktemp -d)
  (
    cd "$dir"
    printf 'module slipway.local/%s\n\ngo 1.24\n' "$name" >go.mod
    printf '%s\n' "$main" >main.go
    retry go get "$module"
    retry go mod tidy
    go build -trimpath -ldflags "-s -w" -o "$OUT/$name" .
  )
  rm -rf "$dir"
}

wrapper_build etcd "go.etcd.io/etcd/server/v3@$ETCD" 'package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }'

wrapper_build coredns "github.com/coredns/coredns@$COREDNS" 'package main

import (
	_ "github.com/coredns/coredns/core/plugin"
	"github.com/coredns/coredns/coremain"
)

func main() { coremain.Run() }'

# local-path-provisioner, the default StorageClass's dynamic provisioner (as in kind).
# Its main package is the module root and its go.mod has no replace directives, so
# `go install module@version` builds it straight from the proxy, checksums verified
# against the sum database as usual. Kept only while it reports the wanted version.
if ! "$OUT/local-path-provisioner" --version 2>/dev/null | grep -qw "$LOCAL_PATH"; then
  say "local-path-provisioner (github.com/rancher/local-path-provisioner@$LOCAL_PATH)"
  rm -f "$OUT/local-path-provisioner"
  GOBIN="$OUT" retry go install -trimpath -ldflags "-s -w -X main.VERSION=$LOCAL_PATH" \
    "github.com/rancher/local-path-provisioner@$LOCAL_PATH"
fi

ls -la "$OUT" >&2
echo "$OUT"
