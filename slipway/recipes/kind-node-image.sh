#!/usr/bin/env bash
# Build a kind node image with no registry access, from the Go module proxy and
# Debian's packages only, the way `kind build node-image` does:
#
#   binaries    kubeadm, kubelet, kubectl, kube-apiserver, kube-controller-manager,
#               kube-scheduler, kube-proxy, etcd, coredns, local-path-provisioner (Go,
#               static: kind-node/build-binaries.sh), pause (C, static) and busybox
#               (Debian's busybox-static); crictl is a shim over ctr
#   rootfs      Debian bookworm by debootstrap with systemd, containerd, runc, the CNI
#               plugins, iptables…, imported with `docker import`
#   images      the control-plane images kubeadm starts, built FROM scratch (or the
#               rootfs, for kube-proxy's iptables) under the names kubeadm expects,
#               and the local-path provisioner and helper images FROM scratch, under
#               the slipway-local/ names kind-node/default-storage.yaml refers to
#   node        rootfs + kind's node files (entrypoint, systemd units) + binaries +
#               a bridge CNI config; then, in a privileged container, containerd
#               imports the images and the result is committed
#
# The image is tagged slipway-local/kind-node:<k8s version>, a name that cannot be
# mistaken for the official kindest/node. Idempotent: every phase is cached (under
# ~/.cache/slipway/node and in Docker) and keyed by versions and recipe. Prints each
# phase with its duration and names the component that failed. The last line of
# stdout is the image name.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)/kind-node"

K8S="${K8S_VERSION:-v1.34.4}"
KIND_VERSION="${SLIPWAY_KIND_VERSION:-v0.30.0}"
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE="${SLIPWAY_CACHE:-$HOME/.cache/slipway}/node/$K8S"
IMAGE="${SLIPWAY_NODE_IMAGE:-slipway-local/kind-node:$K8S}"
PACKAGES=systemd,dbus,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,bash,ca-certificates,jq,procps,containerd,runc,containernetworking-plugins,socat,ebtables
# What kubeadm $K8S pulls (`kubeadm config images list`); built here instead.
PAUSE=3.10.1
ETCD_TAG=3.6.5-0
COREDNS_TAG=v1.12.1
# The default StorageClass, as in kind: rancher's local-path-provisioner creates and
# removes each volume's directory under /var/local-path-provisioner through helper
# pods running busybox. Both images are preloaded; default-storage.yaml names them.
LOCAL_PATH_VERSION=v0.0.33
LOCAL_PATH_IMAGE="slipway-local/local-path-provisioner:$LOCAL_PATH_VERSION"
LOCAL_PATH_HELPER_IMAGE=slipway-local/local-path-helper:busybox-static

say() { printf '[node-image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
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
qbuild() { # docker build, output shown only when it fails
  local log; log=$(mktemp)
  docker build -q "$@" >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; return 1; }
  rm -f "$log"
}

# The recipe: every input file of this script, so a change rebuilds what it affects.
recipe=$(cat "$0" "$here"/* | sha256sum | cut -c1-12)
mkdir -p "$CACHE"
BIN="$CACHE/bin"
ROOTFS_IMAGE="slipway-local/node-rootfs:$DEBIAN_SUITE-$(echo "$PACKAGES" | sha256sum | cut -c1-12)"

command -v docker >/dev/null || die "docker is not on PATH"
docker info >/dev/null 2>&1 || die "the Docker daemon does not answer (docker info)"
if have_image "$IMAGE" && [[ "$(docker image inspect --format '{{index .Config.Labels "dev.slipway.recipe"}}' "$IMAGE")" == "$recipe" ]]; then
  say "$IMAGE is up to date (recipe $recipe)"
  echo "$IMAGE"
  exit 0
fi

binaries() {
  OUT="$BIN" K8S_VERSION="$K8S" LOCAL_PATH_VERSION="$LOCAL_PATH_VERSION" bash "$here/build-binaries.sh" >/dev/null
  command -v gcc >/dev/null || apt_install gcc libc6-dev || return 1
  [[ -x "$BIN/pause" ]] || gcc -static -O2 -o "$BIN/pause" "$here/pause.c"
  [[ -x "$BIN/busybox" ]] || busybox_static || { say "busybox (Debian busybox-static)"; return 1; }
  "$BIN/kubeadm" version -o short | grep -qx "$K8S" || { say "kubeadm reports $("$BIN/kubeadm" version -o short), want $K8S"; return 1; }
}

busybox_static() { # Debian's busybox-static .deb, unpacked without installing it
  local dir; dir=$(mktemp -d)
  (cd "$dir" && { apt-get download busybox-static >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get download busybox-static >/dev/null; }; }) \
    && dpkg-deb -x "$dir"/busybox-static_*.deb "$dir/x" \
    && "$dir/x/bin/busybox" true \
    && cp "$dir/x/bin/busybox" "$BIN/busybox"
  local rc=$?
  rm -rf "$dir"
  return $rc
}

rootfs() {
  have_image "$ROOTFS_IMAGE" && { say "$ROOTFS_IMAGE cached"; return 0; }
  local tar="$CACHE/rootfs-$DEBIAN_SUITE.tar" dir
  if [[ ! -s "$tar" ]]; then
    command -v debootstrap >/dev/null || apt_install debootstrap || return 1
    dir=$(mktemp -d)
    local i
    for i in 1 2 3; do
      debootstrap --variant=minbase --include="$PACKAGES" "$DEBIAN_SUITE" "$dir" "$DEBIAN_MIRROR" >"$CACHE/debootstrap.log" 2>&1 && break
      say "debootstrap attempt $i failed (log: $CACHE/debootstrap.log)"; tail -5 "$CACHE/debootstrap.log" >&2
      [[ $i == 3 ]] && return 1
      rm -rf "$dir"; dir=$(mktemp -d); sleep $((i * 10))
    done
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    tar -C "$dir" --numeric-owner -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
    rm -rf "$dir"
  fi
  docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$tar" "$ROOTFS_IMAGE" >/dev/null
}

component_images() {
  local ctx; ctx=$(mktemp -d)
  local name
  for name in kube-apiserver kube-controller-manager kube-scheduler; do
    mkdir -p "$ctx/$name" && cp "$BIN/$name" "$ctx/$name/"
    printf 'FROM scratch\nCOPY %s /usr/local/bin/%s\nENV PATH=/usr/local/bin\nLABEL dev.slipway.offline=true\nENTRYPOINT ["/usr/local/bin/%s"]\n' "$name" "$name" "$name" >"$ctx/$name/Dockerfile"
    qbuild -t "registry.k8s.io/$name:$K8S" "$ctx/$name" >/dev/null || { say "image $name"; return 1; }
  done
  # kube-proxy programs iptables: it needs the iptables tools, so it runs on the rootfs.
  mkdir -p "$ctx/kube-proxy" && cp "$BIN/kube-proxy" "$ctx/kube-proxy/"
  printf 'FROM %s\nCOPY kube-proxy /usr/local/bin/kube-proxy\nLABEL dev.slipway.offline=true\nENTRYPOINT ["/usr/local/bin/kube-proxy"]\n' "$ROOTFS_IMAGE" >"$ctx/kube-proxy/Dockerfile"
  qbuild -t "registry.k8s.io/kube-proxy:$K8S" "$ctx/kube-proxy" >/dev/null || { say "image kube-proxy"; return 1; }
  mkdir -p "$ctx/etcd" && cp "$BIN/etcd" "$ctx/etcd/"
  printf 'FROM scratch\nCOPY etcd /usr/local/bin/etcd\nENV PATH=/usr/local/bin\nLABEL dev.slipway.offline=true\nENTRYPOINT ["/usr/local/bin/etcd"]\n' >"$ctx/etcd/Dockerfile"
  qbuild -t "registry.k8s.io/etcd:$ETCD_TAG" "$ctx/etcd" >/dev/null || { say "image etcd"; return 1; }
  mkdir -p "$ctx/coredns" && cp "$BIN/coredns" "$ctx/coredns/"
  # Upstream runs coredns as non-root with a file capability to bind :53; a FROM
  # scratch build cannot set one, so it runs as root (the pod still drops ALL but
  # NET_BIND_SERVICE).
  printf 'FROM scratch\nCOPY coredns /coredns\nLABEL dev.slipway.offline=true\nEXPOSE 53 53/udp\nENTRYPOINT ["/coredns"]\n' >"$ctx/coredns/Dockerfile"
  qbuild -t "registry.k8s.io/coredns/coredns:$COREDNS_TAG" "$ctx/coredns" >/dev/null || { say "image coredns"; return 1; }
  mkdir -p "$ctx/pause" && cp "$BIN/pause" "$ctx/pause/"
  printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nLABEL dev.slipway.offline=true\nENTRYPOINT ["/pause"]\n' >"$ctx/pause/Dockerfile"
  qbuild -t "registry.k8s.io/pause:$PAUSE" "$ctx/pause" >/dev/null || { say "image pause"; return 1; }
  local image
  for image in "$LOCAL_PATH_IMAGE" "$LOCAL_PATH_HELPER_IMAGE"; do
    grep -q "$image\$" "$here/default-storage.yaml" || { say "default-storage.yaml does not use $image"; return 1; }
  done
  mkdir -p "$ctx/local-path-provisioner" && cp "$BIN/local-path-provisioner" "$ctx/local-path-provisioner/"
  printf 'FROM scratch\nCOPY local-path-provisioner /usr/local/bin/local-path-provisioner\nENV PATH=/usr/local/bin\nLABEL dev.slipway.offline=true\nENTRYPOINT ["/usr/local/bin/local-path-provisioner"]\n' >"$ctx/local-path-provisioner/Dockerfile"
  qbuild -t "$LOCAL_PATH_IMAGE" "$ctx/local-path-provisioner" >/dev/null || { say "image local-path-provisioner"; return 1; }
  # The helper pods run `/bin/sh /script/setup|teardown` (mkdir, rm, chmod…): busybox
  # with a symlink per applet in /bin, and a /tmp.
  mkdir -p "$ctx/local-path-helper/rootfs/bin" "$ctx/local-path-helper/rootfs/tmp"
  chmod 1777 "$ctx/local-path-helper/rootfs/tmp"
  cp "$BIN/busybox" "$ctx/local-path-helper/rootfs/bin/busybox"
  local applet
  for applet in $("$BIN/busybox" --list); do
    [[ $applet == busybox ]] || ln -s busybox "$ctx/local-path-helper/rootfs/bin/$applet"
  done
  printf 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\nLABEL dev.slipway.offline=true\nCMD ["/bin/sh"]\n' >"$ctx/local-path-helper/Dockerfile"
  qbuild -t "$LOCAL_PATH_HELPER_IMAGE" "$ctx/local-path-helper" >/dev/null || { say "image local-path-helper"; return 1; }
  rm -rf "$ctx"
  docker save -o "$CACHE/images.tar" \
    "registry.k8s.io/kube-apiserver:$K8S" "registry.k8s.io/kube-controller-manager:$K8S" \
    "registry.k8s.io/kube-scheduler:$K8S" "registry.k8s.io/kube-proxy:$K8S" \
    "registry.k8s.io/etcd:$ETCD_TAG" "registry.k8s.io/coredns/coredns:$COREDNS_TAG" \
    "registry.k8s.io/pause:$PAUSE" "$LOCAL_PATH_IMAGE" "$LOCAL_PATH_HELPER_IMAGE"
}

node_stage() {
  local kind_dir ctx
  kind_dir=$(go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')/images/base/files
  [[ -d "$kind_dir" ]] || { say "kind's node files (sigs.k8s.io/kind@$KIND_VERSION images/base/files) not found"; return 1; }
  ctx=$(mktemp -d)
  cp -r "$kind_dir" "$ctx/files"
  chmod -R u+w "$ctx/files"
  mkdir -p "$ctx/bin"
  cp "$BIN"/{kubeadm,kubelet,kubectl} "$ctx/bin/"
  cp "$here/runc-capfilter" "$here/crictl" "$here/containerd-config.toml" "$here/10-slipway-bridge.conflist" "$here/default-storage.yaml" "$here/12-slipway-cgroups.conf" "$ctx/"
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $ROOTFS_IMAGE
COPY files/usr/local/bin/ /usr/local/bin/
COPY files/kind/ /kind/
COPY files/etc/ /etc/
COPY containerd-config.toml /etc/containerd/config.toml
COPY 10-slipway-bridge.conflist /etc/cni/net.d/10-slipway-bridge.conflist
COPY runc-capfilter /usr/local/sbin/runc-capfilter
COPY default-storage.yaml /kind/manifests/default-storage.yaml
COPY 12-slipway-cgroups.conf /etc/systemd/system/kubelet.service.d/12-slipway-cgroups.conf
COPY bin/kubeadm bin/kubelet bin/kubectl /usr/bin/
COPY crictl /usr/local/bin/crictl
RUN chmod 0755 /usr/local/bin/* /kind/bin/* /usr/local/sbin/runc-capfilter /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl \\
 && ln -sf /usr/bin/containerd /usr/local/bin/containerd \\
 && mkdir -p /opt/cni && ln -sfn /usr/lib/cni /opt/cni/bin \\
 && rm -f /etc/containerd/*.dpkg-* \\
 && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \\
 && rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \\
    /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \\
    /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/* \\
 && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \\
 && ln -sf /lib/systemd/systemd /sbin/init \\
 && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \\
 && systemctl mask systemd-binfmt.service \\
 && mkdir -p /etc/kubernetes/manifests \\
 && echo "$K8S" > /kind/version \\
 && ctr oci spec | jq '.hooks.createContainer = [{"path": "/kind/bin/mount-product-files.sh"}] | del(.process.rlimits)' > /etc/containerd/cri-base.json
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
DOCKERFILE
  qbuild -t "slipway-local/kind-node-stage:$K8S" "$ctx" >/dev/null || return 1
  rm -rf "$ctx"
}

assemble() {
  local cid
  cid=$(docker run -d --privileged --entrypoint sleep "slipway-local/kind-node-stage:$K8S" infinity) || return 1
  # shellcheck disable=SC2064
  trap "docker rm -f -v $cid >/dev/null 2>&1" RETURN
  docker exec "$cid" bash -c 'nohup containerd >/var/log/containerd-build.log 2>&1 &'
  local i
  for i in $(seq 1 30); do docker exec "$cid" ctr version >/dev/null 2>&1 && break; sleep 1; done
  docker exec "$cid" ctr version >/dev/null || { docker exec "$cid" tail -20 /var/log/containerd-build.log >&2; return 1; }
  docker exec -i "$cid" ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
    --all-platforms --no-unpack --digests - <"$CACHE/images.tar" >/dev/null || return 1
  docker exec "$cid" ctr --namespace=k8s.io images ls -q | sed 's/^/  imported /' >&2
  docker exec "$cid" pkill containerd || true
  sleep 2
  docker exec "$cid" rm -f /var/log/containerd-build.log
  docker commit \
    --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
    --change 'CMD []' \
    --change "LABEL dev.slipway.recipe=$recipe dev.slipway.kubernetes=$K8S" \
    "$cid" "$IMAGE" >/dev/null
}

phase "binaries (Go module proxy; gcc for pause)" binaries
phase "rootfs (debootstrap $DEBIAN_SUITE)" rootfs
phase "images (control plane, local-path storage)" component_images
phase "node stage (kind $KIND_VERSION node files)" node_stage
phase "assemble (containerd image import, commit)" assemble
say "built $IMAGE ($(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
echo "$IMAGE"
