#!/bin/bash
# CI share of the robustness campaigns, run by ctest (tests/robustness/CMakeLists.txt).
#   run_ci_share.sh fuzz   BUILD_DIR SECONDS
#   run_ci_share.sh mutate BUILD_DIR ITERATIONS [SANITIZED_PLUGIN]
# Exit 77 (skipped) when the tools are missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
what=$1 dir=$2 amount=$3 plugin=${4:-}
mkdir -p "$dir"

case $what in
    fuzz)
        probe="$dir/probe"
        mkdir -p "$probe"
        printf '#include <cstddef>\n#include <cstdint>\nextern "C" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }\n' \
            >"$probe/p.cpp"
        if ! command -v clang++ >/dev/null 2>&1 ||
            ! clang++ -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" >/dev/null 2>&1; then
            echo "SKIPPED: clang++ with libFuzzer not available (Debian: clang libclang-rt-14-dev)"
            exit 77
        fi
        FUZZ_BUILD_DIR="$dir/build-fuzz" exec "$root/scripts/fuzz.sh" "$amount"
        ;;
    mutate)
        for tool in tshark editcap setpriv python3; do
            if ! command -v "$tool" >/dev/null 2>&1; then
                echo "SKIPPED: $tool not found"
                exit 77
            fi
        done
        if [ -n "$plugin" ]; then
            MUTATE_PLUGIN="$plugin" MUTATE_BUILD_DIR="$dir/build-mutate" exec "$root/scripts/mutate-captures.sh" "$amount"
        fi
        MUTATE_BUILD_DIR="$dir/build-mutate" exec "$root/scripts/mutate-captures.sh" "$amount"
        ;;
    *)
        echo "usage: $0 fuzz|mutate BUILD_DIR AMOUNT [PLUGIN]" >&2
        exit 2
        ;;
esac
