#include "dns_parse.h"

namespace soh {
namespace {

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }

// Reads a possibly compressed name at off; returns the offset just after it in
// the message (not after a pointer's target), or 0 when malformed.
std::size_t read_name(const std::uint8_t* d, std::size_t n, std::size_t off, std::string* out) {
    std::size_t end = 0;
    int jumps = 0;
    while (off < n) {
        std::uint8_t l = d[off];
        if (l == 0) return end ? end : off + 1;
        if ((l & 0xC0) == 0xC0) {
            if (off + 1 >= n || ++jumps > 16) return 0;
            if (!end) end = off + 2;
            off = static_cast<std::size_t>(((l & 0x3F) << 8) | d[off + 1]);
            continue;
        }
        if (l & 0xC0) return 0;
        if (off + 1 + l > n) return 0;
        if (out) {
            if (out->size() + l + 1 > 255) return 0;
            if (!out->empty()) *out += '.';
            out->append(reinterpret_cast<const char*>(d + off + 1), l);
        }
        off += 1 + l;
    }
    return 0;
}

}  // namespace

std::optional<DnsAnswer> parse_dns_response(const std::uint8_t* d, std::size_t n) {
    if (!d || n < 12) return std::nullopt;
    if (!(d[2] & 0x80)) return std::nullopt;  // QR: a response
    std::size_t qd = be16(d + 4), an = be16(d + 6);
    if (qd == 0 || an == 0) return std::nullopt;
    DnsAnswer ans;
    std::size_t off = read_name(d, n, 12, &ans.name);
    if (!off || off + 4 > n) return std::nullopt;
    off += 4;
    for (std::size_t q = 1; q < qd && q < 8; ++q) {  // further questions: skip
        off = read_name(d, n, off, nullptr);
        if (!off || off + 4 > n) return std::nullopt;
        off += 4;
    }
    for (std::size_t i = 0; i < an && i < 64 && ans.addrs.size() < 16; ++i) {
        off = read_name(d, n, off, nullptr);
        if (!off || off + 10 > n) break;
        std::uint16_t type = be16(d + off), cls = be16(d + off + 2), rdlen = be16(d + off + 8);
        off += 10;
        if (off + rdlen > n) break;
        if (cls == 1 && type == 1 && rdlen == 4) ans.addrs.push_back(Addr::v4(d + off));
        if (cls == 1 && type == 28 && rdlen == 16) ans.addrs.push_back(Addr::v6(d + off));
        off += rdlen;
    }
    if (ans.name.empty() || ans.addrs.empty()) return std::nullopt;
    return ans;
}

}  // namespace soh
