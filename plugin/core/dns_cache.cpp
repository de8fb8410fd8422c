// The capture's DNS answers: host-name targets resolve through them, and
// the answer an incident rests on is kept as its evidence.
#include <algorithm>
#include <string>

#include "correlator.h"
#include "ascii.h"

namespace soh {
namespace {

// DNS names compare case-insensitively (RFC 4343), with or without the root dot.
std::string dns_key(std::string_view name) {
    std::string key;
    key.reserve(name.size());
    for (char c : name) key += ascii::lower(c);
    while (!key.empty() && key.back() == '.') key.pop_back();
    return key;
}

}  // namespace

void Correlator::on_dns(std::string_view name, const std::vector<Addr>& addrs, FrameNum frame) {
    frame_ = frame;
    std::string key = dns_key(name);
    if (key.empty() || addrs.empty()) return;
    auto it = dns_.find(key);
    if (it == dns_.end()) {
        if (dns_.size() >= cfg_.max_dns_names) return reached(Cap::DnsNames);
        it = dns_.emplace(key, DnsName{}).first;
    }
    DnsName& d = it->second;
    for (const Addr& a : addrs) {
        if (d.addrs.size() >= kMaxAddrsPerName) {
            reached(Cap::DnsAddrs);
            break;
        }
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
