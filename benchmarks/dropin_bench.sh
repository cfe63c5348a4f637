#!/usr/bin/env bash
# dropin_bench.sh: a plain ScaLAPACK program (scalapack_bench) run as it is and through
# libdagr-scalapack (LD_PRELOAD), interleaved, and the two side by side.
#
# Usage: bash benchmarks/dropin_bench.sh BUILD_DIR
#
# Settings (environment): N ("4096 8192"), NB (256), RANKS (2), OPS ("potrf getrf geqrf"),
# REPS (best of: 3 below n = 8192, 1 from 8192 on, where one QR takes ~20 s), GRID (PxQ;
# default the program's squarest grid), DAGR_THREADS (1: dagr workers per rank in the dagr
# runs), OPENBLAS_NUM_THREADS (1 in both runs: one rank per core, as for ScaLAPACK),
# MPIEXEC (mpiexec.mpich).
#
# For every n and op it runs the plain program and the preloaded one back to back, the order
# swapped from one op to the next to even out a noisy machine, prints each program's line as
# it comes ("# plain ..." / "# dagr ...") and at the end a table: GFLOP/s of both, the ratio
# dagr / ScaLAPACK, and the DAGR_VERBOSE counts of the op's routine (calls served by dagr,
# passed to ScaLAPACK; pdgeqrf_'s workspace query is always passed on). Exits 1 when a run
# fails, a check fails, or dagr served none of the op's calls.
set -u

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: bash benchmarks/dropin_bench.sh BUILD_DIR" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
bin=$build/benchmarks/scalapack_bench
lib=$build/scalapack/libdagr-scalapack.so
for f in "$bin" "$lib"; do
    [ -e "$f" ] || { echo "dropin_bench: $f not found (built with ScaLAPACK?)" >&2; exit 2; }
done

N=${N:-4096 8192}
NB=${NB:-256}
RANKS=${RANKS:-2}
OPS=${OPS:-potrf getrf geqrf}
MPIEXEC=${MPIEXEC:-mpiexec.mpich}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
dagr_threads=${DAGR_THREADS:-1}
grid_opt=()
[ -n "${GRID:-}" ] && grid_opt=(--grid "$GRID")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run KIND OP N REPS: one program run; its line on stdout, DAGR_VERBOSE's lines in $tmp/err.
run() {
    local kind=$1 op=$2 n=$3 reps=$4
    local cmd=("$MPIEXEC" -n "$RANKS" "$bin" --op "$op" --n "$n" --nb "$NB" --reps "$reps"
        "${grid_opt[@]}")
    if [ "$kind" = dagr ]; then
        env LD_PRELOAD="$lib" DAGR_VERBOSE=1 DAGR_THREADS="$dagr_threads" "${cmd[@]}" \
            >"$tmp/out" 2>"$tmp/err"
    else
        "${cmd[@]}" >"$tmp/out" 2>"$tmp/err"
    fi
    local rc=$?
    local line
    line=$(grep "^op=$op " "$tmp/out")
    echo "# $kind $line" >&2
    if [ $rc -ne 0 ] || [ -z "$line" ]; then
        echo "# $kind run failed (exit $rc):" >&2
        sed 's/^/#   /' "$tmp/out" "$tmp/err" >&2
        line="op=$op gflops=nan check=FAIL"
    fi
    echo "$line"
}

field() { # field NAME LINE
    sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"
}

status=0
rows=()
i=0
echo "# dropin_bench: $(date -u +%FT%TZ) ranks=$RANKS nb=$NB dagr_threads=$dagr_threads" \
    "OPENBLAS_NUM_THREADS=$OPENBLAS_NUM_THREADS host=$(hostname)" >&2
for n in $N; do
    reps=${REPS:-$([ "$n" -ge 8192 ] && echo 1 || echo 3)}
    for op in $OPS; do
        if [ $((i % 2)) -eq 0 ]; then order="plain dagr"; else order="dagr plain"; fi
        i=$((i + 1))
        for kind in $order; do
            line=$(run "$kind" "$op" "$n" "$reps")
            if [ "$kind" = plain ]; then
                plain=$line
            else
                dagr=$line
                # rank 0's count for the op's routine, e.g.
                # "dagr-scalapack (rank 0): pdpotrf_: 3 served by dagr, 0 passed to ScaLAPACK"
                counts=$(sed -n "s/^dagr-scalapack (rank 0): pd${op}_: \([0-9]*\) served by dagr, \([0-9]*\) passed.*/\1 \2/p" "$tmp/err")
                served=${counts% *}
                passed=${counts#* }
                [ -n "$counts" ] || { served=0; passed=?; }
            fi
        done
        gp=$(field gflops "$plain")
        gd=$(field gflops "$dagr")
        ratio=$(awk -v a="$gd" -v b="$gp" 'BEGIN { if (b > 0 && a > 0) printf "%.2f", a / b; else print "nan" }')
        checks="$(field check "$plain")/$(field check "$dagr")"
        [ "$checks" = ok/ok ] || status=1
        [ "$served" -gt 0 ] || status=1
        rows+=("| $op | $n | $NB | $(field grid "$dagr") | $reps | $gp | $gd | $ratio | $served | $passed | $checks |")
    done
done

echo "| op | n | nb | grid | best of | ScaLAPACK GFLOP/s | through dagr GFLOP/s | dagr / ScaLAPACK | served by dagr | passed to ScaLAPACK | check (plain/dagr) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
exit $status
