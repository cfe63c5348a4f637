#!/usr/bin/env bash
# dagr under a real Slurm (tests/slurm/cluster.sh starts a private one-node cluster here and
# stops it at the end) and under OpenMPI's launcher.
#
#   bash tests/slurm/test_slurm.sh BUILD_DIR SOURCE_DIR [CASE...]
#
# Cases (all by default):
#   mpiexec   sbatch -n 4 running mpiexec.mpich dagr-info: 4 ranks in one world, Hydra named
#   pmi2      sbatch -n 4 running srun --mpi=pmi2 dagr-info: 4 ranks, srun and PMI-2 named
#   bare      sbatch -n 4 running dagr-info with no launcher: one rank, accepted, and the
#             note that the job's 4 tasks are not all used
#   pmix      srun --mpi=pmix -n 4 dagr-info: every process fails with the launch error (exit
#             2), which names srun, the 4 processes and the fix
#   openmpi   OpenMPI's mpiexec -n 2 of dagr-info and of examples/jacobi: both processes of
#             each fail (dagr-info with 2, jacobi with 1) with the launch error naming
#             mpiexec.mpich -n 2
#   chain     slurm/chain.sbatch (DAGR_LAUNCH=srun: srun --mpi=pmi2) runs examples/jacobi
#             with asynchronous checkpoints; the job is
#             warned with scancel --signal=USR1 while it runs, checkpoints, exits 75 and
#             resubmits itself at 3 tasks instead of 2; the second job resumes and ends with
#             the result of an uninterrupted run, bit for bit (jacobi compares every value with
#             a serial run of the same sweeps: serial_error=0)
#   kill      the same program (under mpiexec.mpich) killed outright (SIGKILL to its
#             processes) mid-run: the chain stops; a new chain at 4 tasks resumes from the
#             last complete checkpoint and ends bit for bit as above (a kill inside a
#             checkpoint's writes is pinned down in test_darray_checkpoint)
#   bench     slurm/dagr-bench.sbatch at 2 tasks on small sizes: info.json, results.jsonl
#             with dagr and ScaLAPACK lines, results.md and results.png
# Prints "ok CASE" or "FAIL CASE: why" per case; exits 0 when all passed, 77 (skipped) when
# Slurm, munge or root are missing, 1 otherwise.
set -uo pipefail

build=$(cd "${1:?build dir}" && pwd)
src=$(cd "${2:?source dir}" && pwd)
shift 2
cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=(mpiexec pmi2 bare pmix openmpi chain kill bench)

for tool in slurmctld slurmd munged sbatch srun scancel scontrol; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP: $tool not found (bash scripts/deps.sh installs slurm-wlm and munge)"
        exit 77
    fi
done
if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: the private Slurm cluster needs root"
    exit 77
fi

# shellcheck source=tests/slurm/cluster.sh
. "$src/tests/slurm/cluster.sh"
dir=$(mktemp -d /tmp/dagr-slurm-XXXXXX)
cleanup() {
    slurm_cluster_stop "$dir" >/dev/null 2>&1
    rm -rf "$dir"
}
trap cleanup EXIT
if ! slurm_cluster_start "$dir"; then
    echo "FAIL: the private Slurm cluster did not start"
    exit 1
fi

# The tools as an installed tree would have them on PATH.
bin=$dir/bin
mkdir -p "$bin"
ln -s "$build/tools/dagr-info" "$bin/dagr-info"
ln -s "$build/benchmarks/dagr-bench" "$bin/dagr-bench"
ln -s "$src/benchmarks/report.py" "$bin/dagr-bench-report"
export PATH=$bin:$PATH
unset DAGR_THREADS DAGR_STOP_SIGNALS DAGR_MEMORY_LIMIT DAGR_VERBOSE
work=$dir/work
mkdir -p "$work"
cd "$work" || exit 1

failures=0
fail() {
    echo "FAIL $1: $2"
    failures=$((failures + 1))
}

# Submits a job and waits for it; prints its id. $1: seconds; the rest: sbatch arguments.
submit_wait() {
    local limit=$1 id state
    shift
    id=$(sbatch --parsable "$@") || return 1
    state=$(slurm_job_wait "$id" "$limit")
    echo "$id $state"
}

# Waits until file $1 exists (at most $2 seconds).
wait_file() {
    local t
    for ((t = 0; t < $2 * 10; t++)); do
        [ -e "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

# Runs COMMAND as a 4-task batch job; the case passes when the job completed and its output
# holds every PATTERN (grep, fixed strings). $1: the case, $2: COMMAND, $3: what a missing
# pattern means.
info_job() {
    local name=$1 cmd=$2 why=$3 id state p
    shift 3
    printf '#!/bin/bash\n%s\n' "$cmd" >"job-$name.sh"
    read -r id state < <(submit_wait 60 -n 4 -o "$name.out" "job-$name.sh")
    if [ "$state" != COMPLETED ]; then
        fail "$name" "job $id ended $state: $(cat "$name.out")"
        return
    fi
    for p in "$@"; do
        if ! grep -qF -- "$p" "$name.out"; then
            fail "$name" "$why: $(cat "$name.out")"
            return
        fi
    done
    echo "ok $name"
}

case_mpiexec() {
    # shellcheck disable=SC2016 # expanded by the job
    info_job mpiexec 'mpiexec.mpich -n "$SLURM_NTASKS" dagr-info --json' \
        "dagr-info did not see one world of 4 ranks under Hydra" \
        '"ok": true, "ranks": 4,' "\"launcher\": \"mpiexec (MPICH's Hydra)\""
}

case_pmi2() {
    info_job pmi2 'srun --mpi=pmi2 dagr-info --json' \
        "dagr-info did not see one world of 4 ranks under srun" \
        '"ok": true, "ranks": 4,' '"launcher": "srun", "pmi": "PMI-2"'
}

case_bare() {
    info_job bare 'dagr-info' "no note of the unused tasks" \
        'ranks             1' 'Slurm job         4 tasks (more than the ranks'
}

case_pmix() {
    local out rc n
    out=$(timeout 60 srun --mpi=pmix -n 4 dagr-info 2>&1)
    rc=$?
    n=$(grep -c 'mislaunched: srun started 4 processes' <<<"$out")
    if [ "$rc" -eq 0 ]; then
        fail pmix "srun --mpi=pmix exited 0: $out"
    elif [ "$n" -ne 4 ] || ! grep -q 'srun --mpi=pmi2' <<<"$out" ||
        ! grep -q 'MPI_COMM_WORLD has 1 rank' <<<"$out"; then
        fail pmix "$n of 4 processes reported the mislaunch with its fix (exit $rc): $out"
    else
        echo "ok pmix"
    fi
}

case_openmpi() {
    if ! command -v mpiexec.openmpi >/dev/null; then
        fail openmpi "mpiexec.openmpi not found (bash scripts/deps.sh installs it)"
        return
    fi
    # orte_abort_on_non_zero_status 0: OpenMPI lets every process run to its end instead of
    # killing the others at the first failure (it then exits 0: each process reports its own
    # status).
    local prog out n st want
    for prog in "$bin/dagr-info" "$build/examples/jacobi"; do
        want=1
        [ "$prog" = "$bin/dagr-info" ] && want=2
        # shellcheck disable=SC2016 # expanded by each process's sh
        out=$(env -u SLURM_CONF timeout 60 mpiexec.openmpi --allow-run-as-root --oversubscribe \
            --mca orte_abort_on_non_zero_status 0 -n 2 \
            sh -c '"$0"; echo "status $?"' "$prog" 2>&1)
        n=$(grep -c "^dagr: .*mislaunched: OpenMPI's mpiexec started 2 processes" <<<"$out")
        st=$(grep -c "^status $want$" <<<"$out")
        if [ "$n" -ne 2 ] || [ "$st" -ne 2 ] || ! grep -q 'mpiexec.mpich -n 2' <<<"$out" ||
            grep -q 'jacobi: ok' <<<"$out"; then
            fail openmpi "$(basename "$prog"): $n of 2 reported the mislaunch, $st of 2 exited $want: $out"
            return
        fi
    done
    echo "ok openmpi"
}

jacobi_args=(--n 96 --tile 24 --iters 3000 --tol 0 --every 150)

# The last job of a chain that started with job $1: follows "link N is job M" lines.
chain_last() {
    local id=$1 next
    while next=$(sed -n 's/^chain: .* link [0-9]* is job \([0-9]*\)$/\1/p' "chain-$id.out") &&
        [ -n "$next" ]; do
        slurm_job_wait "$next" 120 >/dev/null
        id=$next
    done
    echo "$id"
}

# Checks that job $1's output ends the jacobi run exactly as an uninterrupted one.
chain_result() {
    grep -q 'jacobi: ok n=96 sweeps=3000 .*serial_error=0$' "chain-$1.out" &&
        grep -q 'chain: the program finished in link' "chain-$1.out"
}

case_chain() {
    local id state last
    rm -f chain.ckpt
    id=$(DAGR_LAUNCH=srun DAGR_THREADS=1 DAGR_CHAIN_NEXT="-n 3 -o chain-%j.out" DAGR_CHAIN_MAX=3 \
        sbatch --parsable -n 2 \
        -o 'chain-%j.out' "$src/slurm/chain.sbatch" "$build/examples/jacobi" \
        "${jacobi_args[@]}" --checkpoint "$work/chain.ckpt") || {
        fail chain "sbatch failed"
        return
    }
    if ! wait_file chain.ckpt 60; then
        fail chain "no checkpoint after 60 s: $(cat "chain-$id.out")"
        return
    fi
    sleep 0.3
    scancel --signal=USR1 "$id"
    state=$(slurm_job_wait "$id" 120)
    last=$(chain_last "$id")
    if [ "$state" != COMPLETED ] || ! grep -q 'jacobi: stopped at sweep' "chain-$id.out" ||
        ! grep -q 'chain: .* link 2 is job' "chain-$id.out"; then
        fail chain "the warned job $id ($state) did not stop and resubmit: $(cat "chain-$id.out")"
    elif [ "$last" = "$id" ] || ! grep -q 'jacobi: resumed at sweep' "chain-$last.out" ||
        ! grep -q 'link 2 of at most 3, job [0-9]*, 3 tasks' "chain-$last.out" ||
        ! chain_result "$last"; then
        fail chain "the next job $last did not resume at 3 tasks and end as an uninterrupted run: $(cat "chain-$last.out")"
    else
        echo "ok chain ($(grep -o 'stopped at sweep [0-9]*' "chain-$id.out"), finished in job $last)"
    fi
}

case_kill() {
    local id state id2 state2
    rm -f kill.ckpt
    id=$(DAGR_THREADS=1 sbatch --parsable -n 2 -o 'chain-%j.out' "$src/slurm/chain.sbatch" \
        "$build/examples/jacobi" "${jacobi_args[@]}" --checkpoint "$work/kill.ckpt") || {
        fail kill "sbatch failed"
        return
    }
    if ! wait_file kill.ckpt 60; then
        fail kill "no checkpoint after 60 s: $(cat "chain-$id.out")"
        return
    fi
    sleep 0.3
    # SIGKILL to the program's processes only (scancel --signal=KILL cancels the whole job,
    # and Slurm's SIGTERM first would let the program stop cleanly).
    local pids=() p
    for p in $(scontrol listpids "$id" | awk 'NR > 1 {print $1}'); do
        # The program itself: argv[0] (the batch shell and mpiexec name it in their arguments).
        [[ "$(tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | head -1)" == */examples/jacobi ]] &&
            pids+=("$p")
    done
    if [ ${#pids[@]} -eq 0 ]; then
        fail kill "no jacobi process in job $id: $(scontrol listpids "$id")"
        return
    fi
    kill -KILL "${pids[@]}"
    state=$(slurm_job_wait "$id" 120)
    if grep -q 'jacobi: ok' "chain-$id.out" || ! grep -q 'chain: the program failed' "chain-$id.out"; then
        fail kill "the killed job $id ($state) did not fail: $(cat "chain-$id.out")"
        return
    fi
    id2=$(DAGR_THREADS=1 sbatch --parsable -n 4 -o 'chain-%j.out' "$src/slurm/chain.sbatch" \
        "$build/examples/jacobi" "${jacobi_args[@]}" --checkpoint "$work/kill.ckpt")
    state2=$(slurm_job_wait "$id2" 180)
    if [ "$state2" != COMPLETED ] || ! grep -q 'jacobi: resumed at sweep' "chain-$id2.out" ||
        ! chain_result "$id2"; then
        fail kill "job $id2 ($state2) did not resume and end as an uninterrupted run: $(cat "chain-$id2.out")"
    else
        echo "ok kill ($(grep -o 'resumed at sweep [0-9]*' "chain-$id2.out") after the kill)"
    fi
}

case_bench() {
    if [ ! -x "$build/benchmarks/dagr-bench" ]; then
        fail bench "dagr-bench was not built (no ScaLAPACK?)"
        return
    fi
    local id state out
    read -r id state < <(DAGR_THREADS=1 DAGR_REPEAT=1 submit_wait 180 -n 2 -o bench.out \
        "$src/slurm/dagr-bench.sbatch" gemm,potrf 384 64)
    out=$work/dagr-bench-$id
    if [ "$state" != COMPLETED ]; then
        fail bench "job $id ended $state: $(cat bench.out)"
    elif ! grep -q '"ranks": 2' "$out/info.json" ||
        [ "$(grep -c '"impl":"dagr"' "$out/results.jsonl")" -ne 2 ] ||
        [ "$(grep -c '"impl":"scalapack"' "$out/results.jsonl")" -ne 2 ] ||
        ! grep -q '"grid":"1x2"' "$out/results.jsonl" || [ ! -s "$out/results.md" ] ||
        [ ! -s "$out/results.png" ]; then
        fail bench "missing results in $out: $(ls "$out"; cat bench.out "$out/results.jsonl")"
    else
        echo "ok bench"
    fi
}

for c in "${cases[@]}"; do
    "case_$c"
done
echo "$((${#cases[@]} - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
