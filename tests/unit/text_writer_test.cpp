// TextWriter: numbers, addresses as inet_ntop writes them, truncation.
#include "text_writer.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

namespace soh {
namespace {

std::string written(const Addr& a) {
    char buf[64];
    return TextWriter(buf, sizeof buf).addr(a).c_str();
}

std::string ntop(const Addr& a) {
    char buf[INET6_ADDRSTRLEN];
    const int af = a.family == 4 ? AF_INET : AF_INET6;
    return inet_ntop(af, a.bytes.data(), buf, sizeof buf) ? buf : "";
}

TEST(TextWriter, Numbers) {
    char buf[32];
    TextWriter w(buf, sizeof buf);
    w.num(0).str(" ").num(7).str(" ").num(65535).str(" ").num(4294967295u);
    EXPECT_STREQ(buf, "0 7 65535 4294967295");
    EXPECT_EQ(w.size(), std::string(buf).size());
}

TEST(TextWriter, Endpoints) {
    char buf[64];
    const std::uint8_t v4[4] = {192, 0, 2, 1};
    EXPECT_STREQ(TextWriter(buf, sizeof buf).endpoint(Endpoint{Addr::v4(v4), 8080}).c_str(), "192.0.2.1:8080");
    const std::uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    EXPECT_STREQ(TextWriter(buf, sizeof buf).endpoint(Endpoint{Addr::v6(v6), 25}).c_str(), "[2001:db8::1]:25");
    EXPECT_STREQ(TextWriter(buf, sizeof buf).addr(Addr{}).c_str(), "");
}

// RFC 5952 §4 and §5 examples, and glibc's forms of embedded IPv4.
TEST(TextWriter, Ipv6Rules) {
    const struct {
        const char* in;
        const char* out;
    } cases[] = {
        {"2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"},   // §4.2.1
        {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},                // §4.2.2: one zero field stays
        {"2001:0:0:1:0:0:0:1", "2001:0:0:1::1"},                          // §4.2.3: longest run
        {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},                    // §4.2.3: first of equal runs
        {"2001:DB8::AbCd", "2001:db8::abcd"},                             // §4.3: lower case
        {"::", "::"},
        {"::1", "::1"},
        {"1::", "1::"},
        {"::ffff:192.0.2.1", "::ffff:192.0.2.1"},  // §5: IPv4-mapped
        {"::192.0.2.1", "::192.0.2.1"},            // IPv4-compatible, as glibc writes it
        {"::ffff:0:0", "::ffff:0.0.0.0"},
        {"0:0:0:0:0:ffff:0:1", "::ffff:0.0.0.1"},
        {"1:0:0:0:0:ffff:c000:201", "1::ffff:c000:201"},
    };
    for (const auto& c : cases) {
        auto a = Addr::parse(c.in);
        ASSERT_TRUE(a) << c.in;
        EXPECT_EQ(written(*a), c.out) << c.in;
        EXPECT_EQ(written(*a), ntop(*a)) << c.in;
    }
}

// Every pattern of zero fields (which decides the "::"), with random values
// in the others and in an embedded IPv4 tail, written as inet_ntop does.
TEST(TextWriter, MatchesInetNtop) {
    std::mt19937 rng(5952);
    for (unsigned mask = 0; mask < 256; ++mask) {
        for (int round = 0; round < 40; ++round) {
            std::uint8_t b[16];
            for (int i = 0; i < 8; ++i) {
                std::uint16_t v = 0;
                if (!(mask >> i & 1)) {
                    // Small values too: they test leading-zero suppression.
                    const unsigned bits = 1 + rng() % 16;
                    v = static_cast<std::uint16_t>(1 + rng() % ((1u << bits) - 1));
                }
                if (i == 5 && round % 4 == 0 && !(mask >> i & 1)) v = 0xFFFF;
                b[2 * i] = static_cast<std::uint8_t>(v >> 8);
                b[2 * i + 1] = static_cast<std::uint8_t>(v);
            }
            const Addr a = Addr::v6(b);
            ASSERT_EQ(written(a), ntop(a)) << "mask " << mask;
        }
    }
    for (int round = 0; round < 2000; ++round) {
        std::uint8_t b[4];
        for (auto& x : b) x = static_cast<std::uint8_t>(round % 3 == 0 ? rng() % 10 : rng());
        const Addr a = Addr::v4(b);
        ASSERT_EQ(written(a), ntop(a));
    }
}

TEST(TextWriter, CutsAtTheBufferEnd) {
    char buf[8];
    TextWriter w(buf, sizeof buf);
    w.str("abc").num(123456).str("xyz");
    EXPECT_STREQ(buf, "abc1234");
    EXPECT_EQ(w.size(), 7u);
    const std::uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    TextWriter w2(buf, sizeof buf);
    w2.endpoint(Endpoint{Addr::v6(v6), 25});
    EXPECT_STREQ(buf, "[2001:d");
    char one[1];
    TextWriter w3(one, 1);
    w3.str("x").num(5).addr(Addr::v6(v6));
    EXPECT_STREQ(one, "");
}

}  // namespace
}  // namespace soh
