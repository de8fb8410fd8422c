// Turns a frame into an engine observation. The frame's own bytes are parsed
// by the core (frame_parse.h) instead of reading other protocols' fields:
// wanting fields would make tshark build a protocol tree for every frame of
// every capture. Only tcp.stream comes from Wireshark, through the TCP
// conversation the TCP dissector already set up, so our stream numbers are
// exactly tcp.stream. Never throws into epan: engine exceptions (allocation
// failure) are caught here.
#include <epan/address.h>
#include <epan/conversation.h>
#include <epan/dissectors/packet-tcp.h>
#include <epan/tvbuff.h>
#include <wiretap/wtap.h>

#include "dns_parse.h"
#include "frame_parse.h"
#include "stream_cache.h"
#include "glue.h"

namespace soh::glue {
namespace {

LinkType link_type(const packet_info* pinfo) {
    if (!pinfo->rec || pinfo->rec->rec_type != REC_TYPE_PACKET) return LinkType::Unsupported;
    switch (pinfo->rec->rec_header.packet_header.pkt_encap) {
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

// Everything past the fast path: kept out of line so that the code every
// frame runs stays a few cache lines long.
[[gnu::noinline]] void observe_tcp(packet_info* pinfo, const Packet& p, const StreamCache::Key& key,
                                   const StreamId* cached) {
    try {
        Segment s;
        if (cached) {
            s.stream = *cached;
        } else if (!conversation_stream(pinfo, p, key, &s.stream) || engine->skips(s.stream, p.len, p.flags)) {
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

[[gnu::noinline]] void observe_dns(const Packet& p) {
    try {
        if (auto dns = parse_dns_response(p.payload, p.len)) engine->on_dns(dns->name, dns->addrs);
    } catch (...) {
    }
}

}  // namespace

// Runs on every frame of every capture. The common case, a frame of a
// connection already known to be of no interest, costs a header parse, one
// cache probe and one table read.
void observe(tvbuff_t* tvb, packet_info* pinfo) {
    // Cheap pre-filter: only frames some transport dissector called TCP or UDP.
    if (pinfo->ptype != PT_TCP && pinfo->ptype != PT_UDP) return;
    const LinkType link = link_type(pinfo);
    if (link == LinkType::Unsupported) return;
    const guint caplen = tvb_captured_length(tvb);
    Packet p;
    if (!parse_frame(link, tvb_get_ptr(tvb, 0, static_cast<gint>(caplen)), caplen, p)) return;
    if (p.proto == 6) {
        const StreamCache::Key key = StreamCache::key(p.family, p.src_ip, p.sport, p.dst_ip, p.dport);
        bool at_syn = false;
        const std::optional<StreamId> id = streams->find(key, &at_syn);
        // A SYN may start a new stream on this 4-tuple; its SYN-ACK may trust
        // an entry that SYN wrote.
        const bool trusted = id && (!(p.flags & kSyn) || ((p.flags & kAck) && at_syn));
        if (trusted && engine->skips(*id, p.len, p.flags)) return;
        observe_tcp(pinfo, p, key, trusted ? &*id : nullptr);
    } else if (p.sport == 53) {
        observe_dns(p);
    }
}

}  // namespace soh::glue
