// Locating the TCP/UDP segment in raw frames of each supported link type.
#include "frame_parse.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace soh {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes tcp_header(std::uint16_t sport, std::uint16_t dport, std::uint32_t seq, std::uint8_t flags) {
    return {static_cast<std::uint8_t>(sport >> 8), static_cast<std::uint8_t>(sport), static_cast<std::uint8_t>(dport >> 8),
            static_cast<std::uint8_t>(dport), static_cast<std::uint8_t>(seq >> 24), static_cast<std::uint8_t>(seq >> 16),
            static_cast<std::uint8_t>(seq >> 8), static_cast<std::uint8_t>(seq), 0, 0, 0, 0, 0x50, flags, 0xff, 0xff,
            0, 0, 0, 0};
}

Bytes ipv4(const Bytes& l4, std::uint8_t proto, std::uint16_t frag = 0) {
    std::size_t total = 20 + l4.size();
    Bytes ip = {0x45, 0, static_cast<std::uint8_t>(total >> 8), static_cast<std::uint8_t>(total), 0, 1,
                static_cast<std::uint8_t>(frag >> 8), static_cast<std::uint8_t>(frag), 64, proto, 0, 0,
                192, 0, 2, 10, 203, 0, 113, 1};
    ip.insert(ip.end(), l4.begin(), l4.end());
    return ip;
}

Bytes ethernet(const Bytes& ip, std::uint16_t type = 0x0800, bool vlan = false) {
    Bytes e(12, 0xaa);
    if (vlan) e.insert(e.end(), {0x81, 0x00, 0x00, 0x05});
    e.push_back(static_cast<std::uint8_t>(type >> 8));
    e.push_back(static_cast<std::uint8_t>(type));
    e.insert(e.end(), ip.begin(), ip.end());
    return e;
}

Bytes with_payload(Bytes tcp, const char* text) {
    for (const char* p = text; *p; ++p) tcp.push_back(static_cast<std::uint8_t>(*p));
    return tcp;
}

TEST(FrameParse, EthernetIpv4Tcp) {
    Bytes f = ethernet(ipv4(with_payload(tcp_header(40001, 8888, 1000, 0x18), "CONNECT"), 6));
    auto p = parse_frame(LinkType::Ethernet, f.data(), f.size());
    ASSERT_TRUE(p);
    EXPECT_EQ(p->proto, 6);
    EXPECT_EQ(p->src().str(), "192.0.2.10");
    EXPECT_EQ(p->dst().str(), "203.0.113.1");
    EXPECT_EQ(p->sport, 40001);
    EXPECT_EQ(p->dport, 8888);
    EXPECT_EQ(p->seq, 1000u);
    EXPECT_EQ(p->flags, 0x18);
    ASSERT_EQ(p->len, 7u);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(p->payload), p->len), "CONNECT");
}

TEST(FrameParse, EthernetPaddingIsNotPayload) {
    Bytes f = ethernet(ipv4(with_payload(tcp_header(1, 2, 3, 0x18), "ab"), 6));
    f.resize(f.size() + 4, 0);  // short frame padded to the Ethernet minimum
    auto p = parse_frame(LinkType::Ethernet, f.data(), f.size());
    ASSERT_TRUE(p);
    EXPECT_EQ(p->len, 2u);
}

TEST(FrameParse, VlanTagged) {
    Bytes f = ethernet(ipv4(tcp_header(1, 25, 0, 0x02), 6), 0x0800, true);
    auto p = parse_frame(LinkType::Ethernet, f.data(), f.size());
    ASSERT_TRUE(p);
    EXPECT_EQ(p->dport, 25);
    EXPECT_EQ(p->flags, 0x02);
}

TEST(FrameParse, LinuxCookedV1AndV2) {
    Bytes ip = ipv4(tcp_header(5, 6, 7, 0x10), 6);
    Bytes sll(14, 0);
    sll.insert(sll.end(), {0x08, 0x00});
    sll.insert(sll.end(), ip.begin(), ip.end());
    auto p1 = parse_frame(LinkType::LinuxSll, sll.data(), sll.size());
    ASSERT_TRUE(p1);
    EXPECT_EQ(p1->sport, 5);
    Bytes sll2 = {0x08, 0x00};
    sll2.resize(20, 0);
    sll2.insert(sll2.end(), ip.begin(), ip.end());
    auto p2 = parse_frame(LinkType::LinuxSll2, sll2.data(), sll2.size());
    ASSERT_TRUE(p2);
    EXPECT_EQ(p2->dport, 6);
}

TEST(FrameParse, RawIpv6WithHopByHopHeader) {
    Bytes tcp = with_payload(tcp_header(40001, 25, 9, 0x18), "EHLO x\r\n");
    Bytes ext = {6, 0, 1, 4, 0, 0, 0, 0};  // hop-by-hop: next TCP, 8 bytes
    std::size_t plen = ext.size() + tcp.size();
    Bytes ip = {0x60, 0, 0, 0, static_cast<std::uint8_t>(plen >> 8), static_cast<std::uint8_t>(plen), 0, 64};
    Bytes src = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
    Bytes dst = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x25};
    ip.insert(ip.end(), src.begin(), src.end());
    ip.insert(ip.end(), dst.begin(), dst.end());
    ip.insert(ip.end(), ext.begin(), ext.end());
    ip.insert(ip.end(), tcp.begin(), tcp.end());
    auto p = parse_frame(LinkType::RawIp, ip.data(), ip.size());
    ASSERT_TRUE(p);
    EXPECT_EQ(p->dst().str(), "2001:db8::25");
    EXPECT_EQ(p->len, 8u);
}

TEST(FrameParse, UdpDatagram) {
    Bytes udp = {0, 53, 0x9c, 0x40, 0, 12, 0, 0, 'a', 'b', 'c', 'd'};
    Bytes f = ethernet(ipv4(udp, 17));
    auto p = parse_frame(LinkType::Ethernet, f.data(), f.size());
    ASSERT_TRUE(p);
    EXPECT_EQ(p->proto, 17);
    EXPECT_EQ(p->sport, 53);
    EXPECT_EQ(p->len, 4u);
}

TEST(FrameParse, FragmentsAndOtherProtocolsAreSkipped) {
    Bytes frag = ethernet(ipv4(tcp_header(1, 2, 3, 0), 6, 0x2000));  // more fragments
    EXPECT_FALSE(parse_frame(LinkType::Ethernet, frag.data(), frag.size()));
    Bytes icmp = ethernet(ipv4(Bytes(28, 0), 1));
    EXPECT_FALSE(parse_frame(LinkType::Ethernet, icmp.data(), icmp.size()));
    Bytes arp = ethernet(Bytes(28, 0), 0x0806);
    EXPECT_FALSE(parse_frame(LinkType::Ethernet, arp.data(), arp.size()));
}

TEST(FrameParse, TruncatedFramesNeverReadOutOfBounds) {
    Bytes f = ethernet(ipv4(with_payload(tcp_header(1, 2, 3, 0x18), "hello"), 6));
    for (std::size_t n = 0; n < f.size(); ++n) {
        Bytes cut(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(n));  // exact-size buffer for ASan
        auto p = parse_frame(LinkType::Ethernet, cut.data(), cut.size());
        if (p) {
            EXPECT_LE(p->payload + p->len, cut.data() + cut.size());
        }
    }
}

TEST(FrameParse, BadHeaderLengthsRejected) {
    Bytes tcp = tcp_header(1, 2, 3, 0);
    tcp[12] = 0x40;  // data offset 16 < 20
    Bytes f = ethernet(ipv4(tcp, 6));
    EXPECT_FALSE(parse_frame(LinkType::Ethernet, f.data(), f.size()));
    Bytes ip = ipv4(tcp_header(1, 2, 3, 0), 6);
    ip[0] = 0x44;  // IHL 16 < 20
    Bytes g = ethernet(ip);
    EXPECT_FALSE(parse_frame(LinkType::Ethernet, g.data(), g.size()));
}


// The inline shortcut for Ethernet/IPv4/TCP must agree with the general
// parser on every input: frames of each kind, then every byte of their
// headers set to boundary values, then every captured length.
TEST(FrameParse, ShortcutAgreesWithGeneralParser) {
    const std::vector<Bytes> seeds = {
        ethernet(ipv4(with_payload(tcp_header(40001, 8888, 1000, 0x18), "CONNECT x:25"), 6)),
        ethernet(ipv4(tcp_header(1, 2, 3, 0x02), 6)),
        ethernet(ipv4(with_payload(tcp_header(1, 2, 3, 0x18), "ab"), 6), 0x0800, true),
        ethernet(ipv4(Bytes(8, 0), 17)),
    };
    auto same = [](const Bytes& f, std::size_t n) {
        Bytes cut(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(n));  // exact size, for ASan
        Packet a, b;
        const bool fast = parse_frame(LinkType::Ethernet, cut.data(), cut.size(), a);
        const bool general = parse_frame_general(LinkType::Ethernet, cut.data(), cut.size(), b);
        EXPECT_EQ(fast, general);
        if (!fast || !general) return;
        EXPECT_EQ(a.family, b.family);
        EXPECT_EQ(a.src_ip, b.src_ip);
        EXPECT_EQ(a.dst_ip, b.dst_ip);
        EXPECT_EQ(a.proto, b.proto);
        EXPECT_EQ(a.sport, b.sport);
        EXPECT_EQ(a.dport, b.dport);
        EXPECT_EQ(a.seq, b.seq);
        EXPECT_EQ(a.flags, b.flags);
        EXPECT_EQ(a.payload, b.payload);
        EXPECT_EQ(a.len, b.len);
    };
    const std::uint8_t values[] = {0x00, 0x01, 0x05, 0x06, 0x08, 0x11, 0x14, 0x20, 0x3F, 0x40,
                                   0x45, 0x46, 0x50, 0x80, 0xF0, 0xFF};
    std::size_t agreed = 0;
    for (const Bytes& seed : seeds) {
        for (std::size_t n = 0; n <= seed.size(); ++n) same(seed, n);
        for (std::size_t i = 12; i < 14 + 20 + 20 && i < seed.size(); ++i) {
            for (std::uint8_t v : values) {
                Bytes f = seed;
                f[i] = v;
                same(f, f.size());
                same(f, f.size() - 1);
                ++agreed;
            }
        }
    }
    std::mt19937 rng(7);  // fixed seed: the same inputs every run
    for (int k = 0; k < 20000; ++k) {
        Bytes f = seeds[static_cast<std::size_t>(k) % seeds.size()];
        for (int m = 0; m < 3; ++m) f[12 + rng() % (f.size() - 12)] = static_cast<std::uint8_t>(rng());
        same(f, f.size());
    }
    EXPECT_GT(agreed, 500u);
}

}  // namespace
}  // namespace soh
