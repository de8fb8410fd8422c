// Formats text into a caller's fixed buffer without allocating. The renderer
// runs inside epan, whose errors longjmp past C++ destructors, so it keeps
// its text on the stack; and it runs on every displayed frame, where
// snprintf and inet_ntop had been most of its own cost.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "types.h"

namespace soh {

class TextWriter {
public:
    // size must be at least 1. Text past the buffer's end is cut off; the
    // buffer always holds a NUL-terminated string.
    TextWriter(char* buf, std::size_t size) : buf_(buf), cap_(size - 1) { buf_[0] = '\0'; }

    TextWriter& str(std::string_view s);
    TextWriter& num(std::uint32_t v);  // decimal
    // As inet_ntop writes it: dotted decimal, or RFC 5952 text for IPv6
    // (with glibc's dotted tail for IPv4-mapped and -compatible addresses).
    // An address of family 0 writes nothing.
    TextWriter& addr(const Addr& a);
    // "192.0.2.1:8080" or "[2001:db8::1]:8080".
    TextWriter& endpoint(const Endpoint& e);

    const char* c_str() const { return buf_; }
    std::size_t size() const { return len_; }

private:
    char* buf_;
    std::size_t cap_;  // characters, not counting the NUL
    std::size_t len_ = 0;
};

}  // namespace soh
