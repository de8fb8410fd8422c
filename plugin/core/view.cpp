// The incident a frame belongs to, as the renderer needs it (View), and the
// evidence for each relay candidate of a proxy leg.
#include <algorithm>

#include "correlator.h"

namespace soh {

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
        // A relay leg no proxy leg owns: ambiguous between the tunnels it
        // may belong to.
        auto stands = [&](std::size_t i) {
            const std::uint32_t t = f.tunnels[i];
            const Flow& p = flows_[t];
            return !f.link_dead(i) && p.suspect_proxy() && survives(t, p.links[f.link_index(i)], has_content(p));
        };
        std::size_t i = 0;
        while (i < f.tunnels.size() && !stands(i)) ++i;
        if (i == f.tunnels.size()) return;
        v.proxy = &flows_[f.tunnels[i]];
        v.suspect = true;
        v.leg = "relay";
        v.pairing = Pairing::Ambiguous;
        v.relay = &f;
        v.last_proxy = v.proxy;
        // As frames go by it says nothing until final (make_provisional):
        // the other candidates are not worth finding before.
        if (!complete && !incident_final(v, n.frame)) return make_provisional(v);
        if (v.detail)
            for (; i < f.tunnels.size(); ++i)
                if (stands(i)) v.tunnel_candidates.push_back(flows_[f.tunnels[i]].stream);
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
                if (v.detail)
                    for (const Link& l : last.links)
                        if (survives(at, l, content)) v.relay_candidates.push_back(flows_[l.relay].stream);
            }
        }
        // The proxies in order: the legs between proxies when the capture has
        // them, else the requests a client-built chain sent through its tunnel.
        std::size_t proxy_legs = v.chain_legs.size() - (v.relay ? 1 : 0);
        if (v.detail && (proxy_legs > 1 || !v.proxy->via.empty())) {
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
    // As frames go by, what is not final yet is left out (and not worked out).
    if (!complete && !incident_final(v, n.frame)) return make_provisional(v);
    judge(v);
    if (v.detail) incident_streams(v);
}

}  // namespace soh
