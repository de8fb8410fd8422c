# Shared by the bench/ scripts (sourced, not run).
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/personal-plugins.sh"

# A temporary, world-readable home holding the plugin as a personal plugin,
# removed at exit (each call makes another). Sets $home, and $as_user: the
# prefix that runs a program with that HOME, as uid/gid 65534 when run as
# root (Wireshark ignores personal plugins for root).
# Usage: bench_home PLUGIN PREFIX
bench_homes=()
bench_home() {
    home=$(mktemp -d "/tmp/$2.XXXXXX")
    bench_homes+=("$home")
    trap 'rm -rf "${bench_homes[@]}"' EXIT
    local pdir
    pdir=$(personal_plugin_dir "$home") || exit 1
    mkdir -p "$pdir"
    cp "$1" "$pdir/smtp-over-http.so"
    chmod -R a+rwX "$home"
    if [ "$(id -u)" -eq 0 ]; then
        as_user="setpriv --reuid=65534 --regid=65534 --clear-groups env -i HOME=$home PATH=/usr/bin:/bin LC_ALL=C"
    else
        as_user="env -i HOME=$home PATH=/usr/bin:/bin LC_ALL=C"
    fi
}

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

# Runs two commands in alternating order, $runs times each after one warm-up
# of each, so that drift in the machine's speed falls on both alike. Sets
# T_ON T_OFF (median s of the first and second command), M_ON M_OFF (median
# KiB), PAIRED (median of the per-round time ratios first/second) and
# SPREAD (half-width of the 95% confidence interval of their mean, Student's
# t: how far apart two ratios must be before the difference means anything
# on this machine).
measure_pair() {
    local on=$1 off=$2 i ta tb ma mb ton=() toff=() mon=() moff=()
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
    done
    summarise_pair
}
# Sets what measure_pair sets from the arrays ton toff mon moff of its caller.
summarise_pair() {
    local i ratios=()
    for ((i = 0; i < ${#ton[@]}; i++)); do ratios+=("$(python3 -c "print(${ton[i]} / ${toff[i]})")"); done
    T_ON=$(median "${ton[@]}") T_OFF=$(median "${toff[@]}")
    M_ON=$(median "${mon[@]}") M_OFF=$(median "${moff[@]}")
    PAIRED=$(python3 -c "print('%.3f' % $(median "${ratios[@]}"))")
    SPREAD=$(python3 -c "$spread_py" "${ratios[@]}")
}
# Same as measure_pair, but the two commands of a round run at once and take
# turns on one CPU (bench/interleave.py): times are CPU seconds, memory the
# peak resident set size wait4 reports. For a machine whose speed changes
# from second to second, where measure_pair's ratios scatter by several
# percent.
measure_interleaved() {
    local out ta tb ma mb ton=() toff=() mon=() moff=()
    out=$(python3 "$top/bench/interleave.py" -n "$runs" "$1" "$2") || exit 1
    while read -r ta ma tb mb; do
        ton+=("$ta") toff+=("$tb") mon+=("$ma") moff+=("$mb")
    done <<<"$out"
    summarise_pair
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

off="--disable-protocol smtp-over-http"

# The ways analysts run tshark, compared with the plugin enabled and disabled.
fields="-e frame.number -e smtp-over-http.leg -e smtp-over-http.tunnel.stream -e smtp-over-http.relay.stream \
-e smtp-over-http.target.host -e smtp-over-http.status -e smtp-over-http.pairing -e smtp-over-http.smtp.rcpt_count"
# filter-count applies the same filter without printing the frames it keeps:
# the disabled run keeps none, so the difference between the two filter rows
# is the cost of printing what the plugin found, not of finding it.
modes="filter filter-count fields-2pass detail stats conv"
declare -A mode_args=(
    [filter]="-Y smtp-over-http"
    [filter-count]="-q -Y smtp-over-http"
    [fields-2pass]="-2 -T fields $fields"
    [detail]="-V"
    [stats]="-q -z smtp-over-http,tree"
    [conv]="-q -z conv,tcp"
)
