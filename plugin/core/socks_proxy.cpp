// The SOCKS handshake (SOCKS4, SOCKS4a; SOCKS5, RFC 1928): the CONNECT
// request and the proxy's reply, then the tunnel bytes to the content side.
#include <string>

#include "correlator.h"
#include "proxy_phase.h"
#include "socks_parse.h"

namespace soh {

void Correlator::socks_bytes(std::uint32_t idx, bool from_client, const Segment& seg) {
    Flow& f = flows_[idx];
    LiveState& lv = *f.live;
    std::string& buf = lv.socks[from_client ? 0 : 1];
    const auto* p = reinterpret_cast<const std::uint8_t*>(buf.data());
    if (from_client) {
        SocksRequest r = parse_socks_request(p, buf.size());
        if (r.state == ParseState::NeedMore && buf.size() < kMaxSocksHandshake) return;
        if (r.state != ParseState::Done || r.command != 1) {
            mark_benign(idx);
            lv.client_phase = kIgnore;
            return;
        }
        Method m = r.version == SocksVersion::V5 ? Method::Socks5
                   : r.version == SocksVersion::V4a ? Method::Socks4a
                                                    : Method::Socks4;
        std::string rest = buf.substr(r.consumed);
        buf.clear();
        set_request(idx, m, r.host, r.port, r.ip_literal, seg);
        Flow& g = flows_[idx];
        if (!g.live) return;
        g.live->client_phase = kTunnel;
        if (!rest.empty()) tunnel_bytes(idx, true, reinterpret_cast<const std::uint8_t*>(rest.data()), rest.size(), seg);
        return;
    }
    SocksVersion v = f.method == Method::Socks5 ? SocksVersion::V5 : SocksVersion::V4;
    SocksReply r = parse_socks_reply(v, p, buf.size());
    if (r.state == ParseState::NeedMore && buf.size() < kMaxSocksHandshake) return;
    if (r.state != ParseState::Done || !f.request_frame) {
        lv.server_phase = kSIgnore;
        return;
    }
    std::string rest = buf.substr(r.consumed);
    buf.clear();
    set_response(idx, r.granted, r.code, seg);
    Flow& g = flows_[idx];
    if (!g.live) return;
    g.live->server_phase = r.granted ? kSTunnel : kSIgnore;
    if (r.granted && !rest.empty())
        tunnel_bytes(idx, false, reinterpret_cast<const std::uint8_t*>(rest.data()), rest.size(), seg);
}

}  // namespace soh
