// The HTTP proxy handshake: request lines and headers of the client (RFC
// 9112 §3, §5; CONNECT and absolute-URI requests, RFC 9110 §9.3.6, RFC 9112
// §3.2.2), the proxy's status line (RFC 9110 §15), and the tunnel or body
// bytes handed on to the content side (tunnel.cpp).
#include <cstring>
#include <string>

#include "correlator.h"
#include "http_parse.h"
#include "proxy_phase.h"
#include "socks_parse.h"

namespace soh {

// Parser phases for a proxy request starting with these bytes (SOCKS or HTTP).
void Correlator::begin_request(Flow& f, const std::uint8_t* d, std::size_t n) {
    LiveState& lv = *f.live;
    lv.http[0].reset();
    lv.http[1].reset();
    lv.socks[0].clear();
    lv.socks[1].clear();
    if (looks_like_socks(d, n)) {
        f.method = d[0] == 0x05 ? Method::Socks5 : Method::Socks4;
        lv.client_phase = kSocks;
        lv.server_phase = kSocksReply;
    } else {
        lv.client_phase = kReqLine;
        lv.server_phase = kIdle;
    }
}

// The first bytes a tunnel carries from its client, before the server said
// anything: another proxy request means a chain of proxies.
bool Correlator::starts_chain(const Flow& f, const std::uint8_t* d, std::size_t n) const {
    if (f.role == Role::Proxy && (!relays_verbatim(f.method) || f.status == Status::Refused)) return false;
    if (f.via.size() >= kMaxChain) return false;
    return looks_like_proxy_request(d, n) || looks_like_socks(d, n);
}

void Correlator::proxy_bytes(std::uint32_t idx, bool from_client, const std::uint8_t* d, std::size_t n,
                             const Segment& seg) {
    Flow& f = flows_[idx];
    LiveState& lv = *f.live;
    if (from_client) {
        switch (lv.client_phase) {
            case kReqLine:
            case kHeaders:
            case kBody:
                lv.http[0].feed(d, n);
                http_client(idx, seg);
                break;
            case kTunnel: tunnel_bytes(idx, true, d, n, seg); break;
            case kSocks:
                lv.socks[0].append(reinterpret_cast<const char*>(d), std::min<std::size_t>(n, 2 * kMaxSocksHandshake));
                socks_bytes(idx, true, seg);
                break;
            default: break;
        }
    } else {
        switch (lv.server_phase) {
            case kStatus:
            case kRespHeaders:
                lv.http[1].feed(d, n);
                http_server(idx, seg);
                break;
            case kSTunnel:
            case kRawAnswer: tunnel_bytes(idx, false, d, n, seg); break;
            case kSocksReply:
                lv.socks[1].append(reinterpret_cast<const char*>(d), std::min<std::size_t>(n, 2 * kMaxSocksHandshake));
                socks_bytes(idx, false, seg);
                break;
            default: break;
        }
    }
}

void Correlator::http_client(std::uint32_t idx, const Segment& seg) {
    for (;;) {
        Flow& f = flows_[idx];
        if (!f.live || f.benign) return;
        LiveState& lv = *f.live;
        LineAssembler& in = lv.http[0];
        if (lv.client_phase == kBody) {
            std::string_view body = in.take_raw_view(static_cast<std::size_t>(
                std::min<std::uint64_t>(lv.body_left, in.buffered())));
            lv.body_left -= body.size();
            // Absolute-URI relay: the body is what the mail server reads as commands.
            if (!body.empty() && f.mail_port)
                tunnel_bytes(idx, true, reinterpret_cast<const std::uint8_t*>(body.data()), body.size(), seg);
            if (lv.body_left > 0) return;
            flows_[idx].live->client_phase = kReqLine;
            continue;
        }
        if (lv.client_phase == kTunnel) {
            std::string rest = in.take_all();
            if (!rest.empty())
                tunnel_bytes(idx, true, reinterpret_cast<const std::uint8_t*>(rest.data()), rest.size(), seg);
            return;
        }
        if (lv.client_phase != kReqLine && lv.client_phase != kHeaders) return;
        auto line = in.next_line();
        if (!line) {
            if (in.buffered() > kMaxHttpLine && lv.client_phase == kReqLine) {
                add_event(seg.frame, idx, kEvMalformed);
                if (!f.request_frame) mark_benign(idx);
                lv.client_phase = kIgnore;
                in.reset();
            }
            return;
        }
        if (lv.client_phase == kReqLine) {
            if (line->text.empty() && !line->overlong) continue;  // RFC 9112 §2.2
            std::optional<RequestLine> req;
            if (!line->overlong) req = parse_request_line(line->text);
            std::optional<HostPort> target;
            if (req) target = proxy_target(*req);
            if (!target) {
                if (line->overlong) add_event(seg.frame, idx, kEvMalformed);
                if (!f.request_frame) mark_benign(idx);
                lv.client_phase = kIgnore;
                in.reset();
                return;
            }
            lv.body_left = 0;
            Method m = method_of(req->method);
            f.malformed = req->extra_tokens || req->version.empty();
            if (f.malformed) add_event(seg.frame, idx, kEvMalformed);
            idx = set_request(idx, m, target->host, target->port, target->ip_literal, seg);
            Flow& g = flows_[idx];
            // A request without version has no header block (HTTP/0.9 style).
            if (!g.live) return;
            g.live->client_phase = (req->version.empty() && m == Method::Connect) ? kTunnel : kHeaders;
            continue;
        }
        // Header block (RFC 9112 §5); lines without a name are tolerated.
        if (line->text.empty()) {
            if (f.method == Method::Connect) {
                lv.client_phase = kTunnel;
            } else {
                lv.client_phase = lv.body_left > 0 ? kBody : kReqLine;
            }
            continue;
        }
        if (auto v = header_value(line->text, "Content-Length")) {
            std::uint64_t n = 0;
            for (char c : *v) {
                if (c < '0' || c > '9' || n > kMaxContentLength) break;
                n = n * 10 + static_cast<std::uint64_t>(c - '0');
            }
            lv.body_left = n;
        } else if (header_value(line->text, "Proxy-Authorization")) {
            f.proxy_auth = true;
        } else if (header_value(line->text, "Transfer-Encoding")) {
            // A body of unannounced length: the rest of the connection is body.
            if (f.method != Method::Connect) lv.body_left = ~0ULL >> 1;
        }
    }
}

void Correlator::http_server(std::uint32_t idx, const Segment& seg) {
    for (;;) {
        Flow& f = flows_[idx];
        if (!f.live || f.benign) return;
        LiveState& lv = *f.live;
        LineAssembler& in = lv.http[1];
        if (lv.server_phase == kSTunnel || lv.server_phase == kRawAnswer) {
            std::string rest = in.take_all();
            if (!rest.empty())
                tunnel_bytes(idx, false, reinterpret_cast<const std::uint8_t*>(rest.data()), rest.size(), seg);
            return;
        }
        if (lv.server_phase != kStatus && lv.server_phase != kRespHeaders) {
            in.reset();
            return;
        }
        auto line = in.next_line();
        if (!line) {
            if (in.buffered() > kMaxHttpLine) {
                lv.server_phase = kSIgnore;
                in.reset();
            }
            return;
        }
        if (lv.server_phase == kStatus) {
            if (line->text.empty()) continue;
            auto st = line->overlong ? std::nullopt : parse_status_line(line->text);
            if (!st) {
                if (f.method != Method::Connect) {
                    // No HTTP status: the proxy relayed the target's own bytes, as an
                    // SMTP server reading an absolute-URI request answers with its banner.
                    set_response(idx, true, 0, seg);
                    Flow& g = flows_[idx];
                    if (!g.live) return;
                    g.live->server_phase = kRawAnswer;
                    std::string text(line->text);
                    text += "\r\n";
                    tunnel_bytes(idx, false, reinterpret_cast<const std::uint8_t*>(text.data()), text.size(), seg);
                    continue;
                }
                lv.server_phase = kSIgnore;  // not an HTTP answer: leave it as no-response
                in.reset();
                return;
            }
            if (st->code < 200) {
                lv.interim = true;  // RFC 9110 §15.2: skip 1xx, wait for the final answer
            } else {
                lv.interim = false;
                set_response(idx, st->code < 300, static_cast<std::uint16_t>(st->code), seg);
            }
            Flow& g = flows_[idx];
            if (!g.live) return;
            g.live->server_phase = kRespHeaders;
            continue;
        }
        if (!line->text.empty()) continue;
        // End of the response header block.
        if (lv.interim) {
            lv.interim = false;
            lv.server_phase = kStatus;
        } else if (f.status == Status::Established && f.method == Method::Connect) {
            lv.server_phase = kSTunnel;
        } else if (f.status == Status::Established) {
            // An absolute-URI request answered over HTTP: the body is the target's answer.
            lv.server_phase = f.mail_port ? kRawAnswer : kIdle;
        } else {
            lv.server_phase = kIdle;
            if (lv.client_phase == kTunnel) lv.client_phase = kReqLine;  // keep-alive retry (407)
        }
    }
}

std::uint32_t Correlator::set_request(std::uint32_t idx, Method m, std::string_view host, std::uint16_t port,
                                      bool literal, const Segment& seg) {
    // A new request on a connection whose earlier one was an incident.
    if (flows_[idx].request_frame && flows_[idx].mail_port && flows_[idx].via.empty() && !is_socks(m))
        idx = next_request(idx, seg);
    Flow& f = flows_[idx];
    bool mail = is_mail_port(port);
    // The incident starts at the first request that makes the leg suspect;
    // in a chain the client builds, at its first request.
    if (!f.request_frame || (mail && !f.mail_port && f.via.empty())) {
        f.request_frame = seg.frame;
        f.request_time = seg.time;
    }
    f.target_frame = seg.frame;
    f.method = m;
    set_target(f, host, port, literal);
    f.mail_port = f.mail_port || mail;
    if (f.via.empty()) {  // a chain's outcome stays the first proxy's answer (set_response)
        f.status = Status::NoResponse;
        f.status_code = 0;
        f.response_frame = 0;
    }
    f.benign = false;
    add_event(seg.frame, idx, kEvRequest);
    if (f.live && !is_socks(m)) f.live->server_phase = kStatus;
    // Only requests that can end in mail relay wait for a relay leg: proxied
    // web browsing (absolute URIs to other ports) must stay cheap.
    if (mail && !f.target_literal) await_dns(idx);
    if (may_relay_mail(m, port)) {
        auto& list = awaiting_[port];
        if (list.empty() || list.back() != idx) list.push_back(idx);
        if (mail && relays_verbatim(m)) {
            auto& hops = awaiting_hop_[f.server.addr];
            if (hops.size() < cfg_.max_candidates && (hops.empty() || hops.back() != idx)) hops.push_back(idx);
        }
    } else {
        mark_benign(idx);
    }
    return idx;
}

void Correlator::set_target(Flow& f, std::string_view host, std::uint16_t port, bool literal) {
    f.target_host = host;
    f.target_port = port;
    f.target_addr = Addr{};
    f.resolved_addr = Addr{};
    if (literal)
        if (auto a = Addr::parse(host)) f.target_addr = *a;
    f.target_literal = literal && f.target_addr.valid();
}

bool Correlator::may_relay_mail(Method m, std::uint16_t port) const {
    return is_mail_port(port) || (cfg_.content_detection && relays_verbatim(m));
}

void Correlator::set_response(std::uint32_t idx, bool granted, std::uint16_t code, const Segment& seg) {
    Flow& f = flows_[idx];
    add_event(seg.frame, idx, kEvResponse);
    // In a chain the client builds, the first proxy's answer stands unless a
    // later proxy refuses.
    if (!f.via.empty() && granted) return;
    f.status = granted ? Status::Established : Status::Refused;
    f.status_code = code;
    f.response_frame = seg.frame;
    f.response_time = seg.time;
    if (!granted && !f.mail_port) mark_benign(idx);
}

}  // namespace soh
