#!/bin/bash
# Speed of soh-report on archives: a folder of 1,000 small files (a ring-buffer
# set cut from the benchmark capture) and one large file, against bare
# `tshark -2 -n -r F -Y smtp-over-http` on the same files with the same number
# of processes.  Writes the section between the "archive" markers at the end
# of bench/RESULTS.md (and nothing else in that file).
#
#   bench/archive.sh [--capture FILE] [--plugin FILE] [--report FILE] [-j N] [--no-write]
#
# --capture: the large file (default: a benchmark capture made with
#   captures/lab/make-bench-capture.sh DIR 1 in a temporary folder);
# --plugin: smtp-over-http.so (default build/plugin/epan/smtp-over-http.so);
# --report: soh-report (default tools/soh-report of the source tree).
# Every figure is one run (wall-clock seconds).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
CAP= PLUGIN=$here/build/plugin/epan/smtp-over-http.so REPORT=$here/tools/soh-report
JOBS=$(nproc) WRITE=1
while [ $# -gt 0 ]; do
    case $1 in
        --capture) CAP=$2; shift 2 ;;
        --plugin) PLUGIN=$2; shift 2 ;;
        --report) REPORT=$2; shift 2 ;;
        -j) JOBS=$2; shift 2 ;;
        --no-write) WRITE=0; shift ;;
        *) echo "usage: $0 [--capture FILE] [--plugin FILE] [--report FILE] [-j N] [--no-write]" >&2
           exit 2 ;;
    esac
done
[ -f "$PLUGIN" ] || { echo "archive.sh: no plugin $PLUGIN (build it or give --plugin)" >&2; exit 2; }

work=$(mktemp -d /tmp/soh-archive.XXXXXX)
chmod 755 "$work"       # tshark may run as uid 65534 (see below)
trap 'rm -rf "$work"' EXIT
if [ -z "$CAP" ]; then
    "$here/captures/lab/make-bench-capture.sh" "$work/gen" 1 >/dev/null
    CAP=$(ls "$work"/gen/*.pcap | head -1)
fi

# Bare tshark with the plugin under test: a personal plugin folder, and as
# root another user (Wireshark ignores personal plugins when run by root).
home=$work/home
mkdir -p "$home"
pdir=$(env -i HOME="$home" PATH=/usr/bin:/bin tshark -G folders 2>/dev/null |
       awk -F'\t' '/^Personal Plugins/ {sub(/^[ :]*/, "", $2); print $2}')
[ -n "$pdir" ] || { echo "archive.sh: tshark -G folders names no personal plugin folder" >&2; exit 2; }
mkdir -p "$pdir/epan"
cp "$PLUGIN" "$pdir/epan/"
chmod -R a+rX "$home"
tshark_as() {
    if [ "$(id -u)" = 0 ]; then
        setpriv --reuid=65534 --regid=65534 --clear-groups env -i HOME="$home" PATH=/usr/bin:/bin tshark "$@"
    else
        env -i HOME="$home" PATH=/usr/bin:/bin tshark "$@"
    fi
}
export -f tshark_as
export home

big=$work/large.pcap
editcap -F pcap "$CAP" "$big"       # a readable copy of the large file
mkdir "$work/small"
pk=$(capinfos -T -r -c "$big" | cut -f2)
per=$(( (pk + 999) / 1000 ))
editcap -c "$per" "$big" "$work/small/ring.pcap"
nfiles=$(ls "$work/small" | wc -l)
chmod -R a+rX "$work"

secs() {   # secs OUT CMD...: wall-clock seconds of CMD, its output in OUT
    local t0 t1 out=$1
    shift
    t0=$(date +%s.%N)
    "$@" >"$out" 2>/dev/null || true     # soh-report exits 1 when it finds incidents
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}
bare_files() {   # one bare tshark per file, JOBS at a time
    ls "$work"/small/* | xargs -P "$JOBS" -I{} bash -c 'tshark_as -2 -n -r "$1" -Y smtp-over-http' _ {}
}
report() { python3 "$REPORT" --plugin "$PLUGIN" --no-progress -j "$JOBS" -o jsonl "$@"; }

tshark_as -v >/dev/null || { echo "archive.sh: tshark does not run" >&2; exit 2; }
o=$work/out
t_bare_small=$(secs $o bare_files)
t_rep_small=$(secs $o.small report "$work/small")
t_rep_nostitch=$(secs $o.nostitch report --no-stitch "$work/small")
t_bare_big=$(secs $o tshark_as -2 -n -r "$big" -Y smtp-over-http)
t_rep_big=$(secs $o.big report "$big")
incs_small=$(wc -l < $o.small)
incs_nostitch=$(wc -l < $o.nostitch)
incs_big=$(wc -l < $o.big)

rate() { awk -v p="$pk" -v t="$1" 'BEGIN { printf "%.0f", p / t }'; }
core() { awk -v p="$pk" -v t="$1" -v j="$2" 'BEGIN { printf "%.0f", p / t / j }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
host="$(nproc) cores, Wireshark $(tshark -v 2>/dev/null | head -1 | sed -n 's/^TShark (Wireshark) \([^ ]*\).*/\1/p')"

section=$(cat <<EOF
<!-- archive: begin -->
## Archives: soh-report on many files (bench/archive.sh)

$host; $pk packets of the benchmark capture, as one large file and as a
ring-buffer set of $nfiles files of $per packets (\`editcap -c $per\`). Every
figure is one run (other work on the host adds noise); *bare* is \`tshark -2 -n -r F -Y smtp-over-http\` on every file,
$JOBS at a time (\`xargs -P $JOBS\`); soh-report runs with \`-j $JOBS\` and \`-o jsonl\`.

| input | command | seconds | packets/s | packets/s per core | vs bare | incidents |
|---|---|---|---|---|---|---|
| $nfiles files | bare tshark per file | $t_bare_small | $(rate $t_bare_small) | $(core $t_bare_small $JOBS) | 1.00 | |
| $nfiles files | soh-report (set stitched) | $t_rep_small | $(rate $t_rep_small) | $(core $t_rep_small $JOBS) | $(ratio $t_rep_small $t_bare_small) | $incs_small |
| $nfiles files | soh-report --no-stitch | $t_rep_nostitch | $(rate $t_rep_nostitch) | $(core $t_rep_nostitch $JOBS) | $(ratio $t_rep_nostitch $t_bare_small) | $incs_nostitch |
| 1 file | bare tshark | $t_bare_big | $(rate $t_bare_big) | $(rate $t_bare_big) | 1.00 | |
| 1 file | soh-report | $t_rep_big | $(rate $t_rep_big) | $(rate $t_rep_big) | $(ratio $t_rep_big $t_bare_big) | $incs_big |

The stitched set reports the incidents of the large file ($incs_small and
$incs_big); \`--no-stitch\` reports $incs_nostitch (an incident crossing a
file boundary is lost or cut in two).

What limits the speed: tshark's dissection, in one process per file or
window, and on small files the start of every tshark process (loading
Wireshark's dissectors and the plugin), which costs about as much as
dissecting a few thousand packets. Bare tshark and \`--no-stitch\` start one
per file; a stitched set starts one per window of up to 100,000 packets (plus
a rerun whenever a window has to grow) and reads the packets of each window's
margins (2,000 on each side, more while a leg crosses them) twice, plus
\`editcap\`/\`mergecap\` to build the window. A single large file uses one core:
tshark's two passes over one file cannot be split without cutting it
(\`editcap -c\`, after which soh-report stitches the pieces back). The rest of
the difference to bare tshark is soh-report's own work: \`capinfos\` over every
file, and tshark writing some 45 fields of every marked frame as \`-T ek\`
JSON that soh-report parses in Python, which on the large file costs more
than the dissection itself.
<!-- archive: end -->
EOF
)
echo "$section"
if [ "$WRITE" = 1 ]; then
    f=$here/bench/RESULTS.md
    python3 - "$f" "$section" <<'PY'
import sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read()
b, e = "<!-- archive: begin -->", "<!-- archive: end -->"
if b in text and e in text:
    text = text[:text.index(b)] + section + text[text.index(e) + len(e):]
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
if not text.endswith("\n"):
    text += "\n"
open(path, "w").write(text)
PY
fi
