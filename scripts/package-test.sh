#!/bin/bash
# Build the Debian package in build-pkg/ (a tree configured for packaging),
# install it with apt-get, check what it installed, run the installed
# soh-report on a bundled capture, then remove the package again.
#
# Needs root for apt-get.  Run as another user it builds nothing, prints what
# it would do and a SKIP line, and exits 0.
#
# The machine is left as it was: the package is removed on exit (also on
# failure), and files already in the package's places that no package owns
# (e.g. a plugin put there by `cmake --install` as root) are set aside first
# and put back afterwards.  While the package is installed, Wireshark loads
# the system copy of the plugin and skips personal copies of the same file
# name, so run no capture tests at the same time.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"

pkg=smtp-over-http
plugindir=$(pkg-config --variable=plugindir wireshark 2>/dev/null || true)
prefix=$(pkg-config --variable=prefix wireshark 2>/dev/null || echo /usr)
if [ -z "$plugindir" ]; then
    echo "package-test: FAIL: pkg-config does not know wireshark (install libwireshark-dev)" >&2
    exit 1
fi
plugin_dir=$plugindir/epan
profile_dir=$prefix/share/wireshark/profiles
capture=captures/connect_ip_tinyproxy.pcap
build=build-pkg
jobs=$(nproc 2>/dev/null || echo 2)

configure=(cmake -S . -B "$build" -DSOH_BUILD_TESTS=OFF -DSOH_WERROR=ON
           "-DSOH_PLUGIN_DIR=$plugin_dir" "-DSOH_PROFILE_DIR=$profile_dir")

if [ "$(id -u)" -ne 0 ]; then
    echo "package-test: installing a package needs root; as root this script runs:"
    echo "  ${configure[*]}"
    echo "  cmake --build $build -j$jobs && (cd $build && cpack -G DEB)"
    echo "  apt-get install -y ./$build/${pkg}_<version>_<arch>.deb; dpkg -L $pkg"
    echo "  soh-report $capture   (expects 1 incident, exit code 1)"
    echo "  apt-get remove -y $pkg"
    echo "package-test: SKIP (not root)"
    exit 0
fi

if dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q 'ok installed'; then
    echo "package-test: SKIP: package $pkg is already installed; remove it first" \
         "(apt-get remove $pkg) so this test can leave the machine as it found it"
    exit 0
fi

fail() { echo "package-test: FAIL: $*" >&2; exit 1; }

# -- build ---------------------------------------------------------------
timeout 600 "${configure[@]}"
timeout 3600 cmake --build "$build" -j"$jobs"
rm -f "$build"/${pkg}_*.deb
(cd "$build" && timeout 600 cpack -G DEB)
debs=("$build"/${pkg}_*.deb)
[ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] || fail "cpack made no single ${pkg}_*.deb"
deb=$(cd "$(dirname "${debs[0]}")" && pwd)/$(basename "${debs[0]}")
echo "package-test: built $(basename "$deb")"

version=$(dpkg-deb -f "$deb" Version)
arch=$(dpkg-deb -f "$deb" Architecture)
[ "$(basename "$deb")" = "${pkg}_${version}_${arch}.deb" ] \
    || fail "file name $(basename "$deb") is not ${pkg}_${version}_${arch}.deb"
# Bound to this Wireshark's minor release, through the package that ships
# the libwireshark it runs (libwireshark16 for 4.0, 18 for 4.4, 19 for 4.6).
ws_lib=$(dpkg -S "$(readlink -f "$(ldconfig -p | awk '/libwireshark\.so\./ {print $NF; exit}')")" | cut -d: -f1)
ws_minor=$(tshark --version | sed -n '1s/.* \([0-9]*\)\.\([0-9]*\)\.[0-9]*.*/\1.\2/p')
depends=$(dpkg-deb -f "$deb" Depends)
grep -q "$ws_lib (>= $ws_minor)" <<<"$depends" && grep -q "$ws_lib (<< " <<<"$depends" \
    || fail "Depends ($depends) lacks the bounds on $ws_lib for Wireshark $ws_minor"
case "$version" in *"+ws$ws_minor") ;; *) fail "version $version does not name Wireshark $ws_minor" ;; esac
echo "package-test: for Wireshark $ws_minor, depends on $ws_lib; $(du -k "$deb" | cut -f1) KiB"
contents=$(dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|')
if grep -Eq '^/(root|home)(/|$)' <<<"$contents"; then
    fail "the package holds files under a home folder: $(grep -E '^/(root|home)' <<<"$contents" | head -3)"
fi

# -- set aside unowned files in the package's places ----------------------
backup=$(mktemp -d)
installed=0
cleanup() {
    rc=$?
    if [ $installed -eq 1 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get remove -y "$pkg" >/dev/null 2>&1 \
            || echo "package-test: could not remove $pkg; run: apt-get remove -y $pkg" >&2
    fi
    if [ -f "$backup/list" ]; then
        while IFS= read -r f; do
            mkdir -p "$(dirname "$f")"
            mv -f "$backup/files$f" "$f"
            echo "package-test: restored $f"
        done <"$backup/list"
    fi
    rm -rf "$backup"
    exit $rc
}
trap cleanup EXIT
while IFS= read -r f; do
    [ -n "$f" ] && [ -f "$f" ] || continue
    if ! dpkg -S "$f" >/dev/null 2>&1; then
        mkdir -p "$backup/files$(dirname "$f")"
        mv "$f" "$backup/files$f"
        echo "$f" >>"$backup/list"
        echo "package-test: set aside $f (not owned by any package) until the end"
    fi
done < <(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $NF}' | sed 's|^\./|/|')

# -- install and check ----------------------------------------------------
installed=1
DEBIAN_FRONTEND=noninteractive timeout 1800 apt-get install -y "$deb"
dpkg-query -W -f='${Status}\n' "$pkg" | grep -q 'install ok installed' || fail "$pkg not installed"
listed=$(dpkg -L "$pkg")
for f in /usr/bin/soh-report "$plugin_dir/$pkg.so" \
         "$profile_dir/SMTP-over-HTTP/colorfilters" "$profile_dir/SMTP-over-HTTP/preferences"; do
    grep -qx "$f" <<<"$listed" || fail "dpkg -L $pkg lacks $f"
    [ -e "$f" ] || fail "$f listed but missing"
done
echo "package-test: dpkg -L lists the plugin, the profile and soh-report"

# Root reads the system plugin folder, where the package put the plugin; it
# is listed as a dissector (4.0 tells the type from what it registers, 4.2
# and later from plugin_describe).
ptype=$(tshark -G plugins 2>/dev/null | awk -F'\t' -v f="$plugin_dir/$pkg.so" '$NF == f {gsub(/ /, "", $3); print $3}')
[ -n "$ptype" ] || fail "tshark does not load $plugin_dir/$pkg.so"
[ "$ptype" = dissector ] || fail "tshark -G plugins calls the plugin '$ptype', not dissector"
echo "package-test: tshark -G plugins: $pkg.so, dissector"

set +e
out=$(/usr/bin/soh-report --no-progress -o json "$capture")
rc=$?
set -e
[ $rc -eq 1 ] || fail "installed soh-report on $capture exited $rc, expected 1"
n=$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["incidents"]))' <<<"$out")
[ "$n" = 1 ] || fail "installed soh-report found $n incidents in $capture, expected 1"
echo "package-test: installed soh-report: 1 incident in $(basename "$capture"), exit code 1"
/usr/bin/soh-report --version

# The installed profile colours the tunnel (a throw-away HOME: tshark copies
# a global profile into the user's folder on first use).
phome=$(mktemp -d)
rules=$(HOME=$phome timeout 300 tshark -2 --color -C SMTP-over-HTTP -r "$capture" \
        -Y 'smtp-over-http.leg == "tunnel"' -T fields -e frame.coloring_rule.name 2>/dev/null | sort -u)
rm -rf "$phome"
[ "$rules" = "SMTP-over-HTTP tunnel" ] || fail "the installed profile colours tunnel frames as '$rules'"
echo "package-test: the installed SMTP-over-HTTP profile colours the tunnel frames"

# -- remove ---------------------------------------------------------------
DEBIAN_FRONTEND=noninteractive timeout 600 apt-get remove -y "$pkg"
installed=0
for f in /usr/bin/soh-report "$plugin_dir/$pkg.so"; do
    [ -e "$f" ] && fail "$f still present after apt-get remove"
done
echo "package-test: package removed"
echo "package-test: PASS"
