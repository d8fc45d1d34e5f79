#!/usr/bin/env bash
# Submits a sharded `gumbolt reproduce` to Slurm: an array of N tasks (each `--shard auto`)
# and a merge job that runs `--report` after all of them succeeded. Prints the two job ids.
#
#   scripts/slurm/submit.sh N REPRODUCE_OPTIONS… --out SHARED_DIR
#
# Example (all of Table 1 at the paper's budget, 5 seeds = 100 jobs, over 25 tasks):
#   cargo build --release -p gumbolt-examples --bin gumbolt
#   scripts/slurm/submit.sh 25 --table 1 --dataset mnist --budget paper --out /shared/t1-paper
# Extra sbatch options (partition, time limit, account) go in SBATCH_EXTRA, e.g.
#   SBATCH_EXTRA="--partition=cpu --time=2-00:00:00" scripts/slurm/submit.sh …
set -euo pipefail
if [ $# -lt 2 ] || ! [[ $1 =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 N REPRODUCE_OPTIONS… --out SHARED_DIR  (N ≥ 1 array tasks)" >&2
    exit 2
fi
n=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC2086
array=$(sbatch --parsable ${SBATCH_EXTRA:-} --array=1-"$n" "$here/reproduce.sbatch" "$@")
array=${array%%;*}
# shellcheck disable=SC2086
report=$(sbatch --parsable ${SBATCH_EXTRA:-} --dependency=afterok:"$array" "$here/report.sbatch" "$@")
report=${report%%;*}
echo "array job $array ($n tasks), merge job $report (after the array succeeds)"
echo "$array $report" > "${SUBMIT_IDS_FILE:-/dev/null}"
