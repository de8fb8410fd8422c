#!/bin/bash
# Benchmark: tshark with the smtp-over-http plugin enabled against the same
# tshark with `--disable-protocol smtp-over-http`, in the ways analysts run it,
# on the large lab capture (captures/lab/make-bench-capture.sh), then growth
# from 1x to 2x to 4x the capture. Writes bench/RESULTS.md.
#
#   bench/run.sh [-r RUNS] [-s "1 2 4"] [-o OUT.md] [-d CAPTURE_DIR]
#
# Timing: hyperfine, RUNS runs of each command after one warm-up, enabled
# and disabled alternating; medians. Peak memory: GNU time's maximum resident
# set size of the same runs, median. As root, tshark
# runs as uid/gid 65534 with a temporary HOME holding the plugin, because
# Wireshark ignores personal plugins for root.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=9
scales="1 2 4"
out="$top/bench/RESULTS.md"
work="${TMPDIR:-/tmp}/soh-bench-captures"  # outside the repository, as the lab script requires
while getopts "r:s:o:d:" opt; do
    case $opt in
        r) runs=$OPTARG ;;
        s) scales=$OPTARG ;;
        o) out=$OPTARG ;;
        d) work=$OPTARG ;;
        *) sed -n '2,13p' "$0"; exit 2 ;;
    esac
done
for tool in hyperfine tshark python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is needed (apt-get install hyperfine time tshark)" >&2; exit 2; }
done

cd "$top"
timeout 600 cmake -S . -B build >/dev/null
timeout 3600 cmake --build build -j"$(nproc)" >/dev/null
plugin=$top/build/plugin/epan/smtp-over-http.so

mkdir -p "$work"
for s in $scales; do
    [ -f "$work/bench-x$s.pcap" ] || SOH_BENCH_NOCHECK=1 captures/lab/make-bench-capture.sh "$work" "$s" >/dev/null
done

# shellcheck source=bench/common.sh
. "$top/bench/common.sh"
bench_home "$plugin" soh-bench
for s in $scales; do cp "$work/bench-x$s.pcap" "$home/"; done
chmod -R a+rX "$home"
ts="$as_user tshark"
$ts -G plugins | grep -q '^smtp-over-http.so' || { echo "bench: tshark did not load the plugin" >&2; exit 1; }

# One run of a command: wall time (hyperfine, one run) and peak RSS (GNU time
# wrapping the same process). Prints "SECONDS KIB".
run_once() {
    local json rss
    json=$(mktemp) rss=$(mktemp)
    hyperfine -N --style none --runs 1 --export-json "$json" "/usr/bin/time -f %M -o $rss $1" >/dev/null 2>&1
    python3 -c 'import json,sys; print("%.4f" % json.load(open(sys.argv[1]))["results"][0]["times"][0], open(sys.argv[2]).read().split()[-1])' "$json" "$rss"
    rm -f "$json" "$rss"
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

# Runs the enabled and disabled commands in alternating order, RUNS times
# each after one warm-up of each, so that drift in the machine's speed falls
# on both alike. Sets T_ON T_OFF (median s), M_ON M_OFF (median KiB) and
# PAIRED (median of the per-round time ratios) and SPREAD (half-width of the
# 95% confidence interval of their mean, Student's t: how far apart two
# ratios must be before the difference means anything on this machine).
measure_pair() {
    local on=$1 off=$2 i a b ton=() toff=() mon=() moff=() ratios=()
    run_once "$on" >/dev/null
    run_once "$off" >/dev/null
    for ((i = 0; i < runs; i++)); do
        if ((i % 2 == 0)); then
            read -r ta ma < <(run_once "$on")
            read -r tb mb < <(run_once "$off")
        else
            read -r tb mb < <(run_once "$off")
            read -r ta ma < <(run_once "$on")
        fi
        ton+=("$ta") toff+=("$tb") mon+=("$ma") moff+=("$mb")
        ratios+=("$(python3 -c "print($ta / $tb)")")
    done
    T_ON=$(median "${ton[@]}") T_OFF=$(median "${toff[@]}")
    M_ON=$(median "${mon[@]}") M_OFF=$(median "${moff[@]}")
    PAIRED=$(python3 -c "print('%.3f' % $(median "${ratios[@]}"))")
    SPREAD=$(python3 -c "$spread_py" "${ratios[@]}")
}
# Half-width of the 95% confidence interval of the mean of the arguments.
spread_py='
import statistics, sys
r = [float(x) for x in sys.argv[1:]]
# Student t, two-sided 95%, for 1..30 degrees of freedom
t = [12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.20, 2.18, 2.16, 2.14, 2.13,
     2.12, 2.11, 2.10, 2.09, 2.09, 2.08, 2.07, 2.07, 2.06, 2.06, 2.06, 2.05, 2.05, 2.05, 2.04]
n = len(r)
print("%.3f" % (t[min(n - 1, 30) - 1] * statistics.stdev(r) / n ** 0.5) if n > 1 else "?")
'
ratio() { python3 -c "print('%.3f' % ($1 / $2))"; }
fmt() { python3 -c "print('%.3f' % $1)"; }

rows=()
base_scale=${scales%% *}
cap="$home/bench-x$base_scale.pcap"
packets=$(capinfos -c -M "$cap" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')
streams=$($ts -n -r "$cap" -q -z conv,tcp 2>/dev/null | grep -c '<->' || true)
matched=$($ts -n -r "$cap" -Y smtp-over-http 2>/dev/null | wc -l)
incidents=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["incidents"]))' "$work/bench-x$base_scale.labels.json" 2>/dev/null || echo "?")
for m in $modes; do
    a=${mode_args[$m]}
    echo "bench: $m" >&2
    measure_pair "$ts -n -r $cap $a" "$ts -n $off -r $cap $a"
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
    measure_pair "$ts -n -r $cap -Y smtp-over-http" "$ts -n $off -r $cap -Y smtp-over-http"
    [ -n "$first_on" ] || { first_on=$T_ON; first_off=$T_OFF; }
    growth+=("| ${s}x | $n | $(fmt "$T_OFF") | $(fmt "$T_ON") | $(ratio "$T_OFF" "$first_off") | $(ratio "$T_ON" "$first_on") | $(ratio "$T_ON" "$T_OFF") | $PAIRED ± $SPREAD | ${M_OFF%.*} | ${M_ON%.*} | $(( ${M_ON%.*} - ${M_OFF%.*} )) |")
done

{
    echo "# Benchmark results"
    echo
    echo "Generated by \`bench/run.sh\` (do not edit by hand): tshark with the plugin enabled"
    echo "against the same tshark with \`--disable-protocol smtp-over-http\`, measured in the"
    echo "same run. Each mode runs the enabled and the disabled command $runs times each, in"
    echo "alternating order, after one warm-up of each. Time: hyperfine (one run per"
    echo "invocation), median; memory: peak resident set size of the same runs (GNU time),"
    echo "median. *Time ratio* divides the medians; *paired ratio* is the median of the"
    echo "per-round ratios, which cancels slow drift of the machine's speed; after it, ±"
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
    echo "\`captures/lab/make-bench-capture.sh DIR $base_scale\`: $packets packets, $streams TCP conversations,"
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
} > "$out"
echo "bench: wrote $out" >&2
