#!/bin/bash
# Build a large benchmark capture from the committed lab captures.
#   captures/lab/make-bench-capture.sh OUTDIR [SCALE [ENCAP]]
# SCALE (1, 2, 4, ...) multiplies copies and time span.  ENCAP (e.g. vxlan,
# any variant of tests/captures/encapsulate.py) also writes
# bench-xSCALE-ENCAP.pcap: the same packets, re-encapsulated.  Needs python3
# and, for the final count check, tshark.  No root needed.  Never write into
# the repository: OUTDIR must be elsewhere.
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: $0 OUTDIR [SCALE]" >&2
    exit 2
fi
OUTDIR=$1
SCALE=${2:-1}
ENCAP=${3:-}
LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB_DIR/../.." && pwd)
mkdir -p "$OUTDIR"
case "$(cd "$OUTDIR" && pwd)/" in
    "$REPO"/*) echo "make-bench-capture.sh: OUTDIR must be outside the repository" >&2; exit 2 ;;
esac
[ -f "$OUTDIR/bench-x$SCALE.pcap" ] && [ -n "$ENCAP" ] || timeout 1800 python3 "$LAB_DIR/bench.py" "$OUTDIR" "$SCALE"
if [ -n "$ENCAP" ]; then
    tmp=$(mktemp -d "$OUTDIR/encap.XXXXXX")
    timeout 1800 python3 "$REPO/tests/captures/encapsulate.py" "$OUTDIR/bench-x$SCALE.pcap" "$tmp" "$ENCAP" >/dev/null
    mv "$tmp/$ENCAP.pcap" "$OUTDIR/bench-x$SCALE-$ENCAP.pcap"
    rmdir "$tmp"
fi
if [ "${SOH_BENCH_NOCHECK:-}" != 1 ] && command -v tshark >/dev/null; then
    OUT="$OUTDIR/bench-x$SCALE${ENCAP:+-$ENCAP}.pcap"
    want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tcp_streams"])' "$OUTDIR/bench-x$SCALE.labels.json")
    got=$(timeout 1800 tshark -n -r "$OUT" -q -z conv,tcp 2>/dev/null | grep -c '<->' || true)
    echo "tshark: $got TCP conversations (expected $want)"
    if [ "$got" != "$want" ]; then
        echo "make-bench-capture.sh: stream count mismatch" >&2
        exit 1
    fi
fi
