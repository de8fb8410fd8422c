#!/bin/bash
# Make sure the Debian packages this project needs are installed (the same
# names on Debian 12, 13 and unstable).
# As root: installs what is missing with apt-get.  Otherwise: prints the exact
# apt-get command to run and fails.  Used by scripts/run.sh, scripts/test.sh
# and .ci/run; this is the only list of packages.
set -euo pipefail

PACKAGES=(
    build-essential cmake pkg-config      # C/C++ tool chain
    libwireshark-dev wireshark-dev        # Wireshark headers and CMake package
    libgcrypt20-dev                       # gcrypt.h, which Wireshark's TLS header includes
    tshark                                # runs the plugin on captures
    libgtest-dev libgmock-dev googletest  # unit tests
    clang libclang-rt-dev                 # libFuzzer and sanitizer runtimes (fuzz/, robustness)
    python3                               # capture test harness
    util-linux                            # setpriv: tests drop root to run tshark
    file                                  # cpack: dpkg-shlibdeps of the Debian package
    python3-jsonschema                    # soh-report tests: JSON lines against the schema
    parallel zstd                         # soh-report tests: job-runner recipe, .zst captures
)

# --list: the list, one per line (scripts/wireshark-env.sh builds its
# chroots with it).
if [ "${1:-}" = --list ]; then printf '%s\n' "${PACKAGES[@]}"; exit 0; fi

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' \
        || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
    echo "Install them (needs root), then run this command again:" >&2
    echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

echo "deps.sh: installing: ${missing[*]}"
# tshark asks whether non-root users may capture; answer no, non-interactively.
echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
timeout 1800 apt-get update
timeout 3600 apt-get install -y --no-install-recommends "${missing[@]}"
