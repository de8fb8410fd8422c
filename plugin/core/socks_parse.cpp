#include "socks_parse.h"

#include "ascii.h"
#include "types.h"

namespace soh {
namespace {

constexpr std::size_t kMaxField = 255;

SocksRequest invalid_request() {
    SocksRequest r;
    r.state = ParseState::Invalid;
    return r;
}

SocksReply invalid_reply() {
    SocksReply r;
    r.state = ParseState::Invalid;
    return r;
}  // userid/domain bound (one length byte in v5)

std::uint16_t be16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

// Reads a NUL-terminated field of at most kMaxField bytes starting at off.
// Returns the index after the NUL, 0 if more bytes are needed, SIZE_MAX if invalid.
std::size_t nul_field(const std::uint8_t* d, std::size_t len, std::size_t off) {
    for (std::size_t i = off; i < len; ++i) {
        if (d[i] == 0) return i + 1;
        if (i - off >= kMaxField) return SIZE_MAX;
    }
    return len - off > kMaxField ? SIZE_MAX : 0;
}

bool printable_name(const std::string& s) {
    if (s.empty()) return false;
    for (unsigned char c : s)
        if (!(ascii::is_alnum(static_cast<char>(c)) || c == '-' || c == '.' || c == '_')) return false;
    return true;
}

SocksRequest parse_v4(const std::uint8_t* d, std::size_t len) {
    SocksRequest r;
    if (len < 9) return r;  // VN CD DSTPORT(2) DSTIP(4) USERID NUL
    r.command = d[1];
    r.port = be16(d + 2);
    std::size_t after_user = nul_field(d, len, 8);
    if (after_user == SIZE_MAX) return invalid_request();
    if (after_user == 0) return r;
    // 0.0.0.x with x != 0 means "SOCKS 4A: the host name follows".
    if (d[4] == 0 && d[5] == 0 && d[6] == 0 && d[7] != 0) {
        std::size_t after_host = nul_field(d, len, after_user);
        if (after_host == SIZE_MAX) return invalid_request();
        if (after_host == 0) return r;
        r.version = SocksVersion::V4a;
        r.host.assign(reinterpret_cast<const char*>(d + after_user), after_host - after_user - 1);
        if (!printable_name(r.host)) return invalid_request();
        r.consumed = after_host;
    } else {
        r.version = SocksVersion::V4;
        r.host = Addr::v4(d + 4).str();
        r.ip_literal = true;
        r.consumed = after_user;
    }
    r.state = r.port ? ParseState::Done : ParseState::Invalid;
    return r;
}

SocksRequest parse_v5(const std::uint8_t* d, std::size_t len) {
    SocksRequest r;
    r.version = SocksVersion::V5;
    // Greeting: VER NMETHODS METHODS...
    if (len < 2) return r;
    std::size_t off = 2 + d[1];
    if (d[1] == 0) return invalid_request();
    if (len < off) return r;
    // Optional RFC 1929 sub-negotiation: VER(1) ULEN UNAME PLEN PASSWD.
    if (len > off && d[off] == 0x01) {
        if (len < off + 2) return r;
        std::size_t plen_at = off + 2 + d[off + 1];
        if (len < plen_at + 1) return r;
        off = plen_at + 1 + d[plen_at];
        if (len < off) return r;
    }
    // Request: VER CMD RSV ATYP DST.ADDR DST.PORT
    if (len < off + 4) return r;
    if (d[off] != 0x05) return invalid_request();
    r.command = d[off + 1];
    std::uint8_t atyp = d[off + 3];
    std::size_t a = off + 4;
    if (atyp == 0x01) {
        if (len < a + 6) return r;
        r.host = Addr::v4(d + a).str();
        r.ip_literal = true;
        r.port = be16(d + a + 4);
        r.consumed = a + 6;
    } else if (atyp == 0x04) {
        if (len < a + 18) return r;
        r.host = Addr::v6(d + a).str();
        r.ip_literal = true;
        r.port = be16(d + a + 16);
        r.consumed = a + 18;
    } else if (atyp == 0x03) {
        if (len < a + 1) return r;
        std::size_t n = d[a];
        if (len < a + 1 + n + 2) return r;
        r.host.assign(reinterpret_cast<const char*>(d + a + 1), n);
        if (!printable_name(r.host)) return invalid_request();
        r.port = be16(d + a + 1 + n);
        r.consumed = a + 1 + n + 2;
    } else {
        return invalid_request();
    }
    r.state = r.port ? ParseState::Done : ParseState::Invalid;
    return r;
}

}  // namespace

bool looks_like_socks(const std::uint8_t* d, std::size_t len) {
    if (len < 2) return false;
    if (d[0] == 0x04) return (d[1] == 0x01 || d[1] == 0x02) && len >= 9;
    if (d[0] == 0x05) {
        // NMETHODS methods, each 0..3 or 0x80..0xFE; the greeting is short.
        std::size_t n = d[1];
        if (n == 0 || n > 16 || len < 2 + n) return false;
        for (std::size_t i = 0; i < n; ++i)
            if (d[2 + i] > 0x03 && d[2 + i] < 0x80) return false;
        return true;
    }
    return false;
}

SocksRequest parse_socks_request(const std::uint8_t* d, std::size_t len) {
    if (len == 0) return {};
    if (d[0] == 0x04) return parse_v4(d, len);
    if (d[0] == 0x05) return parse_v5(d, len);
    return invalid_request();
}

SocksReply parse_socks_reply(SocksVersion version, const std::uint8_t* d, std::size_t len) {
    SocksReply r;
    if (version == SocksVersion::V4 || version == SocksVersion::V4a) {
        // VN(0) CD DSTPORT DSTIP
        if (len < 8) return r;
        r.code = d[1];
        r.granted = d[1] == 90;
        r.consumed = 8;
        r.state = ParseState::Done;
        return r;
    }
    if (version != SocksVersion::V5) return invalid_reply();
    // Method choice: VER METHOD
    if (len < 2) return r;
    if (d[0] != 0x05) return invalid_reply();
    std::size_t off = 2;
    if (d[1] == 0xFF) {  // no acceptable method: refused before any request
        r.code = 0xFF;
        r.consumed = 2;
        r.state = ParseState::Done;
        return r;
    }
    if (d[1] == 0x02) {  // username/password status: VER STATUS
        if (len < off + 2) return r;
        if (d[off + 1] != 0) {
            r.code = 0xFE;
            r.consumed = off + 2;
            r.state = ParseState::Done;
            return r;
        }
        off += 2;
    }
    // Reply: VER REP RSV ATYP BND.ADDR BND.PORT
    if (len < off + 4) return r;
    std::size_t a = off + 4;
    std::size_t need;
    switch (d[off + 3]) {
        case 0x01: need = a + 6; break;
        case 0x04: need = a + 18; break;
        case 0x03:
            if (len < a + 1) return r;
            need = a + 1 + d[a] + 2;
            break;
        default:
            // Refusals sometimes carry a zero ATYP; the code is what matters.
            need = off + 4;
    }
    if (len < need) return r;
    r.code = d[off + 1];
    r.granted = r.code == 0;
    r.consumed = need;
    r.state = ParseState::Done;
    return r;
}

}  // namespace soh
