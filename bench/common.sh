# Shared by bench/run.sh and bench/instructions.sh (sourced, not run).

# A temporary, world-readable home holding the plugin as a personal plugin,
# removed at exit. Sets $home, and $as_user: the prefix that runs a program
# with that HOME, as uid/gid 65534 when run as root (Wireshark ignores
# personal plugins for root). Usage: bench_home PLUGIN PREFIX
bench_home() {
    home=$(mktemp -d "/tmp/$2.XXXXXX")
    trap 'rm -rf "$home"' EXIT
    mkdir -p "$home/.local/lib/wireshark/plugins/4.0/epan"
    cp "$1" "$home/.local/lib/wireshark/plugins/4.0/epan/"
    chmod -R a+rwX "$home"
    if [ "$(id -u)" -eq 0 ]; then
        as_user="setpriv --reuid=65534 --regid=65534 --clear-groups env -i HOME=$home PATH=/usr/bin:/bin LC_ALL=C"
    else
        as_user="env -i HOME=$home PATH=/usr/bin:/bin LC_ALL=C"
    fi
}

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
