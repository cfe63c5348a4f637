#!/usr/bin/env bash
# tests/slurm/cluster.sh — a private, single-node Slurm (22.05) cluster for tests.
#
# Everything lives in one folder DIR that the caller makes (DIR=$(mktemp -d)):
#   DIR/slurm.conf                     the configuration (rewritten on every start)
#   DIR/munge/  (mode 755)             munged's key, socket, PID file, seed and log
#                                      (munged wants every folder above its socket
#                                      executable by all: start makes DIR a+x)
#   DIR/state/  DIR/spool/             slurmctld's state, slurmd's spool
#   DIR/run/*.pid  DIR/log/*.log       slurmctld's and slurmd's PID files and logs
# The node is $(hostname -s) at 127.0.0.1 with CPUs=4 (SlurmdParameters=config_overrides, so
# 4 tasks fit on a 2-core machine); one partition "debug", the default; MpiDefault=pmi2;
# accounting off; EnforcePartLimits=ALL (impossible requests fail at once). Ports for slurmctld
# and slurmd are picked at random among unused ones, so two clusters (or a stale one) do not
# collide. Nothing outside DIR is touched; no systemd is needed. Run as root.
#
# Sourced (the usual way, from a test script):
#   . tests/slurm/cluster.sh
#   DIR=$(mktemp -d)
#   slurm_cluster_start "$DIR" || exit 1     # exports SLURM_CONF; waits (<= ~20 s) for node idle
#   trap 'slurm_cluster_stop "$DIR"; rm -rf "$DIR"' EXIT
#   id=$(sbatch --parsable -n 4 job.sh)
#   state=$(slurm_job_wait "$id" 60)          # COMPLETED, FAILED, CANCELLED, TIMEOUT, ...
#
# Run directly:
#   bash tests/slurm/cluster.sh start DIR     # then: export SLURM_CONF=DIR/slurm.conf
#   bash tests/slurm/cluster.sh status DIR
#   bash tests/slurm/cluster.sh stop DIR
#
# Functions:
#   slurm_cluster_start DIR   start munged, slurmctld, slurmd; export SLURM_CONF=DIR/slurm.conf;
#                             return 0 once sinfo shows the node idle, else print the logs, stop
#                             what was started and return 1.
#   slurm_cluster_stop DIR    cancel the cluster's jobs, then stop slurmd, slurmctld and munged
#                             by the PIDs in their PID files only (never pkill/killall; a PID
#                             whose command line does not name DIR is left alone): SIGTERM,
#                             wait for them to exit (~1.5 s), SIGKILL after 10 s.
#   slurm_cluster_status DIR  print each daemon's PID and whether it runs, then sinfo;
#                             return 0 only when all three daemons run.
#   slurm_job_wait JOBID TIMEOUT
#                             poll `scontrol show job` (not `sbatch --wait`) every 0.2 s until
#                             the job is in a final state; print that state and return 0.
#                             On timeout print the last state seen and return 124; for a job
#                             slurmctld does not know print UNKNOWN and return 2.
#                             (ExitCode: `scontrol show job -o JOBID`, field ExitCode=status:signal.)
#                             Under `set -e` write `state=$(slurm_job_wait ID 60) || ...`.
# Timing seen here: start ~0.3 s, stop ~1.5 s; a job may stay PENDING for 2-3 s after sbatch;
# submission to COMPLETED ~2-3 s. Time limits and --signal=SIG@T are checked by slurmctld only
# every ~30 s: a job runs up to ~30 s past its TimeLimit, and SIG arrives between ~T and
# ~T+35 s before the limit (e.g. USR1@5 with -t 1 came 33 s or 12 s before the limit).

# Files of DIR's daemons: name, PID file.
_slurm_cluster_pidfiles() {
    printf '%s %s\n' slurmd "$1/run/slurmd.pid" slurmctld "$1/run/slurmctld.pid" \
        munged "$1/munge/munged.pid"
}

# Print the PID in pidfile $2 when that process runs and its command line names DIR $1.
_slurm_cluster_pid() {
    local dir=$1 file=$2 pid cmd
    [[ -r $file ]] || return 1
    read -r pid <"$file" || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/cmdline ]] || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmd == *"$dir"* ]] || return 1
    printf '%s\n' "$pid"
}

# Print a TCP port in 20000-59999 that nothing listens on or uses, other than those in "$@".
_slurm_cluster_free_port() {
    local used port i
    if command -v ss >/dev/null 2>&1; then
        used=" $(ss -Htan 2>/dev/null | awk '{n = split($4, a, ":"); print a[n]}' | tr '\n' ' ') "
    else
        used=" "
    fi
    for ((i = 0; i < 200; i++)); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        [[ $used == *" $port "* ]] && continue
        [[ " $* " == *" $port "* ]] && continue
        # Nothing answers there either (covers a missing ss).
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
        printf '%s\n' "$port"
        return 0
    done
    return 1
}

_slurm_cluster_logs() {
    local dir=$1 f
    for f in "$dir/munge/munged.log" "$dir/log/slurmctld.log" "$dir/log/slurmd.log"; do
        echo "---- $f (last 40 lines) ----" >&2
        if [[ -r $f ]]; then tail -n 40 "$f" >&2; else echo "(missing)" >&2; fi
    done
}

# Wait up to $2 tenths of a second for file $1 to exist (as a socket when $3 is -S).
_slurm_cluster_wait_file() {
    local file=$1 tenths=$2 test=${3:--s} i
    for ((i = 0; i < tenths; i++)); do
        test "$test" "$file" && return 0
        sleep 0.1
    done
    return 1
}

slurm_cluster_start() {
    local dir=${1:?usage: slurm_cluster_start DIR}
    local node ctld_port slurmd_port i state cmd
    if [[ ! -d $dir ]]; then
        echo "slurm_cluster_start: $dir is not a folder (make it with mktemp -d)" >&2
        return 1
    fi
    dir=$(cd "$dir" && pwd -P) || return 1
    node=$(hostname -s)
    for cmd in munged slurmctld slurmd sinfo scontrol; do
        if ! command -v "$cmd" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$cmd ]]; then
            echo "slurm_cluster_start: $cmd not found (apt-get install slurm-wlm munge)" >&2
            return 1
        fi
    done
    if _slurm_cluster_pid "$dir" "$dir/run/slurmctld.pid" >/dev/null; then
        echo "slurm_cluster_start: a cluster already runs in $dir" >&2
        return 1
    fi

    mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/run" "$dir/log" || return 1
    # munged refuses a socket whose folder, or any folder above it, others cannot enter:
    # DIR (0700 from mktemp -d) gets a+x (not a+r), DIR/munge 755.
    chmod a+x "$dir" || return 1
    chmod 755 "$dir/munge" || return 1

    # munged with its own key, socket, PID file, seed and log.
    if [[ ! -s $dir/munge/munge.key ]]; then
        (umask 077 && dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 2>/dev/null) ||
            return 1
    fi
    chmod 600 "$dir/munge/munge.key"
    rm -f "$dir/munge/munge.socket.2"
    "${MUNGED:-$(command -v munged || echo /usr/sbin/munged)}" \
        --socket="$dir/munge/munge.socket.2" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
        --seed-file="$dir/munge/munged.seed" </dev/null >>"$dir/munge/munged.out" 2>&1
    if ! _slurm_cluster_wait_file "$dir/munge/munge.socket.2" 50 -S; then
        echo "slurm_cluster_start: munged did not start" >&2
        cat "$dir/munge/munged.out" >&2 2>/dev/null
        _slurm_cluster_logs "$dir"
        slurm_cluster_stop "$dir" >/dev/null 2>&1
        return 1
    fi

    ctld_port=$(_slurm_cluster_free_port) || return 1
    slurmd_port=$(_slurm_cluster_free_port "$ctld_port") || return 1
    cat >"$dir/slurm.conf" <<CONF
# Written by tests/slurm/cluster.sh: a private single-node cluster in $dir
ClusterName=dagrtest
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket.2
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
EnforcePartLimits=ALL
MpiDefault=pmi2
ReturnToService=2
MinJobAge=300
KillWait=5
InactiveLimit=0
NodeName=$node NodeAddr=127.0.0.1 CPUs=4 State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF=$dir/slurm.conf

    "${SLURMCTLD:-$(command -v slurmctld || echo /usr/sbin/slurmctld)}" -f "$dir/slurm.conf" \
        </dev/null >>"$dir/log/slurmctld.out" 2>&1
    "${SLURMD:-$(command -v slurmd || echo /usr/sbin/slurmd)}" -f "$dir/slurm.conf" \
        </dev/null >>"$dir/log/slurmd.out" 2>&1

    # Up to ~20 s for the node to show idle.
    state=
    for ((i = 0; i < 100; i++)); do
        state=$(sinfo -h -n "$node" -o %t 2>/dev/null | head -n 1) || state=
        [[ $state == idle ]] && return 0
        sleep 0.2
    done
    echo "slurm_cluster_start: node $node not idle after 20 s (state: '${state:-none}')" >&2
    cat "$dir/log/slurmctld.out" "$dir/log/slurmd.out" >&2 2>/dev/null
    _slurm_cluster_logs "$dir"
    slurm_cluster_stop "$dir" >/dev/null 2>&1
    return 1
}

# Waits up to $1 tenths of a second for the PIDs that follow to exit; sets `left` (the
# caller's) to those still running.
_slurm_cluster_wait_gone() {
    local tenths=$1 pid i
    shift
    for ((i = 0; i < tenths; i++)); do
        left=()
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null && left+=("$pid"); done
        ((${#left[@]} == 0)) && return
        sleep 0.1
    done
}

slurm_cluster_stop() {
    local dir=${1:?usage: slurm_cluster_stop DIR}
    local name file pid ids i pids=() left=() conf
    [[ -d $dir ]] || return 0
    dir=$(cd "$dir" && pwd -P) || return 1
    conf=$dir/slurm.conf
    # Cancel this cluster's jobs first, so that slurmstepd and job processes go too.
    if _slurm_cluster_pid "$dir" "$dir/run/slurmctld.pid" >/dev/null &&
        _slurm_cluster_pid "$dir" "$dir/run/slurmd.pid" >/dev/null; then
        ids=$(SLURM_CONF=$conf squeue -h -o %i 2>/dev/null) || ids=
        if [[ -n $ids ]]; then
            # shellcheck disable=SC2086 # one job id a word
            SLURM_CONF=$conf scancel --full $ids 2>/dev/null
            for ((i = 0; i < 50; i++)); do
                [[ -z $(SLURM_CONF=$conf squeue -h -t R,CG,PD -o %i 2>/dev/null) ]] && break
                sleep 0.2
            done
        fi
    fi
    # SIGTERM to all three at once (one after another takes ~2 s each), then wait.
    while read -r name file; do
        pid=$(_slurm_cluster_pid "$dir" "$file") || continue
        kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    done < <(_slurm_cluster_pidfiles "$dir")
    _slurm_cluster_wait_gone 100 "${pids[@]}"
    if ((${#left[@]} > 0)); then
        echo "slurm_cluster_stop: ${left[*]} ignored SIGTERM for 10 s; SIGKILL" >&2
        kill -KILL "${left[@]}" 2>/dev/null
        _slurm_cluster_wait_gone 50 "${pids[@]}"
        if ((${#left[@]} > 0)); then
            echo "slurm_cluster_stop: processes ${left[*]} still run" >&2
            return 1
        fi
    fi
    [[ ${SLURM_CONF:-} == "$conf" ]] && unset SLURM_CONF
    return 0
}

slurm_cluster_status() {
    local dir=${1:?usage: slurm_cluster_status DIR}
    local name file pid rc=0
    dir=$(cd "$dir" && pwd -P) || return 1
    while read -r name file; do
        if pid=$(_slurm_cluster_pid "$dir" "$file"); then
            echo "$name: running (pid $pid)"
        else
            echo "$name: not running"
            rc=1
        fi
    done < <(_slurm_cluster_pidfiles "$dir")
    if ((rc == 0)); then
        SLURM_CONF=$dir/slurm.conf sinfo -N -o '%N %P %t %c' 2>&1
    fi
    return "$rc"
}

slurm_job_wait() {
    local id=${1:?usage: slurm_job_wait JOBID TIMEOUT} timeout=${2:-60}
    local end line state=
    end=$((SECONDS + timeout))
    while :; do
        line=$(scontrol show job -o "$id" 2>/dev/null) || line=
        if [[ $line =~ JobState=([A-Z_]+) ]]; then
            state=${BASH_REMATCH[1]}
            case $state in
            COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | PREEMPTED | BOOT_FAIL | \
                DEADLINE | OUT_OF_MEMORY | SPECIAL_EXIT | REVOKED)
                echo "$state"
                return 0
                ;;
            esac
        elif [[ -z $state ]]; then
            echo UNKNOWN
            return 2
        fi
        if ((SECONDS >= end)); then
            echo "${state:-UNKNOWN}"
            return 124
        fi
        sleep 0.2
    done
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    case ${1:-} in
    start)
        slurm_cluster_start "${2:?usage: $0 start DIR}" || exit 1
        echo "export SLURM_CONF=$SLURM_CONF"
        ;;
    stop) slurm_cluster_stop "${2:?usage: $0 stop DIR}" ;;
    status) slurm_cluster_status "${2:?usage: $0 status DIR}" ;;
    *)
        echo "usage: $0 start|stop|status DIR   (or source it: . $0)" >&2
        exit 2
        ;;
    esac
fi
