#include "segment_parse.h"

namespace soh {

bool parse_udp(const std::uint8_t* d, std::size_t captured, std::size_t reported, UdpHeader& out) {
    std::size_t n = captured < reported ? captured : reported;
    if (!d || n < 8) return false;
    const std::size_t ulen = static_cast<std::size_t>(d[4] << 8 | d[5]);
    if (ulen < 8) return false;  // RFC 768: the length counts the header
    if (ulen < n) n = ulen;
    out.sport = static_cast<std::uint16_t>(d[0] << 8 | d[1]);
    out.dport = static_cast<std::uint16_t>(d[2] << 8 | d[3]);
    out.payload = d + 8;
    out.len = n - 8;
    return true;
}

}  // namespace soh
