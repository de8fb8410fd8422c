// Reads the header of a TCP segment as Wireshark's IP layer hands it on
// (the bytes after the IP header, reassembled when IP fragmented them),
// whatever carried the IP packet: Wireshark has already decoded every layer
// below, so the plugin never parses them itself.
//
// RFC 9293 §3.1. `captured` is how many bytes are there, `reported` how
// many the IP header announced; data stops at the smaller, so Ethernet
// padding or a snap length never count as payload.
#pragma once

#include <cstddef>
#include <cstdint>

namespace soh {

// Filled only by parse_tcp: no initialisers, as it is built per segment.
struct TcpHeader {
    std::uint16_t sport, dport;
    std::uint32_t seq;
    std::uint16_t flags;  // the 12 flag bits (RFC 9293's control bits and ECN)
    const std::uint8_t* payload;
    std::size_t len;  // payload bytes there
};

// Inline: runs on every TCP segment. False when the bytes cannot be a TCP
// header (shorter than its data offset says, or an offset under 20).
inline bool parse_tcp(const std::uint8_t* d, std::size_t captured, std::size_t reported, TcpHeader& out) {
    const std::size_t n = captured < reported ? captured : reported;
    if (!d || n < 20) return false;
    const std::size_t hl = static_cast<std::size_t>(d[12] >> 4) * 4;
    if (hl < 20 || hl > n) return false;
    out.sport = static_cast<std::uint16_t>(d[0] << 8 | d[1]);
    out.dport = static_cast<std::uint16_t>(d[2] << 8 | d[3]);
    out.seq = static_cast<std::uint32_t>(d[4]) << 24 | static_cast<std::uint32_t>(d[5]) << 16 |
              static_cast<std::uint32_t>(d[6]) << 8 | d[7];
    out.flags = static_cast<std::uint16_t>((d[12] & 0x0F) << 8 | d[13]);
    out.payload = d + hl;
    out.len = n - hl;
    return true;
}

}  // namespace soh
