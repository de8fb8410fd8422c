// What a single pass states (finality.cpp): every frame is looked at once,
// right after it was fed, as tshark without -2 and a live capture do; no
// value told then may differ from the complete view of the same frame.
// Also the outcome of an incident (outcome.cpp), complete legs (frame_flow)
// and the DNS answers an incident rests on.
#include <gtest/gtest.h>

#include <map>
#include <sstream>
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
using test::kAttacker2;
using test::kMta;
using test::kProxyOut;
using test::kProxyOut2;

const Endpoint kProxy = ep("203.0.113.1", 8888);
const char* const kConnectMta = "CONNECT 198.51.100.25:25 HTTP/1.1\r\n\r\n";

// What a frame shows, as the renderer would tell it.
struct Shown {
    bool suspect = false;
    bool provisional = false;
    std::string leg, pairing, status, outcome;
    StreamId tunnel = 0;
    long relay = -1;
    std::string envelope;
};

Shown shown(const Correlator& c, FrameNum f, bool complete) {
    Shown s;
    const FrameNote* n = c.note(f);
    FrameNote leg_frame{f, c.frame_flow(f), 0};
    if (!n && complete && leg_frame.flow != kNone) n = &leg_frame;
    if (!n) return s;
    View v = c.view(*n, complete);
    if (!v.suspect) return s;
    s.suspect = true;
    s.provisional = v.provisional;
    s.leg = v.leg;
    s.pairing = pairing_name(v.pairing);
    s.status = v.status_known ? status_name(v.status) : "";
    s.outcome = v.provisional ? "" : outcome_name(v.outcome);
    s.tunnel = v.proxy->stream;
    if (v.relay) s.relay = v.relay->stream;
    if (v.smtp) {
        const Envelope& e = v.smtp->envelope();
        std::ostringstream os;
        os << e.helo << "|" << e.mail_from.size() << "|" << e.rcpt_count << "|" << e.messages;
        s.envelope = os.str();
    }
    return s;
}

// Records what each frame showed when it went by.
struct SinglePass {
    explicit SinglePass(Capture& c) : cap(c) {
        cap.after_feed = [this](FrameNum f) { seen[f] = shown(this->cap.corr(), f, false); };
    }
    // Fails on any value a single pass told that the complete view contradicts.
    void expect_no_contradiction() const {
        for (const auto& [f, one] : seen) {
            if (!one.suspect) continue;
            const Shown all = shown(cap.corr(), f, true);
            SCOPED_TRACE("frame " + std::to_string(f));
            ASSERT_TRUE(all.suspect) << "marked in a single pass only";
            EXPECT_EQ(one.tunnel, all.tunnel);
            if (!one.leg.empty()) {
                EXPECT_EQ(one.leg, all.leg);
            }
            if (!one.status.empty()) {
                EXPECT_EQ(one.status, all.status);
            }
            if (one.provisional) {
                EXPECT_EQ(one.pairing, "tentative");
                EXPECT_EQ(one.relay, -1);
                EXPECT_EQ(one.envelope, "");
                continue;
            }
            EXPECT_EQ(one.pairing, all.pairing);
            EXPECT_EQ(one.relay, all.relay);
            EXPECT_EQ(one.outcome, all.outcome);
            EXPECT_EQ(one.envelope, all.envelope);
        }
    }
    int count(bool provisional) const {
        int n = 0;
        for (const auto& [f, s] : seen) n += s.suspect && s.provisional == provisional;
        return n;
    }
    Capture& cap;
    std::map<FrameNum, Shown> seen;
};

void relay_session(FakeTcp& tun, FakeTcp& rel, const std::string& helo, const std::string& from) {
    auto both_client = [&](const std::string& l) { tun.client(l); rel.client(l); };
    auto both_server = [&](const std::string& l) { rel.server(l); tun.server(l); };
    both_server("220 mx.example.net ESMTP\r\n");
    both_client("EHLO " + helo + "\r\n");
    both_server("250 mx.example.net\r\n");
    both_client("MAIL FROM:<" + from + ">\r\n");
    both_server("250 2.1.0 Ok\r\n");
    both_client("RCPT TO:<v@victim.example>\r\n");
    both_server("250 2.1.5 Ok\r\n");
    both_client("DATA\r\n");
    both_server("354 End data with <CR><LF>.<CR><LF>\r\n");
    both_client("Subject: offer\r\n\r\ncheap\r\n.\r\n");
    both_server("250 2.0.0 Ok: queued\r\n");
    both_client("QUIT\r\n");
    both_server("221 2.0.0 Bye\r\n");
}

// Two tunnels whose relays open in each other's window: until their lines
// differ either relay could be either tunnel's.
TEST(SinglePass, ConcurrentTunnelsAreTentativeUntilFinal) {
    Capture cap;
    SinglePass one(cap);
    FakeTcp ta(cap, 0, kAttacker, kProxy), tb(cap, 1, kAttacker2, kProxy);
    FakeTcp ra(cap, 2, kProxyOut, kMta), rb(cap, 3, kProxyOut2, kMta);
    ta.handshake();
    ta.client(kConnectMta);
    tb.handshake();
    tb.client(kConnectMta);
    rb.handshake();  // B's relay first: timing alone would pair it with A
    ra.handshake();
    ta.server(k200);
    tb.server(k200);
    relay_session(ta, ra, "a.example", "a@spam.example");
    relay_session(tb, rb, "b.example", "b@spam.example");
    ra.close();
    ta.close();
    rb.close();
    tb.close();
    cap.advance(1.0);  // past the window: nothing can join any more
    const FrameNum late_a = ra.client("");  // a last bare ACK on each relay
    const FrameNum late_b = rb.client("");
    one.expect_no_contradiction();
    EXPECT_GT(one.count(true), 20);
    // Once final, a single pass tells the relay leg and the whole incident.
    for (auto [f, tun] : {std::pair{late_a, 0u}, std::pair{late_b, 1u}}) {
        const Shown& s = one.seen.at(f);
        EXPECT_TRUE(s.suspect);
        EXPECT_FALSE(s.provisional);
        EXPECT_EQ(s.leg, "relay");
        EXPECT_EQ(s.pairing, "unique");
        EXPECT_EQ(s.tunnel, tun);
        EXPECT_EQ(s.outcome, "messages-accepted");
    }
    EXPECT_NE(cap.corr().flow(0).final_frame, 0u);
}

// A legitimate session to the same MTA opened in the window is a candidate
// until its lines differ: a single pass never shows it as a relay leg.
TEST(SinglePass, LegitimateSessionToTheSameMtaIsNeverMarked) {
    Capture cap;
    SinglePass one(cap);
    FakeTcp tun(cap, 0, kAttacker, kProxy), legit(cap, 1, kProxyOut2, kMta), rel(cap, 2, kProxyOut, kMta);
    tun.handshake();
    tun.client(kConnectMta);
    legit.handshake();
    rel.handshake();
    tun.server(k200);
    legit.server("220 mx.example.net ESMTP\r\n");
    relay_session(tun, rel, "bot.example", "bulk@spam.example");
    legit.client("EHLO mail.example.org\r\n");
    legit.close();
    rel.close();
    tun.close();
    one.expect_no_contradiction();
    for (FrameNum f : legit.frames()) {
        EXPECT_FALSE(one.seen.at(f).suspect) << f;
        EXPECT_FALSE(shown(cap.corr(), f, true).suspect) << f;
    }
    for (FrameNum f : rel.frames()) EXPECT_FALSE(one.seen.at(f).suspect && one.seen.at(f).provisional) << f;
}

// tinyproxy answers 503 to an absolute-URI POST after the mail server took
// the body's message: established, a tunnel leg, messages accepted.
TEST(Outcome, ErrorAnswerAfterTheMailServerAcceptedIsNotARefusal) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy), rel(cap, 1, kProxyOut, kMta);
    const std::string body =
        "HELO spam.example\r\nMAIL FROM:<p@spam.example>\r\nRCPT TO:<v@victim.example>\r\nDATA\r\n"
        "Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n";
    tun.handshake();
    tun.client("POST http://198.51.100.25:25/ HTTP/1.0\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n\r\n" + body);
    rel.handshake();
    rel.server("220 mx.example.net ESMTP\r\n");
    rel.client("POST / HTTP/1.0\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    rel.server("502 5.5.2 Error\r\n502 5.5.2 Error\r\n502 5.5.2 Error\r\n250 mx\r\n250 2.1.0 Ok\r\n"
               "250 2.1.5 Ok\r\n354 go ahead\r\n250 2.0.0 Ok: queued\r\n221 Bye\r\n");
    rel.close();
    tun.server("HTTP/1.0 503 Service Unavailable\r\n\r\n");
    tun.close();
    const FrameNote* n = cap.corr().note(tun.frames().back());
    ASSERT_NE(n, nullptr);
    View v = cap.corr().view(*n);
    EXPECT_EQ(v.proxy->status, Status::Refused);  // what the proxy said
    EXPECT_EQ(v.status, Status::Established);     // what the incident states
    EXPECT_STREQ(v.leg, "tunnel");
    EXPECT_EQ(v.outcome, Outcome::MessagesAccepted);
}

TEST(Outcome, RefusedWithoutRelayLegIsAnAttemptOfUnknownOutcome) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    tun.handshake();
    tun.client(kConnectMta);
    tun.server("HTTP/1.1 403 Forbidden\r\n\r\n");
    tun.close();
    View v = cap.corr().view(*cap.corr().note(tun.frames().back()));
    EXPECT_STREQ(v.leg, "attempt");
    EXPECT_EQ(v.status, Status::Refused);
    EXPECT_EQ(v.outcome, Outcome::Unknown);
}

TEST(Outcome, RelayLegWithoutAnswerIsNotReached) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy), rel(cap, 1, kProxyOut, kMta);
    tun.handshake();
    tun.client(kConnectMta);
    rel.handshake();
    rel.close_from_server();
    tun.server("HTTP/1.1 502 Bad Gateway\r\n\r\n");
    tun.close();
    View v = cap.corr().view(*cap.corr().note(tun.frames().back()));
    EXPECT_STREQ(v.leg, "attempt");
    EXPECT_EQ(v.outcome, Outcome::NotReached);
}

// With the capture complete, the handshake before the request belongs to
// the leg, also where the glue's fast path kept no note of it.
TEST(CompleteLegs, HandshakeFramesBelongToTheLeg) {
    Capture cap;
    cap.fast_path = true;
    FakeTcp tun(cap, 0, kAttacker, kProxy), rel(cap, 1, kProxyOut, kMta);
    const FrameNum syn = tun.handshake();
    tun.client(kConnectMta);
    rel.handshake();
    tun.server(k200);
    relay_session(tun, rel, "bot.example", "x@spam.example");
    for (FrameNum f = syn; f < syn + 3; ++f) {
        const Shown s = shown(cap.corr(), f, true);
        EXPECT_TRUE(s.suspect) << f;
        EXPECT_EQ(s.leg, "tunnel") << f;
        EXPECT_FALSE(shown(cap.corr(), f, false).suspect) << f;  // not before the request, as frames go by
    }
}

// The DNS answer behind a host-name target is part of the incident: shown
// as leg "dns" and named by the incident's filter.
TEST(CompleteLegs, DnsAnswerIsEvidence) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy), rel(cap, 1, ep("203.0.113.9", 50000), kMta);
    tun.handshake();
    tun.client("CONNECT mx.victim.example:25 HTTP/1.1\r\n\r\n");
    const FrameNum answer = cap.dns("mx.victim.example", {kMta.addr});
    rel.handshake();  // from another address: only the answer pairs it
    tun.server(k200);
    relay_session(tun, rel, "bot.example", "x@spam.example");
    const FrameNote* n = cap.corr().note(answer);
    ASSERT_NE(n, nullptr);
    EXPECT_TRUE(n->events & kEvDns);
    View v = cap.corr().view(*n);
    EXPECT_TRUE(v.suspect);
    EXPECT_STREQ(v.leg, "dns");
    View t = cap.corr().view(*cap.corr().note(tun.frames().back()));
    EXPECT_EQ(t.pairing, Pairing::Unique);
    EXPECT_EQ(t.streams, (std::vector<StreamId>{0, 1}));
    EXPECT_EQ(t.dns_frames, (std::vector<FrameNum>{answer}));
}

}  // namespace
}  // namespace soh
