// TCP byte-stream reassembly: order, retransmission, holes, wrap-around.
#include "stream_reassembler.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace soh {
namespace {

// A reassembler plus everything it delivered.
struct Stream {
    StreamReassembler r;
    std::string out;
    int gaps = 0;

    void add(std::uint32_t seq, std::string_view data, bool syn = false) {
        r.add(
            seq, syn, reinterpret_cast<const std::uint8_t*>(data.data()), data.size(),
            [this](const std::uint8_t* p, std::size_t n) { out.append(reinterpret_cast<const char*>(p), n); },
            [this] { ++gaps; });
    }
    void syn(std::uint32_t isn) { add(isn, "", true); }
};

TEST(StreamReassembler, InOrderAfterSyn) {
    Stream s;
    s.syn(1000);
    EXPECT_TRUE(s.r.started());
    s.add(1001, "hello");
    s.add(1006, " world");
    EXPECT_EQ(s.out, "hello world");
    EXPECT_EQ(s.gaps, 0);
}

TEST(StreamReassembler, StartsAtFirstDataWithoutSyn) {
    Stream s;
    EXPECT_FALSE(s.r.started());
    s.add(5000, "abc");
    s.add(5003, "def");
    EXPECT_EQ(s.out, "abcdef");
}

TEST(StreamReassembler, EmptySegmentsChangeNothing) {
    Stream s;
    s.syn(1000);
    s.add(1001, "");
    s.add(1001, "a");
    s.add(1002, "");
    EXPECT_EQ(s.out, "a");
}

TEST(StreamReassembler, FullRetransmissionDropped) {
    Stream s;
    s.syn(1000);
    s.add(1001, "hello");
    s.add(1001, "hello");
    s.add(1006, "!");
    s.add(1001, "hello");
    EXPECT_EQ(s.out, "hello!");
}

TEST(StreamReassembler, PartialOverlapDeliversOnlyNewBytes) {
    Stream s;
    s.syn(1000);
    s.add(1001, "hello");
    s.add(1004, "lo world");
    EXPECT_EQ(s.out, "hello world");
}

TEST(StreamReassembler, OutOfOrderHeldUntilHoleFills) {
    Stream s;
    s.syn(1000);
    s.add(1006, " world");
    EXPECT_EQ(s.out, "");
    EXPECT_EQ(s.r.held_bytes(), 6u);
    s.add(1001, "hello");
    EXPECT_EQ(s.out, "hello world");
    EXPECT_EQ(s.r.held_bytes(), 0u);
}

TEST(StreamReassembler, SeveralOutOfOrderSegments) {
    Stream s;
    s.syn(0);
    s.add(7, "g");
    s.add(4, "def");
    s.add(4, "def");  // duplicate while held
    s.add(3, "c");
    EXPECT_EQ(s.out, "");
    s.add(1, "ab");
    EXPECT_EQ(s.out, "abcdefg");
    EXPECT_EQ(s.r.held_bytes(), 0u);
}

TEST(StreamReassembler, OverlappingHeldSegments) {
    Stream s;
    s.syn(100);
    s.add(106, "fghij");
    s.add(104, "defgh");
    s.add(101, "abc");
    EXPECT_EQ(s.out, "abcdefghij");
}

TEST(StreamReassembler, SequenceWrapAround) {
    Stream s;
    s.syn(0xFFFFFFF8u);
    s.add(0xFFFFFFF9u, "0123456");   // up to 0xFFFFFFFF
    s.add(0x00000000u, "789");       // wrapped
    s.add(0x00000003u, "ABC");
    EXPECT_EQ(s.out, "0123456789ABC");
}

TEST(StreamReassembler, SegmentSpanningWrap) {
    Stream s;
    s.syn(0xFFFFFFFDu);
    s.add(0xFFFFFFFEu, "abcd");  // 0xFFFFFFFE..0x00000001
    s.add(0x00000002u, "e");
    s.add(0xFFFFFFFFu, "bcd");   // retransmission across the wrap
    EXPECT_EQ(s.out, "abcde");
}

TEST(StreamReassembler, OutOfOrderAcrossWrap) {
    Stream s;
    s.syn(0xFFFFFFF0u);
    s.add(0x00000002u, "world");      // after the wrap, early
    s.add(0xFFFFFFF1u, "hello, 0123456");  // 14 bytes: 0xFFFFFFF1..0xFFFFFFFE
    EXPECT_EQ(s.out, "hello, 0123456");
    s.add(0xFFFFFFFFu, "xyz");        // 0xFFFFFFFF, 0, 1 fill the hole
    EXPECT_EQ(s.out, "hello, 0123456xyzworld");
    EXPECT_EQ(s.gaps, 0);
}

TEST(StreamReassembler, SynWithData) {
    Stream s;
    s.add(500, "abc", /*syn=*/true);
    s.add(504, "def");
    EXPECT_EQ(s.out, "abcdef");
}

TEST(StreamReassembler, HoleNeverFillsSegmentLimit) {
    Stream s;
    s.syn(1000);
    s.add(1001, "A");
    // Byte 1002 is lost; 1003.. arrives.
    std::string expect = "A";
    std::uint32_t seq = 1003;
    for (std::size_t i = 0; i < StreamReassembler::kMaxHeldSegments; ++i) {
        std::string d(10, static_cast<char>('a' + i % 26));
        s.add(seq, d);
        expect += d;
        seq += 10;
    }
    EXPECT_EQ(s.out, "A");
    EXPECT_EQ(s.gaps, 0);
    s.add(seq, "tail");
    expect += "tail";
    EXPECT_EQ(s.gaps, 1);
    EXPECT_EQ(s.r.gaps(), 1u);
    EXPECT_EQ(s.out, expect);
    EXPECT_EQ(s.r.held_bytes(), 0u);
    // Delivery resumed: in-order data flows, the late lost byte is ignored.
    s.add(seq + 4, "more");
    s.add(1002, "X");
    EXPECT_EQ(s.out, expect + "more");
    EXPECT_EQ(s.gaps, 1);
}

TEST(StreamReassembler, HoleNeverFillsByteLimit) {
    Stream s;
    s.syn(0);
    s.add(1, "A");
    const std::string big(StreamReassembler::kMaxHeldBytes - 100, 'b');
    s.add(10, big);
    EXPECT_EQ(s.out, "A");
    EXPECT_EQ(s.r.held_bytes(), big.size());
    const std::string next(200, 'c');
    s.add(static_cast<std::uint32_t>(10 + big.size()), next);
    EXPECT_EQ(s.gaps, 1);
    EXPECT_EQ(s.out, "A" + big + next);
    EXPECT_EQ(s.r.held_bytes(), 0u);
}

TEST(StreamReassembler, HugeEarlySegmentWithNothingHeld) {
    Stream s;
    s.syn(0);
    s.add(1, "A");
    const std::string huge(StreamReassembler::kMaxHeldBytes + 1, 'h');
    s.add(100, huge);
    EXPECT_EQ(s.gaps, 1);
    EXPECT_EQ(s.out, "A" + huge);
    EXPECT_EQ(s.r.held_bytes(), 0u);
}

TEST(StreamReassembler, GapSkipsToEarliestHeldNotToNewest) {
    Stream s;
    s.syn(0);
    s.add(1, "A");
    // Hold 32 segments in reverse order: the earliest is the last one added.
    for (int i = static_cast<int>(StreamReassembler::kMaxHeldSegments) - 1; i >= 0; --i)
        s.add(static_cast<std::uint32_t>(10 + i), std::string(1, static_cast<char>('a' + i % 26)));
    std::string held;
    for (std::size_t i = 0; i < StreamReassembler::kMaxHeldSegments; ++i)
        held += static_cast<char>('a' + i % 26);
    s.add(static_cast<std::uint32_t>(10 + StreamReassembler::kMaxHeldSegments), "Z");
    EXPECT_EQ(s.gaps, 1);
    EXPECT_EQ(s.out, "A" + held + "Z");
}

TEST(FunctionRef, CallsTheReferencedCallableWithItsCaptures) {
    std::string seen;
    int calls = 0;
    const std::string prefix = "> ";
    auto append = [&](const std::uint8_t* p, std::size_t n) {
        seen += prefix;
        seen.append(reinterpret_cast<const char*>(p), n);
        ++calls;
    };
    FunctionRef<void(const std::uint8_t*, std::size_t)> ref(append);
    FunctionRef<void(const std::uint8_t*, std::size_t)> copy = ref;
    const std::uint8_t bytes[] = {'a', 'b'};
    ref(bytes, 2);
    copy(bytes, 1);
    EXPECT_EQ(seen, "> ab> a");
    EXPECT_EQ(calls, 2);
    // A temporary callable lives until the call it is passed to returns.
    auto call = [](FunctionRef<int(int)> f, int x) { return f(x); };
    EXPECT_EQ(call([](int x) { return 2 * x; }, 21), 42);
}

}  // namespace
}  // namespace soh
