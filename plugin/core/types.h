// Plain value types shared by the core: addresses, endpoints, frame and
// stream identifiers. No Wireshark types cross this boundary.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace soh {

using FrameNum = std::uint32_t;
using StreamId = std::uint32_t;

// TCP header flag bits as carried in the flags field (RFC 9293 §3.1).
enum TcpFlag : std::uint16_t {
    kFin = 0x01,
    kSyn = 0x02,
    kRst = 0x04,
    kPsh = 0x08,
    kAck = 0x10,
};

// An IPv4 or IPv6 address; family 0 means "no address".
struct Addr {
    std::array<std::uint8_t, 16> bytes{};
    std::uint8_t family = 0;  // 4, 6 or 0

    static Addr v4(const std::uint8_t b[4]);
    static Addr v6(const std::uint8_t b[16]);
    // Parses a dotted IPv4 address or an IPv6 address (no brackets).
    static std::optional<Addr> parse(std::string_view text);

    bool valid() const { return family != 0; }
    std::string str() const;
    bool operator==(const Addr& o) const { return family == o.family && bytes == o.bytes; }
    bool operator!=(const Addr& o) const { return !(*this == o); }
};

struct Endpoint {
    Addr addr;
    std::uint16_t port = 0;

    // "192.0.2.1:8080" or "[2001:db8::1]:8080".
    std::string str() const;
    bool operator==(const Endpoint& o) const { return addr == o.addr && port == o.port; }
    bool operator!=(const Endpoint& o) const { return !(*this == o); }
};

// 64-bit FNV-1a, used to compare lines between the two legs without keeping them.
inline std::uint64_t fnv1a(std::string_view s) {
    std::uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ULL;
    }
    return h;
}

}  // namespace soh
