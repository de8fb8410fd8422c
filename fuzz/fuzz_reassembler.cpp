// Fuzz target: StreamReassembler (stream_reassembler.h). The input picks
// segments out of one known byte stream (overlapping, duplicated, reordered,
// some lost, sequence numbers near the 2^32 wrap) and feeds them. Whatever
// arrives, delivered bytes must be the stream's own bytes: in order and from
// the start until the first reported gap, and a piece of the stream after it.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "stream_reassembler.h"

namespace {

std::string make_truth(std::size_t n) {
    // Position-dependent bytes, so that a misplaced piece does not match by chance.
    std::string s(n, '\0');
    std::uint32_t x = 2463534242u;
    for (std::size_t i = 0; i < n; ++i) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        s[i] = static_cast<char>(x);
    }
    return s;
}

const std::string& truth() {
    static const std::string t = make_truth(256 * 1024);
    return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider fdp(data, size);
    const std::string& t = truth();
    // ISN close to the wrap point half of the time.
    std::uint32_t isn = fdp.ConsumeBool() ? 0xFFFFFFFFu - fdp.ConsumeIntegralInRange<std::uint32_t>(0, 70000)
                                          : fdp.ConsumeIntegral<std::uint32_t>();
    const bool with_syn = fdp.ConsumeBool();

    soh::StreamReassembler r;
    std::string got;
    std::size_t base = 0;  // offset of the first delivered byte in the stream
    bool gapped = false;
    auto deliver = [&](const std::uint8_t* d, std::size_t n) {
        std::string_view piece(reinterpret_cast<const char*>(d), n);
        if (!gapped) {
            got.append(piece);
            if (base + got.size() > t.size() || t.compare(base, got.size(), got) != 0) std::abort();
        } else if (n >= 8 && t.find(piece) == std::string::npos) {
            std::abort();
        }
    };
    auto gap = [&]() { gapped = true; };

    std::uint32_t data_start = isn;
    if (with_syn) {
        r.add(isn, true, nullptr, 0, deliver, gap);
        data_start = isn + 1;
    }
    std::size_t ops = 0;
    while (fdp.remaining_bytes() > 0 && ++ops < 2048) {
        std::size_t off = fdp.ConsumeIntegralInRange<std::size_t>(0, t.size() - 1);
        std::size_t len = fdp.ConsumeIntegralInRange<std::size_t>(0, std::min<std::size_t>(4000, t.size() - off));
        // Without a SYN the first data segment sets where the stream starts.
        if (!r.started() && len > 0) base = off;
        r.add(data_start + static_cast<std::uint32_t>(off), false,
              reinterpret_cast<const std::uint8_t*>(t.data()) + off, len, deliver, gap);
        if (r.held_bytes() > soh::StreamReassembler::kMaxHeldBytes) std::abort();
    }
    if (!gapped && r.gaps() != 0) std::abort();
    return 0;
}
