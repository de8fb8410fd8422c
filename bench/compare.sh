#!/bin/bash
# Two builds of the plugin against each other: the same tshark with plugin A,
# then with plugin B, alternating, in the modes of bench/run.sh, on the
# benchmark capture. Prints, per mode, each build's median time and the
# paired ratio B/A ± the half-width of its 95% confidence interval. Use it to
# tell whether a change made the plugin faster: the difference between two
# runs of bench/run.sh is often larger than the change.
#
#   bench/compare.sh [-i] [-r RUNS] [-m "MODES"] [-s SCALE] [-e ENCAP] [-d CAPTURE_DIR] PLUGIN_A.so PLUGIN_B.so
#
# MODES: any of filter filter-count fields-2pass detail stats conv (default
# "filter-count stats conv"). Build the two plugins first, e.g. from two
# work trees. -i: A and B run at once and take turns on one CPU, timed in
# CPU seconds (bench/run.sh -i says when that is needed).
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=21
scale=1
work="${TMPDIR:-/tmp}/soh-bench-captures"
# shellcheck source=bench/common.sh
. "$top/bench/common.sh"
which_modes="filter-count stats conv"
measure=measure_pair
how="alternating"
encap=""
while getopts "ir:m:s:d:e:" opt; do
    case $opt in
        i) measure=measure_interleaved how="taking turns on one CPU, CPU time" ;;
        r) runs=$OPTARG ;;
        m) which_modes=$OPTARG ;;
        s) scale=$OPTARG ;;
        d) work=$OPTARG ;;
        e) encap=$OPTARG ;;
        *) sed -n '2,13p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 2 ] && [ -f "$1" ] && [ -f "$2" ] || { sed -n '2,13p' "$0"; exit 2; }
for m in $which_modes; do
    [ -n "${mode_args[$m]:-}" ] || { echo "compare: unknown mode $m (one of: $modes)" >&2; exit 2; }
done
for tool in hyperfine tshark python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "compare: $tool is needed (apt-get install hyperfine time tshark)" >&2; exit 2; }
done
[ -f "$work/bench-x$scale${encap:+-$encap}.pcap" ] ||
    SOH_BENCH_NOCHECK=1 "$top/captures/lab/make-bench-capture.sh" "$work" "$scale" $encap >/dev/null

bench_home "$1" soh-compare-a
ts_a="$as_user tshark"
cap="$home/bench-x$scale.pcap"
cp "$work/bench-x$scale${encap:+-$encap}.pcap" "$cap"
chmod a+r "$cap"
bench_home "$2" soh-compare-b
ts_b="$as_user tshark"
for ts in "$ts_a" "$ts_b"; do
    $ts -G plugins | grep -q '^smtp-over-http.so' || { echo "compare: tshark did not load a plugin" >&2; exit 1; }
done

echo "A: $1"
echo "B: $2"
echo "${scale}x capture, $runs rounds per mode, $how"
echo
echo "| mode | A (s) | B (s) | paired ratio B/A |"
echo "|---|---|---|---|"
for m in $which_modes; do
    a=${mode_args[$m]}
    echo "compare: $m" >&2
    $measure "$ts_b -n -r $cap $a" "$ts_a -n -r $cap $a"
    echo "| $m | $(fmt "$T_OFF") | $(fmt "$T_ON") | $PAIRED ± $SPREAD |"
done
