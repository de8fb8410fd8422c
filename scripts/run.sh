#!/bin/bash
# Main job: build the plugin, install it for Wireshark and tshark (system
# plugin directory as root, ~/.local/lib/wireshark/plugins/<release>/epan
# otherwise), then analyse a capture and print what it found.
#   scripts/run.sh [CAPTURE]     (default: captures/connect_ip_tinyproxy.pcap)
# Installs missing packages first when run as root.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cap=${1:-$top/captures/connect_ip_tinyproxy.pcap}
if [ ! -f "$cap" ]; then
    echo "run.sh: capture $cap not found" >&2
    exit 1
fi
cap=$(cd "$(dirname "$cap")" && pwd)/$(basename "$cap")
cd "$top"

scripts/deps.sh
timeout 600 cmake -S . -B build
timeout 3600 cmake --build build -j"$(nproc 2>/dev/null || echo 2)"
timeout 600 cmake --install build

err=$(mktemp)
trap 'rm -f "$err"' EXIT
ts() {   # tshark as the current user: root reads the system plugin directory,
         # other users their personal one, where the install above put it.
    timeout 300 tshark "$@" 2>"$err" || { cat "$err" >&2; return 1; }
}

loaded=$(ts -G plugins | awk -F'\t' '$1 ~ /^smtp-over-http\.so/ {print $NF}')
if [ -z "$loaded" ]; then
    echo "run.sh: tshark did not load the installed smtp-over-http plugin" >&2
    exit 1
fi
echo "plugin: $loaded"
echo "capture: $cap"
echo

echo "== Suspect flows (one line per leg; frames = frames carrying smtp-over-http)"
ts -n -2 -r "$cap" -Y smtp-over-http -T fields -E separator=/t -E occurrence=a -E aggregator=, \
    -e frame.number -e smtp-over-http.leg -e smtp-over-http.target.host \
    -e smtp-over-http.target.port -e smtp-over-http.status -e smtp-over-http.pairing \
    -e smtp-over-http.relay.stream -e smtp-over-http.smtp.mail_from \
    -e smtp-over-http.smtp.rcpt_count -e tcp.stream |
awk -F'\t' '
    function dash(v) { return v == "" ? "-" : v }
    BEGIN { fmt = "%-7s %-7s %-7s %-8s %-24s %-12s %-10s %-6s %-6s %s\n"
            printf fmt, "stream", "first", "frames", "leg", "target", "status", "pairing",
                   "relay", "rcpts", "mail from" }
    {   key = $10 SUBSEP $2
        if (!(key in n)) { order[++k] = key; line[key] = $0 }
        n[key]++ }
    END { for (i = 1; i <= k; i++) {
              split(line[order[i]], f, "\t")
              printf fmt, f[10], f[1], n[order[i]], f[2], f[3] ":" f[4], dash(f[5]),
                     dash(f[6]), dash(f[7]), dash(f[9]), dash(f[8]) }
          if (k == 0) print "(none: nothing in this capture carries smtp-over-http)" }'
echo

echo "== Expert items on those frames (note and above)"
ts -n -2 -q -r "$cap" -z "expert,note,smtp-over-http"
