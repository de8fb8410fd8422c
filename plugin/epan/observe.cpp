// Turns a frame into an engine observation. The frame's own bytes are parsed
// by the core (frame_parse.h) instead of reading other protocols' fields:
// wanting fields would make tshark build a protocol tree for every frame of
// every capture. Only tcp.stream comes from Wireshark, through the TCP
// conversation the TCP dissector already set up, so our stream numbers are
// exactly tcp.stream. Never throws into epan: engine exceptions (allocation
// failure) are caught here.
//
// observe runs on every frame, where its cost is mostly instruction-cache
// misses: by the next frame, Wireshark's own code has evicted ours. So the
// common case (an Ethernet/IPv4/TCP frame of a connection already known to
// be of no interest) is a header parse, a cache probe and one table read,
// in a function of its own with nothing else in between; everything past
// it is out of line and cold, in another section.
#include <epan/address.h>
#include <epan/conversation.h>
#include <epan/dissectors/packet-tcp.h>
#include <epan/tvbuff-int.h>
#include <wiretap/wtap.h>

#include "dns_parse.h"
#include "frame_parse.h"
#include "glue.h"
#include "observe.h"

namespace soh::glue {
namespace {

// tcp.stream of a segment whose 4-tuple the cache could not answer for,
// from the conversation TCP keeps for it. A SYN may open a new stream on a
// reused 4-tuple: it asks again, and so does a SYN-ACK unless that SYN was
// seen.
bool conversation_stream(packet_info* pinfo, const Packet& p, const StreamCache::Key& key, StreamId* out) {
    const address_type type = p.family == 4 ? AT_IPv4 : AT_IPv6;
    const int len = p.family == 4 ? 4 : 16;
    address src, dst;
    set_address(&src, type, len, p.src_ip);
    set_address(&dst, type, len, p.dst_ip);
    conversation_t* conv = find_conversation(pinfo->num, &src, &dst, CONVERSATION_TCP, p.sport, p.dport, 0);
    if (!conv) return false;
    auto* tcpd = static_cast<const tcp_analysis*>(conversation_get_proto_data(conv, wanted.proto_tcp));
    if (!tcpd) return false;
    *out = tcpd->stream;
    streams->put(key, tcpd->stream, (p.flags & kSyn) && !(p.flags & kAck));
    return true;
}

LinkType other_link_type(int encap) {
    switch (encap) {
        case WTAP_ENCAP_ETHERNET: return LinkType::Ethernet;
        case WTAP_ENCAP_SLL: return LinkType::LinuxSll;
        case WTAP_ENCAP_SLL2: return LinkType::LinuxSll2;
        case WTAP_ENCAP_RAW_IP:
        case WTAP_ENCAP_RAW_IP4:
        case WTAP_ENCAP_RAW_IP6: return LinkType::RawIp;
        case WTAP_ENCAP_NULL: return LinkType::Null;
        case WTAP_ENCAP_LOOP: return LinkType::Loop;
        default: return LinkType::Unsupported;
    }
}

inline LinkType link_type(const packet_info* pinfo) {
    if (!pinfo->rec || pinfo->rec->rec_type != REC_TYPE_PACKET) return LinkType::Unsupported;
    const int encap = pinfo->rec->rec_header.packet_header.pkt_encap;
    if (__builtin_expect(encap == WTAP_ENCAP_ETHERNET, 1)) return LinkType::Ethernet;
    return other_link_type(encap);
}

// The frame's captured bytes. The post-dissector is handed the frame's own
// tvb, whose bytes are in memory: read where they are (tvbuff-int.h) rather
// than through two calls into libwireshark on every frame. A tvb built
// lazily has no real_data yet, and gets the call.
inline const std::uint8_t* frame_bytes(tvbuff_t* tvb, std::size_t* len) {
    *len = tvb->length;
    if (__builtin_expect(tvb->real_data != nullptr, 1)) return tvb->real_data;
    return tvb_get_ptr(tvb, 0, static_cast<gint>(tvb->length));
}

// Whether a cache entry (StreamCache::lookup) gives this segment's stream: a
// SYN may start a new stream on its 4-tuple; its SYN-ACK may trust an entry
// that SYN wrote.
inline bool trusted(std::uint32_t entry, std::uint16_t flags) {
    return entry != StreamCache::kMiss &&
           (__builtin_expect(!(flags & kSyn), 1) || ((flags & kAck) && (entry & StreamCache::kAtSyn)));
}

// A segment the engine's fast path needs to see no more of, given its cache entry.
inline bool dismissed(packet_info* pinfo, std::uint32_t entry, std::size_t len, std::uint16_t flags) {
    return trusted(entry, flags) && engine->fast_path(entry & ~StreamCache::kAtSyn, len, flags, pinfo->num);
}

// A TCP segment the engine's fast path did not dismiss, with its cache
// entry: when the entry was trusted, the fast path has seen it already.
[[gnu::cold, gnu::noinline]] void observe_tcp(packet_info* pinfo, const Packet& p, const StreamCache::Key& key,
                                              std::uint32_t entry) {
    try {
        Segment s;
        if (trusted(entry, p.flags)) {
            s.stream = entry & ~StreamCache::kAtSyn;
        } else if (!conversation_stream(pinfo, p, key, &s.stream) ||
                   engine->fast_path(s.stream, p.len, p.flags, pinfo->num)) {
            return;
        }
        s.src = Endpoint{p.src(), p.sport};
        s.dst = Endpoint{p.dst(), p.dport};
        s.frame = pinfo->num;
        s.time = static_cast<double>(pinfo->abs_ts.secs) + pinfo->abs_ts.nsecs / 1e9;
        s.seq = p.seq;
        s.flags = p.flags;
        s.data = p.len ? p.payload : nullptr;
        s.len = p.len;
        engine->on_segment(s);
    } catch (...) {
        // Out of memory inside the engine: skip this frame rather than abort.
    }
}

// A common frame the fast path did not dismiss: parsed again here, so that
// observe keeps its values in registers rather than in memory for this call.
[[gnu::cold, gnu::noinline]] void observe_common(packet_info* pinfo, const std::uint8_t* bytes, std::size_t caplen,
                                                 std::uint32_t entry) {
    CommonTcp c;
    if (!parse_common_tcp(bytes, caplen, c)) return;  // observe accepted it a moment ago
    const Packet p = c.packet();
    observe_tcp(pinfo, p, StreamCache::key4(p.src_ip, p.sport, p.dst_ip, p.dport), entry);
}

// Any other frame: other link, network or transport.
[[gnu::cold, gnu::noinline]] void observe_other(packet_info* pinfo, LinkType link, const std::uint8_t* bytes,
                                                std::size_t caplen) {
    Packet p;
    if (!parse_frame_general(link, bytes, caplen, p)) return;
    if (p.proto == 6) {
        const StreamCache::Key key = StreamCache::key(p.family, p.src_ip, p.sport, p.dst_ip, p.dport);
        const std::uint32_t entry = streams->lookup(key);
        if (!dismissed(pinfo, entry, p.len, p.flags)) observe_tcp(pinfo, p, key, entry);
    } else if (p.sport == 53) {
        try {
            if (auto dns = parse_dns_response(p.payload, p.len)) engine->on_dns(dns->name, dns->addrs);
        } catch (...) {
        }
    }
}

}  // namespace

[[gnu::hot]] void observe(tvbuff_t* tvb, packet_info* pinfo) {
    // Cheap pre-filter: only frames some transport dissector called TCP or UDP.
    if (pinfo->ptype != PT_TCP && pinfo->ptype != PT_UDP) return;
    const LinkType link = link_type(pinfo);
    if (link == LinkType::Unsupported) return;
    std::size_t caplen;
    const std::uint8_t* bytes = frame_bytes(tvb, &caplen);
    CommonTcp c;
    if (__builtin_expect(link == LinkType::Ethernet && parse_common_tcp(bytes, caplen, c), 1)) {
        const std::uint32_t entry = streams->lookup(StreamCache::key4(c.ip + 12, c.sport, c.ip + 16, c.dport));
        if (__builtin_expect(!dismissed(pinfo, entry, c.len, c.flags), 0)) observe_common(pinfo, bytes, caplen, entry);
        return;
    }
    observe_other(pinfo, link, bytes, caplen);
}

}  // namespace soh::glue
