// Classification: what a new TCP connection is, from its handshake and its
// first bytes (a proxy request, a possible relay leg, a hop of a chain, or
// of no interest), and the proxy connections watched for a later request.
#include <algorithm>
#include <cstring>
#include <string>

#include "correlator.h"
#include "http_parse.h"
#include "socks_parse.h"

namespace soh {

// Drops proxy legs whose window has closed; capture time only moves forward.
void Correlator::prune_awaiting(std::vector<std::uint32_t>& list, const Segment& seg) const {
    list.erase(std::remove_if(list.begin(), list.end(),
                              [&](std::uint32_t p) {
                                  const Flow* f = request_of(p);
                                  return !f || f->benign || std::max(seg.time, now_) > window_end(*f);  // see in_window
                              }),
               list.end());
}

// Only from the handshake, which tells who opened the connection.
std::uint32_t Correlator::classify_hop(const Segment& seg) {
    if (!(seg.flags & kSyn) || awaiting_hop_.empty()) return kSlotUnseen;
    const bool forward = !(seg.flags & kAck);
    const Endpoint& client = forward ? seg.src : seg.dst;
    auto it = awaiting_hop_.find(client.addr);
    if (it == awaiting_hop_.end()) return kSlotUnseen;
    auto& list = it->second;
    prune_awaiting(list, seg);
    std::vector<std::uint32_t> matches;
    matches.reserve(list.size());
    for (auto p : list)
        if (may_be_hop(flows_[p], seg, forward)) matches.push_back(p);
    if (list.empty()) awaiting_hop_.erase(it);
    if (matches.empty()) return kSlotUnseen;
    std::uint32_t idx = new_relay(seg, forward, matches);
    if (idx == kNone) return kSlotIgnored;
    flows_[idx].hop_only = true;  // read once its data starts (tunnel_bytes)
    return kSlotBase + idx;
}

std::uint32_t Correlator::classify(const Segment& seg, std::uint32_t slot) {
    if (slot == kSlotUnseen) {
        // A new connection towards a port a proxy client asked for: maybe the relay leg.
        for (int forward = 1; forward >= 0; --forward) {
            std::uint16_t port = forward ? seg.dst.port : seg.src.port;
            auto it = awaiting_.find(port);
            if (it == awaiting_.end()) continue;
            std::vector<std::uint32_t> matches;
            auto& list = it->second;
            prune_awaiting(list, seg);
            matches.reserve(list.size());  // one allocation, not one per doubling
            for (auto p : list)
                if (may_be_relay(*request_of(p), seg, port, forward != 0)) matches.push_back(p);
            if (list.empty()) awaiting_.erase(it);
            if (matches.empty()) continue;
            if (defers_relay(matches, seg)) {
                if (pending_relays_.displaces(seg.stream)) reached(Cap::PendingRelays);
                PendingRelay& r = pending_relays_.insert(seg.stream);  // bounded: see StreamTable
                r.opening = seg;
                r.opening.data = nullptr;
                r.forward = forward != 0;
                if (matches.size() > cfg_.max_candidates) matches.resize(cfg_.max_candidates + 1);
                r.proxies = std::move(matches);
                note_handshake(seg, slot);
                return kSlotRelayPending;
            }
            // Linked at once (a mail port is asked for): held tunnels among
            // the candidates become flows first.
            std::uint32_t idx = new_relay(seg, forward != 0, open_candidates(matches));
            return idx == kNone ? kSlotIgnored : kSlotBase + idx;
        }
        // A new connection from a proxy that was just asked to reach a mail
        // server: maybe the proxy passing the request to the next proxy of a
        // chain (an upstream it is configured with).
        if (std::uint32_t hop = classify_hop(seg); hop != kSlotUnseen) return hop;
    }
    if (slot == kSlotRelayPending) {
        const std::uint32_t decided = relay_pending(seg);
        if (decided != kSlotPending) return decided;
        slot = kSlotPending;  // no longer a candidate: an ordinary new connection
    }
    if (seg.len == 0) {
        // Remember where the client's data starts, so that a first request
        // segment arriving out of order can wait for the ones before it. A
        // SYN-ACK counts only when the SYN was missed (the stream is new): it
        // then tells who the client is. Otherwise it would only say where the
        // server's data starts, and a server speaking first never makes a
        // proxy request; skipping it keeps every new connection to one
        // segment past the fast path before its data.
        note_handshake(seg, slot);
        return kSlotPending;
    }
    Unclassified* held = unclassified_.find(seg.stream);
    if (!held) return classify_payload(seg, true);
    Unclassified& u = *held;
    const int d = seg.src == u.syn_sender ? 0 : 1;
    if (!u.known[d] || static_cast<std::int32_t>(seg.seq - u.next_seq[d]) <= 0) {
        // In order (or no handshake seen): classify on the bytes we have, in
        // sequence: this segment followed by held ones that continue it.
        std::string prefix;
        Segment probe = seg;
        if (!u.held.empty()) {  // rare: copy only then
            prefix.assign(reinterpret_cast<const char*>(seg.data), seg.len);
            std::uint32_t next = seg.seq + static_cast<std::uint32_t>(seg.len);
            for (bool grown = true; grown && prefix.size() < kClassifyBytes;) {
                grown = false;
                for (const auto& h : u.held) {
                    if (h.seg.seq == next && (h.seg.src == seg.src)) {
                        prefix += h.bytes;
                        next += static_cast<std::uint32_t>(h.bytes.size());
                        grown = true;
                    }
                }
            }
            probe.data = reinterpret_cast<const std::uint8_t*>(prefix.data());
            probe.len = prefix.size();
        }
        std::uint32_t decided = classify_payload(probe, u.held.empty());
        if (decided >= kSlotBase) {
            // Process this segment, then replay the held ones in their frame order.
            slots_[seg.stream] = decided;
            process(decided - kSlotBase, seg);
            replay_held(decided - kSlotBase, seg.stream);
            return kSlotHandled;
        }
        unclassified_.erase(seg.stream);
        return decided;
    }
    // An early segment: hold it (bounded) until the one before it arrives.
    if (u.held_bytes + seg.len > kMaxHeldPerStream || u.held.size() >= 8) {
        unclassified_.erase(seg.stream);
        return classify_payload(seg, false);
    }
    HeldSegment h{seg, std::string(reinterpret_cast<const char*>(seg.data), seg.len)};
    u.held_bytes += seg.len;
    u.held.push_back(std::move(h));
    return kSlotPending;
}

void Correlator::note_handshake(const Segment& seg, std::uint32_t slot) {
    if (!(seg.flags & kSyn) || (slot != kSlotUnseen && (seg.flags & kAck))) return;
    if (unclassified_.displaces(seg.stream)) reached(Cap::Handshakes);
    Unclassified& u = unclassified_.insert(seg.stream);  // bounded: see StreamTable
    const bool from_client = !(seg.flags & kAck);
    if (from_client) u.syn_sender = seg.src;
    const int d = from_client ? 0 : 1;
    u.next_seq[d] = seg.seq + 1;
    u.known[d] = true;
    if (!from_client && u.syn_sender.port == 0) u.syn_sender = seg.dst;
}

// A relay leg can be told from an ordinary connection only by what its
// tunnels do: when they all go to ports that are not mail ports, the choice
// waits for its first data (see PendingRelay). Proxied HTTPS, most of a busy
// proxy's traffic, then costs no relay flow: its tunnel shows TLS before the
// proxy passes the client's first bytes on.
bool Correlator::defers_relay(const std::vector<std::uint32_t>& proxies, const Segment& seg) const {
    if (seg.len != 0 || !(seg.flags & kSyn)) return false;
    return std::all_of(proxies.begin(), proxies.end(), [&](std::uint32_t p) {
        const Flow& f = *request_of(p);
        return !f.mail_port && relays_verbatim(f.method);
    });
}

// A segment of a pending relay leg. Without data it is kept for the replay;
// otherwise the leg becomes the relay flow of the tunnels still open, with
// the candidates and handshake it had (the time window was checked then), or
// kSlotPending: an ordinary connection whose first data is classified.
std::uint32_t Correlator::relay_pending(const Segment& seg) {
    PendingRelay* r = pending_relays_.find(seg.stream);
    if (!r) return kSlotPending;  // its entry was taken by another stream
    if (seg.len == 0 && !(seg.flags & (kFin | kRst))) {
        if (r->handshake.size() < kMaxPendingHandshake) {
            push_few(r->handshake, seg);
            r->handshake.back().data = nullptr;
        }
        note_handshake(seg, kSlotRelayPending);
        return kSlotRelayPending;
    }
    PendingRelay pending = std::move(*r);
    pending_relays_.erase(seg.stream);
    const std::vector<std::uint32_t> open = open_candidates(pending.proxies);
    if (open.empty()) return kSlotPending;
    const std::uint32_t idx = new_relay(pending.opening, pending.forward, open);
    if (idx == kNone) return kSlotIgnored;
    slots_[seg.stream] = kSlotBase + idx;
    process(idx, pending.opening);
    for (const Segment& h : pending.handshake) process(idx, h);
    process(idx, seg);
    return kSlotHandled;
}

// A bare ACK of a pending relay leg, from the fast path: kept as relay_pending
// would keep it.
bool Correlator::pending_ack(StreamId stream, FrameNum frame) {
    PendingRelay* r = pending_relays_.find(stream);
    if (!r) return false;
    ++counters_.segments;
    if (r->handshake.size() < kMaxPendingHandshake) push_few(r->handshake, kept_ack(stream, frame));
    return true;
}

// The relay flow of a connection opened by `opening` (its SYN, or the
// SYN-ACK when forward is false), linked to the proxy legs it may serve.
std::uint32_t Correlator::new_relay(const Segment& opening, bool forward, const std::vector<std::uint32_t>& proxies) {
    const Endpoint& client = forward ? opening.src : opening.dst;
    const Endpoint& server = forward ? opening.dst : opening.src;
    const std::uint32_t idx = new_flow(opening, Role::Relay, client, server);
    unclassified_.erase(opening.stream);
    if (idx == kNone) return kNone;
    add_event(opening.frame, idx, kEvRelayFirst);
    link_candidates(idx, opening, proxies);
    // A host-name target matched through the capture's DNS: that answer is
    // evidence of the pairing.
    for (std::uint32_t p : proxies)
        if (!flows_[p].target_literal) dns_evidence(p, dns_frame_of(flows_[p].target_host, server.addr));
    return idx;
}

// Proxied web browsing: a whole request line in the first segment whose
// request cannot end in mail relay (may_relay_mail). set_request would mark
// the leg benign at once and nothing of it would ever be shown, so it gets no flow:
// most connections to a busy proxy cost no more than a direct one.
bool Correlator::plainly_benign_request(const std::uint8_t* d, std::size_t n) const {
    // A tunnel may carry SMTP to any port: with content detection, its bytes
    // decide (checked before parsing, as most such requests are HTTPS).
    // looks_like_proxy_request saw a method token and a space: a CONNECT
    // (the one such method that relays verbatim) starts with these 8 bytes.
    if (cfg_.content_detection && starts_connect(d, n)) return false;
    const auto* nl = static_cast<const std::uint8_t*>(std::memchr(d, '\n', std::min<std::size_t>(n, kMaxHttpLine)));
    if (!nl) return false;  // split or overlong: the parser decides
    const auto req = parse_request_line(std::string_view(reinterpret_cast<const char*>(d), static_cast<std::size_t>(nl - d)));
    if (!req) return false;
    const auto target = proxy_target(*req);
    return target && !may_relay_mail(method_of(req->method), target->port);
}

std::uint32_t Correlator::classify_payload(const Segment& seg, bool may_hold) {
    if (looks_like_proxy_request(seg.data, seg.len)) {
        if (plainly_benign_request(seg.data, seg.len)) {
            watch(seg.stream, seg.src);
            return kSlotProxyWeb;
        }
        if (may_hold && hold_tunnel(seg)) return kSlotTunnelHeld;
        std::uint32_t idx = new_flow(seg, Role::Proxy, seg.src, seg.dst);
        return idx == kNone ? kSlotIgnored : kSlotBase + idx;
    }
    if (looks_like_socks(seg.data, seg.len)) {
        std::uint32_t idx = new_flow(seg, Role::Proxy, seg.src, seg.dst);
        if (idx == kNone) return kSlotIgnored;
        begin_request(flows_[idx], seg.data, seg.len);
        return kSlotBase + idx;
    }
    return kSlotIgnored;
}

void Correlator::replay_held(std::uint32_t idx, StreamId stream) {
    Unclassified* u = unclassified_.find(stream);
    if (!u) return;
    std::vector<HeldSegment> held = std::move(u->held);
    unclassified_.erase(stream);
    std::sort(held.begin(), held.end(),
              [](const HeldSegment& a, const HeldSegment& b) { return a.seg.frame < b.seg.frame; });
    for (auto& h : held) {
        h.seg.data = reinterpret_cast<const std::uint8_t*>(h.bytes.data());
        process(idx, h.seg);
    }
}

// RFC 9112 §9.3: a connection carries one request after another. A proxy
// connection whose requests so far were of no interest (web pages fetched
// through the proxy, a refused CONNECT) is watched: each client segment
// that starts with a request line that may end in mail relay makes the
// connection a flow from that request on. Clients write a request from its
// start; a request line that does not start a segment is not seen.
void Correlator::watch(StreamId stream, const Endpoint& client) {
    if (const auto other = web_clients_.displaces(stream)) {
        slots_[*other] = kSlotIgnored;
        reached(Cap::Watched);
    }
    web_clients_.insert(stream) = client;
    slots_[stream] = kSlotProxyWeb;
}

bool Correlator::starts_request(const std::uint8_t* data, std::size_t len) {
    return looks_like_proxy_request(data, len);
}

void Correlator::web_segment(const Segment& seg) {
    const Endpoint* client = web_clients_.find(seg.stream);
    if (!client) {
        slots_[seg.stream] = kSlotIgnored;
        return;
    }
    if (!seg.len || seg.src != *client || !looks_like_proxy_request(seg.data, seg.len)) return;
    const std::uint32_t slot = classify_payload(seg, true);
    if (slot == kSlotProxyWeb) return;  // another request of no interest
    slots_[seg.stream] = slot;
    if (slot >= kSlotBase) process(slot - kSlotBase, seg);
}

// A benign proxy leg whose connection may still carry a request: it was
// not a tunnel that opened (whose bytes are then content, not requests).
bool Correlator::may_request_again(const Flow& f) const {
    return f.role == Role::Proxy && f.request_frame && !f.tunnel_data &&
           !(relays_verbatim(f.method) && f.status == Status::Established);
}

}  // namespace soh
