#!/bin/bash
# Builds the libFuzzer targets (fuzz/, clang + ASan + UBSan) in build-fuzz/
# and runs each for a bounded time, one after the other.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      # default 60
#
# Environment: FUZZ_TARGETS="http smtp" runs a subset; FUZZ_BUILD_DIR moves
# the build (default build-fuzz); FUZZ_RSS_MB (default 2048).
# Each target starts from the committed seeds (fuzz/corpus/<target>) plus
# what earlier runs found (FUZZ_BUILD_DIR/corpus/<target>); crash inputs go
# to FUZZ_BUILD_DIR/artifacts/<target>/. Prints the executions per target and
# exits non-zero on any crash, sanitizer report, timeout or out-of-memory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs=${1:-60}
build=${FUZZ_BUILD_DIR:-build-fuzz}
rss=${FUZZ_RSS_MB:-2048}
targets=${FUZZ_TARGETS:-"http socks lines reassembler smtp correlator segment dns"}

if ! command -v clang++ >/dev/null 2>&1; then
    echo "fuzz.sh: clang++ not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2
    exit 2
fi

cmake -S fuzz -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"${FUZZ_BUILD_JOBS:-2}" >/dev/null

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
failed=()
summary=()
for t in $targets; do
    bin="$build/fuzz_$t"
    corpus="$build/corpus/$t"
    artifacts="$build/artifacts/$t"
    mkdir -p "$corpus" "$artifacts"
    log="$build/fuzz_$t.log"
    seeds=()
    [ -d "fuzz/corpus/$t" ] && seeds=("fuzz/corpus/$t")
    # Inputs that once failed, kept apart: make-seeds.py rewrites corpus/.
    [ -d "fuzz/regressions/$t" ] && seeds+=("fuzz/regressions/$t")
    echo "== fuzz_$t: ${secs}s"
    set +e
    "$bin" -max_total_time="$secs" -rss_limit_mb="$rss" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "$corpus" "${seeds[@]}" >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$log" | tail -1)
    time_s=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    cov=$(sed -n 's/^#[0-9]*[[:space:]]*DONE[[:space:]]*cov: \([0-9]*\).*/\1/p' "$log" | tail -1)
    line=$(printf '%-18s %10s execs %5ss  cov %s' "fuzz_$t" "${execs:-?}" "${time_s:-?}" "${cov:-?}")
    if [ "$rc" -ne 0 ] || grep -qE '^==[0-9]+==ERROR|runtime error:|deadly signal|Test unit written' "$log"; then
        line="$line  FAILED (exit $rc, see $log)"
        failed+=("$t")
        grep -E 'ERROR|runtime error|SUMMARY|Test unit written' "$log" | head -5 >&2 || true
    fi
    summary+=("$line")
done

echo
echo "== fuzz summary (${secs}s per target)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: no crash"
