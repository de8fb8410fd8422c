#include "text_writer.h"

#include <algorithm>
#include <cstring>

namespace soh {

TextWriter& TextWriter::str(std::string_view s) {
    const std::size_t n = std::min(s.size(), cap_ - len_);
    std::memcpy(buf_ + len_, s.data(), n);
    len_ += n;
    buf_[len_] = '\0';
    return *this;
}

namespace {

// Raw writers into a scratch buffer known to be large enough; TextWriter
// copies the result once, so its bound is checked once per piece.
char* put_dec(char* p, std::uint32_t v) {
    char digits[10];
    int n = 0;
    do {
        digits[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *p++ = digits[--n];
    return p;
}

char* put_dotted(char* p, const std::uint8_t* b) {
    for (int i = 0; i < 4; ++i) {
        if (i) *p++ = '.';
        p = put_dec(p, b[i]);
    }
    return p;
}

char* put_hex(char* p, std::uint16_t v) {
    static constexpr char kDigits[] = "0123456789abcdef";  // RFC 5952 §4.3: lower case
    int shift = 12;
    while (shift > 0 && !(v >> shift)) shift -= 4;  // §4.1: no leading zeros
    for (; shift >= 0; shift -= 4) *p++ = kDigits[(v >> shift) & 0xF];
    return p;
}

char* put_v6(char* p, const std::uint8_t* b) {
    std::uint16_t w[8];
    for (int i = 0; i < 8; ++i) w[i] = static_cast<std::uint16_t>(b[2 * i] << 8 | b[2 * i + 1]);
    // RFC 5952 §4.2: "::" stands for the longest run of two or more zero
    // fields, the first one when runs tie.
    int best = -1, best_len = 0;
    for (int i = 0; i < 8;) {
        if (w[i]) {
            ++i;
            continue;
        }
        int j = i;
        while (j < 8 && !w[j]) ++j;
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j;
    }
    if (best_len < 2) best = -1;
    for (int i = 0; i < 8; ++i) {
        if (best >= 0 && i >= best && i < best + best_len) {
            if (i == best) *p++ = ':';
            continue;
        }
        if (i) *p++ = ':';
        // §5: an IPv4-mapped address ends in dotted decimal; glibc does the
        // same for the deprecated IPv4-compatible form (::a.b.c.d).
        if (i == 6 && best == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xFFFF))) return put_dotted(p, b + 12);
        p = put_hex(p, w[i]);
    }
    if (best >= 0 && best + best_len == 8) *p++ = ':';
    return p;
}

// As inet_ntop; family 0 writes nothing.
char* put_addr(char* p, const Addr& a) {
    if (a.family == 4) return put_dotted(p, a.bytes.data());
    if (a.family == 6) return put_v6(p, a.bytes.data());
    return p;
}

}  // namespace

TextWriter& TextWriter::num(std::uint32_t v) {
    char buf[10];
    return str(std::string_view(buf, static_cast<std::size_t>(put_dec(buf, v) - buf)));
}

TextWriter& TextWriter::addr(const Addr& a) {
    char buf[48];  // 39 for the longest IPv6 text
    return str(std::string_view(buf, static_cast<std::size_t>(put_addr(buf, a) - buf)));
}

TextWriter& TextWriter::endpoint(const Endpoint& e) {
    char buf[64];
    char* p = buf;
    const bool bracket = e.addr.family == 6;
    if (bracket) *p++ = '[';
    p = put_addr(p, e.addr);
    if (bracket) *p++ = ']';
    *p++ = ':';
    p = put_dec(p, e.port);
    return str(std::string_view(buf, static_cast<std::size_t>(p - buf)));
}

}  // namespace soh
