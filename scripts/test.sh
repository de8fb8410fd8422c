#!/bin/bash
# Whole test suite: builds build/ with warnings as errors and runs every test
# (unit tests, capture tests with tshark and the plugin, golden output,
# non-interference), then builds build-asan/ with ASan+UBSan and runs the
# unit tests there.  Installs missing packages first when run as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/deps.sh
echo "test.sh: $(tshark --version 2>/dev/null | head -1)"
jobs=$(nproc 2>/dev/null || echo 2)
rc=0

timeout 600 cmake -S . -B build -DSOH_WERROR=ON -DSOH_SANITIZE=OFF \
    -DSOH_BUILD_PLUGIN=ON -DSOH_BUILD_TESTS=ON
timeout 3600 cmake --build build -j"$jobs"
# Wireshark prefers a system-wide copy of the plugin to the tests' personal
# one. If scripts/run.sh installed one as root, keep it aside while the tests
# run and put it back afterwards; a packaged copy must be removed first.
sys_dir=$(tshark -G folders 2>/dev/null | awk -F'\t' '/^Global Plugins:/ {print $2}')
sys_plugin=$sys_dir/epan/smtp-over-http.so
aside=""
if [ -n "$sys_dir" ] && [ -f "$sys_plugin" ]; then
    if dpkg -S "$sys_plugin" >/dev/null 2>&1; then
        echo "test.sh: the smtp-over-http package is installed; remove it (apt-get remove smtp-over-http) before testing" >&2
        exit 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: $sys_plugin would shadow the plugin under test; remove it (needs root)" >&2
        exit 1
    fi
    aside=$(mktemp -d)
    mv "$sys_plugin" "$aside/"
    trap 'mv "$aside/smtp-over-http.so" "$sys_plugin" && rmdir "$aside"' EXIT
    echo "test.sh: moved the installed $sys_plugin aside during the tests"
fi
timeout 7200 ctest --test-dir build --output-on-failure --no-tests=error || rc=1

timeout 600 cmake -S . -B build-asan -DSOH_WERROR=ON -DSOH_SANITIZE=ON \
    -DSOH_BUILD_PLUGIN=OFF -DSOH_BUILD_TESTS=ON
timeout 3600 cmake --build build-asan -j"$jobs"
timeout 3600 ctest --test-dir build-asan --output-on-failure --no-tests=error -L unit || rc=1

if [ -f build/tests/capture-metrics.json ]; then
    python3 - build/tests/capture-metrics.json <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["totals"]
print("captures: detection recall %d/%d, false-positive frames %d, pairing correct %d/%d "
      "(ambiguous %d), envelope match %d/%d" % (
          t["detected"], t["incidents"], t["fp_frames"], t["pairing_correct"],
          t["pairing_total"], t["pairing_ambiguous"], t["envelope_match"], t["envelope_total"]))
PY
fi
[ $rc -eq 0 ] && echo "test.sh: all tests passed" || echo "test.sh: FAILED"
exit $rc
