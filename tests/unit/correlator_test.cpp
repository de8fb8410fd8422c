// End-to-end tests of the correlator over fake TCP segments: detection of
// proxy requests, pairing of tunnel and relay legs, and the caps.
#include "correlator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "fake_tcp.h"

namespace soh {

// Readable gtest output for the core's enums (found by ADL).
void PrintTo(Pairing p, std::ostream* os) { *os << pairing_name(p); }
void PrintTo(Status s, std::ostream* os) { *os << status_name(s); }
void PrintTo(Method m, std::ostream* os) { *os << method_name(m); }

namespace {

using test::Capture;
using test::ep;
using test::FakeTcp;

const Endpoint kAttacker = ep("192.0.2.10", 40000);
const Endpoint kAttacker2 = ep("192.0.2.11", 40001);
const Endpoint kProxy = ep("203.0.113.1", 8888);
const Endpoint kProxyOut = ep("203.0.113.1", 50000);
const Endpoint kProxyOut2 = ep("203.0.113.1", 50001);
const Endpoint kMta = ep("198.51.100.25", 25);

const char* const kConnectMta = "CONNECT 198.51.100.25:25 HTTP/1.1\r\nHost: 198.51.100.25:25\r\n\r\n";
const char* const k200 = "HTTP/1.1 200 Connection established\r\n\r\n";

// --- reading the results ----------------------------------------------------

View view_at(const Correlator& c, FrameNum f) {
    const FrameNote* n = c.note(f);
    return n ? c.view(*n) : View{};
}

bool suspect(const Correlator& c, FrameNum f) { return view_at(c, f).suspect; }

std::uint16_t events(const Correlator& c, FrameNum f) {
    const FrameNote* n = c.note(f);
    return n ? n->events : 0;
}

std::uint16_t events_over(const Correlator& c, const std::vector<FrameNum>& frames) {
    std::uint16_t ev = 0;
    for (FrameNum f : frames) ev |= events(c, f);
    return ev;
}

int frames_with_event(const Correlator& c, FrameNum last, std::uint16_t ev) {
    int n = 0;
    for (FrameNum f = 1; f <= last; ++f)
        if (events(c, f) & ev) ++n;
    return n;
}

template <typename T>
std::string join(const std::vector<T>& v) {
    std::ostringstream os;
    for (std::size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
    return os.str();
}

// Everything the renderer would show for a frame, frame numbers left out so
// that captures of the same incident with different segmentation compare equal.
std::string describe(const Correlator& c, FrameNum f) {
    const FrameNote* n = c.note(f);
    if (!n) return "untracked";
    View v = c.view(*n);
    std::ostringstream os;
    os << "suspect=" << v.suspect << " leg=" << v.leg << " pairing=" << pairing_name(v.pairing);
    if (v.proxy)
        os << " tunnel=" << v.proxy->stream << " method=" << method_name(v.proxy->method)
           << " target=" << v.proxy->target_host << ":" << v.proxy->target_port
           << " status=" << status_name(v.proxy->status) << "/" << v.proxy->status_code;
    if (v.relay) os << " relay=" << v.relay->stream;
    if (!v.relay_candidates.empty()) os << " relay_candidates=" << join(v.relay_candidates);
    if (!v.tunnel_candidates.empty()) os << " tunnel_candidates=" << join(v.tunnel_candidates);
    if (v.smtp) {
        const Envelope& e = v.smtp->envelope();
        os << " helo=" << e.helo << " from=" << join(e.mail_from) << " to=" << join(e.rcpt_to)
           << " rcpt=" << e.rcpt_count << "/" << e.rcpt_accepted << " msgs=" << e.messages;
    }
    if (v.target_addr.valid()) os << " addr=" << v.target_addr.str();
    return os.str();
}

// --- building incidents -----------------------------------------------------

// A string literal with embedded NULs, all of it.
template <std::size_t N>
std::string bin(const char (&s)[N]) {
    return std::string(s, N - 1);
}

// A line the client sends into the tunnel and the proxy relays to the MTA.
FrameNum client_says(FakeTcp& tun, FakeTcp& rel, std::string_view line) {
    FrameNum f = tun.client(line);
    rel.client(line);
    return f;
}

// A line the MTA sends on the relay leg and the proxy passes back into the tunnel.
FrameNum server_says(FakeTcp& tun, FakeTcp& rel, std::string_view line) {
    rel.server(line);
    return tun.server(line);
}

struct Step {
    bool from_client;
    std::string line;
};

std::vector<Step> smtp_script(const std::string& helo, const std::string& from) {
    return {
        {false, "220 mx.example.net ESMTP Postfix\r\n"},
        {true, "EHLO " + helo + "\r\n"},
        {false, "250-mx.example.net\r\n250 PIPELINING\r\n"},
        {true, "MAIL FROM:<" + from + ">\r\n"},
        {false, "250 2.1.0 Ok\r\n"},
        {true, "RCPT TO:<alice@example.org>\r\n"},
        {false, "250 2.1.5 Ok\r\n"},
        {true, "RCPT TO:<bob@example.org>\r\n"},
        {false, "250 2.1.5 Ok\r\n"},
        {true, "DATA\r\n"},
        {false, "354 End data with <CR><LF>.<CR><LF>\r\n"},
        {true, "Subject: cheap\r\n\r\nbuy now\r\n.\r\n"},
        {false, "250 2.0.0 Ok: queued\r\n"},
        {true, "QUIT\r\n"},
        {false, "221 2.0.0 Bye\r\n"},
    };
}

// Runs the script over a tunnel and its relay; returns the tunnel frame that
// carried the greeting.
FrameNum relay_smtp(FakeTcp& tun, FakeTcp& rel, const std::string& helo = "spam.example",
                    const std::string& from = "spammer@spam.example") {
    FrameNum greeting = 0;
    for (const Step& s : smtp_script(helo, from)) {
        FrameNum f = s.from_client ? client_says(tun, rel, s.line) : server_says(tun, rel, s.line);
        if (!greeting) greeting = f;
    }
    return greeting;
}

// Two incidents at once, step by step interleaved.
void relay_smtp_interleaved(FakeTcp& ta, FakeTcp& ra, const std::string& from_a, FakeTcp& tb, FakeTcp& rb,
                            const std::string& from_b) {
    auto a = smtp_script("spam.example", from_a);
    auto b = smtp_script("spam.example", from_b);
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i].from_client) {
            client_says(ta, ra, a[i].line);
            client_says(tb, rb, b[i].line);
        } else {
            server_says(ta, ra, a[i].line);
            server_says(tb, rb, b[i].line);
        }
    }
}

// --- (a) the basic incident -------------------------------------------------

struct BasicIncident {
    Capture cap;
    FakeTcp tun{cap, 0, kAttacker, kProxy};
    FakeTcp rel{cap, 1, kProxyOut, kMta};
    FrameNum syn = 0, connect = 0, relay_syn = 0, response = 0, greeting = 0;

    BasicIncident() {
        syn = tun.handshake();
        connect = tun.client(kConnectMta);
        relay_syn = rel.handshake();
        response = tun.server(k200);
        greeting = relay_smtp(tun, rel);
        rel.close();
        tun.close();
    }
    const Correlator& c() const { return cap.corr(); }
};

TEST(CorrelatorConnect, TunnelFramesArePairedWithTheRelay) {
    BasicIncident t;
    for (FrameNum f : t.tun.frames()) {
        if (f < t.connect) continue;
        View v = view_at(t.c(), f);
        SCOPED_TRACE(describe(t.c(), f));
        EXPECT_TRUE(v.suspect);
        EXPECT_STREQ(v.leg, "tunnel");
        EXPECT_EQ(v.pairing, Pairing::Unique);
        ASSERT_NE(v.self, nullptr);
        EXPECT_EQ(v.proxy, v.self);
        ASSERT_NE(v.relay, nullptr);
        EXPECT_EQ(v.relay->stream, 1u);
        EXPECT_EQ(v.relay->role, Role::Relay);
    }
}

TEST(CorrelatorConnect, RelayFramesNameTheProxyLeg) {
    BasicIncident t;
    for (FrameNum f : t.rel.frames()) {
        View v = view_at(t.c(), f);
        SCOPED_TRACE(describe(t.c(), f));
        EXPECT_TRUE(v.suspect);
        EXPECT_STREQ(v.leg, "relay");
        EXPECT_EQ(v.pairing, Pairing::Unique);
        ASSERT_NE(v.proxy, nullptr);
        EXPECT_EQ(v.proxy->stream, 0u);
        EXPECT_EQ(v.relay, v.self);
    }
}

TEST(CorrelatorConnect, RequestFacts) {
    BasicIncident t;
    View v = view_at(t.c(), t.connect);
    ASSERT_NE(v.proxy, nullptr);
    EXPECT_EQ(v.proxy->method, Method::Connect);
    EXPECT_EQ(v.proxy->target_host, "198.51.100.25");
    EXPECT_EQ(v.proxy->target_port, 25);
    EXPECT_TRUE(v.proxy->target_literal);
    EXPECT_TRUE(v.proxy->mail_port);
    EXPECT_FALSE(v.proxy->malformed);
    EXPECT_EQ(v.proxy->request_frame, t.connect);
    EXPECT_EQ(v.proxy->response_frame, t.response);
    EXPECT_EQ(v.proxy->status, Status::Established);
    EXPECT_EQ(v.proxy->status_code, 200);
    EXPECT_EQ(v.proxy->client, kAttacker);
    EXPECT_EQ(v.proxy->server, kProxy);
    EXPECT_EQ(v.target_addr, kMta.addr);
    ASSERT_NE(v.relay, nullptr);
    EXPECT_EQ(v.relay->first_frame, t.relay_syn);
    EXPECT_EQ(v.relay->client, kProxyOut);
    EXPECT_EQ(v.relay->server, kMta);
}

TEST(CorrelatorConnect, EventsOnTheirFrames) {
    BasicIncident t;
    EXPECT_TRUE(events(t.c(), t.connect) & kEvRequest);
    EXPECT_TRUE(events(t.c(), t.response) & kEvResponse);
    EXPECT_TRUE(events(t.c(), t.greeting) & kEvSmtpFirst);
    EXPECT_TRUE(events(t.c(), t.relay_syn) & kEvRelayFirst);
    EXPECT_FALSE(events(t.c(), t.connect) & kEvMalformed);
    const FrameNum last = t.cap.last_frame();
    EXPECT_EQ(frames_with_event(t.c(), last, kEvRequest), 1);
    EXPECT_EQ(frames_with_event(t.c(), last, kEvResponse), 1);
    EXPECT_EQ(frames_with_event(t.c(), last, kEvSmtpFirst), 1);
    EXPECT_EQ(frames_with_event(t.c(), last, kEvRelayFirst), 1);
    EXPECT_EQ(frames_with_event(t.c(), last, kEvGap | kEvEvicted | kEvTableFull), 0);
}

TEST(CorrelatorConnect, Envelope) {
    BasicIncident t;
    View v = view_at(t.c(), t.tun.frames().back());
    ASSERT_NE(v.smtp, nullptr);
    const Envelope& e = v.smtp->envelope();
    EXPECT_EQ(e.helo, "spam.example");
    EXPECT_EQ(e.mail_from, std::vector<std::string>{"spammer@spam.example"});
    EXPECT_EQ(e.rcpt_to, (std::vector<std::string>{"alice@example.org", "bob@example.org"}));
    EXPECT_EQ(e.rcpt_count, 2u);
    EXPECT_EQ(e.rcpt_accepted, 2u);
    EXPECT_EQ(e.messages, 1u);
    // The relay frames show the same envelope.
    View r = view_at(t.c(), t.rel.frames().back());
    ASSERT_NE(r.smtp, nullptr);
    EXPECT_EQ(r.smtp->envelope().mail_from, e.mail_from);
}

TEST(CorrelatorConnect, HandshakeBeforeRequestNotSuspect) {
    BasicIncident t;
    for (FrameNum f : t.tun.frames()) {
        if (f >= t.connect) break;
        EXPECT_FALSE(suspect(t.c(), f)) << "frame " << f;
    }
    EXPECT_EQ(t.c().note(t.syn), nullptr);
}

TEST(CorrelatorConnect, Ipv6Target) {
    Capture cap;
    const Endpoint mta6 = ep("2001:db8::25", 25);
    FakeTcp tun(cap, 0, ep("2001:db8:1::10", 40000), ep("2001:db8:2::1", 3128));
    FakeTcp rel(cap, 1, ep("2001:db8:2::1", 50000), mta6);
    tun.handshake();
    FrameNum req = tun.client("CONNECT [2001:db8::25]:25 HTTP/1.1\r\n\r\n");
    rel.handshake();
    tun.server(k200);
    relay_smtp(tun, rel);
    View v = view_at(cap.corr(), tun.frames().back());
    EXPECT_TRUE(v.suspect);
    EXPECT_EQ(v.pairing, Pairing::Unique);
    ASSERT_NE(v.proxy, nullptr);
    EXPECT_EQ(v.proxy->target_host, "2001:db8::25");
    EXPECT_EQ(v.proxy->request_frame, req);
    EXPECT_EQ(v.target_addr, mta6.addr);
}

TEST(CorrelatorConnect, MalformedRequestStillDetected) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp rel(cap, 1, kProxyOut, kMta);
    tun.handshake();
    FrameNum req = tun.client("CONNECT 198.51.100.25:25 / HTTP/1.0\r\n: nameless header\r\n\r\n");
    rel.handshake();
    tun.server("HTTP/1.0 200 Connection established\r\n\r\n");
    relay_smtp(tun, rel);
    EXPECT_TRUE(events(cap.corr(), req) & kEvMalformed);
    View v = view_at(cap.corr(), tun.frames().back());
    EXPECT_TRUE(v.suspect);
    ASSERT_NE(v.proxy, nullptr);
    EXPECT_TRUE(v.proxy->malformed);
    EXPECT_EQ(v.pairing, Pairing::Unique);
    ASSERT_NE(v.smtp, nullptr);
    EXPECT_EQ(v.smtp->envelope().messages, 1u);
}

TEST(CorrelatorConnect, ResponseAndGreetingInOneSegment) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp rel(cap, 1, kProxyOut, kMta);
    tun.handshake();
    tun.client(kConnectMta);
    rel.handshake();
    const std::string greeting = "220 mx.example.net ESMTP Postfix\r\n";
    rel.server(greeting);
    FrameNum both = tun.server(std::string(k200) + greeting);
    EXPECT_TRUE(events(cap.corr(), both) & kEvResponse);
    EXPECT_TRUE(events(cap.corr(), both) & kEvSmtpFirst);
    client_says(tun, rel, "EHLO spam.example\r\n");
    View v = view_at(cap.corr(), tun.frames().back());
    SCOPED_TRACE(describe(cap.corr(), tun.frames().back()));
    EXPECT_EQ(v.pairing, Pairing::Unique);
    ASSERT_NE(v.smtp, nullptr);
    EXPECT_EQ(v.smtp->envelope().helo, "spam.example");
}

TEST(CorrelatorConnect, ClientSpeaksSmtpBeforeTheResponse) {
    // Spamware that does not wait: request and first command in one segment.
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp rel(cap, 1, kProxyOut, kMta);
    tun.handshake();
    FrameNum req = tun.client(std::string(kConnectMta) + "EHLO spam.example\r\n");
    rel.handshake();
    tun.server(k200);
    server_says(tun, rel, "220 mx.example.net ESMTP\r\n");
    rel.client("EHLO spam.example\r\n");
    server_says(tun, rel, "250 mx.example.net\r\n");
    EXPECT_TRUE(events(cap.corr(), req) & kEvSmtpFirst);
    View v = view_at(cap.corr(), tun.frames().back());
    SCOPED_TRACE(describe(cap.corr(), tun.frames().back()));
    EXPECT_EQ(v.pairing, Pairing::Unique);
    ASSERT_NE(v.relay, nullptr);
    EXPECT_EQ(v.relay->stream, 1u);
}

TEST(CorrelatorConnect, RetryAfter407WithCredentials) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp rel(cap, 1, kProxyOut, kMta);
    tun.handshake();
    tun.client(kConnectMta);
    tun.server("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n");
    tun.client("CONNECT 198.51.100.25:25 HTTP/1.1\r\nProxy-Authorization: Basic dTpw\r\n\r\n");
    rel.handshake();
    FrameNum ok = tun.server(k200);
    relay_smtp(tun, rel);
    View v = view_at(cap.corr(), tun.frames().back());
    SCOPED_TRACE(describe(cap.corr(), tun.frames().back()));
    EXPECT_TRUE(v.suspect);
    EXPECT_STREQ(v.leg, "tunnel");
    ASSERT_NE(v.proxy, nullptr);
    EXPECT_EQ(v.proxy->status, Status::Established);
    EXPECT_EQ(v.proxy->status_code, 200);
    EXPECT_EQ(v.proxy->response_frame, ok);
    EXPECT_TRUE(v.proxy->proxy_auth);
    EXPECT_EQ(v.pairing, Pairing::Unique);
}

TEST(CorrelatorConnect, InterimResponseBeforeTheAnswer) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp rel(cap, 1, kProxyOut, kMta);
    tun.handshake();
    tun.client(kConnectMta);
    rel.handshake();
    tun.server("HTTP/1.1 100 Continue\r\n\r\n");
    FrameNum ok = tun.server("HTTP/1.1 200 OK\r\nProxy-agent: test\r\n\r\n");
    relay_smtp(tun, rel);
    View v = view_at(cap.corr(), tun.frames().back());
    ASSERT_NE(v.proxy, nullptr);
    EXPECT_EQ(v.proxy->response_frame, ok);
    EXPECT_EQ(v.proxy->status_code, 200);
    EXPECT_EQ(v.pairing, Pairing::Unique);
}

TEST(CorrelatorConnect, ConnectWithoutVersion) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp rel(cap, 1, kProxyOut, kMta);
    tun.handshake();
    FrameNum req = tun.client("CONNECT 198.51.100.25:25\r\n");
    rel.handshake();
    tun.server("HTTP/1.0 200 Connection established\r\n\r\n");
    relay_smtp(tun, rel);
    EXPECT_TRUE(events(cap.corr(), req) & kEvMalformed);
    View v = view_at(cap.corr(), tun.frames().back());
    SCOPED_TRACE(describe(cap.corr(), tun.frames().back()));
    EXPECT_TRUE(v.suspect);
    EXPECT_EQ(v.pairing, Pairing::Unique);
    ASSERT_NE(v.smtp, nullptr);
    EXPECT_EQ(v.smtp->envelope().messages, 1u);
}

TEST(CorrelatorConnect, ViewIntoReusedViewIsReset) {
    BasicIncident t;
    View v;
    const FrameNote* in_tunnel = t.c().note(t.connect);
    ASSERT_NE(in_tunnel, nullptr);
    t.c().view_into(*in_tunnel, v);
    EXPECT_TRUE(v.suspect);
    // A tracked but unpaired, non-suspect frame: build one in another capture.
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    tun.handshake();
    // Split over two segments, the request is parsed at once (not held).
    FrameNum req = tun.client("CONNECT www.example.com:443 HTTP/1.1\r\n");
    tun.client("\r\n");
    const FrameNote* benign = cap.corr().note(req);
    ASSERT_NE(benign, nullptr);
    cap.corr().view_into(*benign, v);
    EXPECT_FALSE(v.suspect);
    EXPECT_STREQ(v.leg, "");
    EXPECT_EQ(v.proxy, nullptr);
    EXPECT_EQ(v.relay, nullptr);
    EXPECT_EQ(v.smtp, nullptr);
    EXPECT_FALSE(v.target_addr.valid());
    EXPECT_EQ(v.pairing, Pairing::None);
}

// --- timing -----------------------------------------------------------------

TEST(CorrelatorTiming, RelayOpenedAfterTheResponseIsNotTheRelay) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp late(cap, 1, kProxyOut, kMta);
    tun.handshake();
    tun.client(kConnectMta);
    tun.server(k200);
    cap.advance(2.0);
    late.handshake();
    late.server("220 mx.example.net ESMTP\r\n");
    for (FrameNum f : late.frames()) EXPECT_FALSE(suspect(cap.corr(), f)) << describe(cap.corr(), f);
    View v = view_at(cap.corr(), tun.frames().back());
    EXPECT_TRUE(v.suspect);
    EXPECT_EQ(v.pairing, Pairing::None);
    EXPECT_EQ(v.relay, nullptr);
}

TEST(CorrelatorTiming, ConnectionOpenedBeforeTheRequestIsNotTheRelay) {
    Capture cap;
    FakeTcp early(cap, 1, kProxyOut, kMta);
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    early.handshake();
    cap.advance(2.0);
    tun.handshake();
    tun.client(kConnectMta);
    tun.server(k200);
    early.server("220 mx.example.net ESMTP\r\n");
    for (FrameNum f : early.frames()) EXPECT_FALSE(suspect(cap.corr(), f)) << describe(cap.corr(), f);
    EXPECT_EQ(view_at(cap.corr(), tun.frames().back()).pairing, Pairing::None);
}

// --- (b) benign tunnel ------------------------------------------------------

TEST(CorrelatorBenign, TlsTunnelTo443IsNotSuspect) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp rel(cap, 1, kProxyOut, ep("93.184.216.34", 443));
    tun.handshake();
    tun.client("CONNECT www.example.com:443 HTTP/1.1\r\nHost: www.example.com:443\r\n\r\n");
    rel.handshake();
    tun.server(k200);
    const std::string hello = bin("\x16\x03\x01\x00\x30\x01\x00\x00\x2c\x03\x03 random bytes of a client hello");
    client_says(tun, rel, hello);
    const std::string server_hello = bin("\x16\x03\x03\x00\x20\x02\x00\x00\x1c\x03\x03 server hello bytes....");
    server_says(tun, rel, server_hello);
    client_says(tun, rel, bin("\x17\x03\x03\x00\x05hello"));
    rel.close();
    tun.close();
    for (FrameNum f : tun.frames()) EXPECT_FALSE(suspect(cap.corr(), f)) << describe(cap.corr(), f);
    for (FrameNum f : rel.frames()) EXPECT_FALSE(suspect(cap.corr(), f)) << describe(cap.corr(), f);
}

TEST(CorrelatorBenign, HttpsTunnelRelayLegStopsBeingTracked) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp rel(cap, 1, kProxyOut, ep("93.184.216.34", 443));
    tun.handshake();
    tun.client("CONNECT 93.184.216.34:443 HTTP/1.1\r\n\r\n");
    rel.handshake();
    tun.server(k200);
    client_says(tun, rel, bin("\x16\x03\x01\x00\x05\x01\x00\x00\x01\x03"));
    // After the tunnel proved benign, its later frames cost nothing.
    FrameNum later = tun.server(bin("\x16\x03\x03\x00\x01\x02"));
    EXPECT_EQ(cap.corr().note(later), nullptr);
    EXPECT_FALSE(suspect(cap.corr(), rel.frames().back()));
}

// The relay leg of a tunnel to a port that is not a mail port waits for its
// first data: by then an HTTPS tunnel showed TLS, and the leg is an ordinary
// connection with no flow and no note.
// Proxied HTTPS costs no flow: the tunnel is held until its first bytes show
// TLS (HeldTunnel), its relay leg until its first data (PendingRelay).
TEST(CorrelatorBenign, HttpsTunnelAndItsRelayLegGetNoFlow) {
    for (bool fast : {false, true}) {
        for (bool hold : {false, true}) {
            SCOPED_TRACE(std::string(fast ? "fast path" : "no fast path") + (hold ? ", held" : ", not held"));
            Config cfg;
            cfg.hold_tunnels = hold;
            Capture cap(cfg);
            cap.fast_path = fast;
            FakeTcp tun(cap, 0, kAttacker, kProxy);
            FakeTcp rel(cap, 1, kProxyOut, ep("93.184.216.34", 443));
            tun.handshake();
            tun.client("CONNECT www.example.com:443 HTTP/1.1\r\nHost: www.example.com:443\r\n\r\n");
            rel.handshake();
            tun.emit(tun.make(false, ""));  // the proxy's bare ACK
            tun.server(k200);
            client_says(tun, rel, bin("\x16\x03\x01\x00\x05\x01\x00\x00\x01\x03"));
            server_says(tun, rel, bin("\x16\x03\x03\x00\x01\x02"));
            rel.close();
            tun.close();
            EXPECT_EQ(cap.corr().flow_count(), hold ? 0u : 1u);
            for (FrameNum f : rel.frames()) EXPECT_EQ(cap.corr().note(f), nullptr) << f;
            for (FrameNum f : tun.frames()) {
                if (hold) {
                    EXPECT_EQ(cap.corr().note(f), nullptr) << f;
                }
                EXPECT_FALSE(suspect(cap.corr(), f)) << f;
            }
        }
    }
}

// --- (c) plain SMTP ---------------------------------------------------------

TEST(CorrelatorBenign, PlainSmtpSessionIsNotSuspect) {
    Capture cap;
    FakeTcp smtp(cap, 0, ep("192.0.2.50", 41000), kMta);
    smtp.handshake();
    for (const Step& s : smtp_script("legit.example", "user@legit.example"))
        s.from_client ? smtp.client(s.line) : smtp.server(s.line);
    smtp.close();
    for (FrameNum f : smtp.frames()) EXPECT_FALSE(suspect(cap.corr(), f)) << describe(cap.corr(), f);
    EXPECT_EQ(cap.corr().flow_count(), 0u);
}

TEST(CorrelatorBenign, AttackerReachingTheMtaDirectlyIsNotTheRelay) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp direct(cap, 1, ep("192.0.2.10", 40002), kMta);
    tun.handshake();
    tun.client(kConnectMta);
    direct.handshake();
    tun.server("HTTP/1.1 502 Bad Gateway\r\n\r\n");
    direct.server("220 mx.example.net ESMTP\r\n");
    for (FrameNum f : direct.frames()) EXPECT_FALSE(suspect(cap.corr(), f)) << describe(cap.corr(), f);
}

// --- (d) refused attempt ----------------------------------------------------

TEST(CorrelatorRefused, ForbiddenConnectToMailPortIsAnAttempt) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    tun.handshake();
    FrameNum req = tun.client(kConnectMta);
    FrameNum refused = tun.server("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    tun.close();
    for (FrameNum f : {req, refused, tun.frames().back()}) {
        View v = view_at(cap.corr(), f);
        SCOPED_TRACE(describe(cap.corr(), f));
        EXPECT_TRUE(v.suspect);
        EXPECT_STREQ(v.leg, "attempt");
        ASSERT_NE(v.proxy, nullptr);
        EXPECT_EQ(v.proxy->status, Status::Refused);
        EXPECT_EQ(v.proxy->status_code, 403);
        EXPECT_EQ(v.pairing, Pairing::None);
        EXPECT_EQ(v.relay, nullptr);
    }
    EXPECT_TRUE(events(cap.corr(), req) & kEvRequest);
    EXPECT_TRUE(events(cap.corr(), refused) & kEvResponse);
}

TEST(CorrelatorRefused, RefusedConnectToWebPortIsNotSuspect) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    tun.handshake();
    tun.client("CONNECT www.example.com:443 HTTP/1.1\r\n\r\n");
    tun.server("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n");
    for (FrameNum f : tun.frames()) EXPECT_FALSE(suspect(cap.corr(), f));
}

// --- (e) two concurrent tunnels, told apart by content ----------------------

struct TwoIncidents {
    Capture cap;
    FakeTcp ta{cap, 0, kAttacker, kProxy};
    FakeTcp tb{cap, 1, kAttacker2, kProxy};
    FakeTcp ra{cap, 2, kProxyOut, kMta};   // carries tunnel A
    FakeTcp rb{cap, 3, kProxyOut2, kMta};  // carries tunnel B

    // Both requests, then both relays (B's first if asked), then both answers.
    void open(bool b_relay_first) {
        ta.handshake();
        ta.client(kConnectMta);
        tb.handshake();
        tb.client(kConnectMta);
        if (b_relay_first) {
            rb.handshake();
            ra.handshake();
        } else {
            ra.handshake();
            rb.handshake();
        }
        ta.server(k200);
        tb.server(k200);
    }
    void close() {
        ra.close();
        ta.close();
        rb.close();
        tb.close();
    }
    const Correlator& c() const { return cap.corr(); }
};

void expect_paired(const Correlator& c, const FakeTcp& tun, const FakeTcp& rel, const std::string& from) {
    View t = view_at(c, tun.frames().back());
    SCOPED_TRACE(describe(c, tun.frames().back()));
    EXPECT_EQ(t.pairing, Pairing::Unique);
    ASSERT_NE(t.relay, nullptr);
    EXPECT_EQ(t.relay->stream, rel.stream());
    ASSERT_NE(t.smtp, nullptr);
    EXPECT_EQ(t.smtp->envelope().mail_from, std::vector<std::string>{from});
    View r = view_at(c, rel.frames().back());
    EXPECT_TRUE(r.suspect);
    EXPECT_EQ(r.pairing, Pairing::Unique);
    ASSERT_NE(r.proxy, nullptr);
    EXPECT_EQ(r.proxy->stream, tun.stream());
}

TEST(CorrelatorConcurrent, DifferentSendersPairedByContent) {
    TwoIncidents t;
    t.open(/*b_relay_first=*/false);
    relay_smtp_interleaved(t.ta, t.ra, "a@spam.example", t.tb, t.rb, "b@spam.example");
    t.close();
    expect_paired(t.c(), t.ta, t.ra, "a@spam.example");
    expect_paired(t.c(), t.tb, t.rb, "b@spam.example");
}

TEST(CorrelatorConcurrent, DifferentSendersPairedByContentWhateverTheRelayOrder) {
    TwoIncidents t;
    t.open(/*b_relay_first=*/true);
    relay_smtp_interleaved(t.ta, t.ra, "a@spam.example", t.tb, t.rb, "b@spam.example");
    t.close();
    expect_paired(t.c(), t.ta, t.ra, "a@spam.example");
    expect_paired(t.c(), t.tb, t.rb, "b@spam.example");
}

// --- (f) indistinguishable tunnels ------------------------------------------

TEST(CorrelatorConcurrent, IdenticalContentIsAmbiguousNotAGuess) {
    TwoIncidents t;
    t.open(false);
    relay_smtp_interleaved(t.ta, t.ra, "same@spam.example", t.tb, t.rb, "same@spam.example");
    t.close();
    for (const FakeTcp* tun : {&t.ta, &t.tb}) {
        View v = view_at(t.c(), tun->frames().back());
        SCOPED_TRACE(describe(t.c(), tun->frames().back()));
        EXPECT_TRUE(v.suspect);
        EXPECT_EQ(v.pairing, Pairing::Ambiguous);
        EXPECT_EQ(v.relay, nullptr);
        auto cands = v.relay_candidates;
        std::sort(cands.begin(), cands.end());
        EXPECT_EQ(cands, (std::vector<StreamId>{2, 3}));
    }
    for (const FakeTcp* rel : {&t.ra, &t.rb}) {
        View v = view_at(t.c(), rel->frames().back());
        SCOPED_TRACE(describe(t.c(), rel->frames().back()));
        EXPECT_TRUE(v.suspect);
        EXPECT_STREQ(v.leg, "relay");
        EXPECT_EQ(v.pairing, Pairing::Ambiguous);
        auto cands = v.tunnel_candidates;
        std::sort(cands.begin(), cands.end());
        EXPECT_EQ(cands, (std::vector<StreamId>{0, 1}));
    }
}

TEST(CorrelatorConcurrent, AmbiguousWhileOnlyTimingIsKnown) {
    // Two requests, two relays, no content yet: no silent guess either.
    TwoIncidents t;
    t.open(false);
    for (const FakeTcp* tun : {&t.ta, &t.tb}) {
        View v = view_at(t.c(), tun->frames().back());
        SCOPED_TRACE(describe(t.c(), tun->frames().back()));
        EXPECT_NE(v.pairing, Pairing::Unique);
    }
}

// --- (g) host-name targets and DNS ------------------------------------------

TEST(CorrelatorDns, ResolvedNamePairsRelayToTheResolvedAddress) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    // The proxy is multi-homed: it connects out from another address.
    FakeTcp rel(cap, 1, ep("203.0.113.2", 50000), kMta);
    tun.handshake();
    tun.client("CONNECT mx.example.net:25 HTTP/1.1\r\n\r\n");
    cap.dns("MX.Example.NET.", {kMta.addr});
    rel.handshake();
    tun.server(k200);
    relay_smtp(tun, rel);
    View v = view_at(cap.corr(), tun.frames().back());
    SCOPED_TRACE(describe(cap.corr(), tun.frames().back()));
    EXPECT_TRUE(v.suspect);
    EXPECT_EQ(v.pairing, Pairing::Unique);
    ASSERT_NE(v.relay, nullptr);
    EXPECT_EQ(v.relay->stream, 1u);
    EXPECT_EQ(v.proxy->target_host, "mx.example.net");
    EXPECT_FALSE(v.proxy->target_literal);
    EXPECT_EQ(v.target_addr, kMta.addr);
}

TEST(CorrelatorDns, ResolvedNameRejectsOtherAddresses) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp other(cap, 1, kProxyOut, ep("198.51.100.99", 25));
    tun.handshake();
    tun.client("CONNECT mx.example.net:25 HTTP/1.1\r\n\r\n");
    cap.dns("mx.example.net", {kMta.addr});
    other.handshake();
    tun.server(k200);
    other.server("220 other.example ESMTP\r\n");
    for (FrameNum f : other.frames()) EXPECT_FALSE(suspect(cap.corr(), f));
    EXPECT_EQ(view_at(cap.corr(), tun.frames().back()).pairing, Pairing::None);
}

TEST(CorrelatorDns, UnresolvedNameRelayFromProxyAddressPaired) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp rel(cap, 1, kProxyOut, kMta);
    tun.handshake();
    tun.client("CONNECT mx.example.net:25 HTTP/1.1\r\n\r\n");
    rel.handshake();
    tun.server(k200);
    relay_smtp(tun, rel);
    View v = view_at(cap.corr(), tun.frames().back());
    EXPECT_EQ(v.pairing, Pairing::Unique);
    ASSERT_NE(v.relay, nullptr);
    EXPECT_EQ(v.relay->stream, 1u);
    EXPECT_EQ(v.target_addr, kMta.addr);  // learnt from the relay leg
}

TEST(CorrelatorDns, UnresolvedNameRelayFromElsewhereNotPaired) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp stranger(cap, 1, ep("203.0.113.99", 50000), kMta);
    tun.handshake();
    tun.client("CONNECT mx.example.net:25 HTTP/1.1\r\n\r\n");
    stranger.handshake();
    tun.server(k200);
    relay_smtp(tun, stranger);
    for (FrameNum f : stranger.frames()) EXPECT_FALSE(suspect(cap.corr(), f));
    View v = view_at(cap.corr(), tun.frames().back());
    EXPECT_TRUE(v.suspect);
    EXPECT_EQ(v.pairing, Pairing::None);
}

// --- (h) content detection on other ports -----------------------------------

TEST(CorrelatorContent, SmtpInTunnelToNonMailPortIsSuspect) {
    Capture cap;
    const Endpoint mta8025 = ep("198.51.100.25", 8025);
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp rel(cap, 1, kProxyOut, mta8025);
    tun.handshake();
    FrameNum req = tun.client("CONNECT 198.51.100.25:8025 HTTP/1.1\r\n\r\n");
    rel.handshake();
    tun.server(k200);
    FrameNum greeting = relay_smtp(tun, rel);
    EXPECT_TRUE(events(cap.corr(), greeting) & kEvSmtpFirst);
    for (FrameNum f : tun.frames()) {
        if (f < req) continue;
        View v = view_at(cap.corr(), f);
        SCOPED_TRACE(describe(cap.corr(), f));
        EXPECT_TRUE(v.suspect);
        EXPECT_STREQ(v.leg, "tunnel");
        ASSERT_NE(v.proxy, nullptr);
        EXPECT_FALSE(v.proxy->mail_port);
        EXPECT_EQ(v.pairing, Pairing::Unique);
    }
    View r = view_at(cap.corr(), rel.frames().back());
    EXPECT_TRUE(r.suspect);
    EXPECT_STREQ(r.leg, "relay");
}

// A relay leg decided at its first data is the one it would have been at its
// handshake: it starts at its SYN, and every frame of it is marked.
TEST(CorrelatorContent, DeferredRelayLegKeepsItsHandshake) {
    Capture cap;
    cap.fast_path = true;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp rel(cap, 1, kProxyOut, ep("198.51.100.25", 8025));
    tun.handshake();
    tun.client("CONNECT 198.51.100.25:8025 HTTP/1.1\r\n\r\n");
    FrameNum syn = rel.handshake();
    tun.server(k200);
    relay_smtp(tun, rel);
    rel.close();
    FrameNum last = tun.close();
    EXPECT_TRUE(events(cap.corr(), syn) & kEvRelayFirst);
    for (FrameNum f : rel.frames()) {
        View v = view_at(cap.corr(), f);
        SCOPED_TRACE(describe(cap.corr(), f));
        EXPECT_TRUE(v.suspect);
        EXPECT_STREQ(v.leg, "relay");
    }
    View v = view_at(cap.corr(), last);
    EXPECT_EQ(v.pairing, Pairing::Unique);
    ASSERT_NE(v.relay, nullptr);
    EXPECT_EQ(v.relay->first_frame, syn);
}

// The candidates are those of the handshake's time: connections opened after
// the proxy answered (which end the request's window for newcomers) do not
// take the pending leg's candidates away.
TEST(CorrelatorContent, DeferredRelayLegOutlivesTheWindow) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp rel(cap, 1, kProxyOut, ep("198.51.100.25", 8025));
    FakeTcp late(cap, 2, kProxyOut2, ep("198.51.100.26", 8025));
    tun.handshake();
    tun.client("CONNECT mx.example.net:8025 HTTP/1.1\r\n\r\n");
    rel.handshake();
    tun.server(k200);
    cap.advance(2.0);
    late.handshake();  // after the answer: no candidate
    FrameNum greeting = relay_smtp(tun, rel);
    FrameNum last = tun.close();
    EXPECT_TRUE(events(cap.corr(), greeting) & kEvSmtpFirst);
    View v = view_at(cap.corr(), last);
    SCOPED_TRACE(describe(cap.corr(), last));
    EXPECT_TRUE(v.suspect);
    EXPECT_EQ(v.pairing, Pairing::Unique);
    ASSERT_NE(v.relay, nullptr);
    EXPECT_EQ(v.relay->stream, 1u);
    for (FrameNum f : late.frames()) EXPECT_FALSE(suspect(cap.corr(), f)) << describe(cap.corr(), f);
}

TEST(CorrelatorContent, HttpInTunnelToNonMailPortIsNotSuspect) {
    Capture cap;
    const Endpoint web8025 = ep("198.51.100.25", 8025);
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp rel(cap, 1, kProxyOut, web8025);
    tun.handshake();
    tun.client("CONNECT 198.51.100.25:8025 HTTP/1.1\r\n\r\n");
    rel.handshake();
    tun.server(k200);
    client_says(tun, rel, "GET / HTTP/1.1\r\nHost: 198.51.100.25:8025\r\n\r\n");
    server_says(tun, rel, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    rel.close();
    tun.close();
    for (FrameNum f : tun.frames()) EXPECT_FALSE(suspect(cap.corr(), f)) << describe(cap.corr(), f);
    for (FrameNum f : rel.frames()) EXPECT_FALSE(suspect(cap.corr(), f)) << describe(cap.corr(), f);
}

// Two requests for port 443 by name: every connection from the proxy to port
// 443 in a request's window is a candidate for it. The HTTPS request, with one
// candidate, takes it; once its tunnel shows TLS it gives that relay back, and
// the relay pairs with the tunnel whose SMTP it carries.
TEST(CorrelatorContent, BenignTunnelGivesBackTheRelayItTook) {
    Capture cap;
    FakeTcp spam(cap, 0, kAttacker, kProxy);
    FakeTcp web(cap, 1, ep("192.0.2.51", 41001), kProxy);
    FakeTcp rel(cap, 2, kProxyOut, ep("198.51.100.25", 443));
    FakeTcp other(cap, 3, kProxyOut2, ep("93.184.216.34", 443));
    spam.handshake();
    spam.client("CONNECT mx.example.net:443 HTTP/1.1\r\n\r\n");
    web.handshake();
    web.client("CONNECT www.example.com:443 HTTP/1.1\r\n\r\n");
    rel.handshake();   // in both windows
    web.server(k200);  // closes the web request's window
    cap.advance(1.0);
    other.handshake();  // in the spam request's window only
    spam.server(k200);
    web.client(bin("\x16\x03\x01\x00\x05\x01\x00\x00\x01\x03"));
    relay_smtp(spam, rel);
    other.close();  // carried none of the tunnel's lines
    FrameNum last = spam.close();
    View v = view_at(cap.corr(), last);
    SCOPED_TRACE(describe(cap.corr(), last));
    EXPECT_TRUE(v.suspect);
    EXPECT_EQ(v.pairing, Pairing::Unique);
    ASSERT_NE(v.relay, nullptr);
    EXPECT_EQ(v.relay->stream, 2u);
    for (FrameNum f : web.frames()) EXPECT_FALSE(suspect(cap.corr(), f)) << describe(cap.corr(), f);
}

TEST(CorrelatorContent, ContentDetectionOffIgnoresNonMailPorts) {
    Config cfg;
    cfg.content_detection = false;
    Capture cap(cfg);
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp rel(cap, 1, kProxyOut, ep("198.51.100.25", 8025));
    tun.handshake();
    tun.client("CONNECT 198.51.100.25:8025 HTTP/1.1\r\n\r\n");
    rel.handshake();
    tun.server(k200);
    relay_smtp(tun, rel);
    for (FrameNum f : tun.frames()) EXPECT_FALSE(suspect(cap.corr(), f));
    for (FrameNum f : rel.frames()) EXPECT_FALSE(suspect(cap.corr(), f));
}

// --- absolute-URI relay -----------------------------------------------------

TEST(CorrelatorPost, AbsoluteUriPostToMailPort) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp rel(cap, 1, kProxyOut, kMta);
    const std::string body = "HELO spam.example\r\nMAIL FROM:<post@spam.example>\r\nRCPT TO:<v@example.org>\r\n";
    tun.handshake();
    FrameNum req = tun.client("POST http://198.51.100.25:25/ HTTP/1.0\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body);
    rel.handshake();
    rel.client("POST / HTTP/1.0\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    const std::string answer = "220 mx.example.net ESMTP\r\n500 5.5.1 unrecognized command\r\n250 mx\r\n250 ok\r\n";
    rel.server(answer);
    tun.server(answer);
    View v = view_at(cap.corr(), tun.frames().back());
    SCOPED_TRACE(describe(cap.corr(), tun.frames().back()));
    EXPECT_TRUE(v.suspect);
    ASSERT_NE(v.proxy, nullptr);
    EXPECT_EQ(v.proxy->method, Method::Post);
    EXPECT_EQ(v.proxy->target_port, 25);
    EXPECT_EQ(v.proxy->request_frame, req);
    ASSERT_NE(v.smtp, nullptr);
    EXPECT_EQ(v.smtp->envelope().mail_from, std::vector<std::string>{"post@spam.example"});
    EXPECT_EQ(v.pairing, Pairing::Unique);
}

// The mail server's reaction to the HTTP lines an absolute-URI relay delivers.
struct PostRelay {
    Capture cap;
    FakeTcp tun{cap, 0, kAttacker, kProxy};
    FakeTcp rel{cap, 1, kProxyOut, kMta};
    const std::string body = "HELO spam.example\r\nMAIL FROM:<post@spam.example>\r\n";

    void request() {
        tun.handshake();
        tun.client("POST http://198.51.100.25:25/ HTTP/1.0\r\nContent-Length: " + std::to_string(body.size()) +
                   "\r\n\r\n" + body);
        rel.handshake();
        rel.server("220 mx.example.net ESMTP\r\n");
        rel.client("POST / HTTP/1.0\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    }
    const char* reaction() const { return view_at(cap.corr(), tun.frames().back()).reaction; }
};

TEST(CorrelatorPost, MailServerReadingOnIsRejectedLines) {
    PostRelay t;
    t.request();
    t.rel.server("502 5.5.2 Error: command not recognized\r\n502 5.5.2 Error: command not recognized\r\n"
                 "502 5.5.2 Error: command not recognized\r\n250 mx.example.net\r\n250 2.1.0 Ok\r\n");
    t.rel.close();
    t.tun.server("HTTP/1.0 200 OK\r\n\r\n");
    t.tun.close();
    ASSERT_NE(t.reaction(), nullptr);
    EXPECT_STREQ(t.reaction(), "rejected-lines");
    EXPECT_EQ(frames_with_event(t.cap.corr(), t.cap.last_frame(), kEvServerDropped), 0);
}

TEST(CorrelatorPost, MailServerHangingUpIsDropped) {
    PostRelay t;
    t.request();
    t.rel.server("221 2.7.0 Error: I can break rules, too. Goodbye.\r\n");
    FrameNum fin = t.rel.close_from_server();
    t.tun.server("HTTP/1.0 503 Service Unavailable\r\n\r\n");
    t.tun.close();
    ASSERT_NE(t.reaction(), nullptr);
    EXPECT_STREQ(t.reaction(), "dropped");
    EXPECT_TRUE(events(t.cap.corr(), fin) & kEvServerDropped);
    // The client's commands were in the body: SMTP was attempted.
    View v = view_at(t.cap.corr(), t.tun.frames().back());
    ASSERT_NE(v.proxy, nullptr);
    ASSERT_NE(v.proxy->smtp, nullptr);
    EXPECT_TRUE(v.proxy->smtp->client_smtp());
}

TEST(CorrelatorPost, ATunnelHasNoReaction) {
    BasicIncident t;
    EXPECT_EQ(view_at(t.c(), t.tun.frames().back()).reaction, nullptr);
}

TEST(CorrelatorPost, ProxiedWebBrowsingIsNotTracked) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    tun.handshake();
    tun.client("GET http://www.example.com/ HTTP/1.1\r\nHost: www.example.com\r\n\r\n");
    tun.server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    for (FrameNum f : tun.frames()) EXPECT_FALSE(suspect(cap.corr(), f));
}

// A whole request line in the first segment decides proxied web browsing
// without a flow; a split one, a mail port or a tunnel that may carry SMTP
// still gets one.
TEST(CorrelatorPost, WebRequestsNeedNoFlow) {
    auto flows_after = [](std::string_view first, std::string_view rest, bool content = true) {
        Config cfg;
        cfg.content_detection = content;
        Capture cap(cfg);
        FakeTcp tun(cap, 0, kAttacker, kProxy);
        tun.handshake();
        tun.client(first);
        if (!rest.empty()) tun.client(rest);
        tun.server("HTTP/1.1 200 OK\r\n\r\n");
        for (FrameNum f : tun.frames()) EXPECT_FALSE(suspect(cap.corr(), f));
        return cap.corr().flow_count();
    };
    EXPECT_EQ(flows_after("GET http://www.example.com/ HTTP/1.1\r\nHost: www.example.com\r\n\r\n", ""), 0u);
    EXPECT_EQ(flows_after("get  HTTPS://www.example.com:8443/x?y HTTP/1.0\n\n", ""), 0u);
    EXPECT_EQ(flows_after("GET http://www.exa", "mple.com/ HTTP/1.1\r\n\r\n"), 1u);
    // A tunnel's whole request head waits for the tunnel's first bytes
    // (HeldTunnel), and none come here; a split one is parsed at once.
    EXPECT_EQ(flows_after("CONNECT www.example.com:443 HTTP/1.1\r\n\r\n", ""), 0u);
    EXPECT_EQ(flows_after("CONNECT www.example.com:443 HTTP/1.1\r\n", "\r\n"), 1u);
    EXPECT_EQ(flows_after("CONNECT www.example.com:443 HTTP/1.1\r\n\r\n", "", false), 0u);
    // To a mail port, in any form, the leg is tracked and suspect.
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    tun.handshake();
    FrameNum req = tun.client("GET http://198.51.100.25:25/ HTTP/1.0\r\n\r\n");
    EXPECT_EQ(cap.corr().flow_count(), 1u);
    EXPECT_TRUE(suspect(cap.corr(), req));
}

// --- (h2) held tunnels ------------------------------------------------------

// What a frame shows, with the frames the incident names: equal with and
// without holding tunnels, whatever the tunnel did while held.
std::string shown(const Correlator& c, FrameNum f) {
    const View v = view_at(c, f);
    if (!v.suspect) return "-";
    std::ostringstream os;
    os << describe(c, f) << " ev=" << events(c, f) << " first=" << v.proxy->first_frame
       << " req=" << v.proxy->request_frame << " resp=" << v.proxy->response_frame
       << " auth=" << v.proxy->proxy_auth;
    if (v.relay) os << " relay_first=" << v.relay->first_frame;
    return os.str();
}

using Scenario = void (*)(Capture&);

// Each scenario runs with tunnels held and not, with and without the fast
// path; every frame must show the same, and holding must cost no more flows.
void expect_same_with_held_tunnels(Scenario run) {
    for (bool fast : {false, true}) {
        SCOPED_TRACE(fast ? "fast path" : "no fast path");
        Config plain_cfg;
        plain_cfg.hold_tunnels = false;
        Capture plain(plain_cfg), held;
        plain.fast_path = held.fast_path = fast;
        run(plain);
        run(held);
        ASSERT_EQ(plain.last_frame(), held.last_frame());
        for (FrameNum f = 1; f <= plain.last_frame(); ++f)
            EXPECT_EQ(shown(held.corr(), f), shown(plain.corr(), f)) << "frame " << f;
        EXPECT_LE(held.corr().flow_count(), plain.corr().flow_count());
    }
}

const Endpoint kMta8025 = ep("198.51.100.25", 8025);

TEST(CorrelatorHeldTunnel, SmtpServerSpeakingFirst) {
    expect_same_with_held_tunnels([](Capture& cap) {
        FakeTcp tun(cap, 0, kAttacker, kProxy);
        FakeTcp rel(cap, 1, kProxyOut, kMta8025);
        tun.handshake();
        tun.client("CONNECT 198.51.100.25:8025 HTTP/1.1\r\nProxy-Authorization: Basic eDp5\r\n\r\n");
        rel.handshake();
        tun.emit(tun.make(false, ""));
        tun.server(k200);
        relay_smtp(tun, rel);
        rel.close();
        tun.close();
    });
}

// The greeting reaches the tunnel before the relay's copy (a capture point
// nearer the client): the tunnel is promoted by its own bytes.
TEST(CorrelatorHeldTunnel, GreetingOnTheTunnelFirst) {
    expect_same_with_held_tunnels([](Capture& cap) {
        FakeTcp tun(cap, 0, kAttacker, kProxy);
        FakeTcp rel(cap, 1, kProxyOut, kMta8025);
        tun.handshake();
        tun.client("CONNECT 198.51.100.25:8025 HTTP/1.0\r\n\r\n");
        rel.handshake();
        tun.server(k200);
        for (const Step& s : smtp_script("spam.example", "spammer@spam.example")) {
            if (s.from_client) {
                client_says(tun, rel, s.line);
            } else {
                tun.server(s.line);
                rel.server(s.line);
            }
        }
        tun.close();
        rel.close();
    });
}

TEST(CorrelatorHeldTunnel, ClientSpeakingFirst) {
    expect_same_with_held_tunnels([](Capture& cap) {
        FakeTcp tun(cap, 0, kAttacker, kProxy);
        tun.handshake();
        tun.client("CONNECT mail.example.net:2526 HTTP/1.1\r\n\r\n");
        tun.server(k200);
        tun.client("EHLO spam.example\r\n");
        tun.server("250 mail.example.net\r\n");
        tun.client("MAIL FROM:<a@spam.example>\r\n");
    });
}

TEST(CorrelatorHeldTunnel, TlsRefusedEarlyAndClosedTunnels) {
    expect_same_with_held_tunnels([](Capture& cap) {
        FakeTcp tls(cap, 0, kAttacker, kProxy);
        FakeTcp rel(cap, 1, kProxyOut, ep("93.184.216.34", 443));
        FakeTcp refused(cap, 2, kAttacker2, kProxy);
        FakeTcp early(cap, 3, ep("192.0.2.12", 40002), kProxy);
        FakeTcp closed(cap, 4, ep("192.0.2.13", 40003), kProxy);
        tls.handshake();
        tls.client("CONNECT www.example.com:443 HTTP/1.1\r\n\r\n");
        rel.handshake();
        refused.handshake();
        refused.client("CONNECT 198.51.100.7:443 HTTP/1.1\r\n\r\n");
        refused.server("HTTP/1.1 403 Forbidden\r\n\r\n");
        tls.server(k200);
        early.handshake();
        early.client("CONNECT www.example.org:443 HTTP/1.1\r\n\r\n");
        early.client(bin("\x16\x03\x01\x00\x05\x01\x00\x00\x01\x03"));  // before the answer
        early.server(k200);
        closed.handshake();
        closed.client("CONNECT www.example.net:443 HTTP/1.1\r\n\r\n");
        closed.server(k200);
        closed.close();
        client_says(tls, rel, bin("\x16\x03\x01\x00\x05\x01\x00\x00\x01\x03"));
        server_says(tls, rel, bin("\x16\x03\x03\x00\x01\x02"));
        refused.close();
        tls.close();
        rel.close();
    });
}

// A chain: the tunnel to the next proxy carries its request.
TEST(CorrelatorHeldTunnel, ChainThroughTheTunnel) {
    expect_same_with_held_tunnels([](Capture& cap) {
        FakeTcp first(cap, 0, kAttacker, kProxy);
        first.handshake();
        first.client("CONNECT 198.18.0.1:1080 HTTP/1.1\r\n\r\n");
        first.server(k200);
        first.client(bin("\x05\x01\x00"));
        first.server(bin("\x05\x00"));
        first.client(bin("\x05\x01\x00\x01\xc6\x33\x64\x19\x00\x19"));
        first.server(bin("\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00"));
        first.server("220 mx.example.net ESMTP\r\n");
        first.client("EHLO spam.example\r\n");
    });
}

// Segments the few checks do not recognise: a retransmitted request, an
// answer in two segments, a 100 Continue, the tunnel's bytes out of order.
TEST(CorrelatorHeldTunnel, UnusualSegmentsPromote) {
    expect_same_with_held_tunnels([](Capture& cap) {
        FakeTcp a(cap, 0, kAttacker, kProxy);
        a.handshake();
        const Segment req = a.make(true, "CONNECT 198.51.100.25:8025 HTTP/1.1\r\n\r\n");
        a.emit(req);
        a.emit(req);
        a.server("HTTP/1.1 200 OK\r\n");
        a.server("\r\n");
        a.server("220 mx.example.net ESMTP\r\n");
        FakeTcp b(cap, 1, kAttacker2, kProxy);
        b.handshake();
        b.client("CONNECT 198.51.100.26:8025 HTTP/1.1\r\n\r\n");
        b.server("HTTP/1.1 100 Continue\r\n\r\n");
        b.server(k200);
        const Segment ehlo = b.make(true, "EHLO spam.example\r\n");
        const Segment mail = b.make(true, "MAIL FROM:<a@spam.example>\r\n");
        b.emit(mail);
        b.emit(ehlo);
    });
}

// Past kMaxHeldTunnelSegments bare ACKs the tunnel becomes a flow; frames it
// held before keep their notes.
TEST(CorrelatorHeldTunnel, ManyAcksPromote) {
    expect_same_with_held_tunnels([](Capture& cap) {
        FakeTcp tun(cap, 0, kAttacker, kProxy);
        FakeTcp rel(cap, 1, kProxyOut, kMta8025);
        tun.handshake();
        tun.client("CONNECT 198.51.100.25:8025 HTTP/1.1\r\n\r\n");
        rel.handshake();
        for (int i = 0; i < 40; ++i) tun.emit(tun.make(i % 2 == 0, ""));
        tun.server(k200);
        relay_smtp(tun, rel);
    });
}

// The table of held tunnels is bounded; a tunnel it would drop to make room
// becomes a flow instead, and its incident is found.
TEST(CorrelatorHeldTunnel, FullTableGivesWayByPromoting) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp rel(cap, 1, kProxyOut, kMta8025);
    tun.handshake();
    FrameNum req = tun.client("CONNECT 198.51.100.25:8025 HTTP/1.1\r\n\r\n");
    rel.handshake();
    tun.server(k200);
    std::vector<FakeTcp> others;
    others.reserve(4200);
    for (StreamId s = 2; s < 4200; ++s) {
        others.emplace_back(cap, s, ep("192.0.2.20", static_cast<std::uint16_t>(1024 + s)), kProxy);
        others.back().client("CONNECT www.example.com:443 HTTP/1.1\r\n\r\n");
    }
    EXPECT_GE(cap.corr().flow_count(), 1u);  // stream 0, promoted
    relay_smtp(tun, rel);
    View v = view_at(cap.corr(), tun.frames().back());
    SCOPED_TRACE(describe(cap.corr(), tun.frames().back()));
    EXPECT_TRUE(v.suspect);
    EXPECT_EQ(v.pairing, Pairing::Unique);
    ASSERT_NE(v.proxy, nullptr);
    EXPECT_EQ(v.proxy->request_frame, req);
    EXPECT_TRUE(events(cap.corr(), req) & kEvRequest);
}

// --- (i) SOCKS --------------------------------------------------------------

std::string bytes(std::initializer_list<int> b) {
    std::string s;
    for (int x : b) s += static_cast<char>(x);
    return s;
}

TEST(CorrelatorSocks, Socks5ConnectToMailPort) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, ep("203.0.113.1", 1080));
    FakeTcp rel(cap, 1, kProxyOut, kMta);
    tun.handshake();
    tun.client(bytes({0x05, 0x01, 0x00}));
    tun.server(bytes({0x05, 0x00}));
    FrameNum req = tun.client(bytes({0x05, 0x01, 0x00, 0x01, 198, 51, 100, 25, 0x00, 0x19}));
    rel.handshake();
    FrameNum granted = tun.server(bytes({0x05, 0x00, 0x00, 0x01, 203, 0, 113, 1, 0xc3, 0x50}));
    FrameNum greeting = relay_smtp(tun, rel);
    View v = view_at(cap.corr(), tun.frames().back());
    SCOPED_TRACE(describe(cap.corr(), tun.frames().back()));
    EXPECT_TRUE(v.suspect);
    EXPECT_STREQ(v.leg, "tunnel");
    ASSERT_NE(v.proxy, nullptr);
    EXPECT_EQ(v.proxy->method, Method::Socks5);
    EXPECT_EQ(v.proxy->target_host, "198.51.100.25");
    EXPECT_EQ(v.proxy->target_port, 25);
    EXPECT_EQ(v.proxy->status, Status::Established);
    EXPECT_EQ(v.pairing, Pairing::Unique);
    ASSERT_NE(v.relay, nullptr);
    EXPECT_EQ(v.relay->stream, 1u);
    EXPECT_TRUE(events(cap.corr(), req) & kEvRequest);
    EXPECT_TRUE(events(cap.corr(), granted) & kEvResponse);
    EXPECT_TRUE(events(cap.corr(), greeting) & kEvSmtpFirst);
    ASSERT_NE(v.smtp, nullptr);
    EXPECT_EQ(v.smtp->envelope().messages, 1u);
}

TEST(CorrelatorSocks, Socks4aHostNameWithSmtpInOneSegment) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, ep("203.0.113.1", 1080));
    FakeTcp rel(cap, 1, kProxyOut, kMta);
    tun.handshake();
    tun.client(bytes({0x04, 0x01, 0x00, 0x19, 0, 0, 0, 1, 'u', 0}) + "mx.example.net" + std::string(1, '\0'));
    rel.handshake();
    tun.server(bytes({0x00, 90, 0, 0, 0, 0, 0, 0}));
    relay_smtp(tun, rel);
    View v = view_at(cap.corr(), tun.frames().back());
    SCOPED_TRACE(describe(cap.corr(), tun.frames().back()));
    EXPECT_TRUE(v.suspect);
    ASSERT_NE(v.proxy, nullptr);
    EXPECT_EQ(v.proxy->method, Method::Socks4a);
    EXPECT_EQ(v.proxy->target_host, "mx.example.net");
    EXPECT_EQ(v.pairing, Pairing::Unique);
}

TEST(CorrelatorSocks, Socks5RefusedIsAnAttempt) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, ep("203.0.113.1", 1080));
    tun.handshake();
    tun.client(bytes({0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x01, 198, 51, 100, 25, 0x00, 0x19}));
    tun.server(bytes({0x05, 0x00, 0x05, 0x02, 0x00, 0x01, 0, 0, 0, 0, 0, 0}));
    View v = view_at(cap.corr(), tun.frames().back());
    EXPECT_TRUE(v.suspect);
    EXPECT_STREQ(v.leg, "attempt");
    ASSERT_NE(v.proxy, nullptr);
    EXPECT_EQ(v.proxy->status, Status::Refused);
    EXPECT_EQ(v.proxy->status_code, 2);
}

// --- (j) segmentation does not change the result ----------------------------

struct Variant {
    bool split_request = false;    // request in three segments
    bool reorder_request = false;  // third part before the second
    bool retransmit = false;       // full and partial retransmissions
    bool reorder_smtp = false;     // pipelined MAIL/RCPT out of order on the tunnel
    std::uint32_t tunnel_isn = 1000;
    std::uint32_t relay_server_isn = 7000000;
};

struct Outcome {
    std::string tunnel;
    std::string relay;
    std::uint16_t tunnel_events = 0;
    std::uint16_t relay_events = 0;
};

Outcome run_variant(const Variant& o) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy, o.tunnel_isn);
    FakeTcp rel(cap, 1, kProxyOut, kMta, 1000, o.relay_server_isn);
    const std::string request = kConnectMta;
    tun.handshake();
    if (!o.split_request) {
        Segment whole = tun.make(true, request);
        tun.emit(whole);
        if (o.retransmit) tun.emit(whole);
    } else {
        const std::size_t a = 13, b = 40;  // "CONNECT 198.5" | "1.100.25:25 HTTP/1.1\r\nHost: 198" | rest
        Segment p1 = tun.make(true, request.substr(0, a));
        Segment p2 = tun.make(true, request.substr(a, b - a));
        Segment p3 = tun.make(true, request.substr(b));
        tun.emit(p1);
        if (o.retransmit) tun.emit(p1);
        if (o.reorder_request) {
            tun.emit(p3);
            tun.emit(p2);
        } else {
            tun.emit(p2);
            tun.emit(p3);
        }
        if (o.retransmit) tun.emit(tun.raw(true, p2.seq - 3, request.substr(a - 3, b - a + 3)));
    }
    rel.handshake();
    tun.server(k200);
    const auto script = smtp_script("spam.example", "spammer@spam.example");
    for (std::size_t i = 0; i < script.size(); ++i) {
        const Step& s = script[i];
        if (o.reorder_smtp && s.line == "MAIL FROM:<spammer@spam.example>\r\n") {
            // MAIL and the first RCPT pipelined; on the tunnel the RCPT
            // segment arrives first. Replaces script steps i .. i+3.
            const std::string rcpt = script[i + 2].line;
            Segment mail = tun.make(true, s.line);
            Segment rc = tun.make(true, rcpt);
            tun.emit(rc);
            tun.emit(mail);
            rel.client(s.line + rcpt);
            server_says(tun, rel, script[i + 1].line + script[i + 3].line);
            i += 3;
            continue;
        }
        if (s.from_client) {
            client_says(tun, rel, s.line);
        } else if (o.retransmit && s.line.rfind("220 ", 0) == 0) {
            Segment g = rel.make(false, s.line);
            rel.emit(g);
            rel.emit(g);  // the MTA's greeting retransmitted on the relay leg
            tun.server(s.line);
        } else {
            server_says(tun, rel, s.line);
        }
    }
    rel.close();
    tun.close();
    const Correlator& c = cap.corr();
    return {describe(c, tun.frames().back()), describe(c, rel.frames().back()), events_over(c, tun.frames()),
            events_over(c, rel.frames())};
}

void expect_same_as_baseline(const Variant& v) {
    const Outcome base = run_variant(Variant{});
    const Outcome got = run_variant(v);
    EXPECT_EQ(got.tunnel, base.tunnel);
    EXPECT_EQ(got.relay, base.relay);
    EXPECT_EQ(got.tunnel_events, base.tunnel_events);
    EXPECT_EQ(got.relay_events, base.relay_events);
}

TEST(CorrelatorSegmentation, BaselineIsTheExpectedIncident) {
    const Outcome base = run_variant(Variant{});
    EXPECT_EQ(base.tunnel.rfind("suspect=1 leg=tunnel pairing=unique tunnel=0 method=CONNECT", 0), 0u)
        << base.tunnel;
    EXPECT_NE(base.tunnel.find("relay=1"), std::string::npos) << base.tunnel;
    EXPECT_NE(base.tunnel.find("msgs=1"), std::string::npos) << base.tunnel;
    EXPECT_EQ(base.relay.rfind("suspect=1 leg=relay pairing=unique tunnel=0", 0), 0u) << base.relay;
    EXPECT_EQ(base.tunnel_events & (kEvRequest | kEvResponse | kEvSmtpFirst),
              kEvRequest | kEvResponse | kEvSmtpFirst);
    EXPECT_TRUE(base.relay_events & kEvRelayFirst);
}

TEST(CorrelatorSegmentation, RequestLineSplitOverThreeSegments) {
    Variant v;
    v.split_request = true;
    expect_same_as_baseline(v);
}

TEST(CorrelatorSegmentation, RequestSegmentsOutOfOrder) {
    Variant v;
    v.split_request = true;
    v.reorder_request = true;
    expect_same_as_baseline(v);
}

TEST(CorrelatorSegmentation, Retransmissions) {
    Variant v;
    v.retransmit = true;
    expect_same_as_baseline(v);
    v.split_request = true;
    expect_same_as_baseline(v);
}

TEST(CorrelatorSegmentation, PipelinedCommandsOutOfOrder) {
    Variant v;
    v.reorder_smtp = true;
    expect_same_as_baseline(v);
}

TEST(CorrelatorSegmentation, FirstTwoRequestSegmentsSwapped) {
    // The segment carrying "CONNECT" arrives after the next one.
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp rel(cap, 1, kProxyOut, kMta);
    const std::string request = kConnectMta;
    tun.handshake();
    Segment p1 = tun.make(true, request.substr(0, 13));
    Segment p2 = tun.make(true, request.substr(13));
    tun.emit(p2);
    tun.emit(p1);
    rel.handshake();
    tun.server(k200);
    relay_smtp(tun, rel);
    View v = view_at(cap.corr(), tun.frames().back());
    SCOPED_TRACE(describe(cap.corr(), tun.frames().back()));
    EXPECT_TRUE(v.suspect);
    EXPECT_EQ(v.pairing, Pairing::Unique);
}

TEST(CorrelatorSegmentation, SequenceNumbersWrapInsideTheIncident) {
    Variant v;
    v.tunnel_isn = 0xFFFFFFE0u;  // the request crosses 2^32
    v.relay_server_isn = 0xFFFFFFF0u;
    v.split_request = true;
    expect_same_as_baseline(v);
}

// --- (k) caps ---------------------------------------------------------------

TEST(CorrelatorCaps, FlowTableFullNotedOnce) {
    Config cfg;
    cfg.max_flows = 2;
    Capture cap(cfg);
    std::vector<FrameNum> requests;
    for (StreamId s = 0; s < 4; ++s) {
        FakeTcp tun(cap, s, ep("192.0.2.10", static_cast<std::uint16_t>(40000 + s)), kProxy);
        tun.handshake();
        requests.push_back(tun.client(kConnectMta));
        tun.server(k200);
        tun.server("220 mx ESMTP\r\n");
    }
    const Correlator& c = cap.corr();
    EXPECT_EQ(c.flow_count(), 2u);
    EXPECT_EQ(c.counters().untracked, 2u);
    EXPECT_EQ(frames_with_event(c, cap.last_frame(), kEvTableFull), 1);
    EXPECT_TRUE(events(c, requests[2]) & kEvTableFull);
    // The tracked ones are still reported; views of every frame are safe.
    EXPECT_TRUE(suspect(c, requests[0]));
    EXPECT_TRUE(suspect(c, requests[1]));
    for (FrameNum f = 1; f <= cap.last_frame(); ++f) (void)describe(c, f);
    EXPECT_FALSE(suspect(c, requests[3]));
}

TEST(CorrelatorCaps, LiveFlowCapEvictsOldestAndSaysSo) {
    Config cfg;
    cfg.max_live_flows = 1;
    Capture cap(cfg);
    FakeTcp ta(cap, 0, kAttacker, kProxy);
    FakeTcp tb(cap, 1, kAttacker2, kProxy);
    ta.handshake();
    FrameNum req_a = ta.client(kConnectMta);
    tb.handshake();
    tb.client(kConnectMta);
    FrameNum after = ta.server(k200);
    FrameNum again = ta.server("220 mx ESMTP\r\n");
    const Correlator& c = cap.corr();
    EXPECT_EQ(c.counters().evicted, 1u);
    EXPECT_TRUE(c.flow(0).evicted);
    EXPECT_FALSE(c.flow(1).evicted);
    EXPECT_TRUE(events(c, after) & kEvEvicted);
    EXPECT_FALSE(events(c, again) & kEvEvicted);
    EXPECT_EQ(frames_with_event(c, cap.last_frame(), kEvEvicted), 1);
    // What was learnt before eviction is still reported.
    EXPECT_TRUE(suspect(c, req_a));
    EXPECT_TRUE(suspect(c, again));
}

TEST(CorrelatorCaps, ManyFlowsUnderSmallLiveCap) {
    Config cfg;
    cfg.max_live_flows = 3;
    Capture cap(cfg);
    for (StreamId s = 0; s < 200; ++s) {
        FakeTcp tun(cap, s, ep("192.0.2.10", static_cast<std::uint16_t>(30000 + s)), kProxy);
        tun.handshake();
        tun.client(kConnectMta);
        tun.server(k200);
    }
    EXPECT_EQ(cap.corr().flow_count(), 200u);
    EXPECT_EQ(cap.corr().counters().evicted, 197u);
    for (FrameNum f = 1; f <= cap.last_frame(); ++f) (void)describe(cap.corr(), f);
}

TEST(CorrelatorCaps, StreamIndexBeyondCapIgnored) {
    Config cfg;
    cfg.max_streams = 10;
    Capture cap(cfg);
    FakeTcp tun(cap, 10, kAttacker, kProxy);
    tun.handshake();
    FrameNum req = tun.client(kConnectMta);
    EXPECT_EQ(cap.corr().note(req), nullptr);
    EXPECT_EQ(cap.corr().flow_count(), 0u);
}

// --- (l) contradicting content ----------------------------------------------

TEST(CorrelatorContent, RelayWithDifferentEhloIsNotPaired) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp other(cap, 1, kProxyOut, kMta);
    tun.handshake();
    tun.client(kConnectMta);
    other.handshake();
    tun.server(k200);
    server_says(tun, other, "220 mx.example.net ESMTP\r\n");
    tun.client("EHLO spam.example\r\n");
    other.client("EHLO legit-relay.example\r\n");
    server_says(tun, other, "250 mx.example.net\r\n");
    other.close();
    View v = view_at(cap.corr(), tun.frames().back());
    SCOPED_TRACE(describe(cap.corr(), tun.frames().back()));
    EXPECT_TRUE(v.suspect);
    EXPECT_EQ(v.pairing, Pairing::None);
    EXPECT_EQ(v.relay, nullptr);
    EXPECT_TRUE(v.relay_candidates.empty());
    for (FrameNum f : other.frames()) EXPECT_FALSE(suspect(cap.corr(), f)) << describe(cap.corr(), f);
}

TEST(CorrelatorContent, ContradictedCandidateLeavesTheRightOne) {
    // Two relays open in the window; only one carries the tunnel's lines.
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp decoy(cap, 1, kProxyOut2, kMta);
    FakeTcp rel(cap, 2, kProxyOut, kMta);
    tun.handshake();
    tun.client(kConnectMta);
    decoy.handshake();
    rel.handshake();
    tun.server(k200);
    decoy.server("220 mx.example.net ESMTP Postfix\r\n");
    decoy.client("EHLO other.example\r\n");
    relay_smtp(tun, rel);
    View v = view_at(cap.corr(), tun.frames().back());
    SCOPED_TRACE(describe(cap.corr(), tun.frames().back()));
    EXPECT_EQ(v.pairing, Pairing::Unique);
    ASSERT_NE(v.relay, nullptr);
    EXPECT_EQ(v.relay->stream, 2u);
    EXPECT_FALSE(suspect(cap.corr(), decoy.frames().back()));
}

// --- chains of proxies --------------------------------------------------------

namespace chain {
const Endpoint kClient = ep("192.0.2.10", 41000);
const Endpoint kP = ep("203.0.113.1", 8888);
const Endpoint kPOut = ep("203.0.113.1", 50010);
const Endpoint kQ = ep("198.18.0.1", 3128);
const Endpoint kQOut = ep("198.18.0.1", 50020);
const char* const kConnectQ = "CONNECT 198.18.0.1:3128 HTTP/1.1\r\nHost: 198.18.0.1:3128\r\n\r\n";

// The three legs of a chain: client to P, P to Q (the hop), Q to the MTA.
struct ChainLegs {
    Capture cap;
    FakeTcp first{cap, 0, kClient, kP};
    FakeTcp hop{cap, 1, kPOut, kQ};
    FakeTcp rel{cap, 2, kQOut, kMta};
};

// The SMTP dialogue over the three legs of a chain, each line passed on, then the closes.
void relay_smtp_through_chain(FakeTcp& first, FakeTcp& hop, FakeTcp& rel) {
    for (const Step& s : smtp_script("spam.example", "chain@spam.example")) {
        FakeTcp* order[] = {&first, &hop, &rel};
        if (!s.from_client) std::swap(order[0], order[2]);
        for (FakeTcp* leg : order) {
            if (s.from_client)
                leg->client(s.line);
            else
                leg->server(s.line);
        }
    }
    rel.close();
    hop.close();
    first.close();
}

// Every leg's frames, in order: first proxy leg, hop, relay.
void expect_chain(const Correlator& c, const FakeTcp& first, const FakeTcp& hop, const FakeTcp& relay,
                  FrameNum from) {
    const FakeTcp* legs[] = {&first, &hop, &relay};
    const char* names[] = {"tunnel", "hop", "relay"};
    for (int i = 0; i < 3; ++i) {
        for (FrameNum f : legs[i]->frames()) {
            if (i == 0 && f < from) continue;
            View v = view_at(c, f);
            SCOPED_TRACE(describe(c, f));
            ASSERT_TRUE(v.suspect);
            EXPECT_STREQ(v.leg, names[i]);
            ASSERT_NE(v.proxy, nullptr);
            EXPECT_EQ(v.proxy->stream, first.stream());
            ASSERT_NE(v.relay, nullptr);
            EXPECT_EQ(v.relay->stream, relay.stream());
            EXPECT_EQ(v.pairing, Pairing::Unique);
            ASSERT_EQ(v.chain_legs.size(), 3u);
            EXPECT_EQ(v.chain_legs[1]->stream, hop.stream());
            ASSERT_EQ(v.chain.size(), 2u);
            EXPECT_EQ(v.chain[0].proxy, "203.0.113.1:8888");
            EXPECT_EQ(v.chain[1].proxy, "198.18.0.1:3128");
            ASSERT_NE(v.smtp, nullptr);
            EXPECT_EQ(v.smtp->envelope().messages, 1u);
        }
    }
}
}  // namespace chain

// The client builds the chain: CONNECT to proxy Q through proxy P, then
// CONNECT to the MTA through that tunnel.
TEST(CorrelatorChain, ClientBuiltChainIsOneIncident) {
    using namespace chain;
    ChainLegs legs;
    Capture& cap = legs.cap;
    FakeTcp &first = legs.first, &hop = legs.hop, &rel = legs.rel;
    first.handshake();
    FrameNum outer = first.client(kConnectQ);
    hop.handshake();
    first.server(k200);
    FrameNum inner = client_says(first, hop, kConnectMta);
    rel.handshake();
    server_says(first, hop, k200);
    relay_smtp_through_chain(first, hop, rel);
    const Correlator& c = cap.corr();
    expect_chain(c, first, hop, rel, outer);
    View v = view_at(c, outer);
    EXPECT_EQ(v.proxy->target_host, "198.51.100.25");  // the innermost request's target
    EXPECT_EQ(v.proxy->target_port, 25);
    EXPECT_EQ(v.proxy->request_frame, outer);
    EXPECT_EQ(v.proxy->target_frame, inner);
    EXPECT_TRUE(events(c, inner) & kEvRequest);
}

// The proxy builds the chain: P forwards the client's CONNECT to its upstream Q.
TEST(CorrelatorChain, ProxyBuiltChainIsOneIncident) {
    using namespace chain;
    ChainLegs legs;
    Capture& cap = legs.cap;
    FakeTcp &first = legs.first, &hop = legs.hop, &rel = legs.rel;
    first.handshake();
    FrameNum req = first.client(kConnectMta);
    hop.handshake();
    hop.client(kConnectMta);
    rel.handshake();
    hop.server(k200);
    first.server(k200);
    relay_smtp_through_chain(first, hop, rel);
    expect_chain(cap.corr(), first, hop, rel, req);
}

// Mixed chain: CONNECT to the next proxy, then SOCKS5 through the tunnel.
TEST(CorrelatorChain, SocksInsideAConnectTunnel) {
    using namespace chain;
    Capture cap;
    FakeTcp first{cap, 0, kClient, kP};
    first.handshake();
    FrameNum outer = first.client("CONNECT 198.18.0.1:1080 HTTP/1.1\r\n\r\n");
    first.server(k200);
    first.client(bin("\x05\x01\x00"));
    first.server(bin("\x05\x00"));
    FrameNum inner = first.client(bin("\x05\x01\x00\x01\xc6\x33\x64\x19\x00\x19"));
    first.server(bin("\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00"));
    first.server("220 mx.example.net ESMTP\r\n");
    first.client("EHLO spam.example\r\n");
    const Correlator& c = cap.corr();
    View v = view_at(c, first.frames().back());
    SCOPED_TRACE(describe(c, first.frames().back()));
    ASSERT_TRUE(v.suspect);
    EXPECT_STREQ(v.leg, "tunnel");
    EXPECT_EQ(v.proxy->first_method(), Method::Connect);
    EXPECT_EQ(v.proxy->method, Method::Socks5);
    EXPECT_EQ(v.proxy->target_host, "198.51.100.25");
    EXPECT_EQ(v.proxy->target_port, 25);
    EXPECT_EQ(v.proxy->status, Status::Established);
    EXPECT_EQ(v.proxy->status_code, 200);  // the first proxy's answer
    EXPECT_EQ(v.proxy->request_frame, outer);
    EXPECT_EQ(v.proxy->target_frame, inner);
    ASSERT_EQ(v.chain.size(), 2u);
    EXPECT_EQ(v.chain[0].method, Method::Connect);
    EXPECT_EQ(v.chain[1].proxy, "198.18.0.1:1080");
    EXPECT_EQ(v.chain[1].method, Method::Socks5);
    EXPECT_TRUE(v.proxy->smtp && v.proxy->smtp->smtp_seen());
}

// The second proxy refuses: the incident is a refused attempt.
TEST(CorrelatorChain, LaterProxyRefusing) {
    using namespace chain;
    Capture cap;
    FakeTcp first{cap, 0, kClient, kP};
    first.handshake();
    first.client(kConnectQ);
    first.server(k200);
    first.client(kConnectMta);
    FrameNum refusal = first.server("HTTP/1.1 403 Forbidden\r\n\r\n");
    View v = view_at(cap.corr(), first.frames().back());
    ASSERT_TRUE(v.suspect);
    EXPECT_STREQ(v.leg, "attempt");
    EXPECT_EQ(v.proxy->status, Status::Refused);
    EXPECT_EQ(v.proxy->status_code, 403);
    EXPECT_EQ(v.proxy->response_frame, refusal);
}

// TLS first inside a CONNECT to a web server is no chain, and stays benign.
TEST(CorrelatorChain, TlsTunnelIsNotAChain) {
    using namespace chain;
    Capture cap;
    FakeTcp first{cap, 0, kClient, kP};
    first.handshake();
    first.client("CONNECT 198.51.100.80:443 HTTP/1.1\r\n\r\n");
    first.server(k200);
    first.client(bin("\x16\x03\x01\x00\x05hello"));
    for (FrameNum f : first.frames()) EXPECT_FALSE(suspect(cap.corr(), f));
}

// A connection the proxy opens at the same time that carries no proxy
// request is not a hop, and stays unmarked.
TEST(CorrelatorChain, OtherConnectionsFromTheProxyAreNotHops) {
    using namespace chain;
    Capture cap;
    FakeTcp first{cap, 0, kClient, kP};
    FakeTcp web{cap, 1, kPOut, ep("198.51.100.80", 80)};
    FakeTcp rel{cap, 2, ep("203.0.113.1", 50030), kMta};
    first.handshake();
    first.client(kConnectMta);
    web.handshake();
    web.client("GET / HTTP/1.1\r\nHost: www.example\r\n\r\n");
    web.server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    rel.handshake();
    first.server(k200);
    relay_smtp(first, rel);
    web.close();
    rel.close();
    first.close();
    const Correlator& c = cap.corr();
    for (FrameNum f : web.frames()) EXPECT_FALSE(suspect(c, f)) << describe(c, f);
    View v = view_at(c, rel.frames().back());
    EXPECT_STREQ(v.leg, "relay");
    EXPECT_EQ(v.proxy->stream, 0u);
    EXPECT_TRUE(v.chain.empty());
}

// --- the glue's fast path ------------------------------------------------

TEST(CorrelatorFastPath, TakesBareSegmentsOfUnclassifiedAndTrackedAndAllOfIgnoredStreams) {
    Capture cap;
    Correlator& c = cap.corr();
    const FrameNum later = 1000;  // past every frame the connections emit
    FakeTcp web(cap, 0, ep("192.0.2.50", 41000), ep("93.184.216.34", 80));
    EXPECT_FALSE(c.fast_path(0, 0, kSyn, later));  // never seen: the SYN must be recorded
    web.handshake();
    EXPECT_TRUE(c.fast_path(0, 0, kAck, later));           // bare ACK while waiting for data
    EXPECT_TRUE(c.fast_path(0, 0, kFin | kAck, later));
    EXPECT_TRUE(c.fast_path(0, 0, kSyn | kAck, later));    // the SYN said where the client's data starts
    EXPECT_FALSE(c.fast_path(0, 0, kSyn, later));          // a SYN again: the client may start over
    EXPECT_FALSE(c.fast_path(0, 5, kPsh | kAck, later));   // the first data classifies it
    web.client("GET / HTTP/1.1\r\nHost: www.example\r\n\r\n");
    EXPECT_TRUE(c.fast_path(0, 100, kPsh | kAck, later));  // direct web traffic: ignored
    EXPECT_EQ(c.note(later), nullptr);                     // and none of it recorded

    FakeTcp tun(cap, 1, kAttacker, kProxy);
    tun.handshake();
    tun.client(kConnectMta);
    ASSERT_LT(cap.last_frame(), later);
    // A tracked proxy leg: data and FIN go to the engine, a bare ACK joins
    // its flow on the fast path.
    EXPECT_FALSE(c.fast_path(1, 5, kPsh | kAck, later));
    EXPECT_FALSE(c.fast_path(1, 0, kFin | kAck, later));
    EXPECT_EQ(c.note(later), nullptr);
    EXPECT_TRUE(c.fast_path(1, 0, kAck, later));
    const FrameNote* n = c.note(later);
    ASSERT_NE(n, nullptr);
    EXPECT_EQ(c.flow(n->flow).stream, 1u);
    EXPECT_EQ(c.flow(n->flow).last_frame, later);
    EXPECT_FALSE(c.fast_path(7, 0, kAck, later + 1));  // never seen
}

// Runs one capture with every segment fed and once as the post-dissector
// feeds it; what each frame shows must be the same.
void mixed_traffic(Capture& cap) {
    FakeTcp web(cap, 0, ep("192.0.2.50", 41000), ep("93.184.216.34", 80));
    FakeTcp https(cap, 1, ep("192.0.2.51", 41001), kProxy);
    FakeTcp https_rel(cap, 2, ep("203.0.113.1", 50002), ep("93.184.216.34", 443));
    FakeTcp tun(cap, 3, kAttacker, kProxy);
    FakeTcp rel(cap, 4, kProxyOut, kMta);
    web.handshake();
    https.handshake();
    web.client("GET / HTTP/1.1\r\nHost: www.example\r\n\r\n");
    https.client("CONNECT www.example.com:443 HTTP/1.1\r\n\r\n");
    https_rel.handshake();
    https.server(k200);
    tun.handshake();
    web.server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    client_says(https, https_rel, bin("\x16\x03\x01\x00\x05\x01\x00\x00\x01\x03"));
    tun.client(kConnectMta);
    rel.handshake();
    tun.server(k200);
    relay_smtp(tun, rel);
    server_says(https, https_rel, bin("\x16\x03\x03\x00\x01\x02"));
    web.close();
    https_rel.close();
    https.close();
    rel.close();
    tun.close();
}

TEST(CorrelatorFastPath, SkippedSegmentsChangeNothing) {
    Capture all, fast;
    fast.fast_path = true;
    mixed_traffic(all);
    mixed_traffic(fast);
    ASSERT_EQ(all.last_frame(), fast.last_frame());
    int suspects = 0;
    for (FrameNum f = 1; f <= all.last_frame(); ++f) {
        EXPECT_EQ(describe(all.corr(), f), describe(fast.corr(), f)) << "frame " << f;
        suspects += suspect(all.corr(), f);
    }
    EXPECT_GT(suspects, 10);  // the incident is there to compare
}

TEST(CorrelatorFastPath, NoteLookupInAnyOrder) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    FakeTcp rel(cap, 1, kProxyOut, kMta);
    tun.handshake();
    tun.client(kConnectMta);
    rel.handshake();
    tun.server(k200);
    relay_smtp(tun, rel);
    const Correlator& c = cap.corr();
    std::vector<FrameNum> noted;
    for (FrameNum f = 1; f <= cap.last_frame(); ++f)
        if (const FrameNote* n = c.note(f)) {
            EXPECT_EQ(n->frame, f);
            noted.push_back(f);
        }
    ASSERT_GT(noted.size(), 5u);
    // Backwards, then jumping about: each answer as in frame order.
    for (auto it = noted.rbegin(); it != noted.rend(); ++it) EXPECT_EQ(c.note(*it)->frame, *it);
    for (std::size_t i = 0; i < noted.size(); i += 3) EXPECT_EQ(c.note(noted[noted.size() - 1 - i])->frame, noted[noted.size() - 1 - i]);
    EXPECT_EQ(c.note(cap.last_frame() + 100), nullptr);
    EXPECT_EQ(c.note(0), nullptr);
}

}  // namespace
}  // namespace soh
