#!/bin/bash
# The floor under the cost per incident frame: instruction counts of a build
# that follows every connection as the plugin does (the per-segment glue,
# the stream table, reassembly, classification of requests and relay legs)
# but reads no tunnelled or relayed byte as SMTP, so no line is split,
# parsed, stamped or compared (bench/floor.patch). What that build costs
# cannot be cut by making SMTP parsing or pairing cheaper. A build for
# measuring only: it finds no envelope and pairs nothing by content.
# Writes bench/FLOOR-incidents.md (see bench/README.md, *The floor*).
#
#   bench/floor.sh [-n PACKETS] [-d CAPTURE_DIR]
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
args=()
while getopts "n:d:" opt; do
    case $opt in
        n|d) args+=("-$opt" "$OPTARG") ;;
        *) sed -n '2,11p' "$0"; exit 2 ;;
    esac
done
for tool in git patch cmake; do
    command -v "$tool" >/dev/null || { echo "floor: $tool is needed" >&2; exit 2; }
done
src=$(mktemp -d /tmp/soh-floor.XXXXXX)
trap 'rm -rf "$src"' EXIT
# The committed tree, so that the build measured is HEAD's plus the patch.
git -C "$top" archive HEAD | tar -x -C "$src"
patch -s -p1 -d "$src" < "$top/bench/floor.patch"
timeout 600 cmake -S "$src" -B "$src/build" >/dev/null
timeout 3600 cmake --build "$src/build" -j"$(nproc)" --target smtp-over-http >/dev/null
"$top/bench/instructions.sh" -c incidents "${args[@]}" -m "filter-count stats conv" \
    -p "$src/build/plugin/epan/smtp-over-http.so" -t "floor build (bench/floor.patch: no byte read as SMTP)" \
    -o "$top/bench/FLOOR-incidents.md"
