#!/bin/bash
# Damages the lab captures and runs tshark with an ASan+UBSan build of the
# plugin over each damaged copy, in bounded iterations.
#
#   scripts/mutate-captures.sh [ITERATIONS]      # default 100
#
# Iteration i takes capture (i mod count) and one of six damages, seeded by i
# (so a failure is reproducible from its number):
#   editcap -E (random byte errors, headers included), editcap -E -o 54
#   (errors past the TCP header), editcap -s (snaplen truncation), and
#   tests/robustness/pcap_mutate.py: duplicated and reordered records;
#   dropped records, flipped payload bytes and timestamps gone backwards;
#   all of those plus shortened records and a file cut mid-record.
# Then: tshark -n -2 -V -z expert -z smtp-over-http,tree, as uid 65534 with a
# temporary HOME when run as root (Wireshark ignores personal plugins for
# root), the sanitizer runtime preloaded (tshark itself is not instrumented)
# and an empty extcap folder (the extcap helpers hang under a preloaded ASan).
# Any sanitizer report, crash (signal) or hang (MUTATE_TIMEOUT, default 60 s)
# fails the run; the damaged capture and tshark's stderr are kept in
# MUTATE_BUILD_DIR/mutate-failures/. A capture that tshark reports as cut
# short or malformed is not a failure.
#
# Environment: MUTATE_BUILD_DIR (default build-mutate), MUTATE_TIMEOUT,
# MUTATE_FIRST (first iteration number, default 1), MUTATE_PLUGIN (use this
# already-built sanitized plugin instead of building one).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/personal-plugins.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

iters=${1:-100}
build=${MUTATE_BUILD_DIR:-build-mutate}
per_run=${MUTATE_TIMEOUT:-60}
first=${MUTATE_FIRST:-1}

for tool in tshark editcap python3 cmake; do
    command -v "$tool" >/dev/null 2>&1 || { echo "mutate-captures.sh: $tool not found" >&2; exit 2; }
done

plugin=${MUTATE_PLUGIN:-}
if [ -z "$plugin" ]; then
    cmake -S . -B "$build" -DSOH_SANITIZE=ON -DSOH_BUILD_PLUGIN=ON -DSOH_BUILD_TESTS=OFF \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$build" --target smtp-over-http -j"${MUTATE_BUILD_JOBS:-2}" >/dev/null
    plugin=$(find "$build/plugin/epan" -name 'smtp-over-http.so' | head -1)
fi
[ -f "$plugin" ] || { echo "mutate-captures.sh: plugin not built" >&2; exit 2; }

# The sanitizer runtime the plugin was linked against must be loaded first.
asan_rt=$(ldd "$plugin" | awk '/libasan\.so|libclang_rt\.asan/ {print $3; exit}')
if [ -z "$asan_rt" ] && command -v clang >/dev/null 2>&1; then
    asan_rt=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
fi
[ -f "$asan_rt" ] || { echo "mutate-captures.sh: no ASan runtime for $plugin (build with -DSOH_SANITIZE=ON)" >&2; exit 2; }

# A world-readable temporary HOME with the plugin as a personal plugin.
home=$(mktemp -d "${TMPDIR:-/tmp}/soh-mutate-XXXXXX")
trap 'rm -rf "$home"' EXIT
chmod 755 "$home"
pdir=$(personal_plugin_dir "$home")
mkdir -p "$pdir" "$home/run" "$home/extcap"
cp "$plugin" "$pdir/smtp-over-http.so"
chmod -R a+rX "$home"
chmod 777 "$home/run"

run_tshark() {  # run_tshark STDOUT_FILE STDERR_FILE ARGS...: tshark's exit code
    local outf=$1 errf=$2
    shift 2
    local cmd=(env -i "HOME=$home" PATH=/usr/local/bin:/usr/bin:/bin LC_ALL=C
        "WIRESHARK_EXTCAP_DIR=$home/extcap" "LD_PRELOAD=$asan_rt"
        "ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:exitcode=86:abort_on_error=0"
        "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
        tshark "$@")
    if [ "$(id -u)" -eq 0 ]; then
        cmd=(setpriv --reuid=65534 --regid=65534 --clear-groups "${cmd[@]}")
    fi
    local rc=0
    (cd "$home" && timeout -k 5 "$per_run" "${cmd[@]}") >"$outf" 2>"$errf" || rc=$?
    return $rc
}

# The plugin must really be loaded under the preloaded runtime.
if ! run_tshark "$home/plugins.out" "$home/plugins.err" -G plugins ||
    ! grep -q "$pdir/smtp-over-http.so" "$home/plugins.out"; then
    echo "mutate-captures.sh: tshark did not load the sanitized plugin" >&2
    cat "$home/plugins.err" >&2
    exit 1
fi

mapfile -t caps < <(ls captures/*.pcap)
[ ${#caps[@]} -gt 0 ] || { echo "mutate-captures.sh: no captures" >&2; exit 2; }
faildir="$build/mutate-failures"
mkdir -p "$faildir"

fails=0
runs=0
kinds=(editcap-E editcap-E-payload editcap-s dup+reorder drop+flip+time all+cut)
declare -A per_kind=()
last=$((first + iters - 1))
for ((i = first; i <= last; i++)); do
    cap=${caps[$(( (i - 1) % ${#caps[@]} ))]}
    # Every kind within any 6 iterations; every (capture, kind) pair within 6 x captures.
    kind=${kinds[$(( ((i - 1) + (i - 1) / ${#caps[@]}) % ${#kinds[@]} ))]}
    out="$home/run/m$i.pcap"
    case $kind in
        editcap-E) editcap -E 0.002 --seed "$i" "$cap" "$out" 2>/dev/null ;;
        editcap-E-payload) editcap -E 0.02 -o 54 --seed "$i" "$cap" "$out" 2>/dev/null ;;
        editcap-s) editcap -s $((40 + (i * 37) % 200)) "$cap" "$out" 2>/dev/null ;;
        dup+reorder) python3 tests/robustness/pcap_mutate.py "$cap" "$out" --seed "$i" --ops dup,reorder ;;
        drop+flip+time) python3 tests/robustness/pcap_mutate.py "$cap" "$out" --seed "$i" --ops drop,flip,time ;;
        all+cut) python3 tests/robustness/pcap_mutate.py "$cap" "$out" --seed "$i" \
                     --ops dup,reorder,drop,flip,time,shorten,cut ;;
    esac
    chmod 644 "$out"
    err="$home/run/m$i.err"
    rc=0
    run_tshark /dev/null "$err" -n -2 -V -z expert -z smtp-over-http,tree -r "$out" || rc=$?
    runs=$((runs + 1))
    per_kind[$kind]=$(( ${per_kind[$kind]:-0} + 1 ))
    why=""
    if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$err"; then
        why="sanitizer report"
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        why="hang (over ${per_run}s)"
    elif [ "$rc" -ge 128 ] || [ "$rc" -eq 86 ]; then
        why="crash (exit $rc)"
    fi
    if [ -n "$why" ]; then
        fails=$((fails + 1))
        base="$faildir/iter$i-$(basename "$cap" .pcap)-$kind"
        cp "$out" "$base.pcap"
        cp "$err" "$base.stderr"
        inplugin=""
        grep -q 'smtp-over-http' "$err" && inplugin=" (plugin frames in the report)"
        echo "FAIL iteration $i: $(basename "$cap") $kind: $why$inplugin -> $base.pcap"
        grep -m3 -E 'ERROR|runtime error|#[0-4] ' "$err" | sed 's/^/    /' || true
    fi
    rm -f "$out" "$err"
done

echo
echo "== mutate-captures: $runs damaged captures run (iterations $first..$last), $fails failed"
for k in "${kinds[@]}"; do
    [ -n "${per_kind[$k]:-}" ] && printf '   %-18s %d\n' "$k" "${per_kind[$k]}"
done
[ "$fails" -eq 0 ] || exit 1
echo "mutate-captures.sh: no crash, no sanitizer report, no hang"
