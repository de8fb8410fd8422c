#include "http_parse.h"

#include <algorithm>

#include "ascii.h"
#include "types.h"

namespace soh {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && (is_space(s.front()) || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (is_space(s.back()) || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (ascii::lower(a[i]) != ascii::lower(b[i]))
            return false;
    }
    return true;
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
    if (s.empty() || s.size() > 5) return std::nullopt;
    unsigned v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v == 0 || v > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(v);
}

// reg-name characters of RFC 3986 plus '_' which real resolvers accept.
bool valid_reg_name(std::string_view h) {
    if (h.empty() || h.size() > 255) return false;
    return std::all_of(h.begin(), h.end(), [](char c) {
        return ascii::is_alnum(c) || c == '-' || c == '.' || c == '_';
    });
}

}  // namespace

std::optional<HostPort> parse_authority(std::string_view text, std::uint16_t default_port) {
    text = trim(text);
    if (auto at = text.rfind('@'); at != std::string_view::npos) text.remove_prefix(at + 1);
    // Spamware sometimes glues a path on: "host:25/".
    while (!text.empty() && text.back() == '/') text.remove_suffix(1);
    if (text.empty()) return std::nullopt;

    HostPort hp;
    std::string_view port_part;
    if (text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        std::string_view inner = text.substr(1, close - 1);
        auto addr = Addr::parse(inner);
        if (!addr || addr->family != 6) return std::nullopt;
        hp.host = inner;
        hp.ip_literal = true;
        std::string_view rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return std::nullopt;
            port_part = rest.substr(1);
        }
    } else {
        auto colon = text.rfind(':');
        std::string_view host = text;
        if (colon != std::string_view::npos) {
            host = text.substr(0, colon);
            port_part = text.substr(colon + 1);
            // An unbracketed IPv6 literal has several colons: not a valid authority.
            if (host.find(':') != std::string_view::npos) return std::nullopt;
        }
        if (!valid_reg_name(host)) return std::nullopt;
        hp.host = host;
        auto addr = Addr::parse(host);
        hp.ip_literal = addr && addr->family == 4;
    }
    if (port_part.empty()) {
        if (default_port == 0) return std::nullopt;
        hp.port = default_port;
    } else {
        auto p = parse_port(port_part);
        if (!p) return std::nullopt;
        hp.port = *p;
    }
    return hp;
}

std::optional<RequestLine> parse_request_line(std::string_view line) {
    line = trim(line);
    if (line.empty() || line.size() > kMaxHttpLine) return std::nullopt;
    std::string_view tokens[8];
    std::size_t n = 0;
    std::size_t i = 0;
    while (i < line.size() && n < 8) {
        while (i < line.size() && is_space(line[i])) ++i;
        std::size_t start = i;
        while (i < line.size() && !is_space(line[i])) ++i;
        if (i > start) tokens[n++] = line.substr(start, i - start);
    }
    if (n < 2) return std::nullopt;
    std::string_view method = tokens[0];
    if (method.size() > 16 ||
        !std::all_of(method.begin(), method.end(),
                     ascii::is_alpha))
        return std::nullopt;
    RequestLine req;
    req.method.reserve(method.size());
    for (char c : method) req.method += ascii::upper(c);
    req.target = tokens[1];
    std::string_view last = tokens[n - 1];
    if (n >= 3 && last.size() >= 5 && iequals(last.substr(0, 5), "HTTP/")) {
        req.version = last;
        req.extra_tokens = n > 3;
    } else {
        req.extra_tokens = n > 2;
    }
    return req;
}

std::optional<HostPort> proxy_target(const RequestLine& req) {
    if (req.method == "CONNECT") return parse_authority(req.target);
    std::string_view t = req.target;
    std::uint16_t default_port = 0;
    if (t.size() > 7 && iequals(t.substr(0, 7), "http://")) {
        t.remove_prefix(7);
        default_port = 80;
    } else if (t.size() > 8 && iequals(t.substr(0, 8), "https://")) {
        t.remove_prefix(8);
        default_port = 443;
    } else {
        return std::nullopt;  // origin-form: not a proxy request
    }
    auto end = t.find_first_of("/?#");
    return parse_authority(t.substr(0, end), default_port);
}

bool looks_like_proxy_request(const std::uint8_t* data, std::size_t len) {
    std::size_t i = 0;
    while (i < len && i < 16 && ascii::is_alpha(static_cast<char>(data[i]))) ++i;
    if (i == 0 || i >= len || data[i] != ' ') return false;
    std::string_view method(reinterpret_cast<const char*>(data), i);
    if (iequals(method, "CONNECT")) return true;
    // Absolute-form request: the target starts with a scheme.
    std::size_t j = i;
    while (j < len && data[j] == ' ') ++j;
    std::string_view rest(reinterpret_cast<const char*>(data + j), std::min<std::size_t>(len - j, 8));
    return (rest.size() >= 7 && iequals(rest.substr(0, 7), "http://")) ||
           (rest.size() >= 8 && iequals(rest.substr(0, 8), "https://"));
}

bool starts_connect(const std::uint8_t* data, std::size_t len) {
    static constexpr char kConnect[] = "CONNECT ";
    if (len < 8) return false;
    for (std::size_t i = 0; i < 8; ++i)
        if (ascii::upper(static_cast<char>(data[i])) != kConnect[i]) return false;
    return true;
}

std::optional<StatusLine> parse_status_line(std::string_view line) {
    line = trim(line);
    if (line.size() < 12 || line.size() > kMaxHttpLine) return std::nullopt;
    if (!iequals(line.substr(0, 5), "HTTP/")) return std::nullopt;
    StatusLine st;
    std::string_view v = line.substr(5);
    if (v.size() < 3 || !ascii::is_digit(v[0]) || v[1] != '.' || !ascii::is_digit(v[2]))
        return std::nullopt;
    st.major = v[0] - '0';
    st.minor = v[2] - '0';
    v.remove_prefix(3);
    if (v.empty() || !is_space(v.front())) return std::nullopt;
    v = trim(v);
    if (v.size() < 3) return std::nullopt;
    for (int k = 0; k < 3; ++k) {
        if (!ascii::is_digit(v[k])) return std::nullopt;
        st.code = st.code * 10 + (v[k] - '0');
    }
    if (v.size() > 3 && !is_space(v[3])) return std::nullopt;
    if (st.code < 100) return std::nullopt;
    st.reason = trim(v.substr(3));
    return st;
}

std::optional<std::string_view> header_value(std::string_view line, std::string_view name) {
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    if (!iequals(trim(line.substr(0, colon)), name)) return std::nullopt;
    return trim(line.substr(colon + 1));
}

}  // namespace soh
