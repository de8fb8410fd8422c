// Test helper: builds the TCP segments a capture would show for a few
// connections and feeds them, in capture order, to a Correlator.
//
// A Capture numbers frames from 1 and advances its clock by `step` per frame.
// A FakeTcp is one connection (a 4-tuple and a tcp.stream id) that emits
// SYN / SYN-ACK / ACK, data and FIN segments with correct sequence numbers.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "correlator.h"
#include "types.h"

namespace soh::test {

inline Endpoint ep(std::string_view addr, std::uint16_t port) {
    auto a = Addr::parse(addr);
    Endpoint e;
    if (a) e.addr = *a;
    e.port = port;
    return e;
}

inline Addr addr(std::string_view text) { return *Addr::parse(text); }

// The parties most tests use: two attackers, the proxy's two outgoing
// endpoints, the mail server, and the proxy's answer to a CONNECT.
inline const Endpoint kAttacker = ep("192.0.2.10", 40000);
inline const Endpoint kAttacker2 = ep("192.0.2.11", 40001);
inline const Endpoint kProxyOut = ep("203.0.113.1", 50000);
inline const Endpoint kProxyOut2 = ep("203.0.113.1", 50001);
inline const Endpoint kMta = ep("198.51.100.25", 25);
inline const char* const k200 = "HTTP/1.1 200 Connection established\r\n\r\n";

// A frame as a complete capture shows it (tshark -2): its note, or else the
// leg its TCP segment belongs to (frame_flow). An empty View: nothing of ours.
inline View complete_view(const Correlator& c, FrameNum f) {
    const FrameNote* n = c.note(f);
    FrameNote leg{f, c.frame_flow(f), 0};
    if (!n && leg.flow != kNone) n = &leg;
    return n ? c.view(*n) : View{};
}

class Capture {
public:
    explicit Capture(Config cfg = {}, double step = 0.001) : corr_(std::move(cfg)), step_(step) {}

    // Gives the segment the next frame number and time, then feeds it. With
    // the glue's fast path on, segments Correlator::fast_path() takes are not fed, as
    // the post-dissector does.
    FrameNum emit(Segment seg) {
        seg.frame = next_frame_++;
        seg.time = now_;
        now_ += step_;
        if (!(fast_path && corr_.fast_path(seg.stream, seg.len, seg.flags, seg.frame, seg.data))) corr_.on_segment(seg);
        if (after_feed) after_feed(seg.frame);
        return seg.frame;
    }
    bool fast_path = false;
    // Called with each frame once it was fed: what a single pass would
    // render for it then.
    std::function<void(FrameNum)> after_feed;

    // A DNS answer in a frame of its own.
    FrameNum dns(std::string_view name, const std::vector<Addr>& addrs) {
        const FrameNum f = next_frame_++;
        corr_.on_dns(name, addrs, f);
        if (after_feed) after_feed(f);
        return f;
    }
    void advance(double seconds) { now_ += seconds; }
    double now() const { return now_; }
    FrameNum last_frame() const { return next_frame_ - 1; }

    // Stable storage for payload bytes (segments point into it).
    const std::uint8_t* keep(std::string_view bytes) {
        payloads_.emplace_back(bytes);
        return reinterpret_cast<const std::uint8_t*>(payloads_.back().data());
    }

    Correlator& corr() { return corr_; }
    const Correlator& corr() const { return corr_; }

private:
    Correlator corr_;
    double step_;
    double now_ = 100.0;
    FrameNum next_frame_ = 1;
    std::deque<std::string> payloads_;
};

class FakeTcp {
public:
    FakeTcp(Capture& cap, StreamId stream, Endpoint client, Endpoint server, std::uint32_t client_isn = 1000,
            std::uint32_t server_isn = 7000000)
        : cap_(cap), stream_(stream), client_(client), server_(server), next_{client_isn, server_isn} {}

    // SYN, SYN-ACK, ACK; returns the SYN's frame.
    FrameNum handshake() {
        FrameNum syn = emit(control(true, kSyn));
        emit(control(false, kSyn | kAck));
        emit(control(true, kAck));
        return syn;
    }

    FrameNum client(std::string_view data) { return emit(make(true, data)); }
    FrameNum server(std::string_view data) { return emit(make(false, data)); }

    // The next data segment of one direction, not yet emitted (for reordering
    // and retransmission tests). Advances that direction's sequence number.
    Segment make(bool from_client, std::string_view data) {
        Segment s = base(from_client);
        s.flags = kPsh | kAck;
        s.data = cap_.keep(data);
        s.len = data.size();
        next_[from_client ? 0 : 1] += static_cast<std::uint32_t>(data.size());
        return s;
    }

    // A data segment at an explicit sequence number (overlapping retransmissions).
    Segment raw(bool from_client, std::uint32_t seq, std::string_view data) {
        Segment s = base(from_client);
        s.seq = seq;
        s.flags = kPsh | kAck;
        s.data = cap_.keep(data);
        s.len = data.size();
        return s;
    }

    FrameNum emit(const Segment& s) {
        FrameNum f = cap_.emit(s);
        frames_.push_back(f);
        return f;
    }

    // FIN from the client, FIN from the server, last ACK; returns the first FIN's frame.
    FrameNum close() {
        FrameNum first = emit(control(true, kFin | kAck));
        emit(control(false, kFin | kAck));
        emit(control(true, kAck));
        return first;
    }

    // The server hangs up first; returns its FIN's frame.
    FrameNum close_from_server() {
        FrameNum first = emit(control(false, kFin | kAck));
        emit(control(true, kFin | kAck));
        emit(control(false, kAck));
        return first;
    }

    FrameNum reset(bool from_client) { return emit(control(from_client, kRst | kAck)); }

    StreamId stream() const { return stream_; }
    const Endpoint& client_ep() const { return client_; }
    const Endpoint& server_ep() const { return server_; }
    const std::vector<FrameNum>& frames() const { return frames_; }

private:
    Segment base(bool from_client) const {
        Segment s;
        s.stream = stream_;
        s.src = from_client ? client_ : server_;
        s.dst = from_client ? server_ : client_;
        s.seq = next_[from_client ? 0 : 1];
        return s;
    }

    // A segment without payload; SYN and FIN use one sequence number.
    Segment control(bool from_client, std::uint16_t flags) {
        Segment s = base(from_client);
        s.flags = flags;
        if (flags & (kSyn | kFin)) next_[from_client ? 0 : 1] += 1;
        return s;
    }

    Capture& cap_;
    StreamId stream_;
    Endpoint client_;
    Endpoint server_;
    std::uint32_t next_[2];
    std::vector<FrameNum> frames_;
};

}  // namespace soh::test
