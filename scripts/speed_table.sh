#!/usr/bin/env bash
# The README's speed table: `gumbolt bench` on the five rows of issue 5, on one thread and on
# T threads (default: all cores), median seconds per iteration and overall GFLOP/s.
#
#   scripts/speed_table.sh [THREADS]
#
# Run it on an otherwise idle machine (release build; the second vCPU of the development
# machine is shared and noisy).
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-$(nproc)}"
cargo build --release -q -p gumbolt-examples
bin=target/release/gumbolt
command -v jq >/dev/null || { echo "speed_table.sh needs jq" >&2; exit 1; }
row() {
  local s=$1 k=$2 iters=$3 t=$4 j
  j=$("$bin" bench --structure "$s" --k "$k" --iters "$iters" --threads "$t" --json)
  printf '%.4f (%.0f)' "$(jq .sec_per_iter <<<"$j")" "$(jq .gflops <<<"$j")"
}
echo "| structure, k | 1 thread | $threads threads |"
echo "|---|---|---|"
for spec in "- 1 300" "~ 1 300" "~~ 1 200" "~ 20 100" "~~ 20 100"; do
  read -r s k iters <<<"$spec"
  echo "| \`$s\`, k = $k | $(row "$s" "$k" "$iters" 1) | $(row "$s" "$k" "$iters" "$threads") |"
done
