#!/usr/bin/env bash
# gpu-prep.sh: prepares, here, what scripts/gpu-check.sh runs on the machine with a GPU (the
# device tool's), which has CUDA but no MPI, OpenBLAS, HDF5 or Criterion, and no network.
# It builds with CUDA here (the toolkit is at /usr/local/cuda; its bin/ goes on PATH so that
# meson finds nvcc for the .cu test and example), copies the GPU test programs, the gpu_kernel
# example, dagr-bench, dagr-info and libdagr into .gpucarry/, and downloads the Debian packages of the shared
# libraries they load that are not CUDA's or the C library's. .gpucarry/ is ignored
# (.git/info/exclude) and must stay under the tool's 64 MiB.
#
#   bash scripts/gpu-prep.sh    # then: device run, carry [".gpucarry"],
#                               #       command "bash scripts/gpu-check.sh", timeout_s 540
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${BUILD:-build-gpu}
carry=.gpucarry
export PATH=/usr/local/cuda/bin:$PATH
grep -qx "/$carry/" .git/info/exclude 2>/dev/null || echo "/$carry/" >>.git/info/exclude
if [[ ! -d $build ]]; then
    meson setup "$build" -Dcuda=enabled -Dtests=true --buildtype=release >/dev/null
fi
ninja -C "$build" >/dev/null
rm -rf "$carry"
mkdir -p "$carry/bin" "$carry/lib" "$carry/debs"
progs=("$build/tools/dagr-info" "$build/tests/gpu/test_gpu_run" "$build/tests/gpu/test_gpu_share"
    "$build/tests/lib/test_device_body" "$build/tests/gpu/test_gpu_linalg"
    "$build/tests/gpu/test_gpu_user" "$build/tests/gpu/test_gpu_darray" "$build/examples/gpu_kernel"
    "$build/benchmarks/dagr-bench")
for p in "${progs[@]}"; do
    [[ -x $p ]] || { echo "gpu-prep.sh: $p was not built (nvcc not found? ScaLAPACK?)" >&2; exit 1; }
done
cp "${progs[@]}" "$carry/bin/"
cp -L "$build"/libdagr.so.0 "$carry/lib/"
# The packages of the libraries they load, but the C library's, the compiler's and CUDA's
# (those are there, and unpacking Debian's over them could break that machine).
pkgs=$(for p in "${progs[@]}" "$carry/lib/libdagr.so.0"; do ldd "$p"; done |
    awk '$3 ~ /^\// {print $3}' | sort -u | while read -r lib; do
        dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true
    done | cut -d: -f1 | sort -u |
    grep -v -x -E -e libc6 -e libgcc-s1 -e 'libstdc\+\+6' -e 'cuda-.*' \
        -e 'libcu(blas|blaslt|solver|dart|fft|rand|sparse|pti|inj)[0-9.-]*.*' || true)
(cd "$carry/debs" && apt-get download $pkgs 2>&1 | grep -v '^W: Download is performed' || true)
echo "gpu-prep.sh: $(ls "$carry/debs" | wc -l) packages; $(du -sh "$carry" | cut -f1) in $carry"
