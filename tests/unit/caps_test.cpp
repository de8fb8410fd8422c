// Every limit the engine applies is said: the frame where it was first
// reached carries kEvCapped and cap_frame names it (the glue turns that into
// an expert note).
#include <gtest/gtest.h>

#include <string>

#include "correlator.h"
#include "fake_tcp.h"

namespace soh {
namespace {

using test::Capture;
using test::ep;
using test::FakeTcp;
using test::kAttacker;
using test::kMta;

const Endpoint kProxy = ep("203.0.113.1", 8888);

TEST(Caps, PipelinedCommandsPastTheQueueAreSaid) {
    Capture cap;
    FakeTcp tun(cap, 0, kAttacker, kProxy);
    tun.handshake();
    tun.client("CONNECT 198.51.100.25:25 HTTP/1.1\r\n\r\n");
    tun.server("HTTP/1.1 200 OK\r\n\r\n");
    tun.server("220 mx ESMTP\r\n");
    tun.client("EHLO bot\r\n");
    std::string burst;
    for (std::size_t i = 0; i < SmtpSession::kMaxPending + 10; ++i) burst += "RCPT TO:<v@victim.example>\r\n";
    const FrameNum f = tun.client(burst);
    EXPECT_EQ(cap.corr().cap_frame(Cap::SmtpPending), f);
    ASSERT_NE(cap.corr().note(f), nullptr);
    EXPECT_TRUE(cap.corr().note(f)->events & kEvCapped);
    EXPECT_EQ(cap.corr().cap_frame(Cap::DnsNames), 0u);  // not reached
    tun.client(burst);  // said once
    EXPECT_EQ(cap.corr().cap_frame(Cap::SmtpPending), f);
}

TEST(Caps, DnsNamesPastTheTableAreSaid) {
    Config cfg;
    cfg.max_dns_names = 1;
    Capture cap(cfg);
    cap.dns("mx.one.example", {kMta.addr});
    const FrameNum second = cap.dns("mx.two.example", {kMta.addr});
    EXPECT_EQ(cap.corr().cap_frame(Cap::DnsNames), second);
    EXPECT_TRUE(cap.corr().note(second)->events & kEvCapped);
}

TEST(Caps, StreamsPastTheIndexLimitAreSaid) {
    Config cfg;
    cfg.max_streams = 4;
    Capture cap(cfg);
    FakeTcp far(cap, 9, kAttacker, kProxy);
    const FrameNum syn = far.handshake();
    EXPECT_EQ(cap.corr().cap_frame(Cap::Streams), syn);
}

TEST(Caps, EveryCapHasItsText) {
    for (std::size_t c = 0; c < static_cast<std::size_t>(Cap::Count); ++c)
        EXPECT_STRNE(cap_text(static_cast<Cap>(c)), "?") << c;
}

}  // namespace
}  // namespace soh
