#!/usr/bin/env bash
# gpu-check.sh: the GPU checks, on the machine with a GPU (the device tool), from what
# scripts/gpu-prep.sh put in .gpucarry/: unpacks its Debian packages (aside, in /tmp), prints
# what dagr finds (dagr-info with DAGR_VERBOSE), and runs the GPU tests (tests/gpu: on a GPU
# they run rather than skip), the device-body tests and the gpu_kernel example; then the GPU
# benchmarks, dagr against the vendor's library (dagr-bench): gemm n = 32768 against one
# cublasDgemm, potrf n = 65536 against one cusolverDnXpotrf, and potrf n = 65536 again with
# DAGR_GPU_MEMORY at half the matrix (16 GiB: out of core on the GPU), to hold against the
# in-memory run. Logs go to $OUT when the tool sets it (bench.jsonl: the benchmarks' lines).
# Every step runs under `timeout`, and the whole stays under GPU_CHECK_BUDGET seconds (450):
# a step gets what is left, at most its own cap, so one slow step cannot eat the rest; a
# benchmark cut short says so (its per-repeat figures are in its log) without failing the
# check. Run here, without a GPU, the same checks pass with the GPU tests skipped and the
# benchmarks reporting "no GPU" (dagr-bench exits 3 before making any array).
#
#   device run: carry [".gpucarry"], command "bash scripts/gpu-check.sh", timeout_s 540
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
carry=.gpucarry
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
[[ -d $carry/bin ]] || { echo "gpu-check.sh: no $carry: run scripts/gpu-prep.sh first" >&2; exit 2; }
# Unpacked aside, not over /: that machine's own libraries stay as they are, and only these
# programs see ours (through LD_LIBRARY_PATH).
prefix=/tmp/dagr-debs
rm -rf "$prefix"
for f in "$carry"/debs/*.deb; do dpkg -x "$f" "$prefix"; done
libs=$(find "$prefix" -name '*.so*' -printf '%h\n' | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH=$root/$carry/lib:$libs/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
(nvidia-smi -L; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv) 2>&1 |
    tee "$out/machine.txt"
DAGR_VERBOSE=1 "$carry/bin/dagr-info" 2>&1 | tee "$out/dagr-info.txt"
budget=${GPU_CHECK_BUDGET:-450}
# Seconds a step may take: its cap, or what is left of the budget (0: no time left).
allowed() {
    local left=$((budget - SECONDS))
    ((left < 30)) && left=0
    echo $(($1 < left ? $1 : left))
}
status=0
for t in test_gpu_share test_device_body test_gpu_run test_gpu_user test_gpu_linalg test_gpu_darray; do
    echo "== $t"
    t_s=$(allowed 150)
    if ((t_s == 0)); then echo "gpu-check.sh: no time left for $t" | tee "$out/$t.txt"; status=1; continue; fi
    timeout "$t_s" "$carry/bin/$t" --verbose 2>&1 | tee "$out/$t.txt"
    rc=${PIPESTATUS[0]}
    ((rc == 124)) && echo "gpu-check.sh: $t timed out after $t_s s"
    ((rc != 0)) && status=1
done
echo "== gpu_kernel (example)"
t_s=$(allowed 60)
if ((t_s == 0)); then echo "gpu-check.sh: no time left for gpu_kernel"; status=1
elif ! timeout "$t_s" "$carry/bin/gpu_kernel" --n 2000 --nb 512 2>&1 | tee "$out/gpu_kernel.txt"; then
    status=1
fi

# The benchmarks. One rank (a singleton MPI process: no launcher there); figures on stdout
# (JSON, into bench.jsonl), messages and per-repeat times on stderr. dagr-bench exits 3 when
# the rank has no GPU (--ref cublas/cusolver, --require-gpu 1), and the benchmarks after it
# are skipped.
bench() { # name cap [VAR=value ...] -- dagr-bench args
    local name=$1 cap=$2 env=()
    shift 2
    while [[ $1 != -- ]]; do env+=("$1"); shift; done
    shift
    echo "== bench $name: ${env[*]} dagr-bench $*"
    if ((no_gpu)); then echo "gpu-check.sh: bench $name: no GPU, skipped"; return; fi
    local t_s
    t_s=$(allowed "$cap")
    if ((t_s == 0)); then echo "gpu-check.sh: bench $name: no time left, not run" | tee "$out/bench-$name.txt"; return; fi
    env DAGR_VERBOSE=1 "${env[@]}" timeout "$t_s" "$carry/bin/dagr-bench" "$@" \
        >"$out/bench-$name.jsonl" 2>"$out/bench-$name.txt"
    local rc=$?
    cat "$out/bench-$name.txt" "$out/bench-$name.jsonl"
    cat "$out/bench-$name.jsonl" >>"$out/bench.jsonl"
    case $rc in
    0) echo "gpu-check.sh: bench $name: done" ;;
    3) echo "gpu-check.sh: bench $name: no GPU, skipped"; no_gpu=1 ;;
    124) echo "gpu-check.sh: bench $name: timed out after $t_s s (per-repeat times above)" ;;
    *) echo "gpu-check.sh: bench $name: FAILED (exit $rc)"; status=1 ;;
    esac
}
: >"$out/bench.jsonl"
no_gpu=0
n_potrf=65536
half=$((n_potrf * n_potrf * 8 / 2 / 1073741824))G # half the matrix's bytes: 16G
bench gemm 110 -- --op gemm --n 32768 --repeat 2 --warmup 0 --ref cublas
bench potrf 130 -- --op potrf --n $n_potrf --repeat 1 --warmup 0 --ref cusolver
bench potrf-ooc 130 DAGR_GPU_MEMORY=$half -- --op potrf --n $n_potrf --repeat 1 --warmup 0 \
    --require-gpu 1
echo "gpu-check.sh: ${SECONDS} s"
echo "gpu-check.sh: $([[ $status == 0 ]] && echo passed || echo FAILED)"
exit $status
