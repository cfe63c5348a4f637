#!/usr/bin/env bash
# Configures (or reconfigures) and compiles dagr in ./build (or $DAGR_BUILD_DIR).
# Used by demo.sh and test.sh; runnable on its own from any directory:
#
#   bash scripts/build.sh [extra meson setup options]
#
# Does not install packages; run scripts/deps.sh first (demo.sh and test.sh do).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build="${DAGR_BUILD_DIR:-build}"

if [ -f "$build/meson-private/coredata.dat" ]; then
    # An existing build dir: reconfigure (picks up new options and meson.build changes);
    # if it was made by another meson version and cannot be reconfigured, start afresh.
    meson setup --reconfigure "$build" "$@" || meson setup --wipe "$build" "$@"
else
    meson setup "$build" "$@"
fi
meson compile -C "$build"
