#!/bin/bash
# Build a large benchmark capture from the committed lab captures.
#   captures/lab/make-bench-capture.sh OUTDIR [SCALE [ENCAP]] [--mix incidents]
# SCALE (1, 2, 4, ...) multiplies copies and time span.  ENCAP (e.g. vxlan,
# any variant of tests/captures/encapsulate.py) also writes
# bench-xSCALE-ENCAP.pcap: the same packets, re-encapsulated.  --mix
# incidents writes the incident-heavy capture bench-incidents-xSCALE.pcap
# (about two thirds of its frames in incident legs) instead of the mostly
# benign bench-xSCALE.pcap, and ends by printing its packets, the frames in
# incident legs (number and share, counted with tshark) and its incidents.
# Needs python3 and, for the final checks, tshark.  No root needed.  Never
# write into the repository: OUTDIR must be elsewhere.
set -euo pipefail
MIX=benign
args=()
while [ $# -gt 0 ]; do
    case $1 in
        --mix) [ $# -ge 2 ] || { echo "make-bench-capture.sh: --mix needs benign or incidents" >&2; exit 2; }
               MIX=$2; shift 2 ;;
        --mix=*) MIX=${1#--mix=}; shift ;;
        *) args+=("$1"); shift ;;
    esac
done
set -- ${args[@]+"${args[@]}"}
if [ $# -lt 1 ]; then
    echo "usage: $0 OUTDIR [SCALE [ENCAP]] [--mix incidents]" >&2
    exit 2
fi
case $MIX in
    benign) NAME_PREFIX=bench ;;
    incidents) NAME_PREFIX=bench-incidents ;;
    *) echo "make-bench-capture.sh: --mix must be benign or incidents" >&2; exit 2 ;;
esac
OUTDIR=$1
SCALE=${2:-1}
ENCAP=${3:-}
NAME=$NAME_PREFIX-x$SCALE
LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB_DIR/../.." && pwd)
mkdir -p "$OUTDIR"
case "$(cd "$OUTDIR" && pwd)/" in
    "$REPO"/*) echo "make-bench-capture.sh: OUTDIR must be outside the repository" >&2; exit 2 ;;
esac
[ -f "$OUTDIR/$NAME.pcap" ] && [ -n "$ENCAP" ] || timeout 1800 python3 "$LAB_DIR/bench.py" "$OUTDIR" "$SCALE" --mix "$MIX"
if [ -n "$ENCAP" ]; then
    tmp=$(mktemp -d "$OUTDIR/encap.XXXXXX")
    timeout 1800 python3 "$REPO/tests/captures/encapsulate.py" "$OUTDIR/$NAME.pcap" "$tmp" "$ENCAP" >/dev/null
    mv "$tmp/$ENCAP.pcap" "$OUTDIR/$NAME-$ENCAP.pcap"
    rmdir "$tmp"
fi
if [ "${SOH_BENCH_NOCHECK:-}" != 1 ] && command -v tshark >/dev/null; then
    if [ "$MIX" = incidents ]; then
        # one tshark pass: stream count check, frames in incident legs
        timeout 1800 python3 "$LAB_DIR/bench.py" --share "$OUTDIR/$NAME.labels.json" || {
            echo "make-bench-capture.sh: check failed" >&2; exit 1; }
        [ -n "$ENCAP" ] || exit 0
    fi
    OUT="$OUTDIR/$NAME${ENCAP:+-$ENCAP}.pcap"
    want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tcp_streams"])' "$OUTDIR/$NAME.labels.json")
    got=$(timeout 1800 tshark -n -r "$OUT" -q -z conv,tcp 2>/dev/null | grep -c '<->' || true)
    echo "tshark: $got TCP conversations (expected $want)"
    if [ "$got" != "$want" ]; then
        echo "make-bench-capture.sh: stream count mismatch" >&2
        exit 1
    fi
fi
