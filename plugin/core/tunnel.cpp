// The content side: bytes a tunnel (or an absolute-URI body, or a relay leg)
// carries, read as SMTP; chains of proxies started inside a tunnel; and
// legs found benign.
#include <algorithm>
#include <memory>
#include <utility>

#include "correlator.h"
#include "http_parse.h"
#include "socks_parse.h"

namespace soh {

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
    const std::uint8_t caps = s.caps();
    s.feed(from_client, d, n, seg.frame, seg.time);
    if (s.caps() != caps) {
        static constexpr std::pair<std::uint8_t, Cap> kSmtpCaps[] = {
            {SmtpSession::kCapPending, Cap::SmtpPending}, {SmtpSession::kCapStamps, Cap::SmtpStamps},
            {SmtpSession::kCapNotes, Cap::SmtpNotes},     {SmtpSession::kCapCounted, Cap::SmtpCounted},
            {SmtpSession::kCapListed, Cap::SmtpListed},
        };
        for (const auto& [bit, cap] : kSmtpCaps)
            if ((s.caps() & bit) && !(caps & bit)) reached(cap);
    }
    if (f.role == Role::Proxy) {
        if (!had_smtp && s.smtp_seen()) add_event(seg.frame, idx, kEvSmtpFirst);
        if (!had_tls && s.tls_first()) add_event(seg.frame, idx, kEvEncrypted);
    }
    if (s.starttls_frame() == seg.frame && s.envelope().starttls) add_event(seg.frame, idx, kEvStartTls);
    if (f.role == Role::Proxy && !f.mail_port && s.not_smtp() && !s.smtp_seen()) {
        mark_benign(idx);
        return;
    }
    const std::size_t after = s.stamps(true).size() + s.stamps(false).size();
    if (after != before) content_changed(idx, before ? Evidence::Lines : Evidence::FirstLines);
}

// A connection from the proxy taken for the next hop of a chain that does not
// start with a proxy request: unrelated, forget it.
void Correlator::drop_hop_candidate(std::uint32_t idx) {
    Flow& f = flows_[idx];
    std::vector<std::uint32_t> work;
    for (std::size_t i = 0; i < f.tunnels.size(); ++i) {
        flows_[f.tunnels[i]].links[f.link_index(i)].mismatch = true;
        f.tunnel_links[i] |= Flow::kDeadLink;
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

}  // namespace soh
