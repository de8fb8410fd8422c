#include "stream_reassembler.h"

namespace soh {
namespace {

// Signed distance from a to b in serial-number arithmetic.
std::int32_t diff(std::uint32_t a, std::uint32_t b) {
    return static_cast<std::int32_t>(b - a);
}

}  // namespace

void StreamReassembler::add(std::uint32_t seq, bool syn, const std::uint8_t* data, std::size_t len,
                            Deliver deliver, Gap gap) {
    if (syn) {
        // The SYN occupies one sequence number; data (TCP Fast Open) follows it.
        seq += 1;
        if (!started_) {
            started_ = true;
            next_ = seq;
        }
    }
    if (len == 0) return;
    if (!started_) {
        started_ = true;
        next_ = seq;
    }
    std::int32_t d = diff(next_, seq);
    if (d <= 0) {
        // Starts at or before the next byte: drop what was delivered already.
        std::size_t skip = static_cast<std::size_t>(-static_cast<std::int64_t>(d));
        if (skip >= len) return;  // pure retransmission
        deliver(data + skip, len - skip);
        next_ += static_cast<std::uint32_t>(len - skip);
        drain(deliver);
        return;
    }
    // Early segment: hold it, unless holding would exceed the bounds.
    if (held_.size() >= kMaxHeldSegments || held_bytes_ + len > kMaxHeldBytes) {
        // Declare the hole lost: resume at the earliest data we have.
        ++gaps_;
        gap();
        std::uint32_t earliest = seq;
        if (!held_.empty()) {
            auto first = held_.begin()->first;
            if (diff(first, seq) > 0) earliest = first;
        }
        next_ = earliest;
        drain(deliver);
        if (diff(next_, seq) <= 0) {
            add(seq, false, data, len, deliver, gap);
            return;
        }
        // Still ahead of everything: start over from this segment.
        held_.clear();
        held_bytes_ = 0;
        next_ = seq;
        deliver(data, len);
        next_ += static_cast<std::uint32_t>(len);
        return;
    }
    auto it = held_.find(seq);
    if (it != held_.end()) {
        if (it->second.size() >= len) return;
        held_bytes_ -= it->second.size();
        it->second.assign(reinterpret_cast<const char*>(data), len);
    } else {
        held_.emplace(seq, std::string(reinterpret_cast<const char*>(data), len));
    }
    held_bytes_ += len;
}

void StreamReassembler::drain(Deliver deliver) {
    // held_ is ordered by raw seq, which is fine within the small window we hold
    // (a wrap inside the window only delays delivery until the hole rule fires).
    bool progress = true;
    while (progress && !held_.empty()) {
        progress = false;
        for (auto it = held_.begin(); it != held_.end();) {
            std::int32_t d = diff(next_, it->first);
            if (d > 0) {
                ++it;
                continue;
            }
            std::size_t skip = static_cast<std::size_t>(-static_cast<std::int64_t>(d));
            const std::string& s = it->second;
            if (skip < s.size()) {
                deliver(reinterpret_cast<const std::uint8_t*>(s.data()) + skip, s.size() - skip);
                next_ += static_cast<std::uint32_t>(s.size() - skip);
            }
            held_bytes_ -= s.size();
            it = held_.erase(it);
            progress = true;
        }
    }
}

}  // namespace soh
