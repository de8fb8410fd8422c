// Fuzz target: the Correlator (correlator.h) fed with a random sequence of
// observations: TCP segments of a few streams between a few endpoints (with
// handshakes, in-order and out-of-order data, retransmissions, FIN/RST) and
// DNS answers. Payloads are either fuzzer bytes or pieces of proxy requests,
// SOCKS handshakes and SMTP dialogues, so the deep states are reachable. The
// Config caps are tiny so that the flow-table, live-state, frame-note,
// stream-index, DNS and candidate caps and the eviction paths all fire.
// Afterwards every frame's note and view is built and read, as the renderer
// does on tshark's second pass.
#include <cstdio>
#include <cstdlib>
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "correlator.h"

using namespace soh;

namespace {

#define SNIP(x) std::string_view(x, sizeof(x) - 1)

// Payload pieces (string_view: the SOCKS ones hold NUL bytes).
const std::string_view kSnippets[] = {
    SNIP("CONNECT 198.51.100.25:25 HTTP/1.0\r\n\r\n"),
    SNIP("CONNECT mx.victim.example:25 HTTP/1.1\r\nHost: mx.victim.example:25\r\n\r\n"),
    SNIP("CONNECT [2001:db8::25]:587 HTTP/1.0\r\n\r\n"),
    SNIP("CONNECT 198.51.100.25:25 / HTTP/1.0\r\n: x\r\n\r\n"),
    SNIP("connect 198.51.100.25:443 HTTP/1.0\r\n\r\n"),
    SNIP("POST http://198.51.100.25:25/ HTTP/1.0\r\nContent-Length: 60\r\n\r\n"),
    SNIP("GET http://mx.victim.example:2525/ HTTP/1.0\r\n\r\n"),
    SNIP("HTTP/1.0 200 Connection established\r\n\r\n"),
    SNIP("HTTP/1.1 100 Continue\r\n\r\n"),
    SNIP("HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope\n"),
    SNIP("HTTP/1.0 200 OK\r\n\r\n\xff\xfe garbage"),
    SNIP("220 mx.victim.example ESMTP\r\n"),
    SNIP("220-mx.victim.example\r\n220 ready\r\n"),
    SNIP("EHLO spam.example\r\n"),
    SNIP("HELO x\r\n"),
    SNIP("250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n"),
    SNIP("MAIL FROM:<a@spam.example>\r\n"),
    SNIP("RCPT TO:<victim@example.org>\r\n"),
    SNIP("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
    SNIP("250 OK\r\n"),
    SNIP("354 go ahead\r\n"),
    SNIP("DATA\r\n"),
    SNIP("Subject: hi\r\n\r\nbody\r\n.\r\n"),
    SNIP("BDAT 12 LAST\r\nhello world\n"),
    SNIP("RSET\r\n"),
    SNIP("STARTTLS\r\n"),
    SNIP("AUTH LOGIN\r\n"),
    SNIP("334 VXNlcm5hbWU6\r\n"),
    SNIP("QUIT\r\n221 bye\r\n"),
    SNIP("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
    // SOCKS4 CONNECT 198.51.100.25:25, SOCKS4a to a name, SOCKS5 greeting/request, replies.
    SNIP("\x04\x01\x00\x19\xc6\x33\x64\x19user\x00"),
    SNIP("\x04\x01\x00\x19\x00\x00\x00\x01\x00mx.victim.example\x00"),
    SNIP("\x05\x01\x00"),
    SNIP("\x05\x01\x00\x01\xc6\x33\x64\x19\x00\x19"),
    SNIP("\x05\x01\x00\x03\x11mx.victim.example\x00\x19"),
    SNIP("\x05\x02\x00\x02"),
    SNIP("\x01\x04user\x04pass"),
    SNIP("\x00\x5a\x00\x00\x00\x00\x00\x00"),
    SNIP("\x05\x00"),
    SNIP("\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00"),
    SNIP("\x01\x00"),
};
#undef SNIP

Addr a4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    const std::uint8_t x[4] = {a, b, c, d};
    return Addr::v4(x);
}

// 2001:db8:<group>::<last>
Addr a6(std::uint8_t group, std::uint8_t last) {
    std::uint8_t x[16] = {0x20, 0x01, 0x0d, 0xb8};
    x[5] = group;
    x[15] = last;
    return Addr::v6(x);
}

struct Stream {
    bool open = false;
    Endpoint client;
    Endpoint server;
    std::uint32_t next[2] = {0, 0};  // next sequence number: 0 client, 1 server
    std::uint32_t plain[2] = {0, 0}; // next decrypted-TLS offset, the same way
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider fdp(data, size);

    Config cfg;
    cfg.max_flows = fdp.ConsumeIntegralInRange<std::size_t>(1, 64);
    cfg.max_live_flows = fdp.ConsumeIntegralInRange<std::size_t>(1, 16);
    cfg.max_frame_notes = fdp.ConsumeIntegralInRange<std::size_t>(1, 4000);
    cfg.max_streams = fdp.ConsumeIntegralInRange<std::size_t>(1, 64);
    cfg.max_dns_names = fdp.ConsumeIntegralInRange<std::size_t>(0, 4);
    cfg.max_candidates = fdp.ConsumeIntegralInRange<std::size_t>(1, 6);
    cfg.content_detection = fdp.ConsumeBool();
    cfg.pair_window = fdp.ConsumeBool() ? 30.0 : 0.01;
    if (fdp.ConsumeBool()) cfg.mail_ports.push_back(fdp.ConsumeIntegral<std::uint16_t>());

    // Endpoints: the lab captures' addresses (client, second client, proxy,
    // mail servers, IPv6 client/proxy/server), so that seeds made from the
    // captures replay as they were recorded; the proxy reuses one address for
    // its own outgoing connections, as a real proxy does.
    const std::array<Addr, 8> addrs = {a4(192, 0, 2, 10),  a4(192, 0, 2, 20),  a4(203, 0, 113, 1),
                                       a4(198, 51, 100, 25), a4(198, 51, 100, 80), a6(0x0a, 0x10),
                                       a6(0x03, 0x01),     a6(0x00, 0x25)};
    const std::array<std::uint16_t, 10> ports = {25, 587, 3128, 8080, 1080, 443, 40000, 40001, 2525, 8888};

    Correlator corr(cfg);
    std::vector<Stream> streams(64);
    std::deque<std::string> payloads;  // stable storage for segment bytes
    std::vector<Segment> sent;         // for retransmissions
    FrameNum frame = 0;
    double now = 1000.0;

    // What a single pass shows of each frame right after it (finality.cpp),
    // checked against the complete view at the end.
    struct OnePass {
        FrameNum frame;
        bool provisional;
        Pairing pairing;
        StreamId tunnel;
        std::uint32_t relay;
    };
    std::vector<OnePass> one_pass;
    View single;
    // The plugin renders a frame once, after everything in it was observed
    // (its TCP segment, then the TLS records decrypted from it): a later
    // look at the same frame replaces the earlier one.
    auto look = [&](FrameNum f) {
        if (!one_pass.empty() && one_pass.back().frame == f) one_pass.pop_back();
        const FrameNote* n = corr.note(f);
        if (!n) return;
        corr.view_into(*n, single, false);
        if (single.suspect && one_pass.size() < 4096)
            one_pass.push_back({f, single.provisional, single.pairing, single.proxy->stream,
                                single.relay ? single.relay->stream : kNone});
    };
    auto emit = [&](Segment s) {
        s.frame = ++frame;
        s.time = now;
        corr.on_segment(s);
        look(s.frame);
        if (s.len > 0 && sent.size() < 256) sent.push_back(s);
    };
    auto payload = [&]() -> std::string& {
        std::string p;
        int kind = fdp.ConsumeIntegralInRange<int>(0, 3);
        if (kind == 0) {
            p = fdp.ConsumeRandomLengthString(600);
        } else if (kind == 3 && fdp.ConsumeBool()) {
            p.assign(fdp.ConsumeIntegralInRange<std::size_t>(1, 20000), 'A');  // no newline
        } else {
            int k = fdp.ConsumeIntegralInRange<int>(1, 3);
            while (k-- > 0) {
                std::size_t i = fdp.ConsumeIntegralInRange<std::size_t>(0, std::size(kSnippets) - 1);
                p.append(kSnippets[i]);
            }
            // Sometimes cut the pieces at an arbitrary point.
            if (fdp.ConsumeBool()) p.resize(fdp.ConsumeIntegralInRange<std::size_t>(0, p.size()));
        }
        payloads.push_back(std::move(p));
        return payloads.back();
    };

    auto pick_endpoint = [&]() {
        Endpoint e;
        e.addr = addrs[fdp.ConsumeIntegralInRange<std::size_t>(0, addrs.size() - 1)];
        e.port = fdp.ConsumeBool() ? ports[fdp.ConsumeIntegralInRange<std::size_t>(0, ports.size() - 1)]
                                   : fdp.ConsumeIntegral<std::uint16_t>();
        return e;
    };

    std::size_t ops = 0;
    while (fdp.remaining_bytes() > 0 && ++ops < 2000) {
        const int op = fdp.ConsumeIntegralInRange<int>(0, 11);
        // Stream ids up to 63: beyond max_streams when that cap is small.
        StreamId sid = fdp.ConsumeIntegralInRange<StreamId>(0, 63);
        Stream& st = streams[sid];
        if (!st.open || op == 0) {
            // (Re)open: pick a 4-tuple and initial sequence numbers.
            st.open = true;
            st.client = pick_endpoint();
            st.server = pick_endpoint();
            st.next[0] = fdp.ConsumeIntegral<std::uint32_t>();
            st.next[1] = fdp.ConsumeIntegral<std::uint32_t>();
            if (fdp.ConsumeBool()) {
                Segment s;
                s.stream = sid;
                s.src = st.client;
                s.dst = st.server;
                s.seq = st.next[0]++;
                s.flags = kSyn;
                emit(s);
                s.src = st.server;
                s.dst = st.client;
                s.seq = st.next[1]++;
                s.flags = kSyn | kAck;
                emit(s);
                s.src = st.client;
                s.dst = st.server;
                s.seq = st.next[0];
                s.flags = kAck;
                emit(s);
            }
            if (op == 0) continue;
        }
        const bool from_client = fdp.ConsumeBool();
        Segment s;
        s.stream = sid;
        s.src = from_client ? st.client : st.server;
        s.dst = from_client ? st.server : st.client;
        std::uint32_t& next = st.next[from_client ? 0 : 1];
        switch (op) {
            case 1:
            case 2:
            case 3:
            case 4: {  // in-order data
                const std::string& p = payload();
                s.seq = next;
                s.flags = kPsh | kAck;
                s.data = reinterpret_cast<const std::uint8_t*>(p.data());
                s.len = p.size();
                next += static_cast<std::uint32_t>(p.size());
                emit(s);
                break;
            }
            case 5: {  // data ahead of a hole, or at an arbitrary offset
                const std::string& p = payload();
                s.seq = next + fdp.ConsumeIntegralInRange<std::uint32_t>(0, 70000) -
                        fdp.ConsumeIntegralInRange<std::uint32_t>(0, 200);
                s.flags = kPsh | kAck;
                s.data = reinterpret_cast<const std::uint8_t*>(p.data());
                s.len = p.size();
                emit(s);
                break;
            }
            case 6:  // retransmit an earlier segment
                if (!sent.empty()) emit(sent[fdp.ConsumeIntegralInRange<std::size_t>(0, sent.size() - 1)]);
                break;
            case 7:  // FIN or RST
                s.seq = next;
                s.flags = fdp.ConsumeBool() ? (kFin | kAck) : (kRst | kAck);
                if (s.flags & kFin) ++next;
                emit(s);
                break;
            case 8: {  // DNS answer
                static const char* const names[] = {"mx.victim.example", "MX.Example.Net.", "other.example", "", "."};
                std::vector<Addr> as;
                int k = fdp.ConsumeIntegralInRange<int>(0, 3);
                while (k-- > 0) as.push_back(addrs[fdp.ConsumeIntegralInRange<std::size_t>(0, addrs.size() - 1)]);
                corr.on_dns(names[fdp.ConsumeIntegralInRange<std::size_t>(0, std::size(names) - 1)], as, ++frame);
                look(frame);
                break;
            }
            case 9: {  // time moves on by milliseconds, 40 s, or (rarely) back: capture clocks do that
                int t = fdp.ConsumeIntegralInRange<int>(-1, 1000);
                now += t < 0 ? -0.5 : t == 1000 ? 40.0 : t * 0.001;
                frame += fdp.ConsumeIntegralInRange<FrameNum>(0, 3);  // frames of other protocols
                break;
            }
            case 11: {  // a decrypted TLS record of the frame just seen (HTTPS proxy), in order or not
                const std::string& p = payload();
                std::uint32_t& off = st.plain[from_client ? 0 : 1];
                s.seq = fdp.ConsumeBool() ? off : fdp.ConsumeIntegral<std::uint32_t>();
                s.data = reinterpret_cast<const std::uint8_t*>(p.data());
                s.len = p.size();
                s.frame = frame;
                s.time = now;
                off += static_cast<std::uint32_t>(p.size());
                corr.on_decrypted(s);
                look(frame);
                break;
            }
            case 10: {  // any control segment (SYN, SYN-ACK, FIN, RST, ACK, combinations)
                s.seq = next;
                s.flags = fdp.ConsumeIntegral<std::uint8_t>() & 0x1F;
                if (s.flags & (kSyn | kFin)) ++next;
                emit(s);
                break;
            }
        }
    }

    // A single pass never told what the complete view contradicts.
    for (const OnePass& o : one_pass) {
        const FrameNote* n = corr.note(o.frame);
        if (!n) std::abort();
        View all = corr.view(*n);
        if (!all.suspect || all.proxy->stream != o.tunnel) {
            if (getenv("FUZZ_DEBUG"))
                fprintf(stderr, "frame %u: one pass marks tunnel %u (%s), complete view %s (leg %s)\n", o.frame, o.tunnel, o.provisional ? "tentative" : pairing_name(o.pairing),
                        all.suspect ? "names another tunnel" : "marks nothing", all.leg);
            std::abort();
        }
        if (!o.provisional && (all.pairing != o.pairing || (all.relay ? all.relay->stream : kNone) != o.relay)) {
            if (getenv("FUZZ_DEBUG"))
                fprintf(stderr, "frame %u tunnel %u: one pass %s relay %u, complete %s relay %u leg %s\n", o.frame,
                        o.tunnel, pairing_name(o.pairing), o.relay, pairing_name(all.pairing),
                        all.relay ? all.relay->stream : kNone, all.leg);
            std::abort();
        }
    }

    // Second pass: every frame's note and view, read like the renderer does.
    View reuse;
    volatile std::size_t sink = 0;
    for (FrameNum f = 0; f <= frame + 1; ++f) {
        if (corr.note(f)) continue;
        const std::uint32_t leg = corr.frame_flow(f);
        if (leg == kNone) continue;
        if (leg >= corr.flow_count()) std::abort();
        corr.view_into(FrameNote{f, leg, 0}, reuse);
        sink = sink + reuse.streams.size();
    }
    for (FrameNum f = 0; f <= frame + 1; ++f) {
        const FrameNote* n = corr.note(f);
        if (!n) continue;
        if (n->frame != f) std::abort();
        View v = corr.view(*n);
        corr.view_into(*n, reuse);
        if (v.suspect != reuse.suspect || v.pairing != reuse.pairing) std::abort();
        for (const Flow* fl : {v.proxy, v.relay, v.self}) {
            if (!fl) continue;
            sink = sink + fl->target_host.size() + fl->links.size() + fl->tunnels.size() + fl->stream;
        }
        if (v.smtp) {
            const Envelope& env = v.smtp->envelope();
            sink = sink + env.rcpt_to.size() + env.helo.size() + v.smtp->notes().size();
            sink = sink + v.smtp->counts(f).rcpts;
        }
        sink = sink + v.relay_candidates.size() + v.tunnel_candidates.size();
        if (n->flow != kNone && n->flow >= corr.flow_count()) std::abort();
    }
    if (corr.flow_count() > cfg.max_flows) std::abort();
    (void)sink;
    return 0;
}
