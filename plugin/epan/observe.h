// The per-frame entry of the observer (observe.cpp has the rest). Inline in
// the post-dissector: it runs on every frame of every capture, where its
// cost is mostly instruction-cache misses, so the common case (a TCP frame
// of a connection already known to be of no interest) is kept to a header
// parse, one cache probe and one table read, in as few cache lines as the
// compiler allows; everything else is out of line.
#pragma once

#include <epan/packet.h>
#include <epan/tvbuff-int.h>
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
// The same, for a common frame (parse_common_tcp).
void observe_tcp(packet_info* pinfo, const CommonTcp& c, const StreamCache::Key& key, const StreamId* cached);
// A frame that is not a common one: any other link, network or transport.
void observe_other(packet_info* pinfo, LinkType link, const std::uint8_t* bytes, std::size_t caplen);

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

// A TCP segment, as a CommonTcp or a Packet: the cache, then the engine's
// fast path, then the rest (observe_tcp).
template <class Seg>
[[gnu::always_inline]] inline void observe_segment(packet_info* pinfo, const Seg& s, const StreamCache::Key& key) {
    const std::uint32_t entry = streams->lookup(key);
    const StreamId id = entry & ~StreamCache::kAtSyn;
    const bool known = trusted(entry, s.flags);
    if (__builtin_expect(known && engine->fast_path(id, s.len, s.flags, pinfo->num), 1)) return;
    observe_tcp(pinfo, s, key, known ? &id : nullptr);
}

// Feeds the engine with what this frame shows (first pass only).
[[gnu::always_inline]] inline void observe(tvbuff_t* tvb, packet_info* pinfo) {
    // Cheap pre-filter: only frames some transport dissector called TCP or UDP.
    if (pinfo->ptype != PT_TCP && pinfo->ptype != PT_UDP) return;
    const LinkType link = link_type(pinfo);
    if (link == LinkType::Unsupported) return;
    std::size_t caplen;
    const std::uint8_t* bytes = frame_bytes(tvb, &caplen);
    CommonTcp c;
    if (__builtin_expect(link == LinkType::Ethernet && parse_common_tcp(bytes, caplen, c), 1))
        return observe_segment(pinfo, c, StreamCache::key(4, c.ip + 12, c.sport, c.ip + 16, c.dport));
    observe_other(pinfo, link, bytes, caplen);
}

}  // namespace soh::glue
