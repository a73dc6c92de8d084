#!/usr/bin/env bash
# Benchmark: a no-change redeploy with slipway against the baseline a Makefile does
# (rebuild the binary, docker build, kind load, helm upgrade --install --wait, rollout
# status), on the same real kind cluster, in the same run. Prints each sample, the
# medians and the ratio. Creates the cluster with `deploy-local` if needed and
# removes it at the end if it created it.
#
# Usage: scripts/bench.sh [ROUNDS]     (env: SLIPWAY_BENCH_PROFILE, default e2e)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
profile=${SLIPWAY_BENCH_PROFILE:-e2e}
export SAMPLE_API_TOKEN=${SAMPLE_API_TOKEN:-bench-token-value}
export CI=1
xtask=(cargo xtask --profile "$profile")
say() { printf '[bench] %s\n' "$*" >&2; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
for tool in bc curl; do
  command -v "$tool" >/dev/null && continue
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null; }
done

plan=$("${xtask[@]}" plan --output json)
field() { python3 -c "import json,sys; p=json.load(sys.stdin); print($1)" <<<"$plan"; }
cluster=$(field 'p["cluster"]')
context=$(field 'p["context"]')
ref=$(field 'p["images"][0]["reference"]')
ns=$(field '[s for s in p["steps"] if s["id"].startswith("helm/")][0]["action"]["cmd"]["args"][7]')
mapfile -t helm_args < <(field '"\n".join(a for a in [s for s in p["steps"] if s["id"].startswith("helm/")][0]["action"]["cmd"]["args"] if not a.startswith("--description"))')

created=0
if ! kind get clusters 2>/dev/null | grep -qx "$cluster"; then created=1; fi
say "warm-up: deploy-local --profile $profile (creates cluster $cluster if missing)"
"${xtask[@]}" deploy-local -q >/dev/null
trap '[[ $created == 1 ]] && "${xtask[@]}" down --cluster -q >/dev/null' EXIT

baseline() {
  # What the Makefiles slipway replaces do on every `make deploy`: rebuild, reload,
  # upgrade, wait, then a port-forward, `sleep 3` and curl as the smoke test.
  scripts/build-static.sh sample services/sample/bin/sample 2>/dev/null
  docker build -q -t "$ref" services/sample >/dev/null 2>&1
  kind load docker-image "$ref" --name "$cluster" >/dev/null 2>&1
  helm "${helm_args[@]}" --wait >/dev/null
  kubectl --context "$context" -n "$ns" rollout status deployment/sample --timeout=180s >/dev/null
  kubectl --context "$context" -n "$ns" port-forward service/sample 18199:80 >/dev/null 2>&1 &
  local pf=$!
  sleep 3
  curl -fsS http://127.0.0.1:18199/healthz >/dev/null
  curl -fsS http://127.0.0.1:18199/version >/dev/null
  kill "$pf"; wait "$pf" 2>/dev/null || true
}

# Warm the baseline too (its cargo build and docker layers), so neither side pays a
# cold cache in a measured round.
say "warm-up: baseline"
baseline

s_times=() b_times=()
for i in $(seq 1 "$rounds"); do
  t=$(now); "${xtask[@]}" deploy-local -q >/dev/null; s=$(since "$t")
  t=$(now); baseline; b=$(since "$t")
  say "round $i: slipway no-change deploy-local ${s}s, baseline ${b}s"
  s_times+=("$s"); b_times+=("$b")
done
sm=$(printf '%s\n' "${s_times[@]}" | median)
bm=$(printf '%s\n' "${b_times[@]}" | median)
ratio=$(echo "scale=1; $bm / $sm" | bc)
printf 'no-change redeploy, median of %s: slipway %.1fs, baseline (rebuild+reload+upgrade) %.1fs: slipway is %sx faster\n' "$rounds" "$sm" "$bm" "$ratio"
