#!/bin/bash
# Regenerate tests/captures/golden/ from the bundled captures: the only way
# to change the golden files.  Review the diff before committing it.
#   tests/captures/update_golden.sh [PATH/TO/smtp-over-http.so]
# Default plugin: build/plugin/epan/smtp-over-http.so (built by scripts/test.sh).
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
