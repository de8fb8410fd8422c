#include "frame_parse.h"

namespace soh {
namespace {

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
std::uint32_t be32(const std::uint8_t* p) {
    return (static_cast<std::uint32_t>(p[0]) << 24) | (static_cast<std::uint32_t>(p[1]) << 16) |
           (static_cast<std::uint32_t>(p[2]) << 8) | p[3];
}

constexpr std::uint16_t kIpv4 = 0x0800, kIpv6 = 0x86DD, kVlan = 0x8100, kQinQ = 0x88A8;

bool transport(Packet& pkt, std::uint8_t proto, const std::uint8_t* p, std::size_t avail,
               std::size_t ip_payload_len) {
    // avail: captured bytes from p; ip_payload_len: what the IP header says.
    std::size_t len = ip_payload_len < avail ? ip_payload_len : avail;
    pkt.proto = proto;
    if (proto == 6) {
        if (len < 20) return false;
        std::size_t hl = static_cast<std::size_t>(p[12] >> 4) * 4;
        if (hl < 20 || hl > len) return false;
        pkt.sport = be16(p);
        pkt.dport = be16(p + 2);
        pkt.seq = be32(p + 4);
        pkt.flags = static_cast<std::uint16_t>(((p[12] & 0x0F) << 8) | p[13]);
        pkt.payload = p + hl;
        pkt.len = len - hl;
        return true;
    }
    if (proto == 17) {
        if (len < 8) return false;
        std::size_t ulen = be16(p + 4);
        if (ulen < 8) return false;
        pkt.sport = be16(p);
        pkt.dport = be16(p + 2);
        pkt.payload = p + 8;
        pkt.len = (ulen < len ? ulen : len) - 8;
        return true;
    }
    return false;
}

bool ipv4(const std::uint8_t* p, std::size_t n, Packet& pkt) {
    if (n < 20 || (p[0] >> 4) != 4) return false;
    std::size_t ihl = static_cast<std::size_t>(p[0] & 0x0F) * 4;
    std::size_t total = be16(p + 2);
    if (ihl < 20 || ihl > n || total < ihl) return false;
    // More fragments, or not the first one: the segment is not whole here.
    if ((be16(p + 6) & 0x3FFF) != 0) return false;
    pkt.family = 4;
    pkt.src_ip = p + 12;
    pkt.dst_ip = p + 16;
    return transport(pkt, p[9], p + ihl, n - ihl, total - ihl);
}

bool ipv6(const std::uint8_t* p, std::size_t n, Packet& pkt) {
    if (n < 40 || (p[0] >> 4) != 6) return false;
    pkt.family = 6;
    pkt.src_ip = p + 8;
    pkt.dst_ip = p + 24;
    std::size_t payload_len = be16(p + 4);
    std::uint8_t next = p[6];
    std::size_t off = 40;
    for (int i = 0; i < 8; ++i) {  // bounded walk of the extension headers
        if (next == 6 || next == 17) {
            if (off > n) return false;
            std::size_t used = off - 40;
            if (used > payload_len) return false;
            return transport(pkt, next, p + off, n - off, payload_len - used);
        }
        if (next != 0 && next != 43 && next != 60 && next != 51) return false;  // 44: fragment
        if (off + 2 > n) return false;
        std::size_t ext = next == 51 ? (static_cast<std::size_t>(p[off + 1]) + 2) * 4
                                     : (static_cast<std::size_t>(p[off + 1]) + 1) * 8;
        next = p[off];
        off += ext;
    }
    return false;
}

bool by_ethertype(std::uint16_t type, const std::uint8_t* p, std::size_t n, Packet& pkt) {
    if (type == kIpv4) return ipv4(p, n, pkt);
    if (type == kIpv6) return ipv6(p, n, pkt);
    return false;
}

bool by_version(const std::uint8_t* p, std::size_t n, Packet& pkt) {
    if (n == 0) return false;
    if ((p[0] >> 4) == 4) return ipv4(p, n, pkt);
    if ((p[0] >> 4) == 6) return ipv6(p, n, pkt);
    return false;
}

}  // namespace

std::optional<Packet> parse_frame(LinkType link, const std::uint8_t* data, std::size_t caplen) {
    Packet p;
    if (!parse_frame(link, data, caplen, p)) return std::nullopt;
    return p;
}

bool parse_frame_general(LinkType link, const std::uint8_t* d, std::size_t n, Packet& pkt) {
    if (!d) return false;
    switch (link) {
        case LinkType::Ethernet: {
            if (n < 14) return false;
            std::size_t off = 12;
            std::uint16_t type = be16(d + off);
            for (int tags = 0; (type == kVlan || type == kQinQ) && tags < 2; ++tags) {
                off += 4;
                if (off + 2 > n) return false;
                type = be16(d + off);
            }
            off += 2;
            return by_ethertype(type, d + off, n - off, pkt);
        }
        case LinkType::LinuxSll:
            if (n < 16) return false;
            return by_ethertype(be16(d + 14), d + 16, n - 16, pkt);
        case LinkType::LinuxSll2:
            if (n < 20) return false;
            return by_ethertype(be16(d), d + 20, n - 20, pkt);
        case LinkType::RawIp:
            return by_version(d, n, pkt);
        case LinkType::Null:
        case LinkType::Loop:
            // A 4-byte address family (host order for NULL, network for LOOP);
            // the IP version nibble says the same and needs no byte order.
            if (n < 4) return false;
            return by_version(d + 4, n - 4, pkt);
        case LinkType::Unsupported:
            break;
    }
    return false;
}

}  // namespace soh
