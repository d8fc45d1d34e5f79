#!/usr/bin/env bash
# Side-by-side timing of two `gumbolt` binaries (e.g. before and after a change) on the rows of
# the speed table, interleaved A, B, A, B, … in one run so that the machine's drift hits both
# alike. Prints, per row, the median over the rounds of each binary's `sec_per_iter` (itself a
# median over --iters steps) and the ratio B / A (below 1: B is faster).
#
#   scripts/ab_bench.sh OLD_BIN NEW_BIN            # 5 rounds, all cores
#   ROUNDS=3 THREADS=1 scripts/ab_bench.sh OLD_BIN NEW_BIN
#   B_ARGS="--chain-products bf16x3" scripts/ab_bench.sh BIN BIN   # one binary, two settings
#
# Run it on an otherwise idle machine (stop long runs with kill -STOP, resume with -CONT).
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 BIN_A BIN_B" >&2; exit 2; }
command -v jq >/dev/null || { echo "$0 needs jq" >&2; exit 1; }
a=$1 b=$2
rounds=${ROUNDS:-5}
threads=${THREADS:-$(nproc)}
ROWS=${ROWS:-"linear:1:300 nonlinear:1:300 nonlinear2:1:200 nonlinear:20:100 nonlinear2:20:100"}
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
# A_ARGS / B_ARGS: extra `gumbolt bench` options of each side (e.g. --network-products bf16).
time_of() {
  local bin=$1 extra=$5
  # shellcheck disable=SC2086 # the extra options are meant to split into words
  "$bin" bench --structure "$2" --k "$3" --iters "$4" --threads "$threads" --json $extra | jq .sec_per_iter
}
echo "A = $a ${A_ARGS:-}"
echo "B = $b ${B_ARGS:-}"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $threads thread(s), $rounds rounds"
echo "| row | A s/iter | B s/iter | B / A |"
echo "|---|---|---|---|"
for row in $ROWS; do
  IFS=: read -r s k iters <<<"$row"
  ta=() tb=()
  for _ in $(seq "$rounds"); do
    ta+=("$(time_of "$a" "$s" "$k" "$iters" "${A_ARGS:-}")")
    tb+=("$(time_of "$b" "$s" "$k" "$iters" "${B_ARGS:-}")")
  done
  ma=$(printf '%s\n' "${ta[@]}" | median)
  mb=$(printf '%s\n' "${tb[@]}" | median)
  printf '| %s k=%s | %.5f | %.5f | %.3f |\n' "$s" "$k" "$ma" "$mb" "$(echo "$mb / $ma" | bc -l)"
done
