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

}  // namespace
}  // namespace soh
