#!/usr/bin/env bash
# registry.sh - a local container registry (CNCF distribution v3, built offline from
# the Go module proxy) wired into a kind cluster the way kind's "local registry" guide
# and KEP-1755 describe it. Idempotent: every step checks before it acts.
#
#   1 binary     go install github.com/distribution/distribution/v3/cmd/registry@v3.1.2
#                (static; v3.1.2 is the newest v3.1.z the Go proxy serves, checksums
#                verified, no special settings)
#   2 image      FROM scratch + the binary + config.yml (nothing pulled) -> $REG_IMAGE
#   3 container  $REG_NAME on docker network kind only (not the default bridge),
#                published on 127.0.0.1:$REG_PORT only (never 0.0.0.0), no restart
#                policy (it does not come back after the engine restarts: the next
#                run starts it), volume $REG_NAME-data
#   4 network    docker network connect kind $REG_NAME (when an older run started it
#                elsewhere)
#   5 nodes      every node of kind cluster $CLUSTER: config_path in containerd's config
#                (slipway's node image has it; on other nodes it is appended and
#                containerd restarted, running pods survive), and hosts.toml for
#                localhost:$REG_PORT and $REG_NAME:5000 -> http://$REG_NAME:5000
#   6 ConfigMap  kube-public/local-registry-hosting (KEP-1755)
#
# Usage: CLUSTER=NAME registry.sh      then: docker push localhost:$REG_PORT/NAME:TAG,
#        and pods use image localhost:$REG_PORT/NAME:TAG.
#        registry.sh stop               removes the container (the data volume stays;
#                                       `slipway down --cluster` removes both)
#        registry.sh build              steps 1 and 2 only (no cluster needed): after
#                                       it, kind's `delivery = "auto"` (the default)
#                                       delivers through the registry
# Settings (environment): REG_NAME, REG_PORT (5001), KUBE_CONTEXT (kind-$CLUSTER);
#   REG_HTPASSWD=FILE   require a login (htpasswd file, bcrypt) for every request;
#   REG_ADVERTISE=0     do not write the ConfigMap (a second registry beside the first).
# slipway runs it with SLIPWAY_TOOL_KIND / SLIPWAY_TOOL_KUBECTL naming the binaries it
# chose (they may not be on PATH).
set -euo pipefail

CLUSTER=${CLUSTER:-slipway}
REG_VERSION=${REG_VERSION:-v3.1.2}
REG_NAME=${REG_NAME:-slipway-registry}
REG_PORT=${REG_PORT:-5001}
REG_IMAGE=${REG_IMAGE:-slipway-local/registry:$REG_VERSION}
KUBE_CONTEXT=${KUBE_CONTEXT:-kind-$CLUSTER}
REG_HTPASSWD=${REG_HTPASSWD:-}
REG_ADVERTISE=${REG_ADVERTISE:-1}
KIND=${SLIPWAY_TOOL_KIND:-kind}
KUBECTL=${SLIPWAY_TOOL_KUBECTL:-kubectl}
BIN_DIR=${SLIPWAY_CACHE:-$HOME/.cache/slipway}/registry/$REG_VERSION
PKG=github.com/distribution/distribution/v3

say() { printf '[registry %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }
timed() { local s; s=$(date +%s); "$@"; say "  ($(( $(date +%s) - s ))s)"; }

# 1 binary -------------------------------------------------------------------
build_binary() {
  if [[ -x "$BIN_DIR/registry" ]] && "$BIN_DIR/registry" --version 2>/dev/null | grep -q " $REG_VERSION\$"; then
    say "binary $BIN_DIR/registry $REG_VERSION present"; return 0
  fi
  say "building $PKG/cmd/registry@$REG_VERSION (static)"
  mkdir -p "$BIN_DIR"
  CGO_ENABLED=0 GOBIN="$BIN_DIR" go install -p 2 -trimpath \
    -ldflags "-s -w -X $PKG/version.version=$REG_VERSION -X $PKG/version.mainpkg=$PKG" \
    "$PKG/cmd/registry@$REG_VERSION"
  "$BIN_DIR/registry" --version
}

# 2 image --------------------------------------------------------------------
write_context() { # $1 = dir
  cp "$BIN_DIR/registry" "$1/registry"
  cat >"$1/config.yml" <<'EOF'
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
EOF
  cat >"$1/Dockerfile" <<'EOF'
# offline: FROM scratch, nothing is pulled
FROM scratch
COPY registry /bin/registry
COPY config.yml /etc/distribution/config.yml
VOLUME ["/var/lib/registry"]
EXPOSE 5000
ENTRYPOINT ["/bin/registry"]
CMD ["serve", "/etc/distribution/config.yml"]
EOF
}
build_image() {
  local ctx recipe log
  ctx=$(mktemp -d); write_context "$ctx"
  recipe=$(cat "$ctx"/* | sha256sum | cut -c1-12)
  if [[ "$(docker image inspect --format '{{index .Config.Labels "dev.slipway.registry-recipe"}}' "$REG_IMAGE" 2>/dev/null)" == "$recipe" ]]; then
    say "image $REG_IMAGE up to date ($recipe)"; rm -rf "$ctx"; return 0
  fi
  say "building image $REG_IMAGE"
  # The build's log is a new file of mktemp's (O_EXCL, 0600), never a name derived
  # from the context's: in a shared TMPDIR another user could plant a link there.
  log=$(mktemp)
  docker build -q --label "dev.slipway.registry-recipe=$recipe" -t "$REG_IMAGE" "$ctx" >/dev/null 2>"$log" \
    || { cat "$log" >&2; rm -rf "$ctx" "$log"; return 1; }
  rm -rf "$ctx" "$log"
}

# 3 container ----------------------------------------------------------------
answers() { # GET /v2/ on the published port answers 200, or 401 with a login
  local status
  # In a subshell: a refused connection ends only it, and its stderr is its own.
  status=$( (exec 3<>"/dev/tcp/127.0.0.1/$REG_PORT" &&
    printf 'GET /v2/ HTTP/1.0\r\nHost: localhost:%s\r\n\r\n' "$REG_PORT" >&3 &&
    IFS= read -r -t 5 line <&3 && printf '%s' "$line") 2>/dev/null) || return 1
  [[ "$status" == *" 200 "* || "$status" == *" 401 "* ]]
}
start_container() {
  local state want=() config
  if [[ -n "$REG_HTPASSWD" ]]; then
    [[ -r "$REG_HTPASSWD" ]] || die "REG_HTPASSWD=$REG_HTPASSWD is not a readable file"
    want=(-v "$(realpath "$REG_HTPASSWD"):/auth/htpasswd:ro" -e REGISTRY_AUTH=htpasswd
          -e REGISTRY_AUTH_HTPASSWD_REALM=slipway -e REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd)
  fi
  # What the container was started with: another image, login or way of running it
  # replaces it (one started with a restart policy by an older recipe included).
  config=$(printf '%s\n' "$REG_IMAGE" "$REG_PORT" "loopback-only,network=kind,restart=no" "${want[@]}" | sha256sum | cut -c1-12)
  state=$(docker inspect -f '{{.State.Status}}' "$REG_NAME" 2>/dev/null || true)
  if [[ -n "$state" ]] && [[ "$(docker inspect -f '{{index .Config.Labels "dev.slipway.registry-config"}}' "$REG_NAME")" != "$config" ]]; then
    say "container $REG_NAME was started otherwise, replacing it (data volume kept)"
    docker rm -f "$REG_NAME" >/dev/null; state=""
  fi
  case "$state" in
    running) say "container $REG_NAME running" ;;
    "") say "starting container $REG_NAME on 127.0.0.1:$REG_PORT${REG_HTPASSWD:+ (login required)}"
        docker run -d --restart=no --network kind --name "$REG_NAME" --label "dev.slipway.registry-config=$config" \
          -p "127.0.0.1:$REG_PORT:5000" -v "$REG_NAME-data:/var/lib/registry" "${want[@]}" "$REG_IMAGE" >/dev/null ;;
    *) say "container $REG_NAME is $state, starting it"; docker start "$REG_NAME" >/dev/null ;;
  esac
  local i
  for i in $(seq 1 50); do
    answers && return 0; sleep 0.2
  done
  docker logs --tail 20 "$REG_NAME" >&2; die "registry does not answer on 127.0.0.1:$REG_PORT"
}

# 4 network ------------------------------------------------------------------
connect_network() {
  if [[ "$(docker inspect -f '{{json .NetworkSettings.Networks.kind}}' "$REG_NAME")" == "null" ]]; then
    say "connecting $REG_NAME to docker network kind"
    docker network connect kind "$REG_NAME"
  else
    say "$REG_NAME already on network kind"
  fi
}

# 5 nodes --------------------------------------------------------------------
configure_node() { # $1 = node container
  local node=$1 host
  if ! docker exec "$node" grep -q '^[[:space:]]*config_path[[:space:]]*=[[:space:]]*"/etc/containerd/certs.d"' /etc/containerd/config.toml; then
    # A second [..cri".registry] table would make the TOML invalid: refuse to guess.
    if docker exec "$node" grep -q 'io.containerd.grpc.v1.cri".registry\]' /etc/containerd/config.toml; then
      die "$node: config.toml has a registry table without config_path; edit it by hand"
    fi
    say "$node: adding config_path to containerd's config, restarting containerd (pods keep running)"
    printf '\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n' \
      | docker exec -i "$node" sh -c 'cat >> /etc/containerd/config.toml'
    docker exec "$node" systemctl restart containerd
    local i; for i in $(seq 1 50); do docker exec "$node" ctr version >/dev/null 2>&1 && break; sleep 0.2; done
  fi
  # localhost:PORT is the name users push to and put in pod specs; REG_NAME:5000 is
  # the name on the kind network (hostFromClusterNetwork), also plain http.
  for host in "localhost:$REG_PORT" "$REG_NAME:5000"; do
    printf 'server = "http://%s:5000"\n\n[host."http://%s:5000"]\n  capabilities = ["pull", "resolve"]\n' "$REG_NAME" "$REG_NAME" \
      | docker exec -i "$node" sh -c "mkdir -p '/etc/containerd/certs.d/$host' && cat > '/etc/containerd/certs.d/$host/hosts.toml'"
  done
  say "$node: hosts.toml for localhost:$REG_PORT and $REG_NAME:5000 -> http://$REG_NAME:5000"
}
configure_nodes() {
  local node nodes
  nodes=$("$KIND" get nodes --name "$CLUSTER")
  [[ -n "$nodes" ]] || die "cluster $CLUSTER has no nodes"
  for node in $nodes; do configure_node "$node"; done
}

# 6 ConfigMap ----------------------------------------------------------------
apply_configmap() {
  if [[ "$REG_ADVERTISE" == 0 ]]; then say "not advertised (REG_ADVERTISE=0)"; return 0; fi
  "$KUBECTL" --context "$KUBE_CONTEXT" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "localhost:$REG_PORT"
    hostFromContainerRuntime: "$REG_NAME:5000"
    hostFromClusterNetwork: "$REG_NAME:5000"
    help: "https://kind.sigs.k8s.io/docs/user/local-registry/"
EOF
  say "ConfigMap kube-public/local-registry-hosting applied"
}

command -v docker >/dev/null && docker info >/dev/null 2>&1 || die "no Docker engine"
if [[ "${1:-}" == stop ]]; then
  docker rm -f "$REG_NAME" >/dev/null 2>&1 || true
  say "container $REG_NAME removed (volume $REG_NAME-data kept)"
  exit 0
fi
if [[ "${1:-}" == build ]]; then
  say "1 binary"; timed build_binary
  say "2 image";  timed build_image
  say "built: kind clusters with delivery = \"auto\" (the default) now take their images through the registry"
  exit 0
fi
"$KIND" get clusters 2>/dev/null | grep -qx "$CLUSTER" || die "kind cluster $CLUSTER does not exist"
say "1 binary";    timed build_binary
say "2 image";     timed build_image
say "3 container"; timed start_container
say "4 network";   timed connect_network
say "5 nodes";     timed configure_nodes
say "6 configmap"; timed apply_configmap
say "ready: docker push localhost:$REG_PORT/NAME:TAG; pods use image localhost:$REG_PORT/NAME:TAG"
