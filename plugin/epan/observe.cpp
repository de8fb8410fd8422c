// Feeds the engine with every TCP segment and every DNS answer Wireshark
// decodes, whatever carries them: Ethernet, Wi-Fi, PPP, VXLAN, Geneve,
// GRE, ERSPAN, MPLS, PPPoE, GTP-U, IP in IP, reassembled IP fragments, and
// any other layer Wireshark knows.
//
// How: every IPv4 and IPv6 packet reaches its transport through one
// dissector table, "ip.proto", and UDP reaches DNS through "udp.port" 53.
// While a file is dissected with the protocol enabled, the entries for TCP
// and for DNS are thin handles of ours that look at the segment, then hand
// it on to the handle that was there at handoff, after every built-in
// dissector's (TCP's and DNS's own, or whatever another plugin put there);
// with the protocol disabled, the tables are as stock Wireshark has them. Our handles carry no protocol, so Wireshark adds
// no layer for them: every other dissector sees exactly what it saw before
// (the noninterference test). The inner addresses are pinfo's, set by the IP layer just before;
// the stream is tcp.stream, as TCP numbered it. Error packets (ICMP quoting
// a TCP header) are passed straight on: they are not segments of the
// connection.
//
// Only the first pass observes (Wireshark's second pass and GUI
// redissection only render, see register.cpp). Nothing here throws into
// epan: engine exceptions (allocation failure) are caught.
//
// Cost: this runs on every TCP segment of every capture, so the common case
// (a segment of a connection already known to be of no interest) is a
// header read, a cache probe and one table read, before TCP is called.
#include <epan/address.h>
#include <epan/conversation.h>
#include <epan/dissectors/packet-tcp.h>
#include <epan/exceptions.h>
#include <epan/tvbuff-int.h>

#include "dns_parse.h"
#include "glue.h"
#include "observe.h"
#include "segment_parse.h"
#include "tls_records.h"

namespace soh::glue {
namespace {

dissector_handle_t next_tcp = nullptr;  // what "ip.proto" held for TCP before us
dissector_handle_t next_dns = nullptr;  // what "udp.port" held for 53

// A segment's bytes. The tvb IP hands on is a subset of the frame's (or of a
// reassembled datagram's) whose bytes are in memory: read where they are
// (tvbuff-int.h) rather than through a call into libwireshark per segment.
inline const std::uint8_t* bytes_of(tvbuff_t* tvb, std::size_t* captured, std::size_t* reported) {
    *captured = tvb->length;
    *reported = tvb->reported_length;
    if (__builtin_expect(tvb->real_data != nullptr, 1)) return tvb->real_data;
    return tvb_get_ptr(tvb, 0, static_cast<gint>(tvb->length));
}

// The IP addresses of the segment, as the IP layer set them; family 0 when
// they are not IP (a dissector calling "ip.proto" from elsewhere).
struct Addrs {
    std::uint8_t family;
    const std::uint8_t* src;
    const std::uint8_t* dst;
};
inline Addrs addrs_of(const packet_info* pinfo) {
    const address& s = pinfo->src;
    const address& d = pinfo->dst;
    if (s.type == AT_IPv4 && d.type == AT_IPv4 && s.len == 4 && d.len == 4)
        return {4, static_cast<const std::uint8_t*>(s.data), static_cast<const std::uint8_t*>(d.data)};
    if (s.type == AT_IPv6 && d.type == AT_IPv6 && s.len == 16 && d.len == 16)
        return {6, static_cast<const std::uint8_t*>(s.data), static_cast<const std::uint8_t*>(d.data)};
    return {0, nullptr, nullptr};
}

inline bool first_look(const packet_info* pinfo) {
    return file_enabled && !PINFO_FD_VISITED(pinfo) && !pinfo->flags.in_error_pkt;
}

// Whether a cache entry (StreamCache::lookup) gives this segment's stream: a
// SYN may start a new stream on its 4-tuple; its SYN-ACK may trust an entry
// that SYN wrote.
inline bool trusted(std::uint32_t entry, std::uint16_t flags) {
    return entry != StreamCache::kMiss &&
           (__builtin_expect(!(flags & kSyn), 1) || ((flags & kAck) && (entry & StreamCache::kAtSyn)));
}

// tcp.stream of the segment from the conversation TCP keeps for it, and
// remembered in the cache.
bool conversation_stream(packet_info* pinfo, const Addrs& a, const TcpHeader& h, const StreamCache::Key& key,
                         StreamId* out) {
    const address_type type = a.family == 4 ? AT_IPv4 : AT_IPv6;
    const int len = a.family == 4 ? 4 : 16;
    address src, dst;
    set_address(&src, type, len, a.src);
    set_address(&dst, type, len, a.dst);
    conversation_t* conv = find_conversation(pinfo->num, &src, &dst, CONVERSATION_TCP, h.sport, h.dport, 0);
    if (!conv) return false;
    auto* tcpd = static_cast<const tcp_analysis*>(conversation_get_proto_data(conv, wanted.proto_tcp));
    if (!tcpd) return false;
    *out = tcpd->stream;
    streams->put(key, tcpd->stream, (h.flags & kSyn) && !(h.flags & kAck));
    return true;
}

// What the engine is told of a segment of this frame, but its bytes.
Segment segment_of(const packet_info* pinfo, const Addrs& a, std::uint16_t sport, std::uint16_t dport,
                   StreamId stream) {
    Segment s;
    s.stream = stream;
    s.src = Endpoint{a.family == 4 ? Addr::v4(a.src) : Addr::v6(a.src), sport};
    s.dst = Endpoint{a.family == 4 ? Addr::v4(a.dst) : Addr::v6(a.dst), dport};
    s.frame = pinfo->num;
    s.time = static_cast<double>(pinfo->abs_ts.secs) + pinfo->abs_ts.nsecs / 1e9;
    return s;
}

// A segment of a known stream that the fast path did not dismiss.
[[gnu::cold, gnu::noinline]] void observe_segment(packet_info* pinfo, const Addrs& a, const TcpHeader& h,
                                                  StreamId stream) {
    try {
        Segment s = segment_of(pinfo, a, h.sport, h.dport, stream);
        s.seq = h.seq;
        s.flags = h.flags;
        s.data = h.len ? h.payload : nullptr;
        s.len = h.len;
        engine->on_segment(s);
    } catch (...) {
        // Out of memory inside the engine: skip this segment rather than abort.
    }
}

// A segment whose stream the cache could not give (a new 4-tuple, or a SYN
// that may open a new stream on an old one): TCP numbers it first. Observed
// also when TCP or a dissector above it throws (a malformed payload must not
// hide a segment from us), after which the exception goes on.
[[gnu::cold, gnu::noinline]] int tcp_first(tvbuff_t* tvb, packet_info* pinfo, proto_tree* tree, void* data,
                                          const Addrs& a, const TcpHeader& h, const StreamCache::Key& key) {
    volatile int ret = 0;
    TRY {
        ret = call_dissector_only(next_tcp, tvb, pinfo, tree, data);
    }
    FINALLY {
        StreamId stream;
        if (conversation_stream(pinfo, a, h, key, &stream) &&
            !engine->fast_path(stream, h.len, h.flags, pinfo->num, h.payload))
            observe_segment(pinfo, a, h, stream);
    }
    ENDTRY;
    return ret;
}

// "ip.proto" 6.
[[gnu::hot]] int tcp_shim(tvbuff_t* tvb, packet_info* pinfo, proto_tree* tree, void* data) {
    if (__builtin_expect(first_look(pinfo), 1)) {
        const Addrs a = addrs_of(pinfo);
        std::size_t captured, reported;
        const std::uint8_t* d = bytes_of(tvb, &captured, &reported);
        TcpHeader h;
        if (a.family && parse_tcp(d, captured, reported, h)) {
            const StreamCache::Key key = StreamCache::key(a.family, a.src, h.sport, a.dst, h.dport);
            const std::uint32_t entry = streams->lookup(key);
            if (__builtin_expect(!trusted(entry, h.flags), 0)) return tcp_first(tvb, pinfo, tree, data, a, h, key);
            const StreamId stream = entry & ~StreamCache::kAtSyn;
            if (__builtin_expect(!engine->fast_path(stream, h.len, h.flags, pinfo->num, h.payload), 0))
                observe_segment(pinfo, a, h, stream);
        }
    }
    return call_dissector_only(next_tcp, tvb, pinfo, tree, data);
}

// "udp.port" 53, in front of DNS: the answers name the addresses of
// host-name targets (RFC 1035 §4.2.1: a server answers from port 53). Only
// DNS traffic pays for it, not every UDP datagram (a VXLAN capture is all UDP).
int dns_shim(tvbuff_t* tvb, packet_info* pinfo, proto_tree* tree, void* data) {
    if (first_look(pinfo) && pinfo->srcport == 53) {
        std::size_t captured, reported;
        const std::uint8_t* d = bytes_of(tvb, &captured, &reported);
        try {
            if (auto dns = parse_dns_response(d, captured < reported ? captured : reported))
                engine->on_dns(dns->name, dns->addrs, pinfo->num);
        } catch (...) {
        }
    }
    return call_dissector_only(next_dns, tvb, pinfo, tree, data);
}

// A frame's decrypted records, and the stream they belong to (looked up at
// the first record: most frames that get here have none).
struct Decrypted {
    packet_info* pinfo;
    Addrs a;
    std::uint16_t sport, dport;
    bool looked_up;
    bool known;
    StreamId stream;
};

bool stream_of(Decrypted& c) {
    if (c.looked_up) return c.known;
    c.looked_up = true;
    const StreamCache::Key key = StreamCache::key(c.a.family, c.a.src, c.sport, c.a.dst, c.dport);
    if (const auto known = streams->find(key)) {
        c.stream = *known;
        return c.known = true;
    }
    TcpHeader h{};
    h.sport = c.sport;
    h.dport = c.dport;
    h.flags = kAck;
    return c.known = conversation_stream(c.pinfo, c.a, h, key, &c.stream);
}

void decrypted_record(void* ctx, const std::uint8_t* data, std::size_t len, std::uint32_t seq) {
    auto& c = *static_cast<Decrypted*>(ctx);
    if (!stream_of(c)) return;
    try {
        Segment s = segment_of(c.pinfo, c.a, c.sport, c.dport, c.stream);
        s.seq = seq;
        s.data = data;
        s.len = len;
        engine->on_decrypted(s);
    } catch (...) {
    }
}

struct Shim {
    const char* table;
    guint32 key;
    dissector_handle_t handle;  // ours
    dissector_handle_t next;    // what it hands on to
};
Shim shims[2];

// In front of `next` or not, as asked; an entry that holds neither (a
// Decode As choice of the user's) is left alone.
void place(const Shim& s, bool in_front) {
    dissector_table_t table = find_dissector_table(s.table);
    if (!table || !s.handle || !s.next) return;
    const dissector_handle_t current = dissector_get_uint_handle(table, s.key);
    // dissector_add_uint sets the entry and what Decode As resets it to, so
    // that Decode As shows no change of the user's.
    if (in_front && current == s.next) dissector_add_uint(s.table, s.key, s.handle);
    if (!in_front && current == s.handle) dissector_add_uint(s.table, s.key, s.next);
}

// Our handle for what `table` holds at `key`; it hands on to that.
Shim make(const char* table, guint32 key, dissector_t fn, const char* name, const char* description,
          dissector_handle_t* next) {
    dissector_table_t t = find_dissector_table(table);
    *next = t ? dissector_get_uint_handle(t, key) : nullptr;
    if (!*next) return {table, key, nullptr, nullptr};
    // No protocol (-1): Wireshark pushes no layer for it, so it appears in
    // no "Protocols in frame" and costs no per-segment layer bookkeeping.
    return {table, key, create_dissector_handle_with_name_and_description(fn, -1, name, description), *next};
}

}  // namespace

// After every dissector ran (register.cpp): the addresses and ports are
// those of the frame's innermost TCP segment, the one TLS decrypted.
void observe_decrypted(packet_info* pinfo) {
    if (!first_look(pinfo) || pinfo->ptype != PT_TCP) return;
    Decrypted c{pinfo, addrs_of(pinfo), static_cast<std::uint16_t>(pinfo->srcport),
                static_cast<std::uint16_t>(pinfo->destport), false, false, 0};
    if (c.a.family) for_each_tls_record(pinfo, decrypted_record, &c);
}

void register_shims() {
    register_tls_records();
    shims[0] = make("ip.proto", 6, tcp_shim, "smtp-over-http.tcp", "TCP (seen by SMTP-over-HTTP)", &next_tcp);
    shims[1] = make("udp.port", 53, dns_shim, "smtp-over-http.dns", "DNS (seen by SMTP-over-HTTP)", &next_dns);
}

void use_shims(bool on) {
    for (const Shim& s : shims) place(s, on);
}

}  // namespace soh::glue
