#!/bin/bash
# Writes the adversarial captures (tests/robustness/make_adversarial.py:
# hand-made transcripts) into OUTDIR and measures tshark on each, with the
# plugin enabled and with --disable-protocol smtp-over-http: peak RSS and
# wall time (/usr/bin/time -v), and the plugin's cap notes
# (smtp-over-http.table_full, smtp-over-http.evicted) from -z expert.
#
#   scripts/adversarial-captures.sh OUTDIR
#
# Environment:
#   ADV_CONNECTS   CONNECT-flood sizes (default 250000,500000,1000000: linear time)
#   ADV_LONG_MB    request-line size in MB (default 10)
#   ADV_ENDLESS_MB endless SMTP line in MB (default 20)
#   ADV_TUNNELS    concurrent tunnels to one target (default 5000)
#   ADV_GARBAGE    tunnels with garbage after 200 (default 1000)
#   ADV_PASSES     1 (default: the analysis pass) or 2 (tshark -2)
#   ADV_PLUGIN     plugin to measure (default: built in build-adv/)
#   ADV_TIMEOUT    seconds per tshark run (default 1800)
# Results go to stdout and OUTDIR/results.tsv. Needs about 400 MB of disk
# for the default sizes.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/personal-plugins.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[ $# -ge 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
outdir=$1
mkdir -p "$outdir"
connects=${ADV_CONNECTS:-250000,500000,1000000}
passes=${ADV_PASSES:-1}
limit=${ADV_TIMEOUT:-1800}

for tool in tshark python3 cmake; do
    command -v "$tool" >/dev/null 2>&1 || { echo "adversarial-captures.sh: $tool not found" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "adversarial-captures.sh: /usr/bin/time not found (apt-get install time)" >&2; exit 2; }

plugin=${ADV_PLUGIN:-}
if [ -z "$plugin" ]; then
    cmake -S . -B build-adv -DSOH_BUILD_PLUGIN=ON -DSOH_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build build-adv --target smtp-over-http -j"${ADV_BUILD_JOBS:-2}" >/dev/null
    plugin=$(find build-adv/plugin/epan -name 'smtp-over-http.so' | head -1)
fi
[ -f "$plugin" ] || { echo "adversarial-captures.sh: plugin not found" >&2; exit 2; }

python3 tests/robustness/make_adversarial.py "$outdir" --connects "$connects" \
    --long-line "${ADV_LONG_MB:-10}" --endless-line "${ADV_ENDLESS_MB:-20}" \
    --tunnels "${ADV_TUNNELS:-5000}" --garbage "${ADV_GARBAGE:-1000}"

# A world-readable temporary HOME with the plugin (root: tshark runs as 65534).
home=$(mktemp -d "${TMPDIR:-/tmp}/soh-adv-XXXXXX")
trap 'rm -rf "$home"' EXIT
chmod 755 "$home"
pdir=$(personal_plugin_dir "$home")
mkdir -p "$pdir" "$home/caps" "$home/extcap"
cp "$plugin" "$pdir/smtp-over-http.so"
chmod -R a+rX "$home"
chmod 777 "$home/caps"

measure() {  # measure CAPTURE on|off: prints "rss_kb seconds table_full evicted"
    local cap=$1 mode=$2 extra=()
    [ "$mode" = off ] && extra=(--disable-protocol smtp-over-http)
    [ "$passes" = 2 ] && extra+=(-2)
    local cmd=(env -i "HOME=$home" PATH=/usr/local/bin:/usr/bin:/bin LC_ALL=C
        "WIRESHARK_EXTCAP_DIR=$home/extcap"
        /usr/bin/time -v -o "$home/caps/time.txt" tshark -n -q -r "$cap" "${extra[@]}" -z expert,note)
    [ "$(id -u)" -eq 0 ] && cmd=(setpriv --reuid=65534 --regid=65534 --clear-groups "${cmd[@]}")
    (cd "$home" && timeout "$limit" "${cmd[@]}") >"$home/expert.txt" 2>"$home/err.txt" || {
        echo "adversarial-captures.sh: tshark failed on $cap ($mode)" >&2
        cat "$home/err.txt" >&2
        return 1
    }
    local rss secs full evicted
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$home/caps/time.txt")
    secs=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): *//p' "$home/caps/time.txt" |
        awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.1f", s }')
    # -z expert lines: "   <count>   <group>   smtp-over-http   <summary>"
    full=$(awk '/flow table full/ { n += $1 } END { print n + 0 }' "$home/expert.txt")
    evicted=$(awk '/evicted to respect the memory cap/ { n += $1 } END { print n + 0 }' "$home/expert.txt")
    echo "$rss $secs $full $evicted"
}

results="$outdir/results.tsv"
printf 'capture\tpackets\tplugin_rss_mb\tplugin_s\tdisabled_rss_mb\tdisabled_s\ttable_full\tevicted\n' >"$results"
printf '\n%-28s %9s  %10s %8s  %10s %8s  %10s %8s\n' capture packets "plugin MB" "s" "off MB" "s" table_full evicted
for cap in "$outdir"/connect_flood_*.pcap "$outdir"/long_request_line.pcap "$outdir"/endless_smtp_line.pcap \
           "$outdir"/concurrent_tunnels.pcap "$outdir"/garbage_after_200.pcap; do
    [ -f "$cap" ] || continue
    staged="$home/caps/$(basename "$cap")"
    ln -f "$cap" "$staged" 2>/dev/null || cp "$cap" "$staged"
    chmod 644 "$staged"
    packets=$(capinfos -c -M "$staged" 2>/dev/null | awk -F: '/Number of packets/ { gsub(/ /, "", $2); print $2 }')
    read -r on_rss on_s full evicted < <(measure "$staged" on)
    read -r off_rss off_s _ _ < <(measure "$staged" off)
    printf '%-28s %9s  %10.1f %8s  %10.1f %8s  %10s %8s\n' "$(basename "$cap")" "$packets" \
        "$(echo "$on_rss / 1024" | bc -l)" "$on_s" "$(echo "$off_rss / 1024" | bc -l)" "$off_s" "$full" "$evicted"
    printf '%s\t%s\t%.1f\t%s\t%.1f\t%s\t%s\t%s\n' "$(basename "$cap")" "$packets" \
        "$(echo "$on_rss / 1024" | bc -l)" "$on_s" "$(echo "$off_rss / 1024" | bc -l)" "$off_s" \
        "$full" "$evicted" >>"$results"
    rm -f "$staged"
done
echo
echo "adversarial-captures.sh: results in $results"
