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

}  // namespace

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

// Everything past the fast path (observe.h): out of line, so that the code
// every frame runs stays a few cache lines long.
void observe_tcp(packet_info* pinfo, const Packet& p, const StreamCache::Key& key, const StreamId* cached) {
    try {
        Segment s;
        if (cached) {
            s.stream = *cached;
        } else if (!conversation_stream(pinfo, p, key, &s.stream) || engine->fast_path(s.stream, p.len, p.flags, pinfo->num)) {
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

void observe_tcp(packet_info* pinfo, const CommonTcp& c, const StreamCache::Key& key, const StreamId* cached) {
    observe_tcp(pinfo, c.packet(), key, cached);
}

void observe_other(packet_info* pinfo, LinkType link, const std::uint8_t* bytes, std::size_t caplen) {
    Packet p;
    if (!parse_frame_general(link, bytes, caplen, p)) return;
    if (p.proto == 6) {
        observe_segment(pinfo, p, StreamCache::key(p.family, p.src_ip, p.sport, p.dst_ip, p.dport));
    } else if (p.sport == 53) {
        try {
            if (auto dns = parse_dns_response(p.payload, p.len)) engine->on_dns(dns->name, dns->addrs);
        } catch (...) {
        }
    }
}

}  // namespace soh::glue
