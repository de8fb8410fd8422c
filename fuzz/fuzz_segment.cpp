// Fuzz target: the TCP header reader (segment_parse.h), which sees the bytes
// after the IP header of every TCP segment of every capture. The payload it
// names must lie inside the bytes given, for any captured and reported
// length, and agree with a plain reading of RFC 9293 §3.1.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "segment_parse.h"

using namespace soh;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    // The first two bytes choose how many bytes the IP layer reported.
    const std::size_t reported = static_cast<std::size_t>(data[0]) << 8 | data[1];
    const std::uint8_t* d = data + 2;
    const std::size_t captured = size - 2;
    TcpHeader h;
    const bool ok = parse_tcp(d, captured, reported, h);
    const std::size_t n = captured < reported ? captured : reported;
    const std::size_t hl = n >= 13 ? static_cast<std::size_t>(d[12] >> 4) * 4 : 0;
    if (ok != (n >= 20 && hl >= 20 && hl <= n)) std::abort();
    if (!ok) return 0;
    if (h.payload != d + hl || h.len != n - hl || h.payload + h.len > d + captured) std::abort();
    if (h.sport != (d[0] << 8 | d[1]) || h.dport != (d[2] << 8 | d[3]) || (h.flags & 0xF000)) std::abort();
    volatile std::uint8_t sink = 0;
    for (std::size_t i = 0; i < h.len; ++i) sink = sink ^ h.payload[i];  // ASan: every payload byte is readable
    return 0;
}
