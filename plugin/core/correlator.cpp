#include "correlator.h"

#include <algorithm>
#include <cstring>

#include "ascii.h"
#include "http_parse.h"
#include "socks_parse.h"

namespace soh {
namespace {

// Client-side phases of a proxy leg.
enum ClientPhase : std::uint8_t { kReqLine, kHeaders, kBody, kTunnel, kSocks, kIgnore };
// Server-side phases of a proxy leg.
enum ServerPhase : std::uint8_t { kIdle, kStatus, kRespHeaders, kSTunnel, kSocksReply, kRawAnswer, kSIgnore };

// DNS names compare case-insensitively (RFC 4343), with or without the root dot.
std::string dns_key(std::string_view name) {
    std::string key;
    key.reserve(name.size());
    for (char c : name) key += ascii::lower(c);
    while (!key.empty() && key.back() == '.') key.pop_back();
    return key;
}

Method method_of(const std::string& m) {
    if (m == "CONNECT") return Method::Connect;
    if (m == "POST") return Method::Post;
    if (m == "GET") return Method::Get;
    if (m == "PUT") return Method::Put;
    return Method::Other;
}

}  // namespace

const char* method_name(Method m) {
    switch (m) {
        case Method::Connect: return "CONNECT";
        case Method::Post: return "POST";
        case Method::Get: return "GET";
        case Method::Put: return "PUT";
        case Method::Other: return "OTHER";
        case Method::Socks4: return "SOCKS4";
        case Method::Socks4a: return "SOCKS4a";
        case Method::Socks5: return "SOCKS5";
    }
    return "?";
}

const char* status_name(Status s) {
    switch (s) {
        case Status::NoResponse: return "no-response";
        case Status::Established: return "established";
        case Status::Refused: return "refused";
    }
    return "?";
}

const char* pairing_name(Pairing p) {
    switch (p) {
        case Pairing::Unique: return "unique";
        case Pairing::Ambiguous: return "ambiguous";
        case Pairing::None: return "none";
        case Pairing::Tentative: return "tentative";
    }
    return "?";
}

Correlator::Correlator(Config cfg) : cfg_(std::move(cfg)), mail_port_(65536, false) {
    cfg_.max_flows = std::min<std::size_t>(cfg_.max_flows, kHeldTag);
    cfg_.max_streams = std::min<std::size_t>(cfg_.max_streams, kHeldTag);
    for (auto p : cfg_.mail_ports) mail_port_[p] = true;
}

bool Correlator::is_mail_port(std::uint16_t port) const { return mail_port_[port]; }

bool Correlator::grow_slots(StreamId stream) {
    if (stream >= cfg_.max_streams) return false;
    if (stream >= slots_.size())
        slots_.resize(std::min<std::size_t>(cfg_.max_streams, std::max<std::size_t>(stream + 1, slots_.size() * 2)),
                      kSlotUnseen);
    return true;
}

// The frame-to-stream map behind frame_flow, past its current end: bounded
// like the frame notes.
void Correlator::note_stream(FrameNum frame, StreamId stream) {
    if (frame >= cfg_.max_frame_notes) return;
    frame_stream_.resize(std::min<std::size_t>(cfg_.max_frame_notes,
                                               std::max<std::size_t>(frame + 1, frame_stream_.size() * 2)));
    frame_stream_[frame] = stream + 1;
}

void Correlator::on_segment(const Segment& seg) {
    ++counters_.segments;
    if (seg.time > now_) now_ = seg.time;
    if (seg.frame < frame_stream_.size())
        frame_stream_[seg.frame] = seg.stream + 1;
    else
        note_stream(seg.frame, seg.stream);
    if (!grow_slots(seg.stream)) return;
    if (__builtin_expect(!decrypted_.empty(), 0)) {
        if (close_pending_ && close_.frame != seg.frame) flush_close();
        if (decrypted_.count(seg.stream)) return ciphertext(seg);
    }
    dispatch(seg);
}

void Correlator::dispatch(const Segment& seg) {
    std::uint32_t slot = slots_[seg.stream];
    if (slot == kSlotIgnored) return;  // the benign fast path
    if (slot == kSlotTunnelHeld) return tunnel_held(seg);
    if (slot < kSlotBase) {
        slot = classify(seg, slot);
        if (slot == kSlotHandled) return;  // classified and processed with held segments
        slots_[seg.stream] = slot;
        if (slot < kSlotBase) {
            if (slot == kSlotIgnored) unclassified_.erase(seg.stream);
            return;
        }
    }
    process(slot - kSlotBase, seg);
}

// Drops proxy legs whose window has closed; capture time only moves forward.
void Correlator::prune_awaiting(std::vector<std::uint32_t>& list, const Segment& seg) const {
    list.erase(std::remove_if(list.begin(), list.end(),
                              [&](std::uint32_t p) {
                                  const Flow* f = request_of(p);
                                  const double t = std::max(seg.time, now_);  // see in_window
                                  return !f || f->benign || t > f->request_time + cfg_.pair_window ||
                                         (f->response_frame && t > f->response_time + cfg_.slack);
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
            for (auto p : list)
                if (may_be_relay(*request_of(p), seg, port, forward != 0)) matches.push_back(p);
            if (list.empty()) awaiting_.erase(it);
            if (matches.empty()) continue;
            if (defers_relay(matches, seg)) {
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
            for (bool grown = true; grown && prefix.size() < 64;) {
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
    const auto* nl = static_cast<const std::uint8_t*>(std::memchr(d, '\n', std::min<std::size_t>(n, 4096)));
    if (!nl) return false;  // split or overlong: the parser decides
    const auto req = parse_request_line(std::string_view(reinterpret_cast<const char*>(d), static_cast<std::size_t>(nl - d)));
    if (!req) return false;
    const auto target = proxy_target(*req);
    return target && !may_relay_mail(method_of(req->method), target->port);
}

std::uint32_t Correlator::classify_payload(const Segment& seg, bool may_hold) {
    if (looks_like_proxy_request(seg.data, seg.len)) {
        if (plainly_benign_request(seg.data, seg.len)) return kSlotIgnored;
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

std::uint32_t Correlator::new_flow(const Segment& seg, Role role, const Endpoint& client,
                                   const Endpoint& server) {
    if (flows_.size() >= cfg_.max_flows) {
        ++counters_.untracked;
        if (!table_full_noted_) {
            table_full_noted_ = true;
            add_event(seg.frame, kNone, kEvTableFull);
        }
        return kNone;
    }
    auto idx = static_cast<std::uint32_t>(flows_.size());
    flows_.emplace_back();
    Flow& f = flows_.back();
    f.stream = seg.stream;
    f.role = role;
    f.client = client;
    f.server = server;
    f.first_frame = seg.frame;
    f.first_time = seg.time;
    f.live = std::make_unique<LiveState>();
    ++counters_.flows;
    ++live_count_;
    live_order_.push_back(idx);
    enforce_live_cap(idx);
    return idx;
}

// Parser memory of a flow, re-counted after each of its segments.
void Correlator::account(std::uint32_t idx) {
    Flow& f = flows_[idx];
    std::size_t now = 0;
    if (f.live) {
        const LiveState& lv = *f.live;
        now = sizeof(LiveState) + lv.dir[0].held_bytes() + lv.dir[1].held_bytes() + lv.http[0].memory() +
              lv.http[1].memory() + lv.socks[0].capacity() + lv.socks[1].capacity();
        if (f.smtp) now += f.smtp->buffer_memory();
    }
    live_bytes_ = live_bytes_ - f.live_bytes + now;
    f.live_bytes = now;
    if (live_bytes_ > cfg_.max_live_bytes) enforce_live_cap(idx);
}

void Correlator::enforce_live_cap(std::uint32_t keep) {
    while ((live_count_ > cfg_.max_live_flows || live_bytes_ > cfg_.max_live_bytes) &&
           live_head_ < live_order_.size()) {
        std::uint32_t victim = live_order_[live_head_++];
        Flow& f = flows_[victim];
        if (!f.live) continue;
        if (victim == keep) {
            live_order_.push_back(victim);
            continue;
        }
        release(victim);
        f.evicted = true;
        ++counters_.evicted;
    }
    // Keep the order list from growing with released entries.
    if (live_head_ > 4096 && live_head_ * 2 > live_order_.size()) {
        live_order_.erase(live_order_.begin(), live_order_.begin() + static_cast<std::ptrdiff_t>(live_head_));
        live_head_ = 0;
    }
}

void Correlator::release(std::uint32_t idx) {
    Flow& f = flows_[idx];
    if (f.live) {
        f.live.reset();
        --live_count_;
    }
    if (f.smtp) f.smtp->release_buffers();
    live_bytes_ -= f.live_bytes;
    f.live_bytes = 0;
    f.closed = true;
}

FrameNote* Correlator::note_slot(FrameNum frame) {
    if (!notes_.empty() && notes_.back().frame == frame) return &notes_.back();
    if (notes_.size() >= cfg_.max_frame_notes) {
        if (!notes_overflow_) notes_overflow_ = frame;
        ++counters_.notes_dropped;
        return nullptr;
    }
    if (notes_.empty() || notes_.back().frame < frame) {
        notes_.push_back(FrameNote{frame, kNone, 0});
        last_noted_ = frame;
        return &notes_.back();
    }
    // An earlier frame (a held segment replayed): insert in order; it is near the end.
    auto it = std::lower_bound(notes_.begin(), notes_.end(), frame,
                               [](const FrameNote& n, FrameNum f) { return n.frame < f; });
    if (it != notes_.end() && it->frame == frame) return &*it;
    return &*notes_.insert(it, FrameNote{frame, kNone, 0});
}

void Correlator::record_frame(FrameNum frame, std::uint32_t flow) {
    FrameNote* n = note_slot(frame);
    if (n && n->flow == kNone) n->flow = flow;
}

void Correlator::add_event(FrameNum frame, std::uint32_t flow, std::uint16_t ev) {
    FrameNote* n = note_slot(frame);
    if (!n) return;
    if (n->flow == kNone) n->flow = flow;
    n->events |= ev;
}

const FrameNote* Correlator::note_search(FrameNum frame) const {
    const auto it = std::lower_bound(notes_.begin(), notes_.end(), frame,
                                     [](const FrameNote& a, FrameNum f) { return a.frame < f; });
    note_hint_ = static_cast<std::size_t>(it - notes_.begin());
    if (it == notes_.end() || it->frame != frame) return nullptr;
    ++note_hint_;
    return &*it;
}

// The fast path's segments without data, out of line: most frames are of
// ignored streams, and need none of this.
bool Correlator::empty_segment(std::uint32_t slot, StreamId stream, std::uint16_t flags, FrameNum frame) {
    if (slot == kSlotPending) return (flags & (kSyn | kAck)) != kSyn;
    if (flags & (kSyn | kFin | kRst)) return false;
    if (slot >= kSlotBase) return bare_ack(slot - kSlotBase, frame);
    if (slot == kSlotTunnelHeld) return held_ack(stream, frame);
    return slot == kSlotRelayPending && pending_ack(stream, frame);
}

// What process does with a bare ACK of a live flow, without a Segment: the
// fast path takes these (most segments of the proxy legs that turn out to
// carry HTTPS).
bool Correlator::bare_ack(std::uint32_t idx, FrameNum frame) {
    Flow& f = flows_[idx];
    if (!f.live) return false;  // process notes an eviction
    ++counters_.segments;
    record_frame(frame, idx);
    f.last_frame = frame;
    return true;
}

void Correlator::process(std::uint32_t idx, const Segment& seg) {
    record_frame(seg.frame, idx);
    Flow& f = flows_[idx];
    f.last_frame = seg.frame;
    if (!f.live) {
        if (f.evicted && !f.eviction_noted) {
            f.eviction_noted = true;
            add_event(seg.frame, idx, kEvEvicted);
        }
        return;
    }
    // A bare ACK (most segments of a tracked connection without data) only
    // belongs to the flow: no bytes, no state change (see bare_ack).
    if (seg.len == 0 && !(seg.flags & (kSyn | kFin | kRst))) return;
    const bool from_client = seg.src == f.client;
    const int d = from_client ? 0 : 1;
    f.live->dir[d].add(
        seg.seq, (seg.flags & kSyn) != 0, seg.data, seg.len,
        [&](const std::uint8_t* p, std::size_t n) {
            if (flows_[idx].role == Role::Relay) {
                tunnel_bytes(idx, from_client, p, n, seg);
            } else {
                proxy_bytes(idx, from_client, p, n, seg);
            }
        },
        [&] {
            add_event(seg.frame, idx, kEvGap);
            Flow& g = flows_[idx];
            if (g.smtp) g.smtp->gap(from_client);
            if (g.live) g.live->http[d].reset();
        });
    Flow& g = flows_[idx];  // no flow is created above, but stay explicit
    if (g.live) {
        if ((seg.flags & (kFin | kRst)) && !g.live->fin[0] && !g.live->fin[1] && !from_client) {
            g.server_closed_first = true;
            // An absolute-URI relay's mail server hanging up on the HTTP lines
            // before answering any command of the body.
            if (g.role == Role::Relay && g.smtp && g.smtp->replies_to_smtp() == 0 && g.smtp->replies_to_other() > 0)
                add_event(seg.frame, idx, kEvServerDropped);
        }
        if (seg.flags & kFin) g.live->fin[d] = true;
        if ((seg.flags & kRst) || (g.live->fin[0] && g.live->fin[1])) g.release_pending = true;
    }
    if (g.release_pending) {
        g.release_pending = false;
        release(idx);
        if (!g.tunnels.empty()) content_changed(idx);  // a closed relay is final evidence
    }
    if (g.benign) slots_[g.stream] = kSlotIgnored;
    account(idx);
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
                lv.socks[0].append(reinterpret_cast<const char*>(d), std::min<std::size_t>(n, 2048));
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
                lv.socks[1].append(reinterpret_cast<const char*>(d), std::min<std::size_t>(n, 2048));
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
            set_request(idx, m, target->host, target->port, target->ip_literal, seg);
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
                if (c < '0' || c > '9' || n > (1ULL << 40)) break;
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

void Correlator::socks_bytes(std::uint32_t idx, bool from_client, const Segment& seg) {
    Flow& f = flows_[idx];
    LiveState& lv = *f.live;
    std::string& buf = lv.socks[from_client ? 0 : 1];
    const auto* p = reinterpret_cast<const std::uint8_t*>(buf.data());
    if (from_client) {
        SocksRequest r = parse_socks_request(p, buf.size());
        if (r.state == ParseState::NeedMore && buf.size() < 1024) return;
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
    if (r.state == ParseState::NeedMore && buf.size() < 1024) return;
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

void Correlator::set_request(std::uint32_t idx, Method m, std::string_view host, std::uint16_t port,
                             bool literal, const Segment& seg) {
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

void Correlator::tunnel_bytes(std::uint32_t idx, bool from_client, const std::uint8_t* d, std::size_t n,
                              const Segment& seg) {
    Flow& f = flows_[idx];
    if (f.benign) return;
    if (f.live && !f.live->tunnel_started) {
        if (from_client && starts_chain(f, d, n)) {
            if (f.role == Role::Relay) {
                // The relay leg is itself a proxy request: the next hop of a chain.
                f.role = Role::Proxy;
                f.hop = true;
                f.hop_only = false;  // confirmed
            } else {
                f.via.push_back(Hop{f.method, f.target_host, f.target_port});
            }
            begin_request(f, d, n);
            proxy_bytes(idx, true, d, n, seg);
            return;
        }
        if (f.hop_only) {
            drop_hop_candidate(idx);
            return;
        }
        f.live->tunnel_started = true;
        f.tunnel_data = true;
    }
    if (f.role == Role::Proxy && !f.mail_port) {
        if (!cfg_.content_detection) return;
        // A tunnel to another port opening with TLS or binary bytes (most
        // proxied HTTPS): benign at once, without building a session.
        if (!f.smtp && SmtpSession::opening(from_client, d, n) != SmtpSession::Opening::Text) {
            mark_benign(idx);
            return;
        }
    }
    if (!f.smtp) f.smtp = std::make_unique<SmtpSession>();
    SmtpSession& s = *f.smtp;
    const bool had_smtp = s.smtp_seen();
    const bool had_tls = s.tls_first();
    const std::size_t before = s.stamps(true).size() + s.stamps(false).size();
    s.feed(from_client, d, n, seg.frame, seg.time);
    if (f.role == Role::Proxy) {
        if (!had_smtp && s.smtp_seen()) add_event(seg.frame, idx, kEvSmtpFirst);
        if (!had_tls && s.tls_first()) add_event(seg.frame, idx, kEvEncrypted);
    }
    if (s.starttls_frame() == seg.frame && s.envelope().starttls) add_event(seg.frame, idx, kEvStartTls);
    if (f.role == Role::Proxy && !f.mail_port && s.not_smtp() && !s.smtp_seen()) {
        mark_benign(idx);
        return;
    }
    if (s.stamps(true).size() + s.stamps(false).size() != before) content_changed(idx);
}

// A connection from the proxy taken for the next hop of a chain that does not
// start with a proxy request: unrelated, forget it.
void Correlator::drop_hop_candidate(std::uint32_t idx) {
    Flow& f = flows_[idx];
    std::vector<std::uint32_t> work;
    for (std::size_t i = 0; i < f.tunnels.size(); ++i) {
        flows_[f.tunnels[i]].links[f.tunnel_links[i]].mismatch = true;
        work.push_back(f.tunnels[i]);
    }
    // Released once the segment is processed (we may be inside its reassembler).
    f.benign = true;
    f.release_pending = true;
    settle(work);
}

void Correlator::mark_benign(std::uint32_t idx) {
    Flow& f = flows_[idx];
    if (f.mail_port || f.benign) return;
    f.benign = true;
    f.release_pending = true;
    // Nothing of a benign leg is ever shown: keep no SMTP state for it, so
    // memory follows suspect legs, not the proxy's ordinary traffic. (Callers
    // return right after this; the SMTP session is not in use.)
    f.smtp.reset();
    // A relay it took as its only candidate goes back to the other legs.
    if (f.paired != kNone) {
        std::vector<std::uint32_t> work{idx};
        settle(work);
    }
    // Relay candidates that only this kind of leg could explain are of no interest.
    for (const Link& l : f.links) {
        Flow& r = flows_[l.relay];
        bool all_benign = std::all_of(r.tunnels.begin(), r.tunnels.end(),
                                      [&](std::uint32_t t) { return flows_[t].benign; });
        if (all_benign) {
            release(l.relay);
            r.smtp.reset();
            slots_[r.stream] = kSlotIgnored;
        }
    }
}

void Correlator::on_dns(std::string_view name, const std::vector<Addr>& addrs, FrameNum frame) {
    std::string key = dns_key(name);
    if (key.empty() || addrs.empty()) return;
    auto it = dns_.find(key);
    if (it == dns_.end()) {
        if (dns_.size() >= cfg_.max_dns_names) return;
        it = dns_.emplace(key, DnsName{}).first;
    }
    DnsName& d = it->second;
    for (const Addr& a : addrs) {
        if (d.addrs.size() >= 16) break;
        if (std::find(d.addrs.begin(), d.addrs.end(), a) == d.addrs.end()) {
            d.addrs.push_back(a);
            d.frames.push_back(frame);
        }
    }
    // Requests that waited for this name: their target's address, and its evidence.
    if (auto w = dns_wait_.find(key); w != dns_wait_.end()) {
        const std::vector<std::uint32_t> waiting = std::move(w->second);
        dns_wait_.erase(w);
        for (std::uint32_t idx : waiting) {
            Flow& f = flows_[idx];
            if (f.target_literal || f.resolved_addr.valid() || dns_key(f.target_host) != key) continue;
            f.resolved_addr = d.addrs.front();
            dns_evidence(idx, d.frames.front());
        }
    }
}

const std::vector<Addr>* Correlator::resolve(const std::string& host) const {
    auto it = dns_.find(dns_key(host));
    return it == dns_.end() ? nullptr : &it->second.addrs;
}

FrameNum Correlator::dns_frame_of(const std::string& host, const Addr& addr) const {
    auto it = dns_.find(dns_key(host));
    if (it == dns_.end()) return 0;
    const DnsName& d = it->second;
    for (std::size_t i = 0; i < d.addrs.size(); ++i)
        if (d.addrs[i] == addr) return d.frames[i];
    return 0;
}

// The answer's frame joins the incident of this proxy leg (the first such
// leg keeps it: a frame names one incident).
void Correlator::dns_evidence(std::uint32_t proxy, FrameNum frame) {
    if (!frame) return;
    Flow& f = flows_[proxy];
    if (!f.dns_frame || frame < f.dns_frame) f.dns_frame = frame;
    add_event(frame, proxy, kEvDns);
}

// A mail-port request for a host name: its address is the capture's first
// answer for it, now or when one comes (bounded like the DNS table).
void Correlator::await_dns(std::uint32_t idx) {
    Flow& f = flows_[idx];
    if (f.resolved_addr.valid()) return;
    const std::string key = dns_key(f.target_host);
    if (key.empty()) return;
    if (auto it = dns_.find(key); it != dns_.end()) {
        f.resolved_addr = it->second.addrs.front();
        dns_evidence(idx, it->second.frames.front());
        return;
    }
    auto w = dns_wait_.find(key);
    if (w == dns_wait_.end()) {
        if (dns_wait_.size() >= cfg_.max_dns_names) return;
        w = dns_wait_.emplace(key, std::vector<std::uint32_t>{}).first;
    }
    if (w->second.size() < cfg_.max_candidates) w->second.push_back(idx);
}

}  // namespace soh
