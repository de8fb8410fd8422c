// Pairing a proxy leg with its relay leg.
//
// Evidence, strongest last:
//  1. address: the relay goes to the requested target (the literal address,
//     or an address the capture's DNS answers gave for the name); when the
//     name never resolved in the capture, it must come from the proxy's address;
//  2. time: it opens after the request and, once the proxy has answered,
//     not after that answer (a proxy connects before it says 200);
//  3. content: a proxy relays bytes verbatim, so the lines of each direction
//     are equal on both legs, in the same order, the client's appearing on the
//     relay after the tunnel and the server's on the tunnel after the relay.
// A candidate is dropped only on contrary evidence; if several remain the
// pairing is "ambiguous" and lists them. A relay taken by one proxy leg as
// its only candidate is excluded from the others (one relay per request);
// a leg that turns out benign takes none and gives back what it took.
#include <algorithm>

#include "correlator.h"

namespace soh {
// Capture time as the engine has seen it, never going back: a segment
// stamped earlier than one already seen (clocks of merged captures, NIC
// queues) is judged at the newest time seen, so that a window, once over,
// stays over (what a single pass relies on, finality.cpp).
bool Correlator::in_window(const Flow& p, const Segment& seg) const {
    if (p.role != Role::Proxy || p.benign || !p.request_frame || p.stream == seg.stream) return false;
    const double t = std::max(seg.time, now_);
    if (t < p.request_time - cfg_.slack) return false;
    if (t > p.request_time + cfg_.pair_window) return false;
    return !(p.response_frame && t > p.response_time + cfg_.slack);
}

bool Correlator::may_be_relay(const Flow& p, const Segment& seg, std::uint16_t port, bool forward) const {
    if (p.target_port != port || !in_window(p, seg)) return false;
    const Endpoint& rc = forward ? seg.src : seg.dst;
    const Endpoint& rs = forward ? seg.dst : seg.src;
    // The client reaching the target directly is not a relay.
    if (rc.addr == p.client.addr && rc.addr != p.server.addr) return false;
    if (p.target_literal) return p.target_addr == rs.addr;
    if (const auto* addrs = resolve(p.target_host))
        return std::find(addrs->begin(), addrs->end(), rs.addr) != addrs->end();
    return rc.addr == p.server.addr;
}

// The next proxy of a chain the proxy is configured with: a connection from
// the proxy's own address, opened in the request's window, that then carries
// a proxy request (checked on its first bytes, see tunnel_bytes).
bool Correlator::may_be_hop(const Flow& p, const Segment& seg, bool forward) const {
    if (!relays_verbatim(p.method) || !in_window(p, seg)) return false;
    const Endpoint& rc = forward ? seg.src : seg.dst;
    const Endpoint& rs = forward ? seg.dst : seg.src;
    return rc.addr == p.server.addr && rs.addr != p.client.addr;
}

void Correlator::link_candidates(std::uint32_t relay_idx, const Segment& seg,
                                 const std::vector<std::uint32_t>& proxies) {
    std::vector<std::uint32_t> work;
    for (std::uint32_t p : proxies) {
        Flow& pf = flows_[p];
        if (pf.links.size() >= cfg_.max_candidates || flows_[relay_idx].tunnels.size() >= cfg_.max_candidates) {
            if (!pf.candidates_capped) add_event(seg.frame, relay_idx, kEvCandidatesCapped);
            pf.candidates_capped = true;
            continue;
        }
        pf.links.push_back(Link{relay_idx});
        flows_[relay_idx].tunnels.push_back(p);
        flows_[relay_idx].tunnel_links.push_back(static_cast<std::uint32_t>(pf.links.size() - 1));
        work.push_back(p);
    }
    settle(work);
}

void Correlator::evaluate(Flow& p, Link& link) {
    if (link.mismatch || !relays_verbatim(p.method)) return;
    const Flow& r = flows_[link.relay];
    if (!p.smtp || !r.smtp) return;
    for (int dir = 0; dir < 2; ++dir) {
        const bool client = dir == 0;
        const auto& a = p.smtp->stamps(client);
        const auto& b = r.smtp->stamps(client);
        std::uint8_t& checked = client ? link.checked_client : link.checked_server;
        const std::size_t n = std::min(a.size(), b.size());
        for (std::size_t i = checked; i < n; ++i) {
            bool order_ok = client ? b[i].time + cfg_.slack >= a[i].time : a[i].time + cfg_.slack >= b[i].time;
            if (a[i].hash != b[i].hash || !order_ok) {
                link.mismatch = true;
                return;
            }
            if (link.matched < 255) ++link.matched;
        }
        checked = static_cast<std::uint8_t>(n);
    }
}

void Correlator::content_changed(std::uint32_t idx) {
    Flow& f = flows_[idx];
    std::vector<std::uint32_t>& work = content_work_;
    work.clear();  // settle empties it; not if an exception cut the last one short
    if (f.role == Role::Proxy) {
        for (Link& l : f.links) evaluate(f, l);
        if (!f.links.empty()) work.push_back(idx);
    }
    // A relay leg, or a hop of a chain: the proxy legs it may belong to.
    for (std::size_t i = 0; i < f.tunnels.size(); ++i) {
        Flow& p = flows_[f.tunnels[i]];
        evaluate(p, p.links[f.tunnel_links[i]]);
        work.push_back(f.tunnels[i]);
    }
    settle(work);
}

bool Correlator::has_content(const Flow& p) const {
    return p.smtp && relays_verbatim(p.method) && (!p.smtp->stamps(true).empty() || !p.smtp->stamps(false).empty());
}

bool Correlator::survives(std::uint32_t idx, const Link& l, bool content) const {
    if (l.mismatch) return false;
    const Flow& r = flows_[l.relay];
    if (r.owner != kNone && r.owner != idx) return false;
    // A finished relay that carried none of the tunnel's lines is not it.
    return !(content && l.matched == 0 && r.closed);
}

std::size_t Correlator::count_survivors(std::uint32_t idx, std::uint32_t* only) const {
    const Flow& p = flows_[idx];
    if (p.benign) return 0;  // relays nothing of interest: takes no relay from the others
    const bool content = has_content(p);
    std::size_t n = 0;
    for (const Link& l : p.links) {
        if (!survives(idx, l, content)) continue;
        if (n++ == 0 && only) *only = l.relay;
    }
    return n;
}

void Correlator::settle(std::vector<std::uint32_t>& work) {
    std::size_t budget = 64 + 16 * work.size();
    while (!work.empty() && budget-- > 0) {
        std::uint32_t idx = work.back();
        work.pop_back();
        Flow& p = flows_[idx];
        std::uint32_t only = kNone;
        std::uint32_t now = count_survivors(idx, &only) == 1 ? only : kNone;
        if (now == p.paired) continue;
        if (p.paired != kNone) {
            Flow& old = flows_[p.paired];
            if (old.owner == idx) {
                old.owner = kNone;
                for (auto t : old.tunnels)
                    if (t != idx) work.push_back(t);
            }
        }
        p.paired = now;
        if (now != kNone) {
            Flow& r = flows_[now];
            r.owner = idx;
            for (auto t : r.tunnels)
                if (t != idx) work.push_back(t);
        }
    }
    work.clear();  // what the budget left
}

View Correlator::view(const FrameNote& n, bool complete) const {
    View v;
    view_into(n, v, complete);
    return v;
}

CandidateEvidence Correlator::evidence(const Flow& p, std::size_t i) const {
    CandidateEvidence e;
    const Link& l = p.links[i];
    const Flow& r = flows_[l.relay];
    const auto idx = static_cast<std::uint32_t>(&p - flows_.data());
    e.stream = r.stream;
    e.server = r.server;
    e.lines = l.matched;
    e.after_ms = static_cast<std::int64_t>((r.first_time - p.request_time) * 1000.0);
    if (r.role == Role::Proxy || r.hop_only)
        e.address = "from the proxy's address: the next proxy of a chain";
    else if (p.target_literal)
        e.address = "the requested address";
    else if (dns_frame_of(p.target_host, r.server.addr))
        e.address = "an address the capture's DNS gave for the name";
    else
        e.address = "from the proxy's address; the name was not resolved in the capture";
    e.kept = survives(idx, l, has_content(p));
    if (l.mismatch && r.hop_only) {
        e.reason = "its first bytes are no proxy request";
    } else if (l.mismatch) {
        e.reason = "lines differ, or come in another order, on the two legs";
    } else if (r.owner != kNone && r.owner != idx) {
        e.reason = "taken by another tunnel, whose only candidate it is";
        e.owner_stream = flows_[r.owner].stream;
    } else if (!e.kept) {
        e.reason = "closed without any of the tunnel's lines";
    } else if (p.paired != l.relay) {
        e.reason = "other candidates stand too";
    }
    return e;
}

std::uint32_t Correlator::chain_head(std::uint32_t idx) const {
    for (std::size_t i = 0; i <= kMaxChain; ++i) {
        const std::uint32_t up = flows_[idx].owner;
        if (up == kNone || !flows_[up].suspect_proxy()) break;
        idx = up;
    }
    return idx;
}

const char* relay_reaction(const Flow& relay) {
    if (!relay.smtp) return "none";
    const SmtpSession& s = *relay.smtp;
    if (s.replies_to_smtp() > 0) return "rejected-lines";
    if (s.replies_to_other() > 0 && relay.server_closed_first) return "dropped";
    return "none";
}

void Correlator::view_into(const FrameNote& n, View& v, bool complete) const {
    v.suspect = false;
    v.provisional = false;
    v.status_known = true;
    v.status = Status::NoResponse;
    v.outcome = Outcome::Unknown;
    v.streams.clear();
    v.dns_frames.clear();
    v.leg = "";
    v.proxy = v.relay = v.self = v.last_proxy = nullptr;
    v.pairing = Pairing::None;
    v.relay_candidates.clear();
    v.tunnel_candidates.clear();
    v.chain.clear();
    v.chain_legs.clear();
    v.smtp = nullptr;
    v.reaction = nullptr;
    v.target_addr = Addr{};
    if (n.flow == kNone) return;
    const Flow& f = flows_[n.flow];
    v.self = &f;
    const std::uint32_t head = chain_head(n.flow);
    if (head != n.flow) {
        // A hop or relay leg owned by an incident's proxy leg.
        v.suspect = true;
        v.leg = f.role == Role::Proxy ? "hop" : "relay";
        v.proxy = &flows_[head];
    } else if (f.role == Role::Proxy) {
        // The whole connection once the capture is complete (its handshake
        // too); as frames go by, from the request that made it suspect.
        if (!f.suspect_proxy() || (!complete && n.frame < f.request_frame)) return;
        v.suspect = true;
        v.leg = (n.events & kEvDns) ? "dns" : "tunnel";  // "attempt": judge()
        v.proxy = &f;
    } else {
        for (std::size_t i = 0; i < f.tunnels.size(); ++i) {
            const std::uint32_t t = f.tunnels[i];
            const Flow& p = flows_[t];
            if (!p.suspect_proxy() || !survives(t, p.links[f.tunnel_links[i]], has_content(p))) continue;
            if (!v.proxy) v.proxy = &p;
            v.tunnel_candidates.push_back(p.stream);
        }
        if (!v.proxy) return;
        v.suspect = true;
        v.leg = "relay";
        v.pairing = Pairing::Ambiguous;
        v.relay = &f;
        v.last_proxy = v.proxy;
    }
    if (!v.relay) {
        // Down the chain from the first proxy leg: each leg paired with the next.
        std::uint32_t at = static_cast<std::uint32_t>(v.proxy - flows_.data());
        v.chain_legs.push_back(v.proxy);
        for (std::size_t i = 0; i <= kMaxChain; ++i) {
            const Flow& p = flows_[at];
            if (p.paired == kNone) break;
            const Flow& next = flows_[p.paired];
            v.chain_legs.push_back(&next);
            if (next.role != Role::Proxy) break;
            at = p.paired;
        }
        const Flow& last = *v.chain_legs.back();
        if (last.role == Role::Relay) {
            v.pairing = Pairing::Unique;
            v.relay = &last;
            v.last_proxy = v.chain_legs[v.chain_legs.size() - 2];
        } else {
            v.last_proxy = &last;
            if (count_survivors(at, nullptr) > 1) {
                v.pairing = Pairing::Ambiguous;
                const bool content = has_content(last);
                for (const Link& l : last.links)
                    if (survives(at, l, content)) v.relay_candidates.push_back(flows_[l.relay].stream);
            }
        }
        // The proxies in order: the legs between proxies when the capture has
        // them, else the requests a client-built chain sent through its tunnel.
        std::size_t proxy_legs = v.chain_legs.size() - (v.relay ? 1 : 0);
        if (proxy_legs > 1 || !v.proxy->via.empty()) {
            v.chain.push_back({v.proxy->server.str(), v.proxy->first_method()});
            if (proxy_legs > 1) {
                for (std::size_t i = 1; i < proxy_legs; ++i)
                    v.chain.push_back({v.chain_legs[i]->server.str(), v.chain_legs[i]->first_method()});
            } else {
                const auto& via = v.proxy->via;
                for (std::size_t i = 0; i < via.size(); ++i) {
                    bool v6 = via[i].host.find(':') != std::string::npos;
                    std::string where = (v6 ? "[" + via[i].host + "]" : via[i].host) + ":" + std::to_string(via[i].port);
                    v.chain.push_back({where, i + 1 < via.size() ? via[i + 1].method : v.proxy->method});
                }
            }
        }
        if (v.chain.empty()) v.chain_legs.clear();
    }
    if (v.relay && !relays_verbatim(v.proxy->first_method())) v.reaction = relay_reaction(*v.relay);
    // The envelope: from the relay leg when it is known, since it holds what
    // the mail server really answered (an absolute-URI client never sees the
    // replies); else from the tunnel.
    if (v.relay && v.relay->smtp && v.relay->smtp->smtp_seen())
        v.smtp = v.relay->smtp.get();
    else if (v.proxy && v.proxy->smtp)
        v.smtp = v.proxy->smtp.get();
    else if (v.relay && v.relay->smtp)
        v.smtp = v.relay->smtp.get();
    if (v.relay)
        v.target_addr = v.relay->server.addr;
    else
        v.target_addr = v.proxy->target_literal ? v.proxy->target_addr : v.proxy->resolved_addr;
    judge(v);
    incident_streams(v);
    if (!complete && !incident_final(v, n.frame)) make_provisional(v);
}

}  // namespace soh
