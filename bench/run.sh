#!/bin/bash
# Benchmark: tshark with the smtp-over-http plugin enabled against the same
# tshark with `--disable-protocol smtp-over-http`, in the ways analysts run it,
# on the large lab capture (captures/lab/make-bench-capture.sh), then growth
# from 1x to 2x to 4x the capture. Writes bench/RESULTS.md.
#
#   bench/run.sh [-i] [-c benign|incidents] [-r RUNS] [-s "1 2 4"] [-e ENCAP] [-o OUT.md] [-d CAPTURE_DIR]
#
# -e vxlan: the same capture wrapped in VXLAN (any variant of
# tests/captures/encapsulate.py), built next to the plain one.
# -c incidents: the incident-heavy capture (bench-incidents-xSCALE.pcap,
# `make-bench-capture.sh ... --mix incidents`) instead of the mostly benign
# one; writes bench/RESULTS-incidents.md (-i: RESULTS-interleaved-incidents.md).
#
# Timing: hyperfine, RUNS runs of each command after one warm-up, enabled
# and disabled alternating; medians. Peak memory: GNU time's maximum resident
# set size of the same runs, median. As root, tshark
# runs as uid/gid 65534 with a temporary HOME holding the plugin, because
# Wireshark ignores personal plugins for root.
#
# -i: for a machine whose speed changes from second to second (a busy host),
# where one run after the other differs by more than the plugin costs: the
# two commands of a round run at once and take turns on one CPU
# (bench/interleave.py), and CPU time replaces wall time. Writes
# bench/RESULTS-interleaved.md.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=9
scales="1 2 4"
out=""
measure=measure_pair
work="${TMPDIR:-/tmp}/soh-bench-captures"  # outside the repository, as the lab script requires
encap=""
mix=benign
while getopts "ic:r:s:o:d:e:" opt; do
    case $opt in
        i) measure=measure_interleaved ;;
        c) mix=$OPTARG ;;
        r) runs=$OPTARG ;;
        s) scales=$OPTARG ;;
        o) out=$OPTARG ;;
        d) work=$OPTARG ;;
        e) encap=$OPTARG ;;
        *) sed -n '2,25p' "$0"; exit 2 ;;
    esac
done
case $mix in
    benign) prefix=bench mix_args="" ;;
    incidents) prefix=bench-incidents mix_args=" --mix incidents" ;;
    *) echo "bench: -c must be benign or incidents" >&2; exit 2 ;;
esac
[ -n "$out" ] || out="$top/bench/$([ $measure = measure_pair ] && echo RESULTS || echo RESULTS-interleaved)$([ "$mix" = benign ] || echo "-$mix").md"
for tool in hyperfine tshark python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is needed (apt-get install hyperfine time tshark)" >&2; exit 2; }
done

cd "$top"
timeout 600 cmake -S . -B build >/dev/null
timeout 3600 cmake --build build -j"$(nproc)" >/dev/null
plugin=$top/build/plugin/epan/smtp-over-http.so

mkdir -p "$work"
for s in $scales; do
    [ -f "$work/$prefix-x$s${encap:+-$encap}.pcap" ] ||
        SOH_BENCH_NOCHECK=1 captures/lab/make-bench-capture.sh "$work" "$s" $encap$mix_args >/dev/null
done

# shellcheck source=bench/common.sh
. "$top/bench/common.sh"
bench_home "$plugin" soh-bench
for s in $scales; do cp "$work/$prefix-x$s${encap:+-$encap}.pcap" "$home/bench-x$s.pcap"; done
chmod -R a+rX "$home"
ts="$as_user tshark"
$ts -G plugins | grep -q '^smtp-over-http.so' || { echo "bench: tshark did not load the plugin" >&2; exit 1; }

rows=()
base_scale=${scales%% *}
cap="$home/bench-x$base_scale.pcap"
packets=$(capinfos -c -M "$cap" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')
streams=$($ts -n -r "$cap" -q -z conv,tcp 2>/dev/null | grep -c '<->' || true)
matched=$($ts -n -r "$cap" -Y smtp-over-http 2>/dev/null | wc -l)
incidents=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["incidents"]))' "$work/$prefix-x$base_scale.labels.json" 2>/dev/null || echo "?")
# frames in incident legs, counted on the plain capture
[ "$mix" = benign ] || share=$(python3 captures/lab/bench.py --share "$work/$prefix-x$base_scale.labels.json" |
    sed -n 's/^frames in incident legs: \([0-9]*\) (\([0-9.]*%\)).*/\1 frames (\2)/p' || true)
for m in $modes; do
    a=${mode_args[$m]}
    echo "bench: $m" >&2
    $measure "$ts -n -r $cap $a" "$ts -n $off -r $cap $a"
    rows+=("| $m | \`tshark -n -r CAP $a\` | $(fmt "$T_OFF") | $(fmt "$T_ON") | $(ratio "$T_ON" "$T_OFF") | $PAIRED ± $SPREAD | ${M_OFF%.*} | ${M_ON%.*} | $(ratio "$M_ON" "$M_OFF") |")
done

# Stock tshark's own time need not grow in step with the packet count, so
# each scale shows both runs' growth against the first scale: the plugin's
# own share is how far the enabled column outgrows the disabled one.
growth=()
first_on="" first_off=""
for s in $scales; do
    cap="$home/bench-x$s.pcap"
    n=$(capinfos -c -M "$cap" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')
    echo "bench: growth x$s" >&2
    $measure "$ts -n -r $cap -Y smtp-over-http" "$ts -n $off -r $cap -Y smtp-over-http"
    [ -n "$first_on" ] || { first_on=$T_ON; first_off=$T_OFF; }
    growth+=("| ${s}x | $n | $(fmt "$T_OFF") | $(fmt "$T_ON") | $(ratio "$T_OFF" "$first_off") | $(ratio "$T_ON" "$first_on") | $(ratio "$T_ON" "$T_OFF") | $PAIRED ± $SPREAD | ${M_OFF%.*} | ${M_ON%.*} | $(( ${M_ON%.*} - ${M_OFF%.*} )) |")
done

{
    echo "# Benchmark results$([ "$mix" = benign ] || echo " (incident-heavy capture)")"
    echo
    echo "Generated by \`bench/run.sh\` (do not edit by hand): tshark with the plugin enabled"
    echo "against the same tshark with \`--disable-protocol smtp-over-http\`, measured in the"
    echo "same run. Each mode runs the enabled and the disabled command $runs times each, in"
    if [ $measure = measure_pair ]; then
        echo "alternating order, after one warm-up of each. Time: hyperfine (one run per"
        echo "invocation), median; memory: peak resident set size of the same runs (GNU time),"
        echo "median. *Time ratio* divides the medians; *paired ratio* is the median of the"
        echo "per-round ratios, which cancels slow drift of the machine's speed; after it, ±"
    else
        echo "rounds where the two run at once, pinned to one CPU, taking turns every 100 ms"
        echo "(\`bench/run.sh -i\`, \`bench/interleave.py\`): this machine's speed changed too much"
        echo "from one run to the next to time them one after the other. Time: CPU seconds (user"
        echo "+ system) of each process, median; memory: its peak resident set size, median."
        echo "*Time ratio* divides the medians; *paired ratio* is the median of the per-round"
        echo "ratios, which cancels what slowed the CPU down for both alike; after it, ±"
    fi
    echo "the half-width of the 95% confidence interval of the mean per-round ratio, which"
    echo "says how much of a difference between two ratios is noise."
    echo
    echo "## Machine"
    echo
    echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
    echo "- Memory: $(free -g | awk '/Mem:/ {print $2}') GiB; kernel $(uname -r)"
    echo "- $(tshark --version | head -1)"
    echo "- Plugin: smtp-over-http $(sed -n 's/^project(smtp-over-http VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt), $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo
    echo "## Capture"
    echo
    [ "$mix" = benign ] || echo "\`$prefix-x$base_scale.pcap\`, the incident-heavy capture (\`bench/README.md\`): ${share:-?} in incident legs."
    echo "\`captures/lab/make-bench-capture.sh DIR $base_scale${encap:+ $encap}$mix_args\`${encap:+ (wrapped in $encap)}: $packets packets, $streams TCP conversations,"
    echo "$incidents labelled incidents; every copy of a lab capture has its own addresses and ports."
    echo "The filter \`smtp-over-http\` keeps $matched frames (none with the plugin disabled)."
    echo
    echo "## Overhead by mode (${base_scale}x capture)"
    echo
    echo "| mode | command | disabled (s) | enabled (s) | time ratio | paired ratio | disabled (KiB) | enabled (KiB) | memory ratio |"
    echo "|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "In *filter* mode the enabled run prints the $matched frames the filter keeps and the"
    echo "disabled run prints nothing; *filter-count* (\`-q\`) filters the same frames without"
    echo "printing them, so it shows the cost of the plugin alone. Likewise *detail* prints the"
    echo "plugin's subtree on those frames."
    echo
    echo "## Growth (filter mode)"
    echo
    echo "| capture | packets | disabled (s) | enabled (s) | disabled vs 1x | enabled vs 1x | time ratio | paired ratio | disabled (KiB) | enabled (KiB) | plugin memory (KiB) |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${growth[@]}"
    echo
    echo "*vs 1x* divides a scale's median time by the first scale's median of the same run (enabled"
    echo "or disabled); *plugin memory* is the difference of the peak resident set sizes."
    # The archive figures (bench/archive.sh) live in the same file: kept as they are.
    if [ -f "$out" ]; then
        sed -n '/^<!-- archive: begin -->$/,/^<!-- archive: end -->$/{/^<!-- archive: begin -->$/i\

p}' "$out"
    fi
} > "$out.new"
mv "$out.new" "$out"
echo "bench: wrote $out" >&2
