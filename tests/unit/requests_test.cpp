// Every request on a proxy connection (RFC 9112 §9.3: one after another on
// a persistent connection): web requests before a CONNECT, a 407 and the
// retry with credentials, several absolute-URI requests. Each request to a
// mail port is an incident of its own; the frames of the other requests
// carry nothing.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "correlator.h"
#include "fake_tcp.h"

namespace soh {
namespace {

using test::Capture;
using test::ep;
using test::FakeTcp;
using test::k200;
using test::kAttacker;
using test::kMta;
using test::kProxyOut;
using test::kProxyOut2;

const Endpoint kProxy = ep("203.0.113.1", 3128);
const char* const kGet = "GET http://198.51.100.80/news.html HTTP/1.1\r\nHost: 198.51.100.80\r\n\r\n";
const char* const kPage = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
const char* const kConnect = "CONNECT 198.51.100.25:25 HTTP/1.1\r\nHost: 198.51.100.25:25\r\n\r\n";
const char* const k407 = "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\n"
                         "Content-Length: 0\r\n\r\n";

View complete(const Correlator& c, FrameNum f) { return test::complete_view(c, f); }

void smtp(FakeTcp& tun, FakeTcp& rel, const std::string& from) {
    auto c = [&](const std::string& l) { tun.client(l); rel.client(l); };
    auto s = [&](const std::string& l) { rel.server(l); tun.server(l); };
    s("220 mx.example.net ESMTP\r\n");
    c("EHLO bot.example\r\n");
    s("250 mx.example.net\r\n");
    c("MAIL FROM:<" + from + ">\r\n");
    s("250 2.1.0 Ok\r\n");
    c("RCPT TO:<v@victim.example>\r\n");
    s("250 2.1.5 Ok\r\n");
    c("DATA\r\n");
    s("354 go ahead\r\n");
    c("Subject: x\r\n\r\nbody\r\n.\r\n");
    s("250 2.0.0 Ok: queued\r\n");
}

TEST(Requests, WebPagesThenConnectOnTheSameConnection) {
    Capture cap;
    cap.fast_path = true;  // as the glue feeds it
    FakeTcp tun(cap, 0, kAttacker, kProxy), rel(cap, 1, kProxyOut, kMta);
    const FrameNum syn = tun.handshake();
    const FrameNum get1 = tun.client(kGet);
    tun.server(kPage);
    const FrameNum get2 = tun.client(kGet);
    const FrameNum page2 = tun.server(kPage);
    const FrameNum req = tun.client(kConnect);
    rel.handshake();
    tun.server(k200);
    smtp(tun, rel, "late@spam.example");
    tun.close();
    rel.close();
    for (FrameNum f = syn; f <= page2; ++f) EXPECT_FALSE(complete(cap.corr(), f).suspect) << f;
    (void)get1;
    (void)get2;
    View v = complete(cap.corr(), req);
    ASSERT_TRUE(v.suspect);
    EXPECT_STREQ(v.leg, "tunnel");
    EXPECT_EQ(v.proxy->request_frame, req);
    EXPECT_EQ(v.pairing, Pairing::Unique);
    ASSERT_NE(v.relay, nullptr);
    EXPECT_EQ(v.relay->stream, 1u);
    EXPECT_EQ(v.outcome, Outcome::MessagesAccepted);
    EXPECT_TRUE(complete(cap.corr(), tun.frames().back()).suspect);
}

TEST(Requests, WebOnlyConnectionCarriesNothing) {
    Capture cap;
    cap.fast_path = true;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    tun.handshake();
    for (int i = 0; i < 5; ++i) {
        tun.client(kGet);
        tun.server(kPage);
    }
    tun.close();
    for (FrameNum f : tun.frames()) EXPECT_FALSE(complete(cap.corr(), f).suspect) << f;
    EXPECT_EQ(cap.corr().flow_count(), 0u);  // watched without a flow
}

// squid with basic authentication: the first CONNECT is answered 407, the
// client asks again with credentials on the same connection.
TEST(Requests, RefusedWith407ThenRetriedAreTwoIncidents) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy), rel(cap, 1, kProxyOut, kMta);
    tun.handshake();
    const FrameNum first = tun.client(kConnect);
    const FrameNum refusal = tun.server(k407);
    const FrameNum retry = tun.client("CONNECT 198.51.100.25:25 HTTP/1.1\r\nProxy-Authorization: Basic dTpw\r\n\r\n");
    rel.handshake();
    tun.server(k200);
    smtp(tun, rel, "auth@spam.example");
    tun.close();
    rel.close();

    View a = complete(cap.corr(), refusal);
    ASSERT_TRUE(a.suspect);
    EXPECT_STREQ(a.leg, "attempt");
    EXPECT_EQ(a.status, Status::Refused);
    EXPECT_EQ(a.proxy->status_code, 407);
    EXPECT_EQ(a.proxy->request_frame, first);
    EXPECT_EQ(a.relay, nullptr);
    EXPECT_EQ(a.outcome, Outcome::Unknown);
    EXPECT_STREQ(complete(cap.corr(), 1).leg, "attempt");  // the handshake belongs to the first request

    View t = complete(cap.corr(), tun.frames().back());
    ASSERT_TRUE(t.suspect);
    EXPECT_STREQ(t.leg, "tunnel");
    EXPECT_EQ(t.proxy->request_frame, retry);
    EXPECT_TRUE(t.proxy->proxy_auth);
    EXPECT_EQ(t.pairing, Pairing::Unique);
    ASSERT_NE(t.relay, nullptr);
    EXPECT_EQ(t.outcome, Outcome::MessagesAccepted);
    EXPECT_NE(a.proxy, t.proxy);
    EXPECT_EQ(a.proxy->stream, t.proxy->stream);
}

TEST(Requests, AbsoluteUriRequestsInARowAreIncidentsEach) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy), r1(cap, 1, kProxyOut, kMta), r2(cap, 2, kProxyOut2, kMta);
    const std::string body1 = "HELO a\r\nMAIL FROM:<one@spam.example>\r\n";
    const std::string body2 = "HELO b\r\nMAIL FROM:<two@spam.example>\r\n";
    auto post = [](const std::string& body) {
        return "POST http://198.51.100.25:25/ HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n\r\n" + body;
    };
    // One request on the tunnel, relayed on `rel`, answered 503 by the proxy.
    auto relayed = [&](FakeTcp& rel, const std::string& body) {
        const FrameNum req = tun.client(post(body));
        rel.handshake();
        rel.server("220 mx\r\n");
        rel.client(post(body));
        rel.server("502 no\r\n502 no\r\n250 mx\r\n250 ok\r\n");
        rel.close();
        tun.server("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
        return req;
    };
    tun.handshake();
    const FrameNum p1 = relayed(r1, body1);
    cap.advance(1.0);
    const FrameNum p2 = relayed(r2, body2);
    tun.close();
    View a = complete(cap.corr(), p1), b = complete(cap.corr(), p2);
    ASSERT_TRUE(a.suspect);
    ASSERT_TRUE(b.suspect);
    EXPECT_NE(a.proxy, b.proxy);
    ASSERT_NE(a.relay, nullptr);
    ASSERT_NE(b.relay, nullptr);
    EXPECT_EQ(a.relay->stream, 1u);
    EXPECT_EQ(b.relay->stream, 2u);
    EXPECT_EQ(a.smtp->envelope().mail_from, std::vector<std::string>{"one@spam.example"});
    EXPECT_EQ(b.smtp->envelope().mail_from, std::vector<std::string>{"two@spam.example"});
}

}  // namespace
}  // namespace soh
