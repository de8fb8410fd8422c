// Plain value types shared by the core: addresses, endpoints, frame and
// stream identifiers. No Wireshark types cross this boundary.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

    // Inline: the frame parser makes two per frame.
    static Addr v4(const std::uint8_t b[4]) {
        Addr a;
        a.family = 4;
        std::memcpy(a.bytes.data(), b, 4);
        return a;
    }
    static Addr v6(const std::uint8_t b[16]) {
        Addr a;
        a.family = 6;
        std::memcpy(a.bytes.data(), b, 16);
        return a;
    }
    // Parses a dotted IPv4 address or an IPv6 address (no brackets).
    static std::optional<Addr> parse(std::string_view text);

    bool valid() const { return family != 0; }
    std::string str() const;
    bool operator==(const Addr& o) const { return family == o.family && bytes == o.bytes; }
    bool operator!=(const Addr& o) const { return !(*this == o); }
};

// For hash maps keyed by address.
struct AddrHash {
    std::size_t operator()(const Addr& a) const {
        std::uint64_t w0, w1;
        std::memcpy(&w0, a.bytes.data(), 8);
        std::memcpy(&w1, a.bytes.data() + 8, 8);
        std::uint64_t h = (w0 ^ a.family) * 0x9E3779B97F4A7C15ULL;
        h = (h ^ (h >> 32) ^ w1) * 0x9E3779B97F4A7C15ULL;
        return static_cast<std::size_t>(h ^ (h >> 29));
    }
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

// push_back that gives an empty vector room for `first` elements at once:
// the engine's per-session lists (line stamps, notes, candidate links)
// usually hold a handful to a few dozen entries, and growing them one
// doubling at a time cost an allocation and a copy per step on every
// incident leg.
template <typename T>
void push_sized(std::vector<T>& v, T x, std::size_t first) {
    if (v.capacity() == 0) v.reserve(first);
    v.push_back(std::move(x));
}

}  // namespace soh
