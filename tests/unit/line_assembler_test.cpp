// Line splitting with CRLF / LF, split feeds, bounded overlong lines, raw takes.
#include "line_assembler.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace soh {
namespace {

void feed(LineAssembler& la, std::string_view s) {
    la.feed(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

struct Got {
    std::string text;
    bool overlong;
    bool operator==(const Got& o) const { return text == o.text && overlong == o.overlong; }
};

std::ostream& operator<<(std::ostream& os, const Got& g) {
    return os << '"' << g.text << '"' << (g.overlong ? " (overlong)" : "");
}

// Drains every complete line (copied: the views die on the next call).
std::vector<Got> drain(LineAssembler& la) {
    std::vector<Got> out;
    while (auto l = la.next_line()) out.push_back({std::string(l->text), l->overlong});
    return out;
}

void append(std::vector<Got>& to, const std::vector<Got>& from) { to.insert(to.end(), from.begin(), from.end()); }

TEST(LineAssembler, CrlfAndBareLf) {
    LineAssembler la;
    feed(la, "EHLO client.example\r\nMAIL FROM:<a@b>\nRCPT TO:<c@d>\r\n");
    std::vector<Got> want{{"EHLO client.example", false}, {"MAIL FROM:<a@b>", false}, {"RCPT TO:<c@d>", false}};
    EXPECT_EQ(drain(la), want);
    EXPECT_EQ(la.buffered(), 0u);
}

TEST(LineAssembler, EmptyLinesAreLines) {
    LineAssembler la;
    feed(la, "\r\n\nx\n");
    std::vector<Got> want{{"", false}, {"", false}, {"x", false}};
    EXPECT_EQ(drain(la), want);
}

TEST(LineAssembler, IncompleteLineWaits) {
    LineAssembler la;
    feed(la, "EHLO cli");
    EXPECT_FALSE(la.next_line());
    EXPECT_EQ(la.buffered(), 8u);
    feed(la, "ent\r");
    EXPECT_FALSE(la.next_line());
    feed(la, "\n");
    auto l = la.next_line();
    ASSERT_TRUE(l);
    EXPECT_EQ(l->text, "EHLO client");
    EXPECT_FALSE(l->overlong);
}

TEST(LineAssembler, OnlyOneTrailingCrIsDropped) {
    LineAssembler la;
    feed(la, "a\r\r\nb\rc\n");
    std::vector<Got> want{{"a\r", false}, {"b\rc", false}};
    EXPECT_EQ(drain(la), want);
}

TEST(LineAssembler, SplitAtEveryBytePosition) {
    const std::string input = "220 mx ESMTP\r\nEHLO x\n\r\nMAIL FROM:<a@b.example>\r\nlast\n";
    LineAssembler whole;
    feed(whole, input);
    const auto want = drain(whole);
    ASSERT_EQ(want.size(), 5u);
    for (std::size_t cut = 0; cut <= input.size(); ++cut) {
        LineAssembler la;
        std::vector<Got> got;
        feed(la, std::string_view(input).substr(0, cut));
        append(got, drain(la));
        feed(la, std::string_view(input).substr(cut));
        append(got, drain(la));
        EXPECT_EQ(got, want) << "cut at " << cut;
    }
}

TEST(LineAssembler, ByteByByte) {
    const std::string input = "a\r\nbb\ncc c\r\n";
    LineAssembler la;
    std::vector<Got> got;
    for (char c : input) {
        feed(la, std::string_view(&c, 1));
        append(got, drain(la));
    }
    std::vector<Got> want{{"a", false}, {"bb", false}, {"cc c", false}};
    EXPECT_EQ(got, want);
}

TEST(LineAssembler, OverlongLineWithLfDeliveredOnceTruncated) {
    LineAssembler la(8);
    feed(la, "0123456789ABCDEF\nnext\n");
    std::vector<Got> want{{"01234567", true}, {"next", false}};
    EXPECT_EQ(drain(la), want);
}

TEST(LineAssembler, OverlongLineWithoutLfResyncsAtNextLf) {
    LineAssembler la(8);
    feed(la, "0123456789");
    auto first = drain(la);
    std::vector<Got> want{{"01234567", true}};
    EXPECT_EQ(first, want);
    EXPECT_EQ(la.buffered(), 0u);
    feed(la, "more of the same endless line");
    EXPECT_TRUE(drain(la).empty());  // the tail is discarded, not re-delivered
    feed(la, "tail\r\nok\r\n");
    std::vector<Got> after{{"ok", false}};
    EXPECT_EQ(drain(la), after);
}

TEST(LineAssembler, LineOfExactlyMaxLengthIsNotOverlong) {
    LineAssembler la(8);
    feed(la, "01234567\n");
    std::vector<Got> want{{"01234567", false}};
    EXPECT_EQ(drain(la), want);
}

// Regression: the CR of a CRLF terminator was counted as part of the line, so
// a line of exactly max_line characters ending in CRLF was reported overlong.
TEST(LineAssembler, LineOfExactlyMaxLengthWithCrlfIsNotOverlong) {
    LineAssembler la(8);
    feed(la, "01234567\r\nnext\r\n");
    std::vector<Got> want{{"01234567", false}, {"next", false}};
    EXPECT_EQ(drain(la), want);
}

TEST(LineAssembler, LineOfExactlyMaxLengthWithCrlfSplitBeforeLf) {
    LineAssembler la(8);
    feed(la, "01234567\r");
    EXPECT_TRUE(drain(la).empty());
    feed(la, "\n");
    std::vector<Got> want{{"01234567", false}};
    EXPECT_EQ(drain(la), want);
}

TEST(LineAssembler, TenMegabyteLineCostsBoundedMemory) {
    LineAssembler la(4096);
    const std::string chunk(64 * 1024, 'x');
    std::vector<Got> got;
    for (int i = 0; i < 160; ++i) {  // 10 MiB without a newline
        feed(la, chunk);
        append(got, drain(la));
        EXPECT_LE(la.buffered(), chunk.size());
    }
    feed(la, "\nQUIT\r\n");
    append(got, drain(la));
    ASSERT_EQ(got.size(), 2u);
    EXPECT_TRUE(got[0].overlong);
    EXPECT_EQ(got[0].text.size(), 4096u);
    EXPECT_EQ(got[1], (Got{"QUIT", false}));
}

TEST(LineAssembler, TakeRawSkipsChunkBytes) {
    LineAssembler la;
    feed(la, "BDAT 5\r\nabc\ndQUIT\r\n");
    auto l = la.next_line();
    ASSERT_TRUE(l);
    EXPECT_EQ(l->text, "BDAT 5");
    EXPECT_EQ(la.take_raw(5), 5u);
    std::vector<Got> want{{"QUIT", false}};
    EXPECT_EQ(drain(la), want);
}

TEST(LineAssembler, TakeRawIsLimitedToBufferedBytes) {
    LineAssembler la;
    feed(la, "abc");
    EXPECT_EQ(la.take_raw(10), 3u);
    EXPECT_EQ(la.buffered(), 0u);
    EXPECT_EQ(la.take_raw(10), 0u);
}

TEST(LineAssembler, TakeRawViewReturnsTheBytes) {
    LineAssembler la;
    feed(la, "hello world\n");
    EXPECT_EQ(la.take_raw_view(5), "hello");
    EXPECT_EQ(la.take_raw_view(100), " world\n");
    EXPECT_EQ(la.take_raw_view(1), "");
}

TEST(LineAssembler, TakeAllHandsOverTheRest) {
    LineAssembler la;
    feed(la, "HTTP/1.0 200 OK\r\n\r\n220 mx ESMTP\r\npartial");
    ASSERT_TRUE(la.next_line());
    ASSERT_TRUE(la.next_line());
    EXPECT_EQ(la.take_all(), "220 mx ESMTP\r\npartial");
    EXPECT_EQ(la.buffered(), 0u);
    EXPECT_FALSE(la.next_line());
}

TEST(LineAssembler, ResetForgetsPartialLine) {
    LineAssembler la;
    feed(la, "MAIL FROM:<los");
    la.reset();
    EXPECT_EQ(la.buffered(), 0u);
    feed(la, "RCPT TO:<x@y>\r\n");
    std::vector<Got> want{{"RCPT TO:<x@y>", false}};
    EXPECT_EQ(drain(la), want);
}

TEST(LineAssembler, ResetEndsOverlongDiscard) {
    LineAssembler la(4);
    feed(la, "0123456789");
    ASSERT_EQ(drain(la).size(), 1u);
    la.reset();
    feed(la, "ok\n");
    std::vector<Got> want{{"ok", false}};
    EXPECT_EQ(drain(la), want);
}

TEST(LineAssembler, ManySmallFeedsStayCorrectAcrossCompaction) {
    LineAssembler la(64);
    std::size_t count = 0;
    for (int i = 0; i < 20000; ++i) {
        std::string line = "line " + std::to_string(i) + "\r\n";
        feed(la, line);
        if (i % 3 == 0) continue;  // let some lines accumulate
        while (auto l = la.next_line()) {
            EXPECT_EQ(l->text, "line " + std::to_string(count));
            ++count;
        }
    }
    while (auto l = la.next_line()) {
        EXPECT_EQ(l->text, "line " + std::to_string(count));
        ++count;
    }
    EXPECT_EQ(count, 20000u);
}

}  // namespace
}  // namespace soh
