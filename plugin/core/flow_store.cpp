// The flow store and the frame notes, with their caps: flows are created
// here (one per connection, or per request after an earlier incident on the
// same connection), their parser state is counted and evicted past the
// live caps, and every frame of a flow gets its note.
#include <algorithm>

#include "correlator.h"

namespace soh {

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
    // After requests of no interest on its connection: from this one on.
    if (role == Role::Proxy && web_clients_.find(seg.stream)) {
        f.covers_from = seg.frame;
        web_clients_.erase(seg.stream);
    }
    f.live = std::make_unique<LiveState>();
    ++counters_.flows;
    ++live_count_;
    live_order_.push_back(idx);
    enforce_live_cap(idx);
    return idx;
}

// The request before this one on the connection was an incident: the new
// one is another, with its own request, answer, relay and frames. The
// parser state moves over (as is: its reassembler may be running), the
// earlier flow keeps what it had and is done.
std::uint32_t Correlator::next_request(std::uint32_t idx, const Segment& seg) {
    if (flows_.size() >= cfg_.max_flows) return idx;  // the table is full: the request stays on this flow
    const auto g = static_cast<std::uint32_t>(flows_.size());
    flows_.emplace_back();
    Flow& old = flows_[idx];
    Flow& f = flows_.back();
    f.stream = old.stream;
    f.role = Role::Proxy;
    f.client = old.client;
    f.server = old.server;
    f.first_frame = seg.frame;
    f.first_time = seg.time;
    f.covers_from = seg.frame;
    f.prev_on_stream = idx;
    f.last_frame = seg.frame;
    f.live = std::move(old.live);
    f.live_bytes = old.live_bytes;
    old.live_bytes = 0;
    old.closed = true;
    ++counters_.flows;
    live_order_.push_back(g);
    slots_[f.stream] = kSlotBase + g;
    if (FrameNote* n = note_slot(seg.frame)) n->flow = g;
    return g;
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
    if (live_head_ > kCompactLiveOrder && live_head_ * 2 > live_order_.size()) {
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

}  // namespace soh
