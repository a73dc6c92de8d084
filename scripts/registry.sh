#!/usr/bin/env bash
# A local registry wired into a kind cluster: slipway's recipe
# (slipway/recipes/registry.sh) builds distribution v3.1.2 from the Go module proxy,
# runs it as container slipway-registry on 127.0.0.1:5001 and the kind network, and
# points every node's containerd at it.
#   CLUSTER=NAME scripts/registry.sh [stop]
#   scripts/registry.sh build     only the binary and its image (no cluster): then
#                                 kind's delivery = "auto" takes the registry path
exec bash "$(dirname "$0")/../slipway/recipes/registry.sh" "$@"
