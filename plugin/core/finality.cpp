// What a single pass may state. As frames go by (a live capture, tshark
// without -2) the engine has seen only the capture so far, and a pairing
// that looks unique may still change: a later line may differ between the
// legs, another relay may open within the window, a candidate may be taken
// by another tunnel. A value is told only once no later frame can change
// it; until then the proxy leg says "tentative" and lists its candidates
// so far, and a relay leg says nothing.
//
// An incident is final when no input of its state can change:
//  - its proxy leg is closed (FIN both ways, RST, or state evicted) and its
//    window is over, so no request follows and no candidate joins (a relay
//    pending on its first data counts as a candidate);
//  - each candidate is either ruled out for good (lines that differ; closed
//    without any of the tunnel's lines while the tunnel is closed too; owned
//    by another incident that is final), or is the paired relay, closed;
// or, failing that, when every connection of its component (the tunnels and
// relay candidates linked to each other) is closed and every window over.
// Being final is kept on the proxy leg: it never goes back.
#include <algorithm>

#include "correlator.h"

namespace soh {

bool Correlator::window_over(const Flow& p) const { return now_ > window_end(p); }

// A relay waiting for its first data (PendingRelay) that may still be linked
// to this proxy leg, by its index or, promoted from a held tunnel, its stream.
bool Correlator::pending_refs(std::uint32_t idx) const {
    const StreamId stream = flows_[idx].stream;
    return pending_relays_.any([&](StreamId, const PendingRelay& r) {
        for (std::uint32_t id : r.proxies)
            if (id == idx || ((id & kHeldTag) && (id & ~kHeldTag) == stream)) return true;
        return false;
    });
}

bool Correlator::proxy_final(std::uint32_t idx, int depth) const {
    const Flow& p = flows_[idx];
    if (p.final) return true;
    if (depth > static_cast<int>(kMaxChain) || !p.closed || !window_over(p) || pending_refs(idx)) return false;
    const bool content = has_content(p);
    for (const Link& l : p.links) {
        if (l.mismatch) continue;
        const Flow& r = flows_[l.relay];
        if (!r.closed) return false;
        if (l.relay == p.paired) {
            // The next proxy of a chain: its own pairing must be final too.
            if (r.role == Role::Proxy && !proxy_final(l.relay, depth + 1)) return false;
            continue;
        }
        if (content && l.matched == 0) continue;  // both closed: no line can match any more
        if (r.owner != kNone && r.owner != idx && proxy_final(r.owner, depth + 1)) continue;
        return false;  // a candidate still standing: ambiguous for now
    }
    // The pairing must be what settle would make of this evidence (its
    // budget may have left it behind): a later settle must not change it.
    std::uint32_t only = kNone;
    const std::size_t n = count_survivors(idx, &only);
    if (n > 1 || only != p.paired || (p.paired != kNone && flows_[p.paired].owner != idx)) return false;
    p.final = true;
    return true;
}

// Runs on every frame a single pass shows, so the common answer (the leg is
// still open) costs one test, and the walk allocates nothing once its list
// has grown; a flow is marked visited with the walk's number.
bool Correlator::component_final(std::uint32_t start) const {
    constexpr std::size_t kMaxComponent = 1024;
    if (flows_[start].final) return true;
    if (!flows_[start].closed) return false;
    std::vector<std::uint32_t>& seen = walk_;
    seen.assign(1, start);
    const std::uint32_t mark = ++walk_mark_;
    flows_[start].walk_mark = mark;
    for (std::size_t i = 0; i < seen.size(); ++i) {
        const std::uint32_t idx = seen[i];
        const Flow& f = flows_[idx];
        if (f.final) continue;
        if (!f.closed) return false;
        if (f.role == Role::Proxy && f.request_frame && (!window_over(f) || pending_refs(idx))) return false;
        auto visit = [&](std::uint32_t next) {
            if (flows_[next].walk_mark != mark) {
                flows_[next].walk_mark = mark;
                seen.push_back(next);
            }
        };
        for (const Link& l : f.links) visit(l.relay);
        for (std::uint32_t t : f.tunnels) visit(t);
        if (seen.size() > kMaxComponent) return false;
    }
    for (std::uint32_t idx : seen) flows_[idx].final = true;
    return true;
}

bool Correlator::incident_final(const View& v, FrameNum frame) const {
    if (!v.suspect || !v.proxy) return true;  // nothing is stated
    const Flow& p = *v.proxy;
    // A relay leg no proxy leg owns (ambiguous) hangs on its whole component.
    // So does a proxy leg that is itself a relay candidate of another proxy
    // leg (the next hop of a chain): that one may still take it.
    const Flow& from = (v.self->role == Role::Relay && !v.relay) ? *v.self : p;
    const auto idx = static_cast<std::uint32_t>(&from - flows_.data());
    const bool final = (&from == &p && p.tunnels.empty() && proxy_final(idx, 0)) || component_final(idx);
    if (final && &from == &p && !p.final_frame) p.final_frame = frame;
    return final;
}

void Correlator::make_provisional(View& v) const {
    const Flow& p = *v.proxy;
    // As frames go by only a proxy leg is known to be suspect: a relay or a
    // hop is one only once its pairing is final.
    if (v.self != v.proxy || p.hop) {
        v.suspect = false;
        return;
    }
    // After a 2xx answer and bytes through the tunnel no other request can
    // come on the connection: the leg, request and answer are final.
    v.status_known = relays_verbatim(p.method) && p.status == Status::Established && p.tunnel_data;
    // A request to a mail port stays an incident whatever follows; a tunnel
    // to another port that showed SMTP is one only once that is final (a
    // refusal, or another request on the connection, would make it benign).
    if (!p.mail_port && !v.status_known) {
        v.suspect = false;
        return;
    }
    v.provisional = true;
    if (v.leg[0] != 'd') v.leg = v.status_known ? "tunnel" : "";
    v.status = p.status;
    v.pairing = Pairing::Tentative;
    v.relay_candidates.clear();
    const bool content = has_content(p);
    const auto idx = static_cast<std::uint32_t>(&p - flows_.data());
    if (v.detail)
        for (const Link& l : p.links)
            if (survives(idx, l, content)) v.relay_candidates.push_back(flows_[l.relay].stream);
    v.tunnel_candidates.clear();
    v.relay = nullptr;
    v.last_proxy = &p;
    v.chain.clear();
    v.chain_legs.clear();
    v.reaction = nullptr;
    v.smtp = nullptr;
    v.outcome = Outcome::Unknown;
    v.target_addr = v.status_known && p.target_literal ? p.target_addr : Addr{};
}

}  // namespace soh
