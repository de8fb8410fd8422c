#!/bin/bash
# Regenerate every lab capture in captures/ (run as root on Debian 12).
#   sudo captures/lab/make-captures.sh            # all scenarios
#   sudo captures/lab/make-captures.sh CASE ...   # only the named cases
# Builds network namespaces named soh-*, runs real proxies, MTAs and clients
# in them, captures with tcpdump, tears everything down, then writes
# captures/<case>.pcap, .labels.json and .md and checks the labels with tshark.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "make-captures.sh: must run as root (network namespaces)" >&2
    exit 1
fi

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PACKAGES="tinyproxy squid postfix swaks socat dnsmasq-base microsocks dante-server
ncat netcat-openbsd tcpdump tshark tcpreplay curl openssl python3 iproute2
proxychains4 openssh-client openssh-server stunnel4"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $missing
fi

# The packages start system services on install; the lab never uses them
# (it runs its own instances inside namespaces), but they must not hold the
# ports or the pid files.  Stop them only if they run.
for svc in tinyproxy squid postfix danted; do
    if systemctl is-active --quiet "$svc" 2>/dev/null; then
        systemctl stop "$svc" || true
    fi
done

WORK=$(mktemp -d -t soh-lab.XXXXXX)
chmod 0755 "$WORK"
export SOH_LAB_WORK="$WORK"

cleanup() {
    rc=$?
    if [ "$rc" != 0 ] && [ -f "$WORK/log/clients.log" ]; then
        echo "---- last client commands (lab failed, rc $rc) ----" >&2
        tail -n 60 "$WORK/log/clients.log" >&2
    fi
    # Kill whatever the lab started (pids recorded by lab.py), then any
    # process left inside the lab's own namespaces, then the namespaces.
    if [ -f "$WORK/pids" ]; then
        while read -r pid; do
            [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
        done < "$WORK/pids"
    fi
    for ns in soh-r soh-a soh-p soh-q soh-s; do
        if ip netns list | grep -qw "$ns"; then
            for pid in $(ip netns pids "$ns" 2>/dev/null); do
                kill -9 "$pid" 2>/dev/null || true
            done
            ip netns del "$ns" 2>/dev/null || true
        fi
        rm -rf "/etc/netns/$ns"
    done
    rmdir /etc/netns 2>/dev/null || true
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT INT TERM

timeout 900 /usr/bin/python3 "$LAB_DIR/lab.py" "$@"
