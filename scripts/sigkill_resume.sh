#!/usr/bin/env bash
# SIGKILL resumption check for `gumbolt train` (issue 6, "Reliability").
#
# Trains a run without interruption, then the same run again while killing it with SIGKILL at
# pseudo-random moments (a fixed seed), some of them while a checkpoint is being written, and
# resuming it each time with `gumbolt train --resume --out DIR`. At the end the two checkpoints
# must hold byte-identical tensors and the same metadata apart from the wall-clock field
# `train_seconds`, and the two metrics.jsonl files the same records (apart from wall times and
# the statistics of the steps since the previous record of the same session), each monitored
# iteration once. After every kill the checkpoint on disk must load.
#
# Usage: scripts/sigkill_resume.sh [--iters N] [--kills K] [--seed S] [--structure S]
#            [--pcd-steps N] [--checkpoint-every N] [--monitor-records N] [--dir DIR] [--bin PATH]
#
# Defaults: 2000 iterations of `~`, 20 PCD sweeps, a checkpoint every 25 iterations, 4
# monitoring records, 12 kills, seed 1, a temporary directory, target/release/gumbolt (built if
# missing). The test `examples/tests/sigkill.rs` does the same with a 300-iteration budget.
# Exit status: 0 when the runs match, 1 otherwise.
set -euo pipefail

iters=2000
kills=12
seed=1
structure='~'
pcd_steps=20
checkpoint_every=25
monitor_records=4
dir=''
bin=''
while [[ $# -gt 0 ]]; do
    case "$1" in
        --iters) iters="$2"; shift 2 ;;
        --kills) kills="$2"; shift 2 ;;
        --seed) seed="$2"; shift 2 ;;
        --structure) structure="$2"; shift 2 ;;
        --pcd-steps) pcd_steps="$2"; shift 2 ;;
        --checkpoint-every) checkpoint_every="$2"; shift 2 ;;
        --monitor-records) monitor_records="$2"; shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        --bin) bin="$2"; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "$bin" ]]; then
    bin="$root/target/release/gumbolt"
    if [[ ! -x "$bin" ]]; then
        echo "building $bin"
        (cd "$root" && cargo build --release -p gumbolt-examples)
    fi
fi
if [[ -z "$dir" ]]; then
    dir="$(mktemp -d "${TMPDIR:-/tmp}/gumbolt-sigkill.XXXXXX")"
fi
mkdir -p "$dir"
ref="$dir/uninterrupted"
run="$dir/killed"
rm -rf "$ref" "$run"
export MATMUL_NUM_THREADS=1  # one GEMM thread: the results do not depend on thread timing
RANDOM="$seed"               # the kill moments' generator

opts=(--structure "$structure" --iters "$iters" --pcd-steps "$pcd_steps"
      --checkpoint-every "$checkpoint_every" --monitor-records "$monitor_records" --seed 3)
echo "gumbolt: $bin"
echo "run: train ${opts[*]} (MATMUL_NUM_THREADS=1), in $dir"

now() { date +%s.%N; }
u64_at() { od -An -tu8 -j"$2" -N8 "$1" | tr -d ' '; }  # little-endian u64 at byte $2 of file $1
bytes() { dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count="$3" bs=1M status=none; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
ckpt_iteration() {
    # The `iteration` field of the checkpoint's JSON header (bytes 32 .. 32 + H).
    local f="$1/checkpoint.ckpt"
    [[ -f "$f" ]] || { echo none; return; }
    bytes "$f" 32 "$(u64_at "$f" 16)" | grep -o '"iteration":[0-9]*' | sed -n '1s/.*://p' 
}
ckpt_inode() { stat -c %i "$1/checkpoint.ckpt" 2>/dev/null || echo none; }
tmp_present() { compgen -G "$1/.checkpoint.ckpt.tmp.*" > /dev/null; }
ckpt_loads() {
    # `gumbolt sample` reads the whole checkpoint (checksum, every tensor) and builds the model.
    "$bin" sample --run "$1" --n 1 --sweeps 1 --out "$dir/check.png" > /dev/null 2>&1
}

echo
echo "1. uninterrupted run → $ref"
t0=$(now)
"$bin" train -q "${opts[@]}" --out "$ref" > /dev/null
wall=$(elapsed "$t0")
echo "   done in $wall s"

echo
echo "2. the same run, killed $kills times with SIGKILL and resumed → $run"
landed=0
mid_write=0
for ((i = 0; i < kills; i++)); do
    before=$(ckpt_iteration "$run")
    if [[ -f "$run/checkpoint.ckpt" ]]; then
        how="resume"
        args=(train -q --resume --out "$run")
    else
        how="new run"
        args=(train -q "${opts[@]}" --force --out "$run")
    fi
    case $((i % 3)) in
        0) mode=timed; frac=$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", 0.05 + 0.3 * r / 32767 }')
           delay=$(awk -v f="$frac" -v w="$wall" 'BEGIN { printf "%.3f", f * w }')
           what="after $delay s ($frac of the uninterrupted run's wall time)" ;;
        1) mode=mid-write; skip=$((RANDOM % 3))
           what="when checkpoint write no. $((skip + 1)) of this invocation starts" ;;
        2) mode=after-rename; skip=$((RANDOM % 2))
           what="just after checkpoint no. $((skip + 1)) of this invocation replaces the old one" ;;
    esac
    t0=$(now)
    "$bin" "${args[@]}" > /dev/null 2>&1 &
    pid=$!
    case $mode in
        timed)
            sleep "$delay" ;;
        mid-write)
            seen=0; was=false
            tmp_present "$run" && was=true
            while kill -0 "$pid" 2> /dev/null; do
                if tmp_present "$run"; then
                    if [[ $was == false ]]; then
                        seen=$((seen + 1)); was=true
                        ((seen > skip)) && break
                    fi
                else
                    was=false
                fi
                sleep 0.001
            done ;;
        after-rename)
            seen=0; ino=$(ckpt_inode "$run")
            while kill -0 "$pid" 2> /dev/null; do
                now_ino=$(ckpt_inode "$run")
                if [[ $now_ino != none && $now_ino != "$ino" ]]; then
                    seen=$((seen + 1)); ino=$now_ino
                    ((seen > skip)) && break
                fi
                sleep 0.001
            done ;;
    esac
    if kill -KILL "$pid" 2> /dev/null; then
        wait "$pid" 2> /dev/null || true
        landed=$((landed + 1))
        torn=""
        if tmp_present "$run"; then
            torn=", during a checkpoint write"
            mid_write=$((mid_write + 1))
            rm -f "$run"/.checkpoint.ckpt.tmp.*  # a killed writer cannot remove its temporary file
        fi
        after=$(ckpt_iteration "$run")
        echo "   kill $((i + 1)) ($how, $mode): SIGKILL $what, at $(elapsed "$t0") s$torn;" \
             "checkpoint iteration $before → $after"
        if [[ -f "$run/checkpoint.ckpt" ]] && ! ckpt_loads "$run"; then
            echo "FAIL: the checkpoint left by kill $((i + 1)) does not load" >&2
            exit 1
        fi
    else
        wait "$pid" || { echo "FAIL: invocation $((i + 1)) failed" >&2; exit 1; }
        echo "   kill $((i + 1)) ($how, $mode): the run ended first (iteration $(ckpt_iteration "$run"))"
        break
    fi
done
if [[ -f "$run/checkpoint.ckpt" ]]; then
    args=(train -q --resume --out "$run")
else
    args=(train -q "${opts[@]}" --force --out "$run")
fi
echo "   final: gumbolt ${args[*]}"
"$bin" "${args[@]}" > /dev/null
echo "   $landed SIGKILLs landed ($mid_write during a checkpoint write)"

echo
echo "3. comparison"
status=0
header() {  # the JSON header (bytes 32 .. 32 + H) without the wall-clock field
    bytes "$1" 32 "$(u64_at "$1" 16)" | sed -E 's/"train_seconds":[-+0-9.eE]+,?//'
}
payload() {  # the tensors (bytes 32 + H .. 32 + H + P)
    bytes "$1" $((32 + $(u64_at "$1" 16))) "$(u64_at "$1" 24)"
}
if cmp -s <(payload "$ref/checkpoint.ckpt") <(payload "$run/checkpoint.ckpt"); then
    echo "   tensors: identical ($(payload "$run/checkpoint.ckpt" | wc -c) bytes," \
         "sha256 $(payload "$run/checkpoint.ckpt" | sha256sum | cut -c1-16)…)"
else
    echo "   tensors: DIFFERENT"; status=1
fi
if cmp -s <(header "$ref/checkpoint.ckpt") <(header "$run/checkpoint.ckpt"); then
    echo "   metadata: identical apart from train_seconds"
else
    echo "   metadata: DIFFERENT"; diff <(header "$ref/checkpoint.ckpt" | tr ',' '\n') \
        <(header "$run/checkpoint.ckpt" | tr ',' '\n') | head -20; status=1
fi
# Wall times, and the fields that describe the steps since the previous record *of this
# session* (`mean_loss`, `steps_in_interval`, `sec_per_iter`), differ by design.
strip() {
    sed -E 's/"(train_seconds|sec_per_iter|monitor_seconds|mean_loss|steps_in_interval)":[^,}]*,?//g' "$1"
}
if cmp -s <(strip "$ref/metrics.jsonl") <(strip "$run/metrics.jsonl"); then
    echo "   metrics.jsonl: identical records apart from wall times and per-session step statistics"
else
    echo "   metrics.jsonl: DIFFERENT"; status=1
fi
its=$(grep -o '^{"iteration":[0-9]*' "$run/metrics.jsonl" | cut -d: -f2 | tr '\n' ' ')
dups=$(grep -o '^{"iteration":[0-9]*' "$run/metrics.jsonl" | sort | uniq -d | wc -l)
echo "   monitored iterations: $its(repeated: $dups)"
[[ $dups -eq 0 ]] || status=1
if [[ $status -eq 0 ]]; then
    echo "OK: the killed-and-resumed run ends with the uninterrupted run's parameters"
else
    echo "FAIL" >&2
fi
exit $status
