#!/usr/bin/env bash
# Build the offline kind node image slipway-local/kind-node:<k8s>: slipway's own recipe
# (slipway/recipes/kind-node-image.sh), the one deploy-local runs when kind's node
# image cannot be pulled.
exec bash "$(dirname "$0")/../slipway/recipes/kind-node-image.sh" "$@"
