// DNS responses: the question name and its A/AAAA answers.
#include "dns_parse.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace soh {
namespace {

using Bytes = std::vector<std::uint8_t>;

// A response to "mx.victim.example" with the given answer records appended.
Bytes response(std::uint16_t ancount, const Bytes& answers) {
    Bytes m = {0x12, 0x34, 0x81, 0x80, 0, 1, static_cast<std::uint8_t>(ancount >> 8),
               static_cast<std::uint8_t>(ancount), 0, 0, 0, 0};
    Bytes q = {2, 'm', 'x', 6, 'v', 'i', 'c', 't', 'i', 'm', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1};
    m.insert(m.end(), q.begin(), q.end());
    m.insert(m.end(), answers.begin(), answers.end());
    return m;
}

Bytes a_record(std::uint8_t last) { return {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 51, 100, last}; }

TEST(DnsParse, ARecordsWithCompressedNames) {
    Bytes ans = a_record(25);
    Bytes second = a_record(26);
    ans.insert(ans.end(), second.begin(), second.end());
    Bytes m = response(2, ans);
    auto r = parse_dns_response(m.data(), m.size());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->name, "mx.victim.example");
    ASSERT_EQ(r->addrs.size(), 2u);
    EXPECT_EQ(r->addrs[0].str(), "198.51.100.25");
    EXPECT_EQ(r->addrs[1].str(), "198.51.100.26");
}

TEST(DnsParse, AaaaAfterCname) {
    Bytes cname = {0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 12};
    Bytes aaaa = {0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x25};
    cname.insert(cname.end(), aaaa.begin(), aaaa.end());
    Bytes m = response(2, cname);
    auto r = parse_dns_response(m.data(), m.size());
    ASSERT_TRUE(r);
    ASSERT_EQ(r->addrs.size(), 1u);
    EXPECT_EQ(r->addrs[0].str(), "2001:db8::25");
}

TEST(DnsParse, QueriesAndEmptyAnswersIgnored) {
    Bytes m = response(0, {});
    EXPECT_FALSE(parse_dns_response(m.data(), m.size()));
    Bytes q = response(1, a_record(25));
    q[2] = 0x01;  // QR clear: a query
    EXPECT_FALSE(parse_dns_response(q.data(), q.size()));
}

TEST(DnsParse, CompressionLoopIsBounded) {
    Bytes loop = {0xc0, 0x0c};  // an answer name pointing at itself...
    Bytes m = response(1, {});
    std::size_t at = m.size();
    m.insert(m.end(), loop.begin(), loop.end());
    m[at + 1] = static_cast<std::uint8_t>(at);  // ...at its own offset
    m.insert(m.end(), {0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4});
    EXPECT_FALSE(parse_dns_response(m.data(), m.size()));
}

TEST(DnsParse, TruncatedMessagesNeverReadOutOfBounds) {
    Bytes m = response(1, a_record(25));
    for (std::size_t n = 0; n < m.size(); ++n) {
        Bytes cut(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(n));
        auto r = parse_dns_response(cut.data(), cut.size());
        EXPECT_FALSE(r && r->addrs.size() > 1);
    }
}

}  // namespace
}  // namespace soh
