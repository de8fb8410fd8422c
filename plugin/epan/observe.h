// The per-frame entry of the observer (observe.cpp has the rest). Inline in
// the post-dissector: it runs on every frame of every capture, where its
// cost is mostly instruction-cache misses, so the common case (a TCP frame
// of a connection already known to be of no interest) is kept to a header
// parse, one cache probe and one table read, in as few cache lines as the
// compiler allows; everything else is out of line.
#pragma once

#include <epan/packet.h>
#include <wiretap/wtap.h>

#include "frame_parse.h"
#include "glue.h"
#include "stream_cache.h"

namespace soh::glue {

// Link types other than Ethernet (observe.cpp).
LinkType other_link_type(int encap);
// A TCP segment the fast path could not dismiss; `cached` is its stream when
// the cache knew it.
void observe_tcp(packet_info* pinfo, const Packet& p, const StreamCache::Key& key, const StreamId* cached);
// A UDP datagram from port 53.
void observe_dns(const Packet& p);

inline LinkType link_type(const packet_info* pinfo) {
    if (!pinfo->rec || pinfo->rec->rec_type != REC_TYPE_PACKET) return LinkType::Unsupported;
    const int encap = pinfo->rec->rec_header.packet_header.pkt_encap;
    if (__builtin_expect(encap == WTAP_ENCAP_ETHERNET, 1)) return LinkType::Ethernet;
    return other_link_type(encap);
}

// Feeds the engine with what this frame shows (first pass only).
[[gnu::always_inline]] inline void observe(tvbuff_t* tvb, packet_info* pinfo) {
    // Cheap pre-filter: only frames some transport dissector called TCP or UDP.
    if (pinfo->ptype != PT_TCP && pinfo->ptype != PT_UDP) return;
    const LinkType link = link_type(pinfo);
    if (link == LinkType::Unsupported) return;
    const guint caplen = tvb_captured_length(tvb);
    Packet p;
    if (!parse_frame(link, tvb_get_ptr(tvb, 0, static_cast<gint>(caplen)), caplen, p)) return;
    if (__builtin_expect(p.proto == 6, 1)) {
        const StreamCache::Key key = StreamCache::key(p.family, p.src_ip, p.sport, p.dst_ip, p.dport);
        bool at_syn = false;
        const std::optional<StreamId> id = streams->find(key, &at_syn);
        // A SYN may start a new stream on this 4-tuple; its SYN-ACK may trust
        // an entry that SYN wrote.
        const bool trusted = id && (!(p.flags & kSyn) || ((p.flags & kAck) && at_syn));
        if (__builtin_expect(trusted && engine->fast_path(*id, p.len, p.flags, pinfo->num), 1)) return;
        observe_tcp(pinfo, p, key, trusted ? &*id : nullptr);
    } else if (p.sport == 53) {
        observe_dns(p);
    }
}

}  // namespace soh::glue
