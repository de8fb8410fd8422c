#!/bin/bash
# Runs a command of this tree against another Wireshark release, with that
# release's own tshark, headers and compiler, in a Debian chroot that ships it:
#
#   4.0   Debian 12 (bookworm)   4.0.17
#   4.4   Debian 13 (trixie)     4.4.x
#   4.6   Debian unstable (sid)  4.6.x
#
#   scripts/wireshark-env.sh VERSION [--] CMD [ARG...]   run CMD in the tree
#   scripts/wireshark-env.sh VERSION --path              print the chroot
#   scripts/wireshark-env.sh VERSION --remove            delete the chroot
#
# Examples:
#   scripts/wireshark-env.sh 4.6 -- scripts/test.sh
#   scripts/wireshark-env.sh 4.4 -- tshark --version
#
# The chroot is made with mmdebstrap on first use (about 40 s, from the
# Debian mirror the host's apt uses, or SOH_DEBIAN_MIRROR) under
# ${SOH_CHROOTS:-/var/cache/smtp-over-http/chroots}/SUITE and reused after;
# packages added to scripts/deps.sh later are installed into it on the next
# run. The tree appears inside at its own path, so edits on either side are
# the same files. Its build folders (build, build-asan, build-pkg,
# build-fuzz, build-mutate) are the chroot's own: a build for 4.6 never
# overwrites the host's build/, and each is kept for the next run. Mounts
# live in a private mount namespace and vanish with the command.
#
# Needs root (chroot, mount) and the mmdebstrap package (scripts/deps.sh
# installs it on the host when missing). CI runs it as root.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
version=$1; shift
case "$version" in
    4.0) suite=bookworm ;;
    4.4) suite=trixie ;;
    4.6) suite=sid ;;
    -h|--help) usage ;;
    *) echo "wireshark-env.sh: unknown Wireshark version '$version' (4.0, 4.4 or 4.6)" >&2; exit 2 ;;
esac
action=run
case "${1:-}" in
    --path) action=path; shift ;;
    --remove) action=remove; shift ;;
    --) shift ;;
esac
[ "$action" != run ] || [ $# -ge 1 ] || usage

chroots=${SOH_CHROOTS:-/var/cache/smtp-over-http/chroots}
root=$chroots/$suite
if [ "$action" = path ]; then echo "$root"; exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
    echo "wireshark-env.sh: needs root (it makes a chroot and mounts the tree into it)" >&2
    exit 1
fi
if [ "$action" = remove ]; then rm -rf --one-file-system "$root"; echo "removed $root"; exit 0; fi

# The chroot holds the project's own package list, plus what bench/ uses.
mapfile -t packages < <("$top/scripts/deps.sh" --list)
packages+=(valgrind hyperfine time git)

mirror=${SOH_DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 !~ /^\[/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
# sid's Release file on the mirror may be past its Valid-Until date.
aptopts=()
[ "$suite" = sid ] && aptopts=(--aptopt='Acquire::Check-Valid-Until "false"')

mkdir -p "$chroots"
exec 9>"$chroots/$suite.lock"
timeout 900 flock 9   # one creator or updater at a time

stamp=$root/etc/smtp-over-http-env
if [ ! -f "$stamp" ]; then
    if ! command -v mmdebstrap >/dev/null 2>&1; then
        echo "wireshark-env.sh: installing mmdebstrap"
        DEBIAN_FRONTEND=noninteractive timeout 1800 apt-get install -y --no-install-recommends mmdebstrap \
            || { timeout 1800 apt-get update && DEBIAN_FRONTEND=noninteractive timeout 1800 \
                 apt-get install -y --no-install-recommends mmdebstrap; }
    fi
    echo "wireshark-env.sh: making the $suite chroot for Wireshark $version in $root (from $mirror)"
    rm -rf --one-file-system "$root.new"
    # Non-interactive: tshark's question whether non-root users may capture
    # takes its default, no.
    timeout 1800 mmdebstrap --variant=apt "${aptopts[@]}" \
        --include="$(IFS=,; echo "${packages[*]}")" \
        "$suite" "$root.new" "$mirror"
    printf '%s\n' "${packages[@]}" >"$root.new/etc/smtp-over-http-env"
    rm -rf --one-file-system "$root"
    mv "$root.new" "$root"
else
    # Packages added to the list since the chroot was made.
    missing=()
    for p in "${packages[@]}"; do
        chroot "$root" dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' \
            || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "wireshark-env.sh: adding ${missing[*]} to the $suite chroot"
        chroot "$root" timeout 1800 apt-get update
        chroot "$root" env DEBIAN_FRONTEND=noninteractive timeout 3600 \
            apt-get install -y --no-install-recommends "${missing[@]}"
        printf '%s\n' "${packages[@]}" >"$stamp"
    fi
fi
exec 9>&-

# The chroot's own build folders for this tree, keyed by the tree's path.
state=/var/cache/smtp-over-http/trees/$(printf '%s' "$top" | md5sum | cut -c1-16)
builds=(build build-asan build-pkg build-fuzz build-mutate)
for d in "${builds[@]}"; do mkdir -p "$root$state/$d" "$top/$d"; done
mkdir -p "$root$top"

# Passed through to the command: the rest of the environment stays outside.
pass=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8
      SOH_WIRESHARK_ENV="$version")
for v in CI TERM SOH_BENCH_CAPTURES; do
    [ -n "${!v:-}" ] && pass+=("$v=${!v}")
done

export SOH_ROOT=$root SOH_TOP=$top SOH_STATE=$state
exec unshare --mount --propagation private -- bash -euc '
    mount -t proc proc "$SOH_ROOT/proc"
    mount --rbind /dev "$SOH_ROOT/dev"
    mount --rbind /sys "$SOH_ROOT/sys"
    cp -L /etc/resolv.conf "$SOH_ROOT/etc/resolv.conf" 2>/dev/null || true
    mount --bind "$SOH_TOP" "$SOH_ROOT$SOH_TOP"
    for d in '"${builds[*]}"'; do
        mount --bind "$SOH_ROOT$SOH_STATE/$d" "$SOH_ROOT$SOH_TOP/$d"
    done
    top=$SOH_TOP root=$SOH_ROOT
    unset SOH_ROOT SOH_TOP SOH_STATE
    cd "$root"
    exec chroot "$root" env -i "$@"
' wireshark-env "${pass[@]}" bash -c 'cd "$0" && exec "$@"' "$top" "$@"
