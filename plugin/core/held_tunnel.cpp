// Held tunnels (see Correlator::HeldTunnel): a CONNECT to a port that is not
// a mail port costs no flow until its first bytes say it may carry mail.
//
// Nothing is decided here that the full path would decide otherwise: a
// tunnel is dropped only where the full path marks it benign before it has
// shown anything (a refusal, set_response; TLS or binary first bytes that
// start no chain, tunnel_bytes), and anything the few checks below do not
// recognise promotes it, replaying its segments into the flow it would have
// been from its request on.
#include <cstring>

#include "correlator.h"
#include "http_parse.h"
#include "socks_parse.h"

namespace soh {
namespace {

// Where an HTTP head ends: after its first empty line, with lines ending at
// LF and a CR before it dropped, as LineAssembler reads them (RFC 9112 §2.2
// tolerates the bare LF). 0 when the bytes hold no empty line.
std::size_t head_end(const std::uint8_t* d, std::size_t n) {
    const std::uint8_t* const end = d + n;
    for (const std::uint8_t* p = d; p < end;) {
        const auto* nl = static_cast<const std::uint8_t*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
        if (!nl) return 0;
        p = nl + 1;
        if (p < end && *p == '\n') return static_cast<std::size_t>(p + 1 - d);
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') return static_cast<std::size_t>(p + 2 - d);
    }
    return 0;
}

// The first line of a head that head_end found (so it has an LF).
std::string_view first_line(const std::uint8_t* d, std::size_t n) {
    const auto* nl = static_cast<const std::uint8_t*>(std::memchr(d, '\n', n));
    return std::string_view(reinterpret_cast<const char*>(d), static_cast<std::size_t>(nl - d));
}

}  // namespace

// A request head whole in its segment, nothing after it: the common CONNECT
// of a browser. Lines http_client would flag or read another way (extra
// tokens, no version, hence no header block) take the full path.
bool Correlator::hold_tunnel(const Segment& seg) {
    const std::uint8_t* d = seg.data;
    const std::size_t n = seg.len;
    if (!cfg_.content_detection || !cfg_.hold_tunnels || n > kMaxHeldTunnelBytes || !starts_connect(d, n) || head_end(d, n) != n)
        return false;
    const auto req = parse_request_line(first_line(d, n));
    if (!req || req->extra_tokens || req->version.empty()) return false;
    const auto target = proxy_target(*req);
    if (!target || is_mail_port(target->port)) return false;
    // The table never forgets a tunnel: one it would displace becomes a flow.
    if (const auto other = held_tunnels_.displaces(seg.stream)) promote_tunnel(*other, nullptr);
    HeldTunnel& h = held_tunnels_.insert(seg.stream);
    Flow& f = h.request;
    f.stream = seg.stream;
    f.client = seg.src;
    f.server = seg.dst;
    f.first_frame = seg.frame;
    f.method = Method::Connect;
    set_target(f, target->host, target->port, target->ip_literal);
    f.request_frame = f.target_frame = seg.frame;
    f.request_time = seg.time;
    h.next_client_seq = seg.seq + static_cast<std::uint32_t>(n);
    // Room for the proxy's answer too ("HTTP/1.1 200 Connection established"
    // and a header or two): one allocation per tunnel rather than two.
    h.bytes.reserve(n + 128);
    keep(h, seg);
    awaiting_[target->port].push_back(kHeldTag | seg.stream);
    return true;
}

void Correlator::keep(HeldTunnel& h, const Segment& seg) {
    HeldTunnel::Item item{seg, static_cast<std::uint32_t>(h.bytes.size())};
    item.seg.data = nullptr;
    if (seg.len) h.bytes.append(reinterpret_cast<const char*>(seg.data), seg.len);
    push_few(h.segs, item);
}

void Correlator::tunnel_held(const Segment& seg) {
    HeldTunnel* h = held_tunnels_.find(seg.stream);
    if (!h) {  // not reached: a tunnel leaves the table only through drop or promote
        slots_[seg.stream] = kSlotIgnored;
        return;
    }
    Flow& req = h->request;
    const bool from_client = seg.src == req.client;
    const bool room = h->segs.size() < kMaxHeldTunnelSegments && h->bytes.size() + seg.len <= kMaxHeldTunnelBytes;
    if (room && !(seg.flags & (kSyn | kFin | kRst))) {
        if (seg.len == 0) return keep(*h, seg);
        const bool answered = req.response_frame != 0;
        if (!from_client && !answered && head_end(seg.data, seg.len) == seg.len) {
            const auto st = parse_status_line(first_line(seg.data, seg.len));
            if (st && st->code >= 300) return drop_tunnel(seg.stream, true);  // refused (RFC 9110 §9.3.6)
            if (st && st->code >= 200) {
                req.response_frame = seg.frame;
                req.response_time = seg.time;
                req.status = Status::Established;
                req.status_code = static_cast<std::uint16_t>(st->code);
                return keep(*h, seg);
            }
        } else if (from_client && answered && seg.seq == h->next_client_seq) {
            // The tunnel's first bytes, in order: what tunnel_bytes would mark benign.
            if (!looks_like_proxy_request(seg.data, seg.len) && !looks_like_socks(seg.data, seg.len) &&
                SmtpSession::opening(true, seg.data, seg.len) != SmtpSession::Opening::Text)
                return drop_tunnel(seg.stream, false);
        }
    }
    promote_tunnel(seg.stream, &seg);
}

// A bare ACK on the fast path; past the bound, on_segment promotes the tunnel.
bool Correlator::held_ack(StreamId stream, FrameNum frame) {
    HeldTunnel* h = held_tunnels_.find(stream);
    if (!h || h->segs.size() >= kMaxHeldTunnelSegments) return false;
    ++counters_.segments;
    push_few(h->segs, HeldTunnel::Item{kept_ack(stream, frame), 0});
    return true;
}

// A refused tunnel's client may ask again on the connection (a 407, then
// credentials): it is watched. A tunnel carrying TLS is done with requests.
void Correlator::drop_tunnel(StreamId stream, bool refused) {
    const Endpoint client = held_tunnels_.find(stream)->request.client;
    held_tunnels_.erase(stream);  // its awaiting_ entry goes at the next prune
    if (refused)
        watch(stream, client);
    else
        slots_[stream] = kSlotIgnored;
}

// The flow of a held tunnel, built as classify would have built it at the
// request, then fed what was held and, if given, the segment at hand.
std::uint32_t Correlator::promote_tunnel(StreamId stream, const Segment* current) {
    HeldTunnel* found = held_tunnels_.find(stream);
    if (!found) return kNone;
    const HeldTunnel h = std::move(*found);
    held_tunnels_.erase(stream);
    const Segment& request = h.segs.front().seg;
    const std::uint32_t idx = new_flow(request, Role::Proxy, request.src, request.dst);
    if (idx == kNone) {
        slots_[stream] = kSlotIgnored;
        return kNone;
    }
    slots_[stream] = kSlotBase + idx;
    for (const HeldTunnel::Item& item : h.segs) {
        Segment s = item.seg;
        if (s.len) s.data = reinterpret_cast<const std::uint8_t*>(h.bytes.data()) + item.offset;
        process(idx, s);
    }
    if (current) process(idx, *current);
    return idx;
}

const Flow* Correlator::request_of(std::uint32_t id) const {
    if (!(id & kHeldTag)) return &flows_[id];
    const HeldTunnel* h = held_tunnels_.find(id & ~kHeldTag);
    return h ? &h->request : nullptr;
}

std::uint32_t Correlator::candidate_flow(std::uint32_t id) {
    if (!(id & kHeldTag)) return id;
    const StreamId stream = id & ~kHeldTag;
    if (held_tunnels_.find(stream)) return promote_tunnel(stream, nullptr);
    const std::uint32_t slot = stream < slots_.size() ? slots_[stream] : kSlotUnseen;
    return slot >= kSlotBase ? slot - kSlotBase : kNone;  // promoted before, or dropped
}

std::vector<std::uint32_t> Correlator::open_candidates(const std::vector<std::uint32_t>& ids) {
    std::vector<std::uint32_t> open;
    open.reserve(ids.size());
    for (std::uint32_t id : ids)
        if (const std::uint32_t f = candidate_flow(id); f != kNone && !flows_[f].benign) open.push_back(f);
    return open;
}

}  // namespace soh
