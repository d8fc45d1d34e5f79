#!/usr/bin/env bash
# Runs every fuzz target for SECONDS seconds (default 150) on its corpus (fuzz/corpus/<target>,
# created, not committed) seeded with fuzz/seeds/<target>, with debug assertions, a 10 s
# timeout per input and libFuzzer's final statistics; logs go to fuzz/logs/<target>.log.
# Usage: fuzz/run_all.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-150}"
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(amat omniglot_rebuilt matfile checkpoint rbm_json)
mkdir -p logs
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "== $t: ${secs} s"
    status=0
    cargo +nightly fuzz run -a "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=10 -print_final_stats=1 > "logs/$t.log" 2>&1 || status=$?
    grep -E "^#[0-9]+ +DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb|ERROR|SUMMARY|Test unit written" "logs/$t.log" || true
    echo "   exit status $status; corpus: $(ls "corpus/$t" | wc -l) inputs"
done
