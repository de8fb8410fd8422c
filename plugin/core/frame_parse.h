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
// The second form runs on every frame.
std::optional<Packet> parse_frame(LinkType link, const std::uint8_t* data, std::size_t caplen);
bool parse_frame(LinkType link, const std::uint8_t* data, std::size_t caplen, Packet& out);

}  // namespace soh
