// Where a proxy leg's handshake stands, per direction (LiveState's
// client_phase and server_phase): http_proxy.cpp and socks_proxy.cpp.
#pragma once

#include <cstdint>

namespace soh {

// Client side: request line, headers, body (absolute-URI), tunnel, SOCKS request, nothing more to read.
enum ClientPhase : std::uint8_t { kReqLine, kHeaders, kBody, kTunnel, kSocks, kIgnore };
// Server side: no request pending, status line, headers, tunnel, SOCKS reply,
// the target's own bytes (an absolute-URI relay answered without HTTP), nothing more.
enum ServerPhase : std::uint8_t { kIdle, kStatus, kRespHeaders, kSTunnel, kSocksReply, kRawAnswer, kSIgnore };

}  // namespace soh
