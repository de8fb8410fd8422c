// The engine's entry points: observations in, each segment to the stream's
// state (classify.cpp), its flow (process) or its fast path; the per-frame
// index that rendering reads.
#include <algorithm>

#include "correlator.h"

namespace soh {

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

const char* cap_text(Cap c) {
    switch (c) {
        case Cap::SmtpPending: return "SMTP commands awaiting replies: the oldest are dropped";
        case Cap::SmtpStamps: return "SMTP lines compared between the legs: later lines are not compared";
        case Cap::SmtpNotes: return "SMTP lines shown on their frames: later lines are not shown";
        case Cap::SmtpCounted: return "frames counted for the statistics in one SMTP session: later ones are not";
        case Cap::SmtpListed: return "senders or recipients listed in one session: later ones are counted, not listed";
        case Cap::DnsNames: return "host names resolved from DNS answers: later names are not";
        case Cap::DnsAddrs: return "addresses kept for one host name: later ones are not";
        case Cap::Streams: return "TCP streams tracked: streams past the limit are not looked at";
        case Cap::Watched: return "proxy connections watched for a later request: the oldest is no longer";
        case Cap::Handshakes: return "connections waiting for their first data: an older one was forgotten";
        case Cap::PendingRelays: return "possible relay legs waiting for their first data: an older one was forgotten";
        case Cap::Settle: return "pairing changes followed through at once: some pairings may not be updated";
        case Cap::Count: break;
    }
    return "?";
}

void Correlator::reached(Cap c) {
    FrameNum& at = cap_frame_[static_cast<std::size_t>(c)];
    if (at || !frame_) return;
    at = frame_;
    add_event(frame_, kNone, kEvCapped);
}

void Correlator::on_segment(const Segment& seg) {
    ++counters_.segments;
    frame_ = seg.frame;
    if (seg.time > now_) now_ = seg.time;
    if (seg.frame < frame_stream_.size())
        frame_stream_[seg.frame] = seg.stream + 1;
    else
        note_stream(seg.frame, seg.stream);
    if (!grow_slots(seg.stream)) return reached(Cap::Streams);
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
    if (slot == kSlotProxyWeb) return web_segment(seg);
    if (slot < kSlotBase) {
        slot = classify(seg, slot);
        if (slot == kSlotHandled) return;  // classified and processed with held segments
        slots_[seg.stream] = slot;
        if (slot < kSlotBase) {
            if (slot == kSlotIgnored || slot == kSlotProxyWeb) unclassified_.erase(seg.stream);
            return;
        }
    }
    process(slot - kSlotBase, seg);
}

std::uint32_t Correlator::flow_at(std::uint32_t idx, FrameNum frame) const {
    for (std::size_t hops = 0; frame < flows_[idx].first_frame && hops < kMaxRequestsWalked; ++hops) {
        const Flow& f = flows_[idx];
        if (f.prev_on_stream == kNone) return frame >= f.covers_from ? idx : kNone;
        idx = f.prev_on_stream;
    }
    return frame >= flows_[idx].first_frame || flows_[idx].prev_on_stream == kNone ? idx : kNone;
}

std::uint32_t Correlator::current_flow(StreamId stream, std::uint32_t idx) const {
    const std::uint32_t slot = slots_[stream];
    if (slot < kSlotBase || slot == kSlotHandled) return idx;
    const std::uint32_t now = slot - kSlotBase;
    return flows_[now].stream == stream ? now : idx;
}

// The fast path's segments without data, out of line: most frames are of
// ignored streams, and need none of this.
bool Correlator::empty_segment(std::uint32_t slot, StreamId stream, std::uint16_t flags, FrameNum frame) {
    if (slot == kSlotPending) return (flags & (kSyn | kAck)) != kSyn;
    if (slot == kSlotProxyWeb) return true;
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
            const std::uint32_t now = current_flow(seg.stream, idx);  // a later request may have taken over
            if (flows_[now].role == Role::Relay) {
                tunnel_bytes(now, from_client, p, n, seg);
            } else {
                proxy_bytes(now, from_client, p, n, seg);
            }
        },
        [&] {
            add_event(seg.frame, idx, kEvGap);
            Flow& g = flows_[idx];
            if (g.smtp) g.smtp->gap(from_client);
            if (g.live) g.live->http[d].reset();
        });
    idx = current_flow(seg.stream, idx);
    Flow& g = flows_[idx];
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
        if (!g.tunnels.empty()) content_changed(idx, Evidence::Closed);  // a closed relay is final evidence
    }
    if (g.benign) {
        if (may_request_again(g))
            watch(g.stream, g.client);
        else
            slots_[g.stream] = kSlotIgnored;
    }
    account(idx);
}

}  // namespace soh
