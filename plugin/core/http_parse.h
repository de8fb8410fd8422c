// Tolerant parsers for the HTTP lines a proxy abuser writes: the request line
// (RFC 9112 §3), its CONNECT authority (RFC 9110 §9.3.6, RFC 3986 §3.2.2) or
// absolute URI (RFC 9112 §3.2.2), and the proxy's status line (RFC 9112 §4).
//
// Spamware does not follow the grammar: it writes "CONNECT host:25 / HTTP/1.0",
// lower-case methods, or no version at all. These parsers accept what real
// proxies accept and bound everything they read; they never throw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace soh {

// Longest request or status line we consider; longer lines are not HTTP to us.
inline constexpr std::size_t kMaxHttpLine = 8192;

// The parsers return views into the text they were given (no allocation per
// request on a busy proxy): valid while that text is.
struct HostPort {
    std::string_view host;  // as written, without brackets
    std::uint16_t port = 0;
    bool ip_literal = false;  // host is an IPv4 or bracketed IPv6 literal
};

// "host:port", "[v6]:port", "user@host:port". The port is required unless
// default_port is non-zero. Returns nullopt for anything malformed.
std::optional<HostPort> parse_authority(std::string_view text, std::uint16_t default_port = 0);

struct RequestLine {
    std::string method;     // upper-cased
    std::string_view target;   // request-target as written
    std::string_view version;  // "HTTP/1.0", or empty when absent
    bool extra_tokens = false;  // junk between target and version
};

// Splits a request line on runs of spaces/tabs. The method must be a token of
// letters; the version, when present, is the last token and starts "HTTP/".
std::optional<RequestLine> parse_request_line(std::string_view line);

// Where a proxy request asks the proxy to connect: the CONNECT authority or the
// authority of an absolute-form URI ("http://mx:25/"). Nullopt for origin-form.
std::optional<HostPort> proxy_target(const RequestLine& req);

// True when the bytes could start a proxy request (a method token followed by
// a space and then an authority or absolute URI). Used to classify a stream
// from its first payload without assembling lines.
bool looks_like_proxy_request(const std::uint8_t* data, std::size_t len);

// True when the bytes start "CONNECT " (the method in any case).
bool starts_connect(const std::uint8_t* data, std::size_t len);

struct StatusLine {
    int major = 1;
    int minor = 0;
    int code = 0;
    std::string_view reason;  // a view too: no allocation per proxy answer
};

// "HTTP/1.1 200 Connection established"; the reason phrase may be empty.
std::optional<StatusLine> parse_status_line(std::string_view line);

// Case-insensitive header-name match for a raw header line; returns the value
// with surrounding whitespace removed.
std::optional<std::string_view> header_value(std::string_view line, std::string_view name);

}  // namespace soh
