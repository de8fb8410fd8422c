// SOCKS handshake parsers: SOCKS4 and 4a (the de-facto specs "SOCKS: A protocol
// for TCP proxy across firewalls" and "SOCKS 4A"), SOCKS5 (RFC 1928) with
// username/password sub-negotiation (RFC 1929). They work on the bytes buffered
// so far for one direction and say whether more are needed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace soh {

enum class SocksVersion : std::uint8_t { None, V4, V4a, V5 };

enum class ParseState : std::uint8_t { NeedMore, Done, Invalid };

// The client's side: greeting (v5), optional auth, then the request.
struct SocksRequest {
    ParseState state = ParseState::NeedMore;
    SocksVersion version = SocksVersion::None;
    std::uint8_t command = 0;  // 1 = CONNECT
    std::string host;          // dotted/colon address or a domain name
    bool ip_literal = false;
    std::uint16_t port = 0;
    std::size_t consumed = 0;  // bytes of handshake; tunnel data follows
};

// True when the first client bytes look like a SOCKS handshake.
bool looks_like_socks(const std::uint8_t* data, std::size_t len);

SocksRequest parse_socks_request(const std::uint8_t* data, std::size_t len);

// The server's side: method choice and auth status (v5), then the reply.
struct SocksReply {
    ParseState state = ParseState::NeedMore;
    bool granted = false;
    std::uint8_t code = 0;  // v4: 90..93, v5: 0..8
    std::size_t consumed = 0;
};

SocksReply parse_socks_reply(SocksVersion version, const std::uint8_t* data, std::size_t len);

}  // namespace soh
