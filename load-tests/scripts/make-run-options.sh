#!/usr/bin/env bash
# How `make run` should build the local stack: each option built from a clean target directory
# (first-start time = that build plus the start), then served product reads measured with wrk
# (2 threads, 50 connections, 10 s, one product), as a new user meets them. Writes one JSON object
# (kind "make-run") to $1 (default docs/benchmarks/make-run.json). Takes about half an hour on two
# cores: run by hand when the build changes, not by `make bench`.
set -euo pipefail
out=${1:-docs/benchmarks/make-run.json}
work=$(mktemp -d)
trap 'rm -rf "$work"/target-*' EXIT
command -v wrk >/dev/null || { echo "needs wrk (Debian: apt-get install wrk)" >&2; exit 1; }

declare -A build=(
  [debug]="cargo build -p order-localstack --bin local-stack"
  [dev-deps-optimized]="cargo build -p order-localstack --bin local-stack --config profile.dev.package.\"*\".opt-level=2"
  [local]="cargo build --profile local -p order-localstack --bin local-stack"
  [release]="cargo build --release -p order-localstack --bin local-stack"
)
declare -A binary=(
  [debug]=debug [dev-deps-optimized]=debug [local]=local [release]=release
)
results=()
for option in debug dev-deps-optimized local release; do
  target="$work/target-$option"
  start=$(date +%s.%N)
  if ! CARGO_TARGET_DIR=$target ${build[$option]} >"$work/$option.build.log" 2>&1; then
    tail -20 "$work/$option.build.log" >&2
    exit 1
  fi
  built=$(date +%s.%N)
  HTTP_PORT=0 WS_PORT=0 AWS_PORT=0 RATE_LIMIT_PER_MINUTE=0 "$target/${binary[$option]}/local-stack" >"$work/$option.out" 2>&1 &
  pid=$!
  until grep -q "HTTP API " "$work/$option.out"; do sleep 0.05; done
  ready=$(date +%s.%N)
  http=$(grep -m1 "HTTP API " "$work/$option.out" | awk '{print $3}')
  wrk -t2 -c50 -d10s --latency "$http/products/espresso-beans" >"$work/$option.wrk"
  kill -TERM $pid; wait $pid || true
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/$option.wrk")
  p99=$(awk '$1=="99%" {print $2}' "$work/$option.wrk")
  build_s=$(echo "$built - $start" | bc)
  start_s=$(echo "$ready - $built" | bc)
  echo "$option: build ${build_s}s, start ${start_s}s, ${rps} reads/s, p99 ${p99}" | tee -a "$work/summary"
  results+=("{\"option\":\"$option\",\"command\":\"${build[$option]//\"/\\\"}\",\"clean_build_s\":$build_s,\"start_s\":$start_s,\"reads_per_s\":$rps,\"p99\":\"$p99\"}")
done
mkdir -p "$(dirname "$out")"
# What `make run` uses (the local profile) against the Lambda profile's release build.
ratio=$(echo "scale=3; $(awk '/^release:/ {print $(NF-3)}' "$work/summary") / $(awk '/^local:/ {print $(NF-3)}' "$work/summary")" | bc)
(IFS=,; echo "{\"kind\":\"make-run\",\"chosen\":\"local\",\"release_reads_over_make_run_reads_ratio\":$ratio,\"measured\":\"$(date -u +%FT%TZ)\",\"commit\":\"$(git rev-parse --short HEAD)\",\"wrk\":\"-t2 -c50 -d10s /products/espresso-beans\",\"options\":[${results[*]}]}") >"$out"
echo "wrote $out"
