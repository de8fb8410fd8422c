#include "types.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "ascii.h"
#include "text_writer.h"

namespace soh {

std::optional<Addr> Addr::parse(std::string_view text) {
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
    char buf[INET6_ADDRSTRLEN];
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    std::uint8_t out[16];
    if (text.find(':') == std::string_view::npos) {
        // Dotted decimal only (what inet_pton accepts for AF_INET): most
        // hosts a proxy is asked for are names, which end here without a call.
        if (!std::all_of(text.begin(), text.end(), [](char c) { return ascii::is_digit(c) || c == '.'; }))
            return std::nullopt;
        if (inet_pton(AF_INET, buf, out) == 1) return v4(out);
        return std::nullopt;
    }
    if (inet_pton(AF_INET6, buf, out) == 1) return v6(out);
    return std::nullopt;
}

std::string Addr::str() const {
    char buf[INET6_ADDRSTRLEN];
    return TextWriter(buf, sizeof buf).addr(*this).c_str();
}

std::string Endpoint::str() const {
    char buf[INET6_ADDRSTRLEN + 8];
    return TextWriter(buf, sizeof buf).endpoint(*this).c_str();
}

}  // namespace soh
