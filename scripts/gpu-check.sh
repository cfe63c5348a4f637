#!/usr/bin/env bash
# gpu-check.sh: the GPU checks, on the machine with a GPU (the device tool), from what
# scripts/gpu-prep.sh put in .gpucarry/: unpacks its Debian packages (aside, in /tmp), prints
# what dagr finds (dagr-info with DAGR_VERBOSE), and runs the GPU tests (tests/gpu: on a GPU
# they run rather than skip) and the device-body tests. A minute or two; logs go to $OUT when
# the tool sets it. Run here, without a GPU, the same checks pass with the GPU tests skipped.
#
#   device run: carry [".gpucarry"], command "bash scripts/gpu-check.sh", timeout_s 300
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
status=0
for t in test_gpu_share test_device_body test_gpu_run; do
    echo "== $t"
    "$carry/bin/$t" --verbose 2>&1 | tee "$out/$t.txt" || status=1
done
echo "gpu-check.sh: $([[ $status == 0 ]] && echo passed || echo FAILED)"
exit $status
