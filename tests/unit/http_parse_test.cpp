// Request line, CONNECT authority, absolute URI and status line parsing.
#include "http_parse.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace soh {
namespace {

// Parses a request line and returns its proxy target (nullopt if either fails).
std::optional<HostPort> target_of(std::string_view line) {
    auto req = parse_request_line(line);
    if (!req) return std::nullopt;
    return proxy_target(*req);
}

bool looks_like(std::string_view s) {
    return looks_like_proxy_request(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

// --- request line -----------------------------------------------------------

TEST(HttpRequestLine, ConnectWithIpv4Literal) {
    auto req = parse_request_line("CONNECT 198.51.100.25:25 HTTP/1.0");
    ASSERT_TRUE(req);
    EXPECT_EQ(req->method, "CONNECT");
    EXPECT_EQ(req->target, "198.51.100.25:25");
    EXPECT_EQ(req->version, "HTTP/1.0");
    EXPECT_FALSE(req->extra_tokens);
    auto t = proxy_target(*req);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->host, "198.51.100.25");
    EXPECT_EQ(t->port, 25);
    EXPECT_TRUE(t->ip_literal);
}

TEST(HttpRequestLine, ConnectWithBracketedIpv6) {
    auto t = target_of("CONNECT [2001:db8::7]:25 HTTP/1.1");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->host, "2001:db8::7");
    EXPECT_EQ(t->port, 25);
    EXPECT_TRUE(t->ip_literal);
}

TEST(HttpRequestLine, ConnectWithHostName) {
    auto t = target_of("CONNECT mx.example.net:587 HTTP/1.1");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->host, "mx.example.net");
    EXPECT_EQ(t->port, 587);
    EXPECT_FALSE(t->ip_literal);
}

TEST(HttpRequestLine, LowerCaseMethodIsUpperCased) {
    auto req = parse_request_line("connect mx.example.net:25 HTTP/1.0");
    ASSERT_TRUE(req);
    EXPECT_EQ(req->method, "CONNECT");
    auto t = proxy_target(*req);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->port, 25);
}

TEST(HttpRequestLine, ExtraTokenBeforeVersionIsAcceptedAndFlagged) {
    auto req = parse_request_line("CONNECT mx.example.net:25 / HTTP/1.0");
    ASSERT_TRUE(req);
    EXPECT_EQ(req->target, "mx.example.net:25");
    EXPECT_EQ(req->version, "HTTP/1.0");
    EXPECT_TRUE(req->extra_tokens);
    auto t = proxy_target(*req);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->host, "mx.example.net");
    EXPECT_EQ(t->port, 25);
}

TEST(HttpRequestLine, MissingVersionIsAccepted) {
    auto req = parse_request_line("CONNECT 198.51.100.25:25");
    ASSERT_TRUE(req);
    EXPECT_EQ(req->version, "");
    EXPECT_FALSE(req->extra_tokens);
    ASSERT_TRUE(proxy_target(*req));
}

TEST(HttpRequestLine, MissingVersionWithExtraTokenIsFlagged) {
    auto req = parse_request_line("CONNECT 198.51.100.25:25 /");
    ASSERT_TRUE(req);
    EXPECT_EQ(req->version, "");
    EXPECT_TRUE(req->extra_tokens);
}

TEST(HttpRequestLine, TabsAndSurroundingWhitespaceTolerated) {
    auto req = parse_request_line("  CONNECT\t198.51.100.25:25 \t HTTP/1.1\r");
    ASSERT_TRUE(req);
    EXPECT_EQ(req->target, "198.51.100.25:25");
    EXPECT_EQ(req->version, "HTTP/1.1");
    EXPECT_FALSE(req->extra_tokens);
}

TEST(HttpRequestLine, RejectsNonRequests) {
    EXPECT_FALSE(parse_request_line(""));
    EXPECT_FALSE(parse_request_line("CONNECT"));
    EXPECT_FALSE(parse_request_line("C0NNECT mx:25 HTTP/1.0"));  // digit in method
    EXPECT_FALSE(parse_request_line("220 mx.example.net ESMTP"));
    EXPECT_FALSE(parse_request_line("\x16\x03\x01 junk"));
}

// --- CONNECT authority ------------------------------------------------------

TEST(HttpAuthority, PortBounds) {
    EXPECT_FALSE(parse_authority("mx.example.net:0"));
    EXPECT_FALSE(parse_authority("mx.example.net:65536"));
    EXPECT_FALSE(parse_authority("mx.example.net:99999"));
    auto max = parse_authority("mx.example.net:65535");
    ASSERT_TRUE(max);
    EXPECT_EQ(max->port, 65535);
    auto one = parse_authority("mx.example.net:1");
    ASSERT_TRUE(one);
    EXPECT_EQ(one->port, 1);
}

TEST(HttpAuthority, NonDigitPortRejected) {
    EXPECT_FALSE(parse_authority("mx.example.net:2x"));
    EXPECT_FALSE(parse_authority("mx.example.net:smtp"));
    EXPECT_FALSE(parse_authority("mx.example.net:-25"));
    EXPECT_FALSE(parse_authority("mx.example.net: 25"));
}

TEST(HttpAuthority, PortRequiredWithoutDefault) {
    EXPECT_FALSE(parse_authority("mx.example.net"));
    EXPECT_FALSE(parse_authority("mx.example.net:"));
    EXPECT_FALSE(parse_authority("[2001:db8::7]"));
    auto d = parse_authority("mx.example.net", 80);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->port, 80);
}

TEST(HttpAuthority, UnbracketedIpv6Rejected) {
    EXPECT_FALSE(parse_authority("2001:db8::7:25"));
    EXPECT_FALSE(parse_authority("::1:25"));
}

TEST(HttpAuthority, MalformedBracketsRejected) {
    EXPECT_FALSE(parse_authority("[2001:db8::7:25"));     // no closing bracket
    EXPECT_FALSE(parse_authority("[2001:db8::zz]:25"));   // not an address
    EXPECT_FALSE(parse_authority("[198.51.100.25]:25"));  // IPv4 in brackets
    EXPECT_FALSE(parse_authority("[2001:db8::7]x:25"));   // junk after bracket
}

TEST(HttpAuthority, UserinfoIsStripped) {
    auto t = parse_authority("user:secret@mx.example.net:25");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->host, "mx.example.net");
    EXPECT_EQ(t->port, 25);
    auto v6 = parse_authority("u@[2001:db8::7]:25");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->host, "2001:db8::7");
}

TEST(HttpAuthority, TrailingSlashTolerated) {
    auto t = parse_authority("mx.example.net:25/");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->host, "mx.example.net");
    EXPECT_EQ(t->port, 25);
    auto c = target_of("CONNECT 198.51.100.25:25/ HTTP/1.0");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->port, 25);
}

TEST(HttpAuthority, InvalidHostCharactersRejected) {
    EXPECT_FALSE(parse_authority(":25"));
    EXPECT_FALSE(parse_authority("mx example:25"));
    EXPECT_FALSE(parse_authority("mx\x01:25"));
}

TEST(HttpAuthority, NonAddressDottedNameIsNotLiteral) {
    auto t = parse_authority("999.1.1.1:25");
    ASSERT_TRUE(t);
    EXPECT_FALSE(t->ip_literal);
}

// --- absolute-form targets --------------------------------------------------

TEST(HttpAbsoluteUri, PostToMailPort) {
    auto req = parse_request_line("POST http://mx:25/ HTTP/1.0");
    ASSERT_TRUE(req);
    EXPECT_EQ(req->method, "POST");
    auto t = proxy_target(*req);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->host, "mx");
    EXPECT_EQ(t->port, 25);
}

TEST(HttpAbsoluteUri, GetWithoutPortDefaultsTo80) {
    auto t = target_of("GET http://example.com/ HTTP/1.1");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->host, "example.com");
    EXPECT_EQ(t->port, 80);
}

TEST(HttpAbsoluteUri, HttpsDefaultsTo443) {
    auto t = target_of("GET https://example.com/x HTTP/1.1");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->port, 443);
}

TEST(HttpAbsoluteUri, PathQueryAndUserinfo) {
    auto t = target_of("GET http://user:pw@example.com:8080/a/b?q=1 HTTP/1.1");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->host, "example.com");
    EXPECT_EQ(t->port, 8080);
    auto q = target_of("GET http://example.com?x=1 HTTP/1.1");
    ASSERT_TRUE(q);
    EXPECT_EQ(q->host, "example.com");
    EXPECT_EQ(q->port, 80);
}

TEST(HttpAbsoluteUri, SchemeIsCaseInsensitive) {
    auto t = target_of("POST HTTP://MX.EXAMPLE.NET:25/ HTTP/1.0");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->port, 25);
}

TEST(HttpAbsoluteUri, OriginFormIsNotAProxyRequest) {
    EXPECT_FALSE(target_of("GET /index.html HTTP/1.1"));
    EXPECT_FALSE(target_of("POST /submit HTTP/1.0"));
    EXPECT_FALSE(target_of("GET * HTTP/1.1"));
    EXPECT_FALSE(target_of("GET http:// HTTP/1.1"));
}

// --- status line ------------------------------------------------------------

TEST(HttpStatusLine, ConnectionEstablished) {
    auto st = parse_status_line("HTTP/1.0 200 Connection established");
    ASSERT_TRUE(st);
    EXPECT_EQ(st->major, 1);
    EXPECT_EQ(st->minor, 0);
    EXPECT_EQ(st->code, 200);
    EXPECT_EQ(st->reason, "Connection established");
}

TEST(HttpStatusLine, Http11Ok) {
    auto st = parse_status_line("HTTP/1.1 200 OK\r");
    ASSERT_TRUE(st);
    EXPECT_EQ(st->minor, 1);
    EXPECT_EQ(st->code, 200);
    EXPECT_EQ(st->reason, "OK");
}

TEST(HttpStatusLine, EmptyReason) {
    auto st = parse_status_line("HTTP/1.1 403");
    ASSERT_TRUE(st);
    EXPECT_EQ(st->code, 403);
    EXPECT_EQ(st->reason, "");
}

TEST(HttpStatusLine, Garbage) {
    EXPECT_FALSE(parse_status_line(""));
    EXPECT_FALSE(parse_status_line("garbage"));
    EXPECT_FALSE(parse_status_line("220 mx.example.net ESMTP Postfix"));
    EXPECT_FALSE(parse_status_line("HTTP/x.1 200 OK"));
    EXPECT_FALSE(parse_status_line("HTTP/1.1200 OK"));
    EXPECT_FALSE(parse_status_line("ICY 200 OK just text"));
}

TEST(HttpStatusLine, CodeMustBeThreeDigits) {
    EXPECT_FALSE(parse_status_line("HTTP/1.1 20 OK"));
    EXPECT_FALSE(parse_status_line("HTTP/1.1 2000 OK"));
    EXPECT_FALSE(parse_status_line("HTTP/1.1 2x0 OK"));
    EXPECT_FALSE(parse_status_line("HTTP/1.1 099 Low"));
    EXPECT_FALSE(parse_status_line("HTTP/1.1 abc OK"));
}

// --- first-bytes classification ---------------------------------------------

TEST(HttpLooksLikeProxyRequest, ProxyRequests) {
    EXPECT_TRUE(looks_like("CONNECT 198.51.100.25:25 HTTP/1.0\r\n"));
    EXPECT_TRUE(looks_like("connect mx:25"));
    EXPECT_TRUE(looks_like("POST http://mx:25/ HTTP/1.0\r\n"));
    EXPECT_TRUE(looks_like("GET https://example.com/ HTTP/1.1\r\n"));
    EXPECT_TRUE(looks_like("GET HTTP://example.com/ HTTP/1.1\r\n"));
}

TEST(HttpLooksLikeProxyRequest, OtherFirstBytes) {
    EXPECT_FALSE(looks_like(""));
    EXPECT_FALSE(looks_like("CONNECT"));  // no space yet
    EXPECT_FALSE(looks_like("GET / HTTP/1.1\r\n"));
    EXPECT_FALSE(looks_like("EHLO client.example\r\n"));
    EXPECT_FALSE(looks_like("220 mx.example.net ESMTP\r\n"));
    EXPECT_FALSE(looks_like(std::string_view("\x16\x03\x01\x02\x00", 5)));
    EXPECT_FALSE(looks_like(std::string_view("\x05\x01\x00", 3)));
    EXPECT_FALSE(looks_like("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA CONNECT"));  // method too long
}

TEST(HttpStartsConnect, MethodAndSpaceInAnyCase) {
    auto starts = [](std::string_view s) {
        return starts_connect(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
    };
    EXPECT_TRUE(starts("CONNECT www.example.com:443 HTTP/1.1\r\n"));
    EXPECT_TRUE(starts("Connect "));
    EXPECT_FALSE(starts("CONNECT"));    // no space yet
    EXPECT_FALSE(starts("CONNECTX a"));
    EXPECT_FALSE(starts(" CONNECT a"));
    EXPECT_FALSE(starts("GET http://a/ HTTP/1.1\r\n"));
}

// --- headers ----------------------------------------------------------------

TEST(HttpHeaderValue, NameIsCaseInsensitiveAndValueTrimmed) {
    auto v = header_value("content-length:   12  \r", "Content-Length");
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, "12");
    auto a = header_value("PROXY-AUTHORIZATION : Basic dXNlcjpwYXNz", "Proxy-Authorization");
    ASSERT_TRUE(a);
    EXPECT_EQ(*a, "Basic dXNlcjpwYXNz");
}

TEST(HttpHeaderValue, OtherNamesAndNoColon) {
    EXPECT_FALSE(header_value("X-Host: mx", "Host"));
    EXPECT_FALSE(header_value("Host mx", "Host"));
    auto h = header_value("Host: mx.example.net:25", "host");
    ASSERT_TRUE(h);
    EXPECT_EQ(*h, "mx.example.net:25");  // only the first colon separates
}

// --- hostile input ----------------------------------------------------------

TEST(HttpHostileInput, TenMegabyteLineHandledWithoutCrash) {
    const std::string big(10u << 20, 'A');
    EXPECT_FALSE(parse_request_line(big));
    EXPECT_FALSE(parse_request_line("CONNECT " + big + ":25 HTTP/1.0"));
    EXPECT_FALSE(parse_status_line("HTTP/1.1 200 " + big));
    EXPECT_FALSE(parse_authority(big + ":25"));
    EXPECT_FALSE(header_value(big, "Host"));
    EXPECT_FALSE(looks_like(big));
    const std::string spaced = "CONNECT " + std::string(10u << 20, ' ') + "mx:25";
    EXPECT_FALSE(parse_request_line(spaced));
}

// Letters are ASCII letters whatever the locale: a Latin-1 byte is not one.
TEST(HttpParse, MethodLettersAreAscii) {
    EXPECT_FALSE(parse_request_line("G\xC9T http://x/ HTTP/1.1"));
    EXPECT_FALSE(looks_like_proxy_request(reinterpret_cast<const std::uint8_t*>("G\xC9T http://x/"), 15));
    EXPECT_TRUE(parse_request_line("get http://x/ HTTP/1.1"));
    EXPECT_EQ(parse_request_line("cOnNeCt x:25 HTTP/1.1")->method, "CONNECT");
}

}  // namespace
}  // namespace soh
