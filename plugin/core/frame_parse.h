// Finds the TCP or UDP segment in a raw captured frame, so the post-dissector
// needs no protocol tree: asking Wireshark for other protocols' fields makes
// tshark build a tree for every frame, which costs more than all our work.
//
// Link layers: Ethernet II with up to two 802.1Q/802.1ad tags, Linux cooked
// v1 and v2, raw IP, BSD loopback (DLT_NULL / DLT_LOOP). Network: IPv4
// (RFC 791; fragments are skipped) and IPv6 (RFC 8200, skipping hop-by-hop,
// routing, destination-options and AH headers; fragments are skipped).
// Transport: TCP (RFC 9293 §3.1) and UDP (RFC 768). Everything is bounds
// checked against the captured length; payload stops at the IP length, so
// Ethernet padding is never taken for data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "types.h"

namespace soh {

enum class LinkType : std::uint8_t { Ethernet, LinuxSll, LinuxSll2, RawIp, Null, Loop, Unsupported };

// Points into the frame: valid while its bytes are. Addresses are copied
// only on demand, as most frames need no more than a cache probe.
struct Packet {
    std::uint8_t family = 0;               // 4 or 6
    const std::uint8_t* src_ip = nullptr;  // 4 or 16 bytes, network order
    const std::uint8_t* dst_ip = nullptr;
    std::uint8_t proto = 0;  // 6 TCP, 17 UDP
    std::uint16_t sport = 0;
    std::uint16_t dport = 0;
    std::uint32_t seq = 0;     // TCP only, raw
    std::uint16_t flags = 0;   // TCP only
    const std::uint8_t* payload = nullptr;
    std::size_t len = 0;       // captured payload bytes

    Addr src() const { return family == 4 ? Addr::v4(src_ip) : Addr::v6(src_ip); }
    Addr dst() const { return family == 4 ? Addr::v4(dst_ip) : Addr::v6(dst_ip); }
};

// Fills `out` and returns true when the frame holds a TCP or UDP segment:
// every link layer and header option.
bool parse_frame_general(LinkType link, const std::uint8_t* data, std::size_t caplen, Packet& out);

// The common frame (Ethernet II, IPv4 without options, not a fragment, TCP),
// read only as far as the per-frame fast path needs: it runs on every frame,
// inline, in a few cache lines. Whatever it accepts, parse_frame_general
// reads the same way (a unit test compares them on every input).
// Filled only by parse_common_tcp: no initialisers, as it is built per frame.
struct CommonTcp {
    const std::uint8_t* ip;   // the IPv4 header: addresses at +12 and +16
    const std::uint8_t* tcp;  // the TCP header
    std::uint16_t sport, dport, flags;
    std::size_t header_len;  // of the TCP header
    std::size_t len;         // captured payload bytes

    // The same segment as parse_frame_general would give it.
    Packet packet() const {
        Packet p;
        p.family = 4;
        p.src_ip = ip + 12;
        p.dst_ip = ip + 16;
        p.proto = 6;
        p.sport = sport;
        p.dport = dport;
        p.seq = static_cast<std::uint32_t>(tcp[4]) << 24 | static_cast<std::uint32_t>(tcp[5]) << 16 |
                static_cast<std::uint32_t>(tcp[6]) << 8 | tcp[7];
        p.flags = flags;
        p.payload = tcp + header_len;
        p.len = len;
        return p;
    }
};

inline bool parse_common_tcp(const std::uint8_t* d, std::size_t n, CommonTcp& out) {
    constexpr std::size_t kEth = 14, kIp = 20;
    if (!d || n < kEth + kIp + 20) return false;
    const std::uint8_t* t = d + kEth + kIp;
    const std::size_t total = static_cast<std::size_t>(d[kEth + 2]) << 8 | d[kEth + 3];
    const std::size_t hl = static_cast<std::size_t>(t[12] >> 4) * 4;
    // TCP bytes: what the IP header announces, cut to what was captured.
    std::size_t len = n - kEth - kIp;
    if (total >= kIp && total - kIp < len) len = total - kIp;
    // Every test in one branch: this runs on every frame, between frames
    // the branch predictor forgets us, and each branch may cost a miss.
    // IPv4 ethertype, version 4 with a 20-byte header, no fragment
    // (offset and MF clear), TCP; an IP length that holds a TCP header.
    const unsigned bad = (d[12] ^ 0x08u) | d[13] | (d[kEth] ^ 0x45u) | (d[kEth + 6] & 0x3Fu) | d[kEth + 7] |
                         (d[kEth + 9] ^ 6u) | unsigned{total < kIp} | unsigned{hl < 20} | unsigned{hl > len};
    if (bad) return false;
    out.ip = d + kEth;
    out.tcp = t;
    out.sport = static_cast<std::uint16_t>(t[0] << 8 | t[1]);
    out.dport = static_cast<std::uint16_t>(t[2] << 8 | t[3]);
    out.flags = static_cast<std::uint16_t>((t[12] & 0x0F) << 8 | t[13]);
    out.header_len = hl;
    out.len = len - hl;
    return true;
}

// Fills `out` and returns true when the frame holds a TCP or UDP segment.
inline bool parse_frame(LinkType link, const std::uint8_t* d, std::size_t n, Packet& out) {
    CommonTcp c;
    if (link == LinkType::Ethernet && parse_common_tcp(d, n, c)) {
        out = c.packet();
        return true;
    }
    return parse_frame_general(link, d, n, out);
}
std::optional<Packet> parse_frame(LinkType link, const std::uint8_t* data, std::size_t caplen);

}  // namespace soh
