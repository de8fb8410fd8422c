#!/bin/bash
# The whole test suite and the package test against other Wireshark
# releases, each in its Debian chroot with its own tshark
# (scripts/wireshark-env.sh):
#
#   scripts/test-releases.sh [VERSION...]     default: 4.4 4.6
#
# For each release: scripts/test.sh (build with warnings as errors, every
# ctest, the ASan/UBSan unit tests), then scripts/package-test.sh (build the
# .deb for that release, install it in the chroot, check it, remove it).
# Every output line is prefixed with [VERSION]; a summary per release and
# its minutes close the run. Exit code 0 only when every release passed.
# Needs root (chroots); .ci/run calls it after the host's own 4.0 run.
set -uo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(4.4 4.6)

rc=0
summary=()
for v in "${versions[@]}"; do
    start=$(date +%s)
    log=$(mktemp)
    # One command in the chroot: the suite, then the package test (which must
    # not overlap the capture tests: an installed plugin shadows theirs).
    timeout 5400 scripts/wireshark-env.sh "$v" -- bash -c \
        'scripts/test.sh; t=$?; scripts/package-test.sh; p=$?; exit $(( t != 0 || p != 0 ))' 2>&1 |
        sed -u "s/^/[$v] /" | tee "$log"
    vrc=${PIPESTATUS[0]}
    minutes=$(( ($(date +%s) - start + 30) / 60 ))
    result=PASS
    [ "$vrc" -eq 0 ] || { result=FAIL; rc=1; }
    summary+=("[$v] release: $result in $minutes min")
    while IFS= read -r line; do summary+=("$line"); done < <(
        grep -E '^\[[0-9.]+\] ([0-9]+% tests passed|captures: |test\.sh: |package-test: (PASS|FAIL|SKIP|for Wireshark))' "$log")
    rm -f "$log"
done

echo
echo "== releases"
printf '%s\n' "${summary[@]}"
exit $rc
