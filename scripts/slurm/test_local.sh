#!/usr/bin/env bash
# End-to-end test of the Slurm scripts on a one-node local cluster: a smoke-budget Table 1
# reproduced once on this machine and once as a 4-task job array plus merge job; the two
# table.json must agree in every value but the timings, dates and command lines.
#
#   scripts/slurm/test_local.sh [WORKDIR]     (root; starts and stops the local cluster)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$(mktemp -d /tmp/gumbolt-slurm.XXXXXX)}
mkdir -p "$work"
cd "$repo"
cargo build --release -q -p gumbolt-examples --bin gumbolt
export GUMBOLT="$work/gumbolt"
cp target/release/gumbolt "$GUMBOLT"   # the jobs run this copy, whatever happens to target/
opts=(--table 1 --dataset mnist --budget smoke)
echo "== single machine"
"$GUMBOLT" reproduce "${opts[@]}" --out "$work/single" --quiet >/dev/null
echo "== local cluster"
scripts/slurm/local_cluster.sh start
trap '"$repo/scripts/slurm/local_cluster.sh" stop' EXIT
cd "$work"
SUBMIT_IDS_FILE="$work/ids" "$repo/scripts/slurm/submit.sh" 4 "${opts[@]}" --out "$work/sharded"
read -r array report < "$work/ids"
while squeue -h -j "$array,$report" 2>/dev/null | grep -q .; do sleep 5; done
echo "== job states (scontrol)"
for id in "$array" "$report"; do
    scontrol -o show job "$id" | while read -r line; do
        printf '%s\n' "$line" | tr ' ' '\n' \
            | grep -E '^(JobId|ArrayJobId|ArrayTaskId|JobName|JobState|ExitCode|Dependency)=' \
            | paste -sd ' '
    done
done
norm() {
    jq -S 'del(.date, .command) | .cells[].seeds[] |= del(.train_seconds, .sec_per_iter, .eval_seconds)' "$1"
}
echo "== diff of the merged and the single-machine table.json (timings, date, command removed)"
if diff <(norm "$work/single/table.json") <(norm "$work/sharded/table.json"); then
    echo "identical: $(jq '[.cells[] | select(.status == "finished")] | length' "$work/sharded/table.json") finished cells"
else
    echo "the tables differ" >&2
    exit 1
fi
