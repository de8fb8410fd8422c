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
double Correlator::window_end(const Flow& p) const {
    const double end = p.request_time + cfg_.pair_window;
    return p.response_frame ? std::min(end, p.response_time + cfg_.slack) : end;
}

bool Correlator::in_window(const Flow& p, const Segment& seg) const {
    if (p.role != Role::Proxy || p.benign || !p.request_frame || p.stream == seg.stream) return false;
    const double t = std::max(seg.time, now_);
    return t >= p.request_time - cfg_.slack && t <= window_end(p);
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
    work.reserve(proxies.size());
    for (std::uint32_t p : proxies) {
        Flow& pf = flows_[p];
        if (pf.links.size() >= cfg_.max_candidates || flows_[relay_idx].tunnels.size() >= cfg_.max_candidates) {
            if (!pf.candidates_capped) add_event(seg.frame, relay_idx, kEvCandidatesCapped);
            pf.candidates_capped = true;
            continue;
        }
        push_sized(pf.links, Link{relay_idx}, kLinksFirst);
        Flow& rf = flows_[relay_idx];
        push_sized(rf.tunnels, p, kLinksFirst);
        push_sized(rf.tunnel_links, static_cast<std::uint32_t>(pf.links.size() - 1), kLinksFirst);
        work.push_back(p);
    }
    settle(work);
}

// Compares the lines both legs have carried since the last call. True when
// the link's survival may have changed (survives): a mismatch, or its first
// equal line. Most calls find no line on both legs that was not compared
// yet (one leg is ahead): that case returns here, without the comparison's
// call.
bool Correlator::evaluate(Flow& p, Link& link) {
    if (link.mismatch || !relays_verbatim(p.method)) return false;
    const Flow& r = flows_[link.relay];
    if (!p.smtp || !r.smtp) return false;
    const SmtpSession& ps = *p.smtp;
    const SmtpSession& rs = *r.smtp;
    if (std::min(ps.stamps(true).size(), rs.stamps(true).size()) <= link.checked_client &&
        std::min(ps.stamps(false).size(), rs.stamps(false).size()) <= link.checked_server)
        return false;
    return compare_lines(ps, rs, link);
}

[[gnu::noinline]] bool Correlator::compare_lines(const SmtpSession& ps, const SmtpSession& rs, Link& link) {
    const bool had_match = link.matched != 0;
    for (int dir = 0; dir < 2; ++dir) {
        const bool client = dir == 0;
        const auto& a = ps.stamps(client);
        const auto& b = rs.stamps(client);
        std::uint8_t& checked = client ? link.checked_client : link.checked_server;
        const std::size_t n = std::min(a.size(), b.size());
        for (std::size_t i = checked; i < n; ++i) {
            bool order_ok = client ? b[i].time + cfg_.slack >= a[i].time : a[i].time + cfg_.slack >= b[i].time;
            if (a[i].hash != b[i].hash || !order_ok) {
                link.mismatch = true;
                return true;
            }
            if (link.matched < 255) ++link.matched;
        }
        checked = static_cast<std::uint8_t>(n);
    }
    return !had_match && link.matched != 0;
}

// New lines on a leg, or a candidate relay closed. Only the proxy legs whose
// candidates may now survive differently are settled again: a relay leg with
// many tunnel candidates (concurrent spam through one proxy to one mail
// server) would otherwise re-count every candidate of each of them on every
// line it carries. The pairing of the others has not changed, so settling
// them again would find it as it is.
void Correlator::content_changed(std::uint32_t idx, Evidence what) {
    Flow& f = flows_[idx];
    std::vector<std::uint32_t>& work = content_work_;
    work.clear();  // settle empties it; not if an exception cut the last one short
    if (f.role == Role::Proxy) {
        // Its first lines decide for every link whether content counts (survives).
        bool changed = what == Evidence::FirstLines;
        for (std::size_t i = f.first_live_link(); i < f.links.size(); ++i)
            if (!f.links[i].mismatch) changed |= evaluate(f, f.links[i]);
        if (changed) work.push_back(idx);
    }
    // A relay leg, or a hop of a chain: the proxy legs it may belong to. A
    // closed relay rules out a tunnel that shares no line with it.
    for (std::size_t i = 0; i < f.tunnels.size(); ++i) {
        if (f.link_dead(i)) continue;
        Flow& p = flows_[f.tunnels[i]];
        Link& l = p.links[f.link_index(i)];
        const bool changed = evaluate(p, l);
        if (l.mismatch) f.tunnel_links[i] |= Flow::kDeadLink;
        if (changed || (what == Evidence::Closed && !l.mismatch && l.matched == 0)) work.push_back(f.tunnels[i]);
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
    for (std::size_t i = p.first_live_link(); i < p.links.size(); ++i) {
        const Link& l = p.links[i];
        if (!survives(idx, l, content)) continue;
        if (n++ == 0 && only) *only = l.relay;
        if (n == 2) break;  // callers tell none, one and several apart
    }
    return n;
}

void Correlator::settle(std::vector<std::uint32_t>& work) {
    std::size_t budget = kSettleBudget + kSettleBudgetPerLeg * work.size();
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
    if (!work.empty()) reached(Cap::Settle);
    work.clear();  // what the budget left
}

}  // namespace soh
