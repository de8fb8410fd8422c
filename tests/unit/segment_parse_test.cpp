// Reading TCP headers from the bytes the IP layer hands on.
#include "segment_parse.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace soh {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes tcp(std::uint16_t sport, std::uint16_t dport, std::uint32_t seq, std::uint8_t flags, const std::string& data,
          std::uint8_t offset_words = 5) {
    Bytes b = {static_cast<std::uint8_t>(sport >> 8), static_cast<std::uint8_t>(sport),
               static_cast<std::uint8_t>(dport >> 8), static_cast<std::uint8_t>(dport),
               static_cast<std::uint8_t>(seq >> 24), static_cast<std::uint8_t>(seq >> 16),
               static_cast<std::uint8_t>(seq >> 8), static_cast<std::uint8_t>(seq), 0, 0, 0, 0,
               static_cast<std::uint8_t>(offset_words << 4), flags, 0xff, 0xff, 0, 0, 0, 0};
    b.resize(offset_words * 4u, 1);  // options
    b.insert(b.end(), data.begin(), data.end());
    return b;
}

std::string payload(const TcpHeader& h) { return std::string(reinterpret_cast<const char*>(h.payload), h.len); }

TEST(SegmentParse, TcpHeaderFields) {
    Bytes b = tcp(40001, 8888, 1000, 0x18, "CONNECT");
    TcpHeader h;
    ASSERT_TRUE(parse_tcp(b.data(), b.size(), b.size(), h));
    EXPECT_EQ(h.sport, 40001);
    EXPECT_EQ(h.dport, 8888);
    EXPECT_EQ(h.seq, 1000u);
    EXPECT_EQ(h.flags, 0x18);
    EXPECT_EQ(payload(h), "CONNECT");
}

TEST(SegmentParse, TcpOptionsAreNotPayload) {
    Bytes b = tcp(1, 2, 3, 0x02, "xy", 8);
    TcpHeader h;
    ASSERT_TRUE(parse_tcp(b.data(), b.size(), b.size(), h));
    EXPECT_EQ(payload(h), "xy");
}

// The IP length ends the segment: bytes after it (Ethernet padding) are not
// data; a snap length shorter than it ends what there is.
TEST(SegmentParse, TcpDataStopsAtTheShorterOfCapturedAndReported) {
    Bytes b = tcp(1, 2, 3, 0x18, "HELO x");
    b.insert(b.end(), 6, 0);  // padding
    TcpHeader h;
    ASSERT_TRUE(parse_tcp(b.data(), b.size(), b.size() - 6, h));
    EXPECT_EQ(payload(h), "HELO x");
    ASSERT_TRUE(parse_tcp(b.data(), 22, b.size() - 6, h));
    EXPECT_EQ(payload(h), "HE");
}

TEST(SegmentParse, TcpFlagsKeepEcnBits) {
    Bytes b = tcp(1, 2, 3, 0xC2, "");
    b[12] |= 0x01;  // the AE bit, RFC 9293 §3.1
    TcpHeader h;
    ASSERT_TRUE(parse_tcp(b.data(), b.size(), b.size(), h));
    EXPECT_EQ(h.flags, 0x1C2);
}

TEST(SegmentParse, TcpRejectsWhatCannotBeAHeader) {
    TcpHeader h;
    Bytes b = tcp(1, 2, 3, 0x10, "");
    EXPECT_FALSE(parse_tcp(b.data(), 19, 19, h));      // shorter than 20
    EXPECT_FALSE(parse_tcp(nullptr, 0, 0, h));
    b[12] = 0x40;                                      // offset 16 < 20
    EXPECT_FALSE(parse_tcp(b.data(), b.size(), b.size(), h));
    b[12] = 0xF0;                                      // offset 60 > 20 bytes there
    EXPECT_FALSE(parse_tcp(b.data(), b.size(), b.size(), h));
    b[12] = 0x50;
    EXPECT_FALSE(parse_tcp(b.data(), b.size(), 12, h));  // IP says 12 bytes
}

// Whatever the bytes, nothing is read outside them and the payload lies
// inside them.
TEST(SegmentParse, RandomBytesStayInBounds) {
    std::mt19937 rng(7);
    for (int i = 0; i < 20000; ++i) {
        Bytes b(rng() % 80);
        for (auto& x : b) x = static_cast<std::uint8_t>(rng());
        const std::size_t reported = rng() % 100;
        TcpHeader h;
        if (parse_tcp(b.data(), b.size(), reported, h)) {
            EXPECT_GE(h.payload, b.data() + 20);
            EXPECT_LE(h.payload + h.len, b.data() + std::min(b.size(), reported));
        }
    }
}

}  // namespace
}  // namespace soh
