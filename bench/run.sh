#!/bin/bash
# Benchmark: tshark with the smtp-over-http plugin enabled against the same
# tshark with `--disable-protocol smtp-over-http`, in the ways analysts run it,
# on the large lab capture (captures/lab/make-bench-capture.sh), then growth
# from 1x to 2x to 4x the capture. Writes bench/RESULTS.md.
#
#   bench/run.sh [-r RUNS] [-s "1 2 4"] [-o OUT.md] [-d CAPTURE_DIR]
#
# Timing: hyperfine, RUNS runs after one warm-up, median. Peak memory:
# GNU time's maximum resident set size, median of RUNS runs. As root, tshark
# runs as uid/gid 65534 with a temporary HOME holding the plugin, because
# Wireshark ignores personal plugins for root.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=5
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

# A world-readable home with the plugin and the captures, so uid 65534 can run tshark.
home=$(mktemp -d /tmp/soh-bench.XXXXXX)
trap 'rm -rf "$home"' EXIT
mkdir -p "$home/.local/lib/wireshark/plugins/4.0/epan"
cp "$plugin" "$home/.local/lib/wireshark/plugins/4.0/epan/"
for s in $scales; do cp "$work/bench-x$s.pcap" "$home/"; done
chmod -R a+rX "$home"
if [ "$(id -u)" -eq 0 ]; then
    ts="setpriv --reuid=65534 --regid=65534 --clear-groups env -i HOME=$home PATH=/usr/bin:/bin LC_ALL=C tshark"
else
    ts="env -i HOME=$home PATH=/usr/bin:/bin LC_ALL=C tshark"
fi
off="--disable-protocol smtp-over-http"
$ts -G plugins | grep -q '^smtp-over-http.so' || { echo "bench: tshark did not load the plugin" >&2; exit 1; }

fields="-e frame.number -e smtp-over-http.leg -e smtp-over-http.tunnel.stream -e smtp-over-http.relay.stream \
-e smtp-over-http.target.host -e smtp-over-http.status -e smtp-over-http.pairing -e smtp-over-http.smtp.rcpt_count"
declare -A mode_args=(
    [filter]="-Y smtp-over-http"
    [fields-2pass]="-2 -T fields $fields"
    [detail]="-V"
    [stats]="-q -z smtp-over-http,tree"
    [conv]="-q -z conv,tcp"
)
modes="filter fields-2pass detail stats conv"

median_time() {  # command -> median seconds
    local json
    json=$(mktemp)
    hyperfine -N --style none --warmup 1 --runs "$runs" --export-json "$json" "$1" >/dev/null 2>&1 ||
        hyperfine --style none --warmup 1 --runs "$runs" --export-json "$json" "$1" >/dev/null
    python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["results"][0]["median"])' "$json"
    rm -f "$json"
}
median_rss() {   # command -> median peak RSS in KiB
    local i vals=()
    for ((i = 0; i < runs; i++)); do
        vals+=("$( { /usr/bin/time -f '%M' sh -c "$1 >/dev/null 2>&1"; } 2>&1 | tail -1)")
    done
    printf '%s\n' "${vals[@]}" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'
}
ratio() { python3 -c "print('%.3f' % ($1 / $2))"; }

rows=()
base_scale=${scales%% *}
cap="$home/bench-x$base_scale.pcap"
packets=$(capinfos -c -M "$cap" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')
streams=$($ts -n -r "$cap" -q -z conv,tcp 2>/dev/null | grep -c '<->' || true)
incidents=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["incidents"]))' "$work/bench-x$base_scale.labels.json" 2>/dev/null || echo "?")
for m in $modes; do
    a=${mode_args[$m]}
    on="$ts -n -r $cap $a"
    offc="$ts -n $off -r $cap $a"
    echo "bench: $m" >&2
    t_on=$(median_time "$on"); t_off=$(median_time "$offc")
    m_on=$(median_rss "$on"); m_off=$(median_rss "$offc")
    rows+=("| $m | \`tshark -n -r CAP $a\` | $t_off | $t_on | $(ratio "$t_on" "$t_off") | $m_off | $m_on | $(ratio "$m_on" "$m_off") |")
done

growth=()
first_t=""
for s in $scales; do
    cap="$home/bench-x$s.pcap"
    n=$(capinfos -c -M "$cap" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')
    echo "bench: growth x$s" >&2
    t_on=$(median_time "$ts -n -r $cap -Y smtp-over-http")
    t_off=$(median_time "$ts -n $off -r $cap -Y smtp-over-http")
    m_on=$(median_rss "$ts -n -r $cap -Y smtp-over-http")
    m_off=$(median_rss "$ts -n $off -r $cap -Y smtp-over-http")
    [ -n "$first_t" ] || first_t=$t_on
    growth+=("| ${s}x | $n | $t_off | $t_on | $(ratio "$t_on" "$first_t") | $(ratio "$t_on" "$t_off") | $m_off | $m_on | $((m_on - m_off)) |")
done

{
    echo "# Benchmark results"
    echo
    echo "Generated by \`bench/run.sh\` (do not edit by hand): tshark with the plugin enabled"
    echo "against the same tshark with \`--disable-protocol smtp-over-http\`, measured in the"
    echo "same run. Times are medians of $runs hyperfine runs after a warm-up; memory is the"
    echo "median peak resident set size (GNU time) of $runs runs."
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
    echo
    echo "## Overhead by mode (${base_scale}x capture)"
    echo
    echo "| mode | command | disabled (s) | enabled (s) | time ratio | disabled (KiB) | enabled (KiB) | memory ratio |"
    echo "|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "## Growth (filter mode)"
    echo
    echo "| capture | packets | disabled (s) | enabled (s) | time vs 1x | time ratio | disabled (KiB) | enabled (KiB) | plugin memory (KiB) |"
    echo "|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${growth[@]}"
} > "$out"
echo "bench: wrote $out" >&2
