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

// Fills `out` and returns true when the frame holds a TCP or UDP segment.
// Every link layer and header option; the shortcut below handles the
// common frame and leaves the rest to this.
bool parse_frame_general(LinkType link, const std::uint8_t* data, std::size_t caplen, Packet& out);

// Runs on every frame, so the common one (Ethernet II, IPv4 without options,
// not a fragment, TCP) is parsed inline, in a few cache lines; its result is
// the same as parse_frame_general's (a unit test compares them).
inline bool parse_frame(LinkType link, const std::uint8_t* d, std::size_t n, Packet& out) {
    constexpr std::size_t kEth = 14, kIp = 20;
    if (__builtin_expect(link == LinkType::Ethernet && d && n >= kEth + kIp + 20 && d[12] == 0x08 && d[13] == 0x00 &&
                             d[14] == 0x45 && d[kEth + 9] == 6 && (d[kEth + 6] & 0x3F) == 0 && d[kEth + 7] == 0,
                         1)) {
        const std::uint8_t* t = d + kEth + kIp;
        const std::size_t total = static_cast<std::size_t>(d[kEth + 2]) << 8 | d[kEth + 3];
        const std::size_t hl = static_cast<std::size_t>(t[12] >> 4) * 4;
        // TCP bytes: what the IP header announces, cut to what was captured.
        std::size_t len = n - kEth - kIp;
        if (total >= kIp && total - kIp < len) len = total - kIp;
        if (__builtin_expect(total >= kIp && hl >= 20 && hl <= len, 1)) {
            out.family = 4;
            out.src_ip = d + kEth + 12;
            out.dst_ip = d + kEth + 16;
            out.proto = 6;
            out.sport = static_cast<std::uint16_t>(t[0] << 8 | t[1]);
            out.dport = static_cast<std::uint16_t>(t[2] << 8 | t[3]);
            out.seq = static_cast<std::uint32_t>(t[4]) << 24 | static_cast<std::uint32_t>(t[5]) << 16 |
                      static_cast<std::uint32_t>(t[6]) << 8 | t[7];
            out.flags = static_cast<std::uint16_t>((t[12] & 0x0F) << 8 | t[13]);
            out.payload = t + hl;
            out.len = len - hl;
            return true;
        }
    }
    return parse_frame_general(link, d, n, out);
}
std::optional<Packet> parse_frame(LinkType link, const std::uint8_t* data, std::size_t caplen);

}  // namespace soh
