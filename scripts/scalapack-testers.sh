#!/bin/bash
# ScaLAPACK's own test programs with their ScaLAPACK calls served by dagr.
#
# usage: scripts/scalapack-testers.sh LIBDAGR_SCALAPACK_SO [quick|full]
#
# Runs the MPICH builds of ScaLAPACK's testers (Debian's scalapack-mpi-test: xdllt, xdlu,
# xdqr, xdls, their single-precision twins, and PBLAS's dpb3tst/spb3tst) under
# LD_PRELOAD=LIBDAGR_SCALAPACK_SO with DAGR_VERBOSE=1, at 1-4 ranks. Each run must pass every
# test it runs (the testers' own residual checks) and exit 0, and the library's report must
# show that dagr served the calls it can: with our inputs (tests/scalapack/inputs: square
# blocks, submatrices on block boundaries) every factorization and solve, and every PBLAS
# call that ScaLAPACK would not refuse.
#
#   quick  our smaller inputs (tests/scalapack/inputs/quick: fewer sizes, right-hand sides
#          and grids), one run per tester kind (LLT, LU, QR, LS, PBLAS 3; single and double)
#          and rank count 1-4, most at 2 ranks (the test suite's form: a tester at 4 ranks
#          on 2 cores is slow with or without dagr, e.g. dpb3tst 37 s against 1.4 s at 2)
#   full   our full inputs at 1-4 ranks, and ScaLAPACK's own inputs (/usr/share/scalapack) at
#          4 ranks, every tester
#
# Their inputs run with "Test Cond. Est. and Iter. Ref. Routines" off: with it on, the testers
# hang in PDLACON (via PDPOCON/PDGECON) on this machine without dagr too (seen at a 1x4 grid,
# N 4, NB 2 and a 2x1 grid, N 17, NB 2: two processes in different collectives).
#
# Exit 0 when every run passed, 1 when one failed, 77 when the testers are not installed.
set -u
lib=${1:?usage: scalapack-testers.sh LIBDAGR_SCALAPACK_SO [quick|full]}
mode=${2:-quick}
here=$(cd "$(dirname "$0")" && pwd)
ours=$here/../tests/scalapack/inputs
[ "$mode" = full ] || ours=$ours/quick
testers=/usr/lib/x86_64-linux-gnu/scalapack/mpich-tests
theirs=/usr/share/scalapack
mpiexec=$(command -v mpiexec.mpich || command -v mpiexec)

if [ ! -x "$testers/xdllt" ] || [ ! -d "$theirs" ]; then
    echo "SKIP: ScaLAPACK's testers are not installed (apt-get install scalapack-mpi-test)"
    exit 77
fi
[ -f "$lib" ] || { echo "FAIL: no library $lib"; exit 1; }
lib=$(realpath "$lib")

work=$(mktemp -d /tmp/dagr-testers-XXXXXX)
trap 'rm -rf "$work"' EXIT
failed=0

# The input files a tester reads, from our set or theirs (theirs with the condition
# estimators off, see above).
inputs() { # tester set
    local f
    case $1 in
    x?llt) f=LLT.dat ;; x?lu) f=LU.dat ;; x?qr) f=QR.dat ;; x?ls) f=LS.dat ;;
    dpb3tst) f=PDBLAS3TST.dat ;; spb3tst) f=PSBLAS3TST.dat ;;
    esac
    if [ "$2" = ours ]; then
        cp "$ours/$f" "$work/$f"
    elif [ "${1%tst}" != "$1" ]; then
        cp "$theirs/PBLAS/$f" "$work/$f"
    else
        sed 's/^T\([[:space:]]*(T or F) Test Cond\)/F\1/' "$theirs/$f" >"$work/$f"
    fi
}

# run TESTER SET RANKS ROUTINE... : each ROUTINE must be served at least once and, with our
# inputs, never passed on for a reason other than arguments ScaLAPACK rejects or a case dagr
# does not implement (gels with A transposed).
run() {
    local t=$1 set=$2 n=$3
    shift 3
    local exe=$testers/$t
    [ -x "$exe" ] || exe=$testers/PBLAS/$t
    inputs "$t" "$set"
    local start=$SECONDS
    (cd "$work" && timeout 600 env LD_PRELOAD="$lib" DAGR_VERBOSE=1 DAGR_THREADS=1 \
        "$mpiexec" -n "$n" "$exe" >"$work/out" 2>"$work/err" </dev/null)
    local rc=$? why=""
    if [ $rc -ne 0 ]; then
        why="exit status $rc"
    elif [ "${t%tst}" != "$t" ]; then
        # PBLAS: "|  PDGEMM  total passed failed skipped"
        local bad
        bad=$(awk '$1 == "|" && NF == 6 && ($5 != 0 || $4 == 0) {print $2}' "$work/out")
        grep -q '^  |  P' "$work/out" || why="no summary"
        [ -n "$bad" ] && why="failed or none passed: $bad"
    else
        local passed failedn
        passed=$(awk '/tests completed and passed residual checks/ {print $1}' "$work/out")
        failedn=$(awk '/tests completed and failed residual checks/ {print $1}' "$work/out")
        [ "${passed:-0}" -gt 0 ] || why="no test passed"
        [ "${failedn:-1}" -eq 0 ] || why="$failedn tests failed"
    fi
    local r served
    for r in "$@"; do
        served=$(awk -v r="$r" '$4 == r {print $5}' "$work/err")
        [ "${served:-0}" -gt 0 ] || why="${why:+$why; }$r not served"
    done
    if [ "$set" = ours ] && grep -q "^    [0-9]*: \(a submatrix not\|blocks dagr\|MPI is not\|dagr could not\|nothing to\)" "$work/err"; then
        why="${why:+$why; }calls passed on: $(grep -A1 'passed to' "$work/err" | tr '\n' ' ')"
    fi
    local counts
    counts=$(awk '/served by dagr/ {printf "%s%s %s/%s", sep, $4, $5, $5 + $9; sep = ", "}' "$work/err")
    if [ -z "$why" ]; then
        printf 'ok    %-8s %-6s -n %d  %3ds  served/calls: %s\n' "$t" "$set" "$n" $((SECONDS - start)) "$counts"
    else
        failed=1
        printf 'FAIL  %-8s %-6s -n %d  %s\n' "$t" "$set" "$n" "$why"
        tail -n 30 "$work/out" "$work/err" | sed 's/^/      /'
    fi
}

if [ "$mode" != full ]; then
    # PBLAS on 1x2 and 2x1 grids; LS on a 2x1 grid (gels on a 2x2 grid is checked against
    # ScaLAPACK in test_dropin)
    run xslu ours 1 psgetrf_: psgetrs_:
    run xdlu ours 2 pdgetrf_: pdgetrs_: pdgemm_:
    run spb3tst ours 2 psgemm_: pssyrk_: pssymm_: pstrsm_: pstrmm_:
    run dpb3tst ours 2 pdgemm_: pdsyrk_: pdsymm_: pdtrsm_: pdtrmm_:
    run xdls ours 2 pdgels_: pdgeqrf_: pdormqr_:
    run xdqr ours 3 pdgeqrf_:
    run xdllt ours 4 pdpotrf_: pdpotrs_:
else
    run xslu ours 1 psgetrf_: psgetrs_:
    run xdlu ours 2 pdgetrf_: pdgetrs_: pdgemm_:
    run spb3tst ours 2 psgemm_: pssyrk_: pssymm_: pstrsm_: pstrmm_:
    run xdqr ours 3 pdgeqrf_:
    run xdllt ours 4 pdpotrf_: pdpotrs_:
    run dpb3tst ours 4 pdgemm_: pdsyrk_: pdsymm_: pdtrsm_: pdtrmm_:
    run xdls ours 4 pdgels_: pdgeqrf_: pdormqr_:
    run xsllt ours 1 pspotrf_: pspotrs_:
    run xdllt ours 2 pdpotrf_: pdpotrs_:
    run xsqr ours 2 psgeqrf_:
    run xsls ours 3 psgels_:
    run xdlu ours 3 pdgetrf_: pdgetrs_:
    run xslu ours 4 psgetrf_: psgetrs_:
    for t in xdllt xsllt; do run $t theirs 4 p${t:1:1}potrf_:; done
    for t in xdlu xslu; do run $t theirs 4 p${t:1:1}getrf_:; done
    for t in xdqr xsqr; do run $t theirs 4 p${t:1:1}geqrf_:; done
    for t in xdls xsls; do run $t theirs 4 p${t:1:1}gels_:; done
    run dpb3tst theirs 4 pdgemm_:
    run spb3tst theirs 4 psgemm_:
fi
exit $failed
