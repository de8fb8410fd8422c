#!/bin/bash
# Regenerate tests/captures/golden/<release>/ from the bundled captures, for
# the Wireshark release of the tshark on PATH: the only way to change the
# golden files.  Review the diff before committing it.
#   tests/captures/update_golden.sh [PATH/TO/smtp-over-http.so]
# Default plugin: build/plugin/epan/smtp-over-http.so (built by scripts/test.sh).
# For another release, build and run it in that release's chroot:
#   scripts/wireshark-env.sh 4.6 -- bash -c \
#       'cmake -S . -B build && cmake --build build -j2 && tests/captures/update_golden.sh'
# then check that our part is the same in every release:
#   python3 tests/captures/golden_releases.py
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
plugin=${1:-$top/build/plugin/epan/smtp-over-http.so}
if [ ! -f "$plugin" ]; then
    echo "update_golden.sh: plugin $plugin not found; build it first" >&2
    exit 1
fi
timeout 1800 python3 "$top/tests/captures/golden.py" --update \
    --plugin "$plugin" --captures "$top/captures" --golden "$top/tests/captures/golden"
git -C "$top" status --short -- tests/captures/golden 2>/dev/null || true
