#!/usr/bin/env bash
# Build kind, helm (4 and 3) and kubectl from the Go module proxy into
# ~/.cache/slipway/toolchain/bin: slipway's own recipe (slipway/recipes/toolchain.sh),
# the one deploy-local runs when it provisions a missing tool. Usage as there.
exec bash "$(dirname "$0")/../slipway/recipes/toolchain.sh" "$@"
