// The engine reading an HTTPS proxy's connection as its decrypted plaintext
// (Correlator::on_decrypted): the ciphertext segments give the frames, the
// records the bytes, as Wireshark's TLS dissector hands them over.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "correlator.h"
#include "fake_tcp.h"

namespace soh {
namespace {

using test::Capture;
using test::ep;
using test::FakeTcp;

const Endpoint kClient = ep("192.0.2.10", 41801);
const Endpoint kHttpsProxy = ep("203.0.113.1", 8443);
const Endpoint kProxyOut = ep("203.0.113.1", 46914);
const Endpoint kMta = ep("198.51.100.25", 25);

// A connection to an HTTPS proxy: TLS records on the wire, and the plaintext
// of their application data delivered for the frame that completes them,
// numbered per direction from 0.
class TlsLeg {
public:
    TlsLeg(Capture& cap, StreamId stream, Endpoint client, Endpoint server)
        : cap_(cap), tcp_(cap, stream, client, server) {}

    void handshake() {
        tcp_.handshake();
        tcp_.client(std::string("\x16\x03\x01\x00\x20", 5) + std::string(32, 'h'));  // ClientHello
        tcp_.server(std::string("\x16\x03\x03\x00\x20", 5) + std::string(32, 's'));  // ServerHello ...
        tcp_.client(std::string("\x14\x03\x03\x00\x01\x01", 6));                     // ChangeCipherSpec
    }
    // One record: its ciphertext segment, then its plaintext.
    FrameNum send(bool from_client, std::string_view plain, std::uint16_t extra_flags = 0) {
        Segment s = tcp_.make(from_client, std::string("\x17\x03\x03", 3) + std::string(plain.size() + 16, 'x'));
        s.flags |= extra_flags;
        const FrameNum f = tcp_.emit(s);
        Segment p;
        p.frame = f;
        p.time = cap_.now();
        p.stream = tcp_.stream();
        p.src = from_client ? tcp_.client_ep() : tcp_.server_ep();
        p.dst = from_client ? tcp_.server_ep() : tcp_.client_ep();
        p.seq = offset_[from_client ? 0 : 1];
        p.data = cap_.keep(plain);
        p.len = plain.size();
        offset_[from_client ? 0 : 1] += static_cast<std::uint32_t>(plain.size());
        cap_.corr().on_decrypted(p);
        return f;
    }
    FakeTcp& tcp() { return tcp_; }

private:
    Capture& cap_;
    FakeTcp tcp_;
    std::uint32_t offset_[2] = {0, 0};
};

View view_at(const Correlator& c, FrameNum f) {
    const FrameNote* n = c.note(f);
    return n ? c.view(*n) : View{};
}

// One spam tunnel through an HTTPS proxy, the relay leg in the clear.
struct HttpsProxyIncident {
    Capture cap;
    TlsLeg tun{cap, 0, kClient, kHttpsProxy};
    FakeTcp rel{cap, 1, kProxyOut, kMta};
    FrameNum connect = 0, last_reply = 0;

    // Without the relay leg, the envelope comes from the tunnel's own plaintext.
    explicit HttpsProxyIncident(bool rst_with_last_record = false, bool relay = true) {
        tun.handshake();
        connect = tun.send(true, "CONNECT 198.51.100.25:25 HTTP/1.1\r\nHost: 198.51.100.25:25\r\n\r\n");
        if (relay) rel.handshake();
        if (relay) rel.server("220 mx.victim.example ESMTP\r\n");
        tun.send(false, "HTTP/1.0 200 Connection established\r\n\r\n220 mx.victim.example ESMTP\r\n");
        const char* const lines[][2] = {
            {"EHLO tls-bot.example\r\n", "250 mx.victim.example\r\n"},
            {"MAIL FROM:<a@spam.example>\r\n", "250 2.1.0 Ok\r\n"},
            {"RCPT TO:<v1@victim.example>\r\n", "250 2.1.5 Ok\r\n"},
            {"DATA\r\n", "354 go ahead\r\n"},
            {"Subject: offer\r\n\r\nbuy\r\n.\r\n", "250 2.0.0 Ok: queued\r\n"},
        };
        const std::size_t n = sizeof lines / sizeof lines[0];
        for (std::size_t i = 0; i < n; ++i) {
            tun.send(true, lines[i][0]);
            if (relay) rel.client(lines[i][0]);
            if (relay) rel.server(lines[i][1]);
            last_reply = tun.send(false, lines[i][1], rst_with_last_record && i + 1 == n ? kRst : 0);
        }
        if (relay) rel.close();
        if (!rst_with_last_record) tun.tcp().close();
    }
};

TEST(CorrelatorDecrypted, HttpsProxyTunnelIsPairedWithItsRelay) {
    HttpsProxyIncident t;
    const Correlator& c = t.cap.corr();
    for (FrameNum f : t.tun.tcp().frames()) {
        const View v = view_at(c, f);
        if (f < t.connect) {
            EXPECT_FALSE(v.suspect) << "TLS handshake frame " << f;
            continue;
        }
        SCOPED_TRACE(f);
        EXPECT_TRUE(v.suspect);
        EXPECT_STREQ(v.leg, "tunnel");
        EXPECT_EQ(v.pairing, Pairing::Unique);
        ASSERT_NE(v.proxy, nullptr);
        EXPECT_EQ(v.proxy->target_port, 25);
        ASSERT_NE(v.relay, nullptr);
        EXPECT_EQ(v.relay->stream, 1u);
        ASSERT_NE(v.smtp, nullptr);
        EXPECT_EQ(v.smtp->envelope().helo, "tls-bot.example");
    }
    const View r = view_at(c, t.rel.frames().back());
    EXPECT_STREQ(r.leg, "relay");
    ASSERT_NE(r.proxy, nullptr);
    EXPECT_EQ(r.proxy->stream, 0u);
}

TEST(CorrelatorDecrypted, RecordInTheResetSegmentIsRead) {
    HttpsProxyIncident t(true, false);
    const View v = view_at(t.cap.corr(), t.last_reply);
    EXPECT_EQ(v.relay, nullptr);
    ASSERT_NE(v.smtp, nullptr);
    EXPECT_EQ(v.smtp->envelope().messages, 1u);
}

TEST(CorrelatorDecrypted, WithoutPlaintextTheTlsLegIsBenign) {
    Capture cap;
    FakeTcp tun(cap, 0, kClient, kHttpsProxy);
    tun.handshake();
    tun.client(std::string("\x16\x03\x01\x00\x20", 5) + std::string(32, 'h'));
    const FrameNum f = tun.client(std::string("\x17\x03\x03\x00\x20", 5) + std::string(32, 'x'));
    EXPECT_FALSE(view_at(cap.corr(), f).suspect);
}

// TLS inside a tunnel that its own bytes made a proxy leg (CONNECT to 465,
// SMTPS) is tunnel content: its plaintext does not replace the leg's bytes.
TEST(CorrelatorDecrypted, TlsInsideAPlainTunnelStaysOpaque) {
    Capture cap;
    FakeTcp tun(cap, 0, kClient, ep("203.0.113.1", 8888));
    tun.handshake();
    const FrameNum connect = tun.client("CONNECT 198.51.100.25:465 HTTP/1.1\r\n\r\n");
    tun.server("HTTP/1.1 200 Connection established\r\n\r\n");
    const FrameNum f = tun.client(std::string("\x16\x03\x01\x00\x20", 5) + std::string(32, 'h'));
    Segment p;
    p.frame = f;
    p.time = cap.now();
    p.stream = 0;
    p.src = tun.client_ep();
    p.dst = tun.server_ep();
    const std::string plain = "CONNECT 198.51.100.25:25 HTTP/1.1\r\n\r\n";
    p.data = cap.keep(plain);
    p.len = plain.size();
    cap.corr().on_decrypted(p);
    const View v = view_at(cap.corr(), f);
    ASSERT_NE(v.proxy, nullptr);
    EXPECT_EQ(v.proxy->target_port, 465);
    EXPECT_EQ(view_at(cap.corr(), connect).proxy, v.proxy);
}

}  // namespace
}  // namespace soh
