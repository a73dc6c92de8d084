#!/usr/bin/env bash
# A real minikube cluster on this machine, offline: slipway's recipe
# (slipway/recipes/minikube.sh) builds minikube v1.38.1 and its base image from the Go
# module proxy and slipway's offline kind node image, then starts a profile.
#   scripts/minikube.sh [all|build|image|start|verify|stop|delete]
exec bash "$(dirname "$0")/../slipway/recipes/minikube.sh" "$@"
