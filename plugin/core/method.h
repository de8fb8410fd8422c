// How a proxy was asked to reach the target, one table for what each
// method is: its name (for HTTP, the request-line token, RFC 9110 §9), and
// whether the proxy relays the client's bytes verbatim (CONNECT, RFC 9110
// §9.3.6; SOCKS, RFC 1928) rather than rewriting an absolute-URI request
// before passing it on (RFC 9112 §3.2.2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace soh {

enum class Method : std::uint8_t { Connect, Post, Get, Put, Other, Socks4, Socks4a, Socks5 };

struct MethodInfo {
    Method method;
    const char* name;
    bool http;      // an HTTP request (else a SOCKS one)
    bool verbatim;  // the proxy relays the client's bytes as they are
};

inline constexpr MethodInfo kMethods[] = {
    {Method::Connect, "CONNECT", true, true},  {Method::Post, "POST", true, false},
    {Method::Get, "GET", true, false},         {Method::Put, "PUT", true, false},
    {Method::Other, "OTHER", true, false},     {Method::Socks4, "SOCKS4", false, true},
    {Method::Socks4a, "SOCKS4a", false, true}, {Method::Socks5, "SOCKS5", false, true},
};

constexpr const MethodInfo& method_info(Method m) { return kMethods[static_cast<std::size_t>(m)]; }
static_assert(method_info(Method::Socks5).method == Method::Socks5, "kMethods is in enumeration order");

inline const char* method_name(Method m) { return method_info(m).name; }
inline bool is_socks(Method m) { return !method_info(m).http; }
// The proxy relays the client's bytes verbatim (CONNECT, SOCKS), as opposed
// to rewriting an absolute-URI request before passing it on.
inline bool relays_verbatim(Method m) { return method_info(m).verbatim; }

// The method of an HTTP request line's token (Other for any other token).
Method method_of(std::string_view token);

}  // namespace soh
