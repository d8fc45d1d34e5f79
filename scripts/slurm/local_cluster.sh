#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, to test scripts/slurm/ for real.
#
#   scripts/slurm/local_cluster.sh start    # install slurm-wlm + munge if needed, configure, start
#   scripts/slurm/local_cluster.sh status   # sinfo and the controller's view of recent jobs
#   scripts/slurm/local_cluster.sh stop     # stop slurmd, slurmctld and munged
#
# Needs root (it writes /etc/slurm/slurm.conf and starts the daemons) and Debian's packages.
# The node is this machine (hostname -s) with all its CPUs; no accounting, no cgroups
# (proctrack/linuxproc, task/none), finished jobs stay visible to `scontrol show job` for an hour.
set -euo pipefail
cmd=${1:-status}
node=$(hostname -s)
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
conf=/etc/slurm/slurm.conf
log=/var/log/slurm-local
stop() {
    pkill -x slurmd 2>/dev/null || true
    pkill -x slurmctld 2>/dev/null || true
    pkill -x munged 2>/dev/null || true
    for _ in $(seq 50); do
        pgrep -x slurmd >/dev/null || pgrep -x slurmctld >/dev/null || pgrep -x munged >/dev/null || break
        sleep 0.2
    done
}
case "$cmd" in
start)
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
    fi
    stop
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd "$log" /run/munge
    chown munge:munge /run/munge
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    cat > "$conf" <<CONF
# Written by gumbolt's scripts/slurm/local_cluster.sh: a one-node test cluster.
ClusterName=gumbolt-local
SlurmctldHost=$node
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$log/slurmctld.log
SlurmdLogFile=$log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=3600
NodeName=$node CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
    runuser -u munge -- /usr/sbin/munged
    munge -n | unmunge >/dev/null
    slurmctld -D >"$log/slurmctld.out" 2>&1 &
    sleep 2
    slurmd -D >"$log/slurmd.out" 2>&1 &
    for _ in $(seq 60); do
        if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            sinfo
            exit 0
        fi
        sleep 1
    done
    echo "local_cluster.sh: the node did not become idle; see $log" >&2
    sinfo >&2 || true
    exit 1
    ;;
status)
    sinfo
    squeue
    # One line per job as the controller reports it.
    scontrol -o show job 2>/dev/null | while read -r line; do
        printf '%s\n' "$line" | tr ' ' '\n' \
            | grep -E '^(JobId|ArrayJobId|ArrayTaskId|JobName|JobState|ExitCode|Dependency)=' \
            | paste -sd ' '
    done
    ;;
stop)
    stop
    echo "stopped slurmd, slurmctld and munged"
    ;;
*)
    echo "usage: $0 start|status|stop" >&2
    exit 2
    ;;
esac
