// SOCKS4 / 4a / 5 handshake parsing, whole and byte by byte.
#include "socks_parse.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace soh {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

SocksRequest request(const Bytes& b) { return parse_socks_request(b.data(), b.size()); }
SocksReply reply(SocksVersion v, const Bytes& b) { return parse_socks_reply(v, b.data(), b.size()); }

// 198.51.100.25 port 25
const Bytes kIp4 = {198, 51, 100, 25};
const Bytes kPort25 = {0x00, 0x19};
// 2001:db8::7
const Bytes kIp6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07};

Bytes socks4_connect(const std::string& user) {
    return cat({{0x04, 0x01}, kPort25, kIp4, text(user), {0x00}});
}

Bytes socks4a_connect(const std::string& user, const std::string& host) {
    return cat({{0x04, 0x01}, kPort25, {0, 0, 0, 1}, text(user), {0x00}, text(host), {0x00}});
}

Bytes socks5_greeting_noauth() { return {0x05, 0x01, 0x00}; }
Bytes socks5_request_ipv4() { return cat({{0x05, 0x01, 0x00, 0x01}, kIp4, kPort25}); }

Bytes socks5_userpass(const std::string& user, const std::string& pass) {
    return cat({{0x01, static_cast<std::uint8_t>(user.size())}, text(user),
                {static_cast<std::uint8_t>(pass.size())}, text(pass)});
}

// Feeds every prefix of `all`: each shorter one must say NeedMore, the whole
// one Done with consumed == all.size().
void expect_needmore_until_complete(const Bytes& all) {
    for (std::size_t n = 0; n < all.size(); ++n) {
        auto r = parse_socks_request(all.data(), n);
        EXPECT_EQ(r.state, ParseState::NeedMore) << "prefix length " << n;
    }
    auto r = parse_socks_request(all.data(), all.size());
    EXPECT_EQ(r.state, ParseState::Done);
    EXPECT_EQ(r.consumed, all.size());
}

void expect_reply_needmore_until_complete(SocksVersion v, const Bytes& all) {
    for (std::size_t n = 0; n < all.size(); ++n) {
        auto r = parse_socks_reply(v, all.data(), n);
        EXPECT_EQ(r.state, ParseState::NeedMore) << "prefix length " << n;
    }
    auto r = parse_socks_reply(v, all.data(), all.size());
    EXPECT_EQ(r.state, ParseState::Done);
    EXPECT_EQ(r.consumed, all.size());
}

// --- client requests --------------------------------------------------------

TEST(SocksRequest, Socks4Connect) {
    auto r = request(socks4_connect("spam"));
    EXPECT_EQ(r.state, ParseState::Done);
    EXPECT_EQ(r.version, SocksVersion::V4);
    EXPECT_EQ(r.command, 1);
    EXPECT_EQ(r.host, "198.51.100.25");
    EXPECT_TRUE(r.ip_literal);
    EXPECT_EQ(r.port, 25);
    EXPECT_EQ(r.consumed, 13u);
}

TEST(SocksRequest, Socks4EmptyUserId) {
    auto r = request(socks4_connect(""));
    EXPECT_EQ(r.state, ParseState::Done);
    EXPECT_EQ(r.consumed, 9u);
}

TEST(SocksRequest, Socks4ConsumedExcludesTunnelData) {
    Bytes b = cat({socks4_connect("u"), text("EHLO x\r\n")});
    auto r = request(b);
    EXPECT_EQ(r.state, ParseState::Done);
    EXPECT_EQ(r.consumed, 10u);
}

TEST(SocksRequest, Socks4aWithHostName) {
    auto r = request(socks4a_connect("u", "mx.example.net"));
    EXPECT_EQ(r.state, ParseState::Done);
    EXPECT_EQ(r.version, SocksVersion::V4a);
    EXPECT_EQ(r.host, "mx.example.net");
    EXPECT_FALSE(r.ip_literal);
    EXPECT_EQ(r.port, 25);
    EXPECT_EQ(r.consumed, socks4a_connect("u", "mx.example.net").size());
}

TEST(SocksRequest, Socks4aHostNameWithControlBytesInvalid) {
    auto r = request(socks4a_connect("u", "mx\x01"));
    EXPECT_EQ(r.state, ParseState::Invalid);
}

TEST(SocksRequest, Socks4OverlongUserIdInvalid) {
    Bytes b = cat({{0x04, 0x01}, kPort25, kIp4, Bytes(300, 'a')});
    EXPECT_EQ(request(b).state, ParseState::Invalid);
}

TEST(SocksRequest, Socks4PortZeroInvalid) {
    Bytes b = cat({{0x04, 0x01, 0x00, 0x00}, kIp4, {0x00}});
    EXPECT_EQ(request(b).state, ParseState::Invalid);
}

TEST(SocksRequest, Socks5NoAuthIpv4) {
    Bytes b = cat({socks5_greeting_noauth(), socks5_request_ipv4()});
    auto r = request(b);
    EXPECT_EQ(r.state, ParseState::Done);
    EXPECT_EQ(r.version, SocksVersion::V5);
    EXPECT_EQ(r.command, 1);
    EXPECT_EQ(r.host, "198.51.100.25");
    EXPECT_TRUE(r.ip_literal);
    EXPECT_EQ(r.port, 25);
    EXPECT_EQ(r.consumed, b.size());
}

TEST(SocksRequest, Socks5UsernamePassword) {
    Bytes b = cat({{0x05, 0x02, 0x00, 0x02}, socks5_userpass("alice", "s3cret"), socks5_request_ipv4()});
    auto r = request(b);
    EXPECT_EQ(r.state, ParseState::Done);
    EXPECT_EQ(r.host, "198.51.100.25");
    EXPECT_EQ(r.port, 25);
    EXPECT_EQ(r.consumed, b.size());
}

TEST(SocksRequest, Socks5Ipv6) {
    Bytes b = cat({socks5_greeting_noauth(), {0x05, 0x01, 0x00, 0x04}, kIp6, kPort25});
    auto r = request(b);
    EXPECT_EQ(r.state, ParseState::Done);
    EXPECT_EQ(r.host, "2001:db8::7");
    EXPECT_TRUE(r.ip_literal);
    EXPECT_EQ(r.port, 25);
    EXPECT_EQ(r.consumed, b.size());
}

TEST(SocksRequest, Socks5DomainName) {
    const std::string host = "mx.example.net";
    Bytes b = cat({socks5_greeting_noauth(), {0x05, 0x01, 0x00, 0x03, static_cast<std::uint8_t>(host.size())},
                   text(host), {0x02, 0x4b}});  // port 587
    auto r = request(b);
    EXPECT_EQ(r.state, ParseState::Done);
    EXPECT_EQ(r.host, host);
    EXPECT_FALSE(r.ip_literal);
    EXPECT_EQ(r.port, 587);
    EXPECT_EQ(r.consumed, b.size());
}

TEST(SocksRequest, Socks5ConsumedExcludesTunnelData) {
    Bytes hs = cat({socks5_greeting_noauth(), socks5_request_ipv4()});
    auto r = request(cat({hs, text("EHLO x\r\n")}));
    EXPECT_EQ(r.state, ParseState::Done);
    EXPECT_EQ(r.consumed, hs.size());
}

TEST(SocksRequest, ByteByByteSocks4) { expect_needmore_until_complete(socks4_connect("spam")); }

TEST(SocksRequest, ByteByByteSocks4a) { expect_needmore_until_complete(socks4a_connect("u", "mx.example.net")); }

TEST(SocksRequest, ByteByByteSocks5NoAuth) {
    expect_needmore_until_complete(cat({socks5_greeting_noauth(), socks5_request_ipv4()}));
}

TEST(SocksRequest, ByteByByteSocks5UserPass) {
    expect_needmore_until_complete(
        cat({{0x05, 0x01, 0x02}, socks5_userpass("alice", "s3cret"), socks5_request_ipv4()}));
}

TEST(SocksRequest, ByteByByteSocks5Ipv6AndDomain) {
    expect_needmore_until_complete(cat({socks5_greeting_noauth(), {0x05, 0x01, 0x00, 0x04}, kIp6, kPort25}));
    expect_needmore_until_complete(
        cat({socks5_greeting_noauth(), {0x05, 0x01, 0x00, 0x03, 0x02}, text("mx"), kPort25}));
}

TEST(SocksRequest, InvalidVersions) {
    EXPECT_EQ(request({0x03, 0x01, 0x00, 0x19}).state, ParseState::Invalid);
    EXPECT_EQ(request(text("GET / HTTP/1.1\r\n")).state, ParseState::Invalid);
    // SOCKS5 greeting followed by a request with the wrong version byte.
    EXPECT_EQ(request(cat({socks5_greeting_noauth(), {0x04, 0x01, 0x00, 0x01}, kIp4, kPort25})).state,
              ParseState::Invalid);
}

TEST(SocksRequest, Socks5ZeroMethodsInvalid) { EXPECT_EQ(request({0x05, 0x00}).state, ParseState::Invalid); }

TEST(SocksRequest, Socks5UnknownAddressTypeInvalid) {
    EXPECT_EQ(request(cat({socks5_greeting_noauth(), {0x05, 0x01, 0x00, 0x02}, kIp4, kPort25})).state,
              ParseState::Invalid);
}

TEST(SocksRequest, Socks5PortZeroInvalid) {
    EXPECT_EQ(request(cat({socks5_greeting_noauth(), {0x05, 0x01, 0x00, 0x01}, kIp4, {0x00, 0x00}})).state,
              ParseState::Invalid);
}

TEST(SocksRequest, EmptyInputNeedsMore) {
    EXPECT_EQ(parse_socks_request(nullptr, 0).state, ParseState::NeedMore);
}

TEST(SocksLooksLike, Classification) {
    auto looks = [](const Bytes& b) { return looks_like_socks(b.data(), b.size()); };
    EXPECT_TRUE(looks(socks5_greeting_noauth()));
    EXPECT_TRUE(looks({0x05, 0x02, 0x00, 0x02}));
    EXPECT_TRUE(looks(socks4_connect("")));
    EXPECT_FALSE(looks({0x05}));
    EXPECT_FALSE(looks({0x05, 0x01}));           // method byte missing
    EXPECT_FALSE(looks({0x05, 0x01, 0x41}));     // 'A' is not a method
    EXPECT_FALSE(looks({0x04, 0x01, 0x00}));     // SOCKS4 request too short
    EXPECT_FALSE(looks({0x04, 0x07, 0, 25, 1, 2, 3, 4, 0}));  // unknown command
    EXPECT_FALSE(looks(text("EHLO x\r\n")));
    EXPECT_FALSE(looks({0x16, 0x03, 0x01, 0x00}));
}

// --- server replies ---------------------------------------------------------

TEST(SocksReply, V4Granted) {
    auto r = reply(SocksVersion::V4, cat({{0x00, 90}, kPort25, kIp4}));
    EXPECT_EQ(r.state, ParseState::Done);
    EXPECT_TRUE(r.granted);
    EXPECT_EQ(r.code, 90);
    EXPECT_EQ(r.consumed, 8u);
}

TEST(SocksReply, V4Refused) {
    auto r = reply(SocksVersion::V4a, cat({{0x00, 91}, kPort25, kIp4}));
    EXPECT_EQ(r.state, ParseState::Done);
    EXPECT_FALSE(r.granted);
    EXPECT_EQ(r.code, 91);
}

TEST(SocksReply, V4ByteByByte) {
    expect_reply_needmore_until_complete(SocksVersion::V4, cat({{0x00, 90}, kPort25, kIp4}));
}

TEST(SocksReply, V5GrantedNoAuth) {
    Bytes b = cat({{0x05, 0x00}, {0x05, 0x00, 0x00, 0x01}, kIp4, kPort25});
    auto r = reply(SocksVersion::V5, b);
    EXPECT_EQ(r.state, ParseState::Done);
    EXPECT_TRUE(r.granted);
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.consumed, b.size());
}

TEST(SocksReply, V5GrantedAfterUserPass) {
    Bytes b = cat({{0x05, 0x02}, {0x01, 0x00}, {0x05, 0x00, 0x00, 0x01}, kIp4, kPort25});
    auto r = reply(SocksVersion::V5, b);
    EXPECT_EQ(r.state, ParseState::Done);
    EXPECT_TRUE(r.granted);
    EXPECT_EQ(r.consumed, b.size());
}

TEST(SocksReply, V5AuthFailure) {
    auto r = reply(SocksVersion::V5, {0x05, 0x02, 0x01, 0x01});
    EXPECT_EQ(r.state, ParseState::Done);
    EXPECT_FALSE(r.granted);
    EXPECT_EQ(r.consumed, 4u);
}

TEST(SocksReply, V5Refused) {
    auto r = reply(SocksVersion::V5, cat({{0x05, 0x00}, {0x05, 0x05, 0x00, 0x01}, kIp4, kPort25}));
    EXPECT_EQ(r.state, ParseState::Done);
    EXPECT_FALSE(r.granted);
    EXPECT_EQ(r.code, 5);  // connection refused
}

TEST(SocksReply, V5NoAcceptableMethod) {
    auto r = reply(SocksVersion::V5, {0x05, 0xFF});
    EXPECT_EQ(r.state, ParseState::Done);
    EXPECT_FALSE(r.granted);
    EXPECT_EQ(r.code, 0xFF);
    EXPECT_EQ(r.consumed, 2u);
}

TEST(SocksReply, V5ByteByByte) {
    expect_reply_needmore_until_complete(SocksVersion::V5,
                                         cat({{0x05, 0x00}, {0x05, 0x00, 0x00, 0x01}, kIp4, kPort25}));
    expect_reply_needmore_until_complete(SocksVersion::V5,
                                         cat({{0x05, 0x02}, {0x01, 0x00}, {0x05, 0x00, 0x00, 0x04}, kIp6, kPort25}));
    expect_reply_needmore_until_complete(
        SocksVersion::V5, cat({{0x05, 0x00}, {0x05, 0x00, 0x00, 0x03, 0x02}, text("mx"), kPort25}));
}

TEST(SocksReply, V5WrongVersionInvalid) {
    EXPECT_EQ(reply(SocksVersion::V5, {0x04, 0x00}).state, ParseState::Invalid);
    EXPECT_EQ(reply(SocksVersion::None, {0x05, 0x00}).state, ParseState::Invalid);
}

}  // namespace
}  // namespace soh
