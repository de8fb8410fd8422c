// The per-connection tcp.stream cache used by the glue.
#include "stream_cache.h"

#include <gtest/gtest.h>

namespace soh {
namespace {

Endpoint ep(const char* ip, std::uint16_t port) { return Endpoint{*Addr::parse(ip), port}; }

TEST(StreamCache, EitherDirectionFindsTheSameStream) {
    StreamCache c;
    c.put(ep("192.0.2.10", 40001), ep("203.0.113.1", 8888), 7);
    EXPECT_EQ(c.find(ep("203.0.113.1", 8888), ep("192.0.2.10", 40001)), 7u);
    EXPECT_EQ(c.find(ep("192.0.2.10", 40001), ep("203.0.113.1", 8888)), 7u);
    EXPECT_FALSE(c.find(ep("192.0.2.10", 40002), ep("203.0.113.1", 8888)));
}

TEST(StreamCache, ReusedTupleIsOverwritten) {
    StreamCache c;
    c.put(ep("2001:db8::1", 1), ep("2001:db8::2", 25), 1);
    c.put(ep("2001:db8::2", 25), ep("2001:db8::1", 1), 9);
    EXPECT_EQ(c.find(ep("2001:db8::1", 1), ep("2001:db8::2", 25)), 9u);
    EXPECT_EQ(c.size(), 1u);
}

TEST(StreamCache, BoundedByEmptyingWhenFull) {
    StreamCache c(4);
    for (std::uint16_t p = 1; p <= 10; ++p) c.put(ep("192.0.2.1", p), ep("192.0.2.2", 80), p);
    EXPECT_LE(c.size(), 4u);
    EXPECT_EQ(c.find(ep("192.0.2.1", 10), ep("192.0.2.2", 80)), 10u);
}

TEST(StreamCache, RemembersWhetherTheEntryCameFromASyn) {
    StreamCache c;
    bool at_syn = false;
    c.put(ep("192.0.2.10", 40001), ep("203.0.113.1", 8888), 3, true);
    ASSERT_EQ(c.find(ep("203.0.113.1", 8888), ep("192.0.2.10", 40001), &at_syn), 3u);
    EXPECT_TRUE(at_syn);
    c.put(ep("192.0.2.10", 40001), ep("203.0.113.1", 8888), 4);
    ASSERT_EQ(c.find(ep("192.0.2.10", 40001), ep("203.0.113.1", 8888), &at_syn), 4u);
    EXPECT_FALSE(at_syn);
}

TEST(StreamCache, GrowsAndKeepsEveryEntry) {
    StreamCache c;
    auto client = [](std::uint32_t i) { return ep(i % 2 ? "192.0.2.1" : "2001:db8::1", static_cast<std::uint16_t>(i)); };
    auto server = [](std::uint32_t i) { return ep(i % 2 ? "192.0.2.2" : "2001:db8::2", 80); };
    for (std::uint32_t i = 0; i < 50000; ++i) c.put(client(i), server(i), i);
    EXPECT_EQ(c.size(), 50000u);
    for (std::uint32_t i = 0; i < 50000; i += 997) EXPECT_EQ(c.find(server(i), client(i)), i);
    EXPECT_FALSE(c.find(server(1), ep("192.0.2.1", 60001)));
}

TEST(StreamCache, SameBytesInEitherFamilyAreDifferentConnections) {
    StreamCache c;
    c.put(ep("192.0.2.1", 40000), ep("192.0.2.2", 25), 5);
    EXPECT_FALSE(c.find(ep("c000:201::", 40000), ep("c000:202::", 25)));
    c.put(ep("c000:201::", 40000), ep("c000:202::", 25), 6);
    EXPECT_EQ(c.find(ep("192.0.2.2", 25), ep("192.0.2.1", 40000)), 5u);
    EXPECT_EQ(c.find(ep("c000:202::", 25), ep("c000:201::", 40000)), 6u);
    EXPECT_EQ(c.size(), 2u);
}

TEST(StreamCache, BoundCountsBothFamilies) {
    StreamCache c(4);
    for (std::uint16_t p = 1; p <= 3; ++p) c.put(ep("192.0.2.1", p), ep("192.0.2.2", 80), p);
    c.put(ep("2001:db8::1", 1), ep("2001:db8::2", 80), 4);
    EXPECT_EQ(c.size(), 4u);
    c.put(ep("2001:db8::1", 2), ep("2001:db8::2", 80), 5);  // full: emptied first
    EXPECT_EQ(c.size(), 1u);
    EXPECT_FALSE(c.find(ep("192.0.2.1", 1), ep("192.0.2.2", 80)));
    EXPECT_EQ(c.find(ep("2001:db8::1", 2), ep("2001:db8::2", 80)), 5u);
}

TEST(StreamCache, StreamNumbersPastTheValueBitsAreNotCached) {
    StreamCache c;
    c.put(ep("192.0.2.1", 1), ep("192.0.2.2", 80), 7);
    c.put(ep("192.0.2.1", 1), ep("192.0.2.2", 80), 0x80000000u);  // the 4-tuple reused
    EXPECT_FALSE(c.find(ep("192.0.2.1", 1), ep("192.0.2.2", 80)));
    c.put(ep("192.0.2.1", 1), ep("192.0.2.2", 80), 0x7FFFFFFFu, true);
    bool at_syn = false;
    EXPECT_EQ(c.find(ep("192.0.2.1", 1), ep("192.0.2.2", 80), &at_syn), 0x7FFFFFFFu);
    EXPECT_TRUE(at_syn);
}

}  // namespace
}  // namespace soh
