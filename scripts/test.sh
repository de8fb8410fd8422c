#!/bin/bash
# Whole test suite: builds build/ with warnings as errors and runs every test
# (unit tests, capture tests with tshark and the plugin, golden output,
# non-interference), then builds build-asan/ with ASan+UBSan and runs the
# unit tests there.  Installs missing packages first when run as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
rc=0

timeout 600 cmake -S . -B build -DSOH_WERROR=ON -DSOH_SANITIZE=OFF \
    -DSOH_BUILD_PLUGIN=ON -DSOH_BUILD_TESTS=ON
timeout 3600 cmake --build build -j"$jobs"
# Wireshark prefers a system-wide copy of the plugin to the tests' personal
# one: if scripts/run.sh installed one as root, bring it up to this build.
sys_plugin=$(sed -n 's/^SOH_PLUGIN_DIR:PATH=//p' build/CMakeCache.txt)/smtp-over-http.so
if [ "$(id -u)" -eq 0 ] && [ -f "$sys_plugin" ] && ! cmp -s "$sys_plugin" build/plugin/epan/smtp-over-http.so; then
    echo "test.sh: updating the installed plugin $sys_plugin to this build"
    timeout 600 cmake --install build --component plugin >/dev/null
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
