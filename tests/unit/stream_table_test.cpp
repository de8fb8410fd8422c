// The direct-mapped table of briefly held streams: lookups, growth on a
// clash, and its bound.
#include "stream_table.h"

#include <gtest/gtest.h>

#include <string>

namespace soh {
namespace {

TEST(StreamTable, InsertFindErase) {
    StreamTable<std::string> t(1024);
    EXPECT_EQ(t.find(5), nullptr);
    t.insert(5) = "five";
    t.insert(6) = "six";
    ASSERT_NE(t.find(5), nullptr);
    EXPECT_EQ(*t.find(5), "five");
    EXPECT_EQ(t.insert(5), "five");  // existing entry, unchanged
    t.erase(5);
    EXPECT_EQ(t.find(5), nullptr);
    EXPECT_EQ(*t.find(6), "six");
    t.erase(99);  // absent: no effect
    EXPECT_EQ(t.size(), 1u);
    t.insert(5);
    EXPECT_EQ(*t.find(5), "");  // a new entry starts empty
}

TEST(StreamTable, ClashGrowsAndKeepsBoth) {
    StreamTable<int> t(1024);
    t.insert(3) = 30;
    const std::size_t first = t.capacity();
    t.insert(static_cast<StreamId>(3 + first)) = 40;  // same slot at the first size
    EXPECT_GT(t.capacity(), first);
    EXPECT_EQ(*t.find(3), 30);
    EXPECT_EQ(*t.find(static_cast<StreamId>(3 + first)), 40);
    // Many streams held at once, in order: all found.
    for (StreamId s = 100; s < 900; ++s) t.insert(s) = static_cast<int>(s);
    for (StreamId s = 100; s < 900; ++s) ASSERT_EQ(*t.find(s), static_cast<int>(s));
    EXPECT_LE(t.capacity(), 1024u);
}

TEST(StreamTable, BoundedNewerStreamTakesTheSlot) {
    StreamTable<int> t(256);
    for (StreamId s = 0; s < 5000; ++s) t.insert(s) = 1;
    EXPECT_EQ(t.capacity(), 256u);
    EXPECT_EQ(t.size(), 256u);
    EXPECT_EQ(t.find(0), nullptr);          // forgotten
    ASSERT_NE(t.find(4999), nullptr);       // the newest are kept
    EXPECT_EQ(t.find(4999 - 256), nullptr);
    ASSERT_NE(t.find(4999 - 255), nullptr);
}

TEST(StreamTable, DisplacesNamesTheStreamInsertWouldForget) {
    StreamTable<int> t(128);
    EXPECT_EQ(t.displaces(7), std::nullopt);  // empty
    for (StreamId s = 0; s < 64; ++s) t.insert(s) = 1;
    EXPECT_EQ(t.displaces(64), std::nullopt);  // would grow instead
    for (StreamId s = 64; s < 128; ++s) t.insert(s) = 1;
    EXPECT_EQ(t.capacity(), 128u);
    EXPECT_EQ(t.displaces(5), std::nullopt);  // its own slot
    EXPECT_EQ(t.displaces(128 + 5), std::optional<StreamId>(5));
    t.erase(5);
    EXPECT_EQ(t.displaces(128 + 5), std::nullopt);  // a free slot
}

// Counts the values alive, to show when the table builds and frees them.
struct Counted {
    static inline int alive = 0;
    int v = 0;
    Counted() { ++alive; }
    Counted(const Counted& o) : v(o.v) { ++alive; }
    Counted(Counted&& o) noexcept : v(o.v) { ++alive; }
    Counted& operator=(const Counted&) = default;
    Counted& operator=(Counted&&) = default;
    ~Counted() { --alive; }
};

TEST(StreamTable, ValuesLiveOnlyWhileTheirStreamIsHeld) {
    Counted::alive = 0;
    {
        StreamTable<Counted> t(256);
        EXPECT_EQ(Counted::alive, 0);
        t.insert(1).v = 10;
        EXPECT_EQ(Counted::alive, 1);  // free slots hold no value
        t.insert(1);                   // the same stream: no new value
        EXPECT_EQ(Counted::alive, 1);
        for (StreamId s = 2; s < 200; ++s) t.insert(s).v = static_cast<int>(s);  // grows
        EXPECT_EQ(Counted::alive, 199);
        EXPECT_EQ(t.find(1)->v, 10);  // moved on growth, not rebuilt empty
        t.erase(1);
        EXPECT_EQ(Counted::alive, 198);
        EXPECT_EQ(t.find(1), nullptr);
        // At the bound, a newer stream's value replaces the older one's.
        for (StreamId s = 2; s < 256; ++s) t.insert(s);
        ASSERT_EQ(t.capacity(), 256u);
        t.insert(256 + 7).v = 7;
        EXPECT_EQ(Counted::alive, 254);  // streams 2 to 255, 7 replaced
        EXPECT_EQ(t.find(7), nullptr);
        EXPECT_EQ(t.find(256 + 7)->v, 7);
    }
    EXPECT_EQ(Counted::alive, 0);  // the table frees what it holds
}

}  // namespace
}  // namespace soh
