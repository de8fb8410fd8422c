// The per-connection tcp.stream cache used by the glue.
#include "stream_cache.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <utility>

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

// Lookups that hit the last or the one-before-last entry, or probe the
// table, in random order, with 4-tuples reused: every answer is the map's.
TEST(StreamCache, AgreesWithAMapWhateverTheOrderOfLookups) {
    StreamCache c;
    std::map<std::pair<std::uint16_t, std::uint16_t>, std::pair<StreamId, bool>> want;
    std::mt19937 rng(11);  // fixed seed: the same sequence every run
    std::size_t hits = 0;
    for (int i = 0; i < 20000; ++i) {
        // Few ports, so that most lookups repeat one of the last few 4-tuples.
        const auto a = static_cast<std::uint16_t>(rng() % 6), b = static_cast<std::uint16_t>(rng() % 3);
        const Endpoint x = ep("192.0.2.1", static_cast<std::uint16_t>(1000 + a));
        const Endpoint y = ep("192.0.2.2", static_cast<std::uint16_t>(80 + b));
        if (rng() % 5 == 0) {
            const StreamId id = static_cast<StreamId>(rng() % 1000);
            const bool syn = rng() % 2;
            c.put(x, y, id, syn);
            want[{a, b}] = {id, syn};
            continue;
        }
        bool at_syn = false;
        const auto got = rng() % 2 ? c.find(x, y, &at_syn) : c.find(y, x, &at_syn);
        const auto it = want.find({a, b});
        if (it == want.end()) {
            EXPECT_FALSE(got);
            continue;
        }
        ASSERT_TRUE(got);
        EXPECT_EQ(*got, it->second.first);
        EXPECT_EQ(at_syn, it->second.second);
        ++hits;
    }
    EXPECT_GT(hits, 10000u);
}

TEST(StreamCache, KeyOrdersEndpointsByAddressThenPort) {
    // Same address on both sides: the ports decide, either way round.
    EXPECT_TRUE(StreamCache::key(ep("192.0.2.1", 1), ep("192.0.2.1", 2)).v4 ==
                StreamCache::key(ep("192.0.2.1", 2), ep("192.0.2.1", 1)).v4);
    // Ports swapped between two addresses: another connection.
    EXPECT_FALSE(StreamCache::key(ep("192.0.2.1", 1), ep("192.0.2.2", 2)).v4 ==
                 StreamCache::key(ep("192.0.2.1", 2), ep("192.0.2.2", 1)).v4);
    StreamCache c;
    c.put(ep("192.0.2.1", 1), ep("192.0.2.2", 2), 1);
    c.put(ep("192.0.2.2", 1), ep("192.0.2.1", 2), 2);
    EXPECT_EQ(c.find(ep("192.0.2.2", 2), ep("192.0.2.1", 1)), 1u);
    EXPECT_EQ(c.find(ep("192.0.2.1", 2), ep("192.0.2.2", 1)), 2u);
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
    // Written at a SYN, stream 0x7FFFFFFF would be all ones: the mark of a free slot.
    c.put(ep("192.0.2.1", 1), ep("192.0.2.2", 80), 0x7FFFFFFFu, true);
    EXPECT_FALSE(c.find(ep("192.0.2.1", 1), ep("192.0.2.2", 80)));
    c.put(ep("192.0.2.1", 1), ep("192.0.2.2", 80), 0x7FFFFFFEu, true);
    c.put(ep("192.0.2.1", 2), ep("192.0.2.2", 80), 1);  // so that the next find probes the table
    bool at_syn = false;
    EXPECT_EQ(c.find(ep("192.0.2.1", 1), ep("192.0.2.2", 80), &at_syn), 0x7FFFFFFEu);
    EXPECT_TRUE(at_syn);
    EXPECT_EQ(c.lookup(StreamCache::key(ep("192.0.2.1", 1), ep("192.0.2.2", 80))), 0x7FFFFFFEu | StreamCache::kAtSyn);
    EXPECT_EQ(c.lookup(StreamCache::key(ep("192.0.2.1", 3), ep("192.0.2.2", 80))), StreamCache::kMiss);
}

}  // namespace
}  // namespace soh
