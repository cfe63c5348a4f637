#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (DTable's CSV reader and expression engine) with
# ASan, UBSan and libFuzzer into build-fuzz/, and runs each for a number of seconds on a
# working copy of its seed corpus (build-fuzz/corpus-<target>/, which grows run after run).
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]     SECONDS: default $FUZZ_SECONDS or 60
#   FUZZ_JOBS=1 bash scripts/fuzz.sh 600           one target after the other (default: both
#                                                  at once when the machine has 2+ cores)
#
# Prints libFuzzer's final stats for each target and exits nonzero when a target crashed
# (the reproducer is left in build-fuzz/crash-*; replay: build-fuzz/fuzz_<target> FILE).
# Needs clang with the libFuzzer runtime (Debian: clang-14 and libclang-rt-14-dev).
set -euo pipefail

cd "$(dirname "$0")/.."
secs=${1:-${FUZZ_SECONDS:-60}}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(csv expr)
out=build-fuzz
cc=${CC_FUZZ:-clang}

if ! command -v "$cc" >/dev/null; then
    echo "fuzz.sh: $cc not found (apt-get install clang-14 libclang-rt-14-dev)" >&2
    exit 2
fi
mkdir -p "$out"
# The libFuzzer runtime (libclang_rt.fuzzer-x86_64.a) is in Debian's libclang-rt-14-dev.
probe='int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }'
if ! echo "$probe" | "$cc" -fsanitize=fuzzer -x c - -o "$out/.probe" 2>/dev/null; then
    echo "fuzz.sh: the libFuzzer runtime is missing; installing libclang-rt-14-dev" >&2
    sudo=
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get install -y libclang-rt-14-dev
fi
rm -f "$out/.probe"

flags=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -g -O1 -std=c11
       -D_GNU_SOURCE -Wall -Wextra -Werror -I dtable)
for t in "${targets[@]}"; do
    "$cc" "${flags[@]}" "fuzz/fuzz_$t.c" "dtable/$t.c" dtable/column.c -lm -o "$out/fuzz_$t"
    mkdir -p "$out/corpus-$t"
    cp -n fuzz/corpus/"$t"/* "$out/corpus-$t/"
done

run() {
    local t=$1
    # -rss_limit_mb: ASan's shadow counts; -max_len 4096 (libFuzzer's usual cap, named here).
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$out/fuzz_$t" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$out/crash-$t-" "$out/corpus-$t" \
        >"$out/fuzz_$t.log" 2>&1
}

jobs=${FUZZ_JOBS:-$([ "$(nproc)" -ge 2 ] && echo 2 || echo 1)}
declare -A rc
if [ "$jobs" -ge 2 ]; then
    declare -A pid
    for t in "${targets[@]}"; do
        run "$t" &
        pid[$t]=$!
    done
    for t in "${targets[@]}"; do
        if wait "${pid[$t]}"; then rc[$t]=0; else rc[$t]=$?; fi
    done
else
    for t in "${targets[@]}"; do
        if run "$t"; then rc[$t]=0; else rc[$t]=$?; fi
    done
fi

status=0
for t in "${targets[@]}"; do
    log="$out/fuzz_$t.log"
    done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 || true)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9/]+[a-zA-Z]*' "$log" | tail -1 || true)
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -1 || true)
    speed=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}' | tail -1 || true)
    echo "fuzz_$t: ${done_line:-no 'Done' line} | $cov | exec/s ${speed:-?} | units ${execs:-?} | log $log"
    if [ "${rc[$t]}" -ne 0 ]; then
        echo "fuzz_$t: CRASH (exit ${rc[$t]}), reproducer(s):" $(ls "$out"/crash-"$t"-* 2>/dev/null) >&2
        grep -E 'ERROR|SUMMARY|fuzz_(csv|expr):|runtime error' "$log" | head -20 >&2 || true
        status=1
    fi
done
exit $status
