#!/usr/bin/env bash
# Installs what is missing, builds dagr, and runs the main demo (examples/demo.c: 1-D heat
# diffusion over blocks owned by different ranks, checked against a serial run) on 2 ranks.
#
#   bash scripts/demo.sh [demo options, e.g. --cells 65536 --blocks 32 --steps 400]
#
# Environment: MPIEXEC (default mpiexec.mpich), DAGR_RANKS (default 2), DAGR_BUILD_DIR.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/deps.sh
bash scripts/build.sh

build="${DAGR_BUILD_DIR:-build}"
ranks="${DAGR_RANKS:-2}"
launcher="${MPIEXEC:-mpiexec.mpich}"
echo "+ $launcher -n $ranks $build/examples/demo $*"
# shellcheck disable=SC2086 # MPIEXEC may carry options ("mpiexec.mpich -bind-to core")
$launcher -n "$ranks" "$build/examples/demo" "$@"
