#!/bin/bash
# Instructions executed inside training steps, per iteration, for one or more `gumbolt` binaries:
# a speed comparison that machine noise cannot move (callgrind counts instructions, not seconds).
# One thread, $ITERS iterations (default 10), no warm-up; only code under `train_step` is counted,
# so loading the data is not. Needs valgrind (Debian: apt-get install valgrind). Slow: minutes per
# row and binary.
#
#   scripts/instr_count.sh OLD_BIN NEW_BIN            # the k = 1 rows of the speed table
#   ROWS="nonlinear:20 nonlinear2:20" scripts/instr_count.sh OLD_BIN NEW_BIN
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 GUMBOLT_BIN [GUMBOLT_BIN ...]" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "$0: valgrind is not installed" >&2; exit 1; }
ROWS=${ROWS:-"linear:1 nonlinear:1 nonlinear2:1"}
ITERS=${ITERS:-10}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for row in $ROWS; do
  s=${row%%:*}; k=${row##*:}
  for bin in "$@"; do
    valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" --toggle-collect='*train_step*' \
      "$bin" bench --structure "$s" --k "$k" --iters $ITERS --warmup 0 --threads 1 --json \
      >/dev/null 2>"$tmp/cg.err" || { cat "$tmp/cg.err" >&2; exit 1; }
    ir=$(grep -E "^(summary|totals):" "$tmp/cg.out" | head -1 | awk '{print $2}')
    echo "$s k=$k $bin instructions_per_iteration=$((ir / ITERS))"
  done
done
