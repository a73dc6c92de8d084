#!/usr/bin/env bash
# minikube.sh - a real minikube v1.38.1 cluster (docker driver, containerd, Kubernetes
# v1.34.4) on a machine with no container registry and no GitHub: only the Go module
# proxy and Debian's apt mirror are used.
#
#   minikube.sh [all|build|image|start|verify|stop|delete]   (default: all = build image start)
#
#   build   minikube + storage-provisioner from k8s.io/minikube@v1.38.1 (module zip,
#           cgo, -tags libvirt_dlopen), and a CRI crictl (minikube/crictl, over
#           k8s.io/cri-api) into $SLIPWAY_CACHE/minikube/bin
#   image   slipway-local/minikube-base:v1.34.4 = slipway's offline kind node image +
#           sshd, sudo, user docker, crictl, /var/lib/minikube/binaries, the
#           storage-provisioner in the node's containerd
#   start   minikube start -p $MK_PROFILE (default slipway) with the offline flags
#   verify  nodes/pods Ready, a PVC binds, `image load` checked on the node
#
# Idempotent: every phase checks what is there. Progress on stderr as
#   [minikube HH:MM:SS] phase NAME: start / done in Ns
#
# Why it looks like this (measured on the 2-core CI machine, see README.md):
# * `go install k8s.io/minikube/cmd/minikube@v1.38.1` fails: go install asks the
#   proxy for the module's version list (deprecation check), which answers 403. The
#   module zip is downloaded at its exact version (checksums verified, no GONOSUMDB or
#   insecure flags) and built inside a writable copy of it.
# * The storage-provisioner built from v1.38.1's source uses client-go v0.35, where the
#   "endpoints" leader-election lock is gone (it crash-loops: "endpoints lock is
#   removed, migrate to leases"): one line turns leader election off (one node).
# * minikube's base image (gcr.io/k8s-minikube/kicbase) cannot be pulled here: the
#   base image is slipway's offline kind node image plus what minikube's docker driver
#   needs (minikube/Dockerfile). minikube sets restrict_oom_score_adj = false; the
#   node's runc wrapper clamps pod OOM scores instead (kind-node/runc-capfilter).
# * cri-tools cannot be fetched: minikube/crictl is a small crictl over the CRI with
#   the verbs and output shapes minikube uses.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# The storage-provisioner patch and the commit below are for this version.
MK_VERSION=${SLIPWAY_MINIKUBE_VERSION:-v1.38.1}
MK_COMMIT=c93a4cb9311efc66b90d33ea03f75f2c4120e9b0 # tag v1.38.1 (module .info Origin)
K8S=${K8S_VERSION:-v1.34.4}
PROFILE=${MK_PROFILE:-slipway}
CACHE_ROOT=${SLIPWAY_CACHE:-$HOME/.cache/slipway}
CACHE=$CACHE_ROOT/minikube
BASE_IMAGE=${MK_BASE_IMAGE:-slipway-local/kind-node:$K8S}
KIND_NODE_RECIPE=$HERE/kind-node-image.sh
KICBASE=${SLIPWAY_MINIKUBE_BASE:-slipway-local/minikube-base:$K8S}
BIN=$CACHE/bin
# Where slipway looks for the tools it provisions (TOOL-VERSION, linked as TOOL).
TOOLBIN=$CACHE_ROOT/toolchain/bin
LOGS=$CACHE/logs
export MINIKUBE_WANTUPDATENOTIFICATION=false MINIKUBE_IN_STYLE=false
export GOFLAGS=-buildvcs=false
mkdir -p "$BIN" "$LOGS"
MK="$BIN/minikube"

say() { printf '[minikube %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }
phase() {
  local name=$1 start; shift
  start=$(date +%s)
  say "phase $name: start"
  "$@" || die "phase $name (see above; logs in $LOGS)"
  say "phase $name: done in $(($(date +%s) - start))s"
}

# ---------------------------------------------------------------------------- build
# `go install k8s.io/minikube/cmd/minikube@v1.38.1` does not work here: go install
# looks up the module's deprecation via the proxy's version list, which answers 403.
# So: download the module zip (exact version, checksum-verified), build inside a copy.
# Patch: storage-provisioner built from current source uses client-go v0.35, where the
# "endpoints" leader-election lock is gone (Fatal "endpoints lock is removed, migrate to
# leases"); upstream's v5 image is from 2021. Single node => disable leader election.
BUILD_KEY="$MK_VERSION-sp-noleader-1"
build_minikube() {
  if [[ -x $MK && -x $BIN/storage-provisioner && "$(cat "$BIN/.build-key" 2>/dev/null)" == "$BUILD_KEY" ]] &&
    "$MK" version --short 2>/dev/null | grep -qx "$MK_VERSION"; then
    say "minikube $MK_VERSION already built"; return 0
  fi
  local dir src=$CACHE/src K=k8s.io/minikube/pkg/version t
  dir=$(go mod download -json "k8s.io/minikube@$MK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [[ -d $dir ]] || { say "go mod download k8s.io/minikube@$MK_VERSION failed"; return 1; }
  rm -rf "$src" && cp -r "$dir" "$src" && chmod -R u+w "$src"
  sed -i 's|controller.NewProvisionController(clientset, provisionerName, hostPathProvisioner, serverVersion.GitVersion)|controller.NewProvisionController(clientset, provisionerName, hostPathProvisioner, serverVersion.GitVersion, controller.LeaderElection(false))|' \
    "$src/pkg/storage/storage_provisioner.go"
  grep -q 'LeaderElection(false)' "$src/pkg/storage/storage_provisioner.go" || { say "provisioner patch did not apply"; return 1; }
  command -v gcc >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null
  t=$(date +%s)
  # Makefile:124,139-142: cgo for the kvm2 driver, libvirt dlopen'ed (no headers needed)
  (cd "$src" && CGO_ENABLED=1 go build -tags libvirt_dlopen \
    -ldflags "-s -w -X $K.version=$MK_VERSION -X $K.isoVersion=v1.38.0 -X $K.gitCommitID=$MK_COMMIT -X $K.storageProvisionerVersion=v5" \
    -o "$BIN/minikube" ./cmd/minikube) >"$LOGS/build-minikube.log" 2>&1 || { tail -20 "$LOGS/build-minikube.log" >&2; return 1; }
  say "  minikube built in $(($(date +%s) - t))s"
  t=$(date +%s)
  (cd "$src" && CGO_ENABLED=0 go build -ldflags "-s -w -X $K.storageProvisionerVersion=v5" \
    -o "$BIN/storage-provisioner" ./cmd/storage-provisioner) >>"$LOGS/build-minikube.log" 2>&1 || { tail -20 "$LOGS/build-minikube.log" >&2; return 1; }
  say "  storage-provisioner built in $(($(date +%s) - t))s"
  echo "$BUILD_KEY" >"$BIN/.build-key"
  "$MK" version >&2
}

# slipway runs the provisioned minikube from its toolchain directory.
install_minikube() {
  mkdir -p "$TOOLBIN"
  install -m 0755 "$MK" "$TOOLBIN/minikube-$MK_VERSION.tmp" && mv -f "$TOOLBIN/minikube-$MK_VERSION.tmp" "$TOOLBIN/minikube-$MK_VERSION"
  ln -sf "minikube-$MK_VERSION" "$TOOLBIN/minikube"
  echo "$TOOLBIN/minikube-$MK_VERSION"
}

# cri-tools (sigs.k8s.io/cri-tools) cannot be fetched (no checksum entry / version list),
# minikube needs a CRI-speaking crictl: ./crictl is one, over k8s.io/cri-api v0.34.4.
build_crictl() {
  if [[ -x $BIN/crictl && $BIN/crictl -nt $HERE/minikube/crictl/main.go ]]; then say "crictl up to date"; return 0; fi
  (cd "$HERE/minikube/crictl" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$BIN/crictl" .)
}

# ---------------------------------------------------------------------------- image
kicbase_key() {
  cat "$HERE/minikube/Dockerfile" "$HERE/minikube/Dockerfile.provisioner" \
    "$BIN/crictl" "$BIN/storage-provisioner" <(docker image inspect --format '{{.Id}}' "$BASE_IMAGE") | sha256sum | cut -c1-12
}
build_kicbase() {
  # The base image carries the crictl and storage-provisioner this recipe builds.
  [[ -x $BIN/storage-provisioner ]] || build_minikube || return 1
  [[ -x $BIN/crictl ]] || build_crictl || return 1
  if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    say "$BASE_IMAGE missing: building it with $KIND_NODE_RECIPE (slow: Kubernetes from source)"
    bash "$KIND_NODE_RECIPE" >/dev/null || return 1
  fi
  local key cid ctx
  key=$(kicbase_key)
  if [[ "$(docker image inspect --format '{{index .Config.Labels "dev.slipway.minikube-recipe"}}' "$KICBASE" 2>/dev/null)" == "$key" ]]; then
    say "$KICBASE up to date (key $key)"; return 0
  fi
  ctx=$(mktemp -d)
  cp "$HERE/minikube/Dockerfile" "$HERE/minikube/Dockerfile.provisioner" "$BIN/crictl" "$BIN/storage-provisioner" "$ctx/"
  # Debian packages come from the apt mirror inside the build (deb.debian.org is reachable)
  docker build --build-arg BASE="$BASE_IMAGE" --build-arg K8S="$K8S" -t slipway-local/minikube-base-stage:"$K8S" "$ctx" \
    >"$LOGS/kicbase-stage.log" 2>&1 || { tail -20 "$LOGS/kicbase-stage.log" >&2; return 1; }
  docker build -q -f "$ctx/Dockerfile.provisioner" -t slipway-local/storage-provisioner:v5 "$ctx" >/dev/null 2>&1 || return 1
  docker save -o "$ctx/provisioner.tar" slipway-local/storage-provisioner:v5
  # assemble: import the provisioner into the node's containerd under the name the
  # storage-provisioner addon uses (IfNotPresent), then commit
  docker rm -f slipway-minikube-assemble >/dev/null 2>&1 || true
  cid=$(docker run -d --name slipway-minikube-assemble --privileged --entrypoint sleep slipway-local/minikube-base-stage:"$K8S" infinity)
  # shellcheck disable=SC2064
  trap "docker rm -f slipway-minikube-assemble >/dev/null 2>&1 || true" RETURN
  docker exec "$cid" bash -c 'nohup containerd >/var/log/containerd-build.log 2>&1 & for i in $(seq 30); do ctr version >/dev/null 2>&1 && exit 0; sleep 1; done; exit 1' || return 1
  docker exec -i "$cid" ctr -n k8s.io images import --no-unpack --digests - <"$ctx/provisioner.tar" >/dev/null
  docker exec "$cid" bash -c 'ctr -n k8s.io images rm gcr.io/k8s-minikube/storage-provisioner:v5 >/dev/null 2>&1;
    ctr -n k8s.io images tag docker.io/slipway-local/storage-provisioner:v5 gcr.io/k8s-minikube/storage-provisioner:v5 >/dev/null &&
    ctr -n k8s.io images rm docker.io/slipway-local/storage-provisioner:v5 >/dev/null'
  docker exec "$cid" crictl images | sed 's/^/  /' >&2
  docker exec "$cid" bash -c 'pkill containerd; sleep 2; rm -f /var/log/containerd-build.log'
  docker commit --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' --change 'CMD []' \
    --change "LABEL dev.slipway.minikube-recipe=$key dev.slipway.kubernetes=$K8S" "$cid" "$KICBASE" >/dev/null
  docker rm -f "$cid" >/dev/null
  docker rmi slipway-local/minikube-base-stage:"$K8S" slipway-local/storage-provisioner:v5 >/dev/null 2>&1 || true
  rm -rf "$ctx"
  say "  built $KICBASE ($(docker image inspect --format '{{.Size}}' "$KICBASE" | awk '{printf "%.0f MB", $1/1e6}'), key $key)"
}

# host-side binary cache: `minikube kubectl` uses it (download.Binary: plain os.Stat, no checksum)
seed_cache() {
  local c=${MINIKUBE_HOME:-$HOME}/.minikube/cache/linux/amd64/$K8S cid b
  [[ -x $c/kubectl && -x $c/kubeadm && -x $c/kubelet ]] && return 0
  mkdir -p "$c"
  cid=$(docker create "$KICBASE")
  for b in kubeadm kubelet kubectl; do docker cp "$cid:/var/lib/minikube/binaries/$K8S/$b" "$c/$b"; done
  docker rm "$cid" >/dev/null
}

# ---------------------------------------------------------------------------- start
START_FLAGS=(--driver=docker --force --base-image="$KICBASE" --kubernetes-version="$K8S"
  --container-runtime=containerd --preload=false --cache-images=false --cni=bridge
  --force-systemd --interactive=false --wait=all --wait-timeout=6m --cpus=2 --memory=4g)
start_cluster() {
  if "$MK" status -p "$PROFILE" -o json >/dev/null 2>&1; then say "$PROFILE already running"; return 0; fi
  # --force: we are root. --force-systemd: the cgroup driver of the proven kind setup.
  # --preload=false/--cache-images=false: images are baked into the base image.
  # --cni=bridge: the default for docker+containerd is kindnet, an image we do not have.
  "$MK" start -p "$PROFILE" "${START_FLAGS[@]}" --alsologtostderr -v=3 >"$LOGS/start.log" 2>&1 || {
    grep -v '^[IW][0-9]' "$LOGS/start.log" | tail -30 >&2; "$MK" logs -p "$PROFILE" --file="$LOGS/start-failure-logs.txt" >/dev/null 2>&1 || true; return 1; }
  grep -v '^[IW][0-9]' "$LOGS/start.log" | grep -E '^\*|^!' >&2 || true
  "$MK" status -p "$PROFILE" -o json >&2; echo >&2
}

verify() {
  local K=("$MK" -p "$PROFILE" kubectl --)
  "${K[@]}" get nodes -o wide
  "${K[@]}" wait --for=condition=Ready pod --all -A --timeout=120s >/dev/null
  "${K[@]}" get pods -A
  # storage: the provisioner binds a PVC
  "${K[@]}" apply -f - <<'EOF' >/dev/null
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: slipway-verify-pvc, namespace: default}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Mi}}}
EOF
  "${K[@]}" wait --for=jsonpath='{.status.phase}'=Bound pvc/slipway-verify-pvc --timeout=60s
  "${K[@]}" delete pvc slipway-verify-pvc --wait=false >/dev/null
  # image load: a locally built image, checked on the node (image load exits 0 even when it fails)
  local img=${MK_TEST_IMAGE:-}
  [[ -n $img ]] || img=$(docker images --format '{{.Repository}}:{{.Tag}}' 'slipway/sample' | grep -v ':<none>' | head -1)
  if [[ -n $img ]]; then
    docker tag "$img" slipway-local/minikube-verify:1
    "$MK" -p "$PROFILE" image load slipway-local/minikube-verify:1
    if "$MK" -p "$PROFILE" ssh -- sudo crictl inspecti docker.io/slipway-local/minikube-verify:1 >/dev/null; then
      say "image load verified on the node ($img)"
    else
      say "image load exited 0 but the image is NOT on the node"; return 1
    fi
  else
    say "no slipway/sample image to test image load with (set MK_TEST_IMAGE)"
  fi
}

case "${1:-all}" in
  all)
    t0=$(date +%s)
    phase build-minikube build_minikube
    phase build-crictl build_crictl
    install_minikube >/dev/null
    phase image build_kicbase
    phase seed-cache seed_cache
    phase start start_cluster
    say "all phases done in $(($(date +%s) - t0))s"
    ;;
  build) phase build-minikube build_minikube; phase build-crictl build_crictl; install_minikube ;;
  image) phase image build_kicbase; phase seed-cache seed_cache ;;
  start) phase start start_cluster ;;
  verify) phase verify verify ;;
  stop) "$MK" stop -p "$PROFILE" ;;
  delete) "$MK" delete -p "$PROFILE" ;; # never --purge: it deletes $MINIKUBE_HOME/.minikube
  *) die "usage: $0 [all|build|image|start|verify|stop|delete]" ;;
esac
