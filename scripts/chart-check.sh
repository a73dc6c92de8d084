#!/usr/bin/env bash
# Lint and render every chart under helm/ (defaults, and with every optional feature
# from helm/<chart>/ci/*.yaml), then validate the manifests against the Kubernetes
# API schemas offline. Needs helm and go on PATH (scripts/toolchain.sh builds helm)
# and python3; the validator's Python packages go in a venv under ~/.cache/slipway.
set -euo pipefail
cd "$(dirname "$0")/.."
KUBE_SCHEMA_VERSION="${SLIPWAY_KUBE_SCHEMA_VERSION:-v1.34.4}"
CACHE="${SLIPWAY_CACHE:-$HOME/.cache/slipway}"
say() { printf '[chart-check] %s\n' "$*" >&2; }

venv="$CACHE/venv"
if ! "$venv/bin/python" -c 'import jsonschema, yaml' 2>/dev/null; then
  say "creating $venv (jsonschema, pyyaml)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check jsonschema pyyaml
fi
swagger=$(go mod download -json "k8s.io/kubernetes@$KUBE_SCHEMA_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')/api/openapi-spec/swagger.json
[[ -f "$swagger" ]] || { say "no swagger.json for Kubernetes $KUBE_SCHEMA_VERSION"; exit 1; }

out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
failed=0
for chart in helm/*/; do
  chart=${chart%/}; name=$(basename "$chart")
  [[ -f "$chart/Chart.yaml" ]] || continue
  if grep -q '^dependencies:' "$chart/Chart.yaml"; then helm dependency build "$chart" >/dev/null; fi
  configs=("defaults:")
  for f in "$chart"/ci/*.yaml; do [[ -f "$f" ]] && configs+=("$(basename "$f" .yaml):$f"); done
  for c in "${configs[@]}"; do
    label=${c%%:*}; file=${c#*:}; args=(); [[ -n "$file" ]] && args=(-f "$file")
    say "$name ($label): helm lint --strict"
    helm lint --strict "$chart" "${args[@]}" >"$out/lint.txt" 2>&1 || { cat "$out/lint.txt"; failed=1; continue; }
    say "$name ($label): helm template + API schema validation ($KUBE_SCHEMA_VERSION)"
    helm template "$name" "$chart" --namespace check "${args[@]}" >"$out/$name-$label.yaml" || { failed=1; continue; }
    "$venv/bin/python" scripts/validate-manifests.py "$swagger" "$out/$name-$label.yaml" || failed=1
  done
done
# The checks must be able to fail: a chart with an unknown value and a manifest with
# an unknown field are rejected.
if helm template bad helm/sample --set no_such_value=1 >/dev/null 2>&1; then
  say "values.schema.json accepted an unknown value"; failed=1
fi
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec: {portz: []}\n' >"$out/bad.yaml"
if "$venv/bin/python" scripts/validate-manifests.py "$swagger" "$out/bad.yaml" >/dev/null; then
  say "the validator accepted an unknown field"; failed=1
fi
((failed == 0)) && say "all charts valid" || { say "FAILED"; exit 1; }
