// SMTP dialogue parsing from both directions: envelope, pipelining, DATA,
// BDAT, STARTTLS, AUTH, and recognising what is not SMTP.
#include "smtp_session.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace soh {
namespace {

// Feeds one session, one "frame" per call, with a clock.
struct Dialogue {
    SmtpSession s;
    FrameNum frame = 0;
    double time = 0;

    FrameNum feed(bool from_client, std::string_view data) {
        ++frame;
        time += 0.01;
        s.feed(from_client, reinterpret_cast<const std::uint8_t*>(data.data()), data.size(), frame, time);
        return frame;
    }
    FrameNum c(std::string_view data) { return feed(true, data); }
    FrameNum srv(std::string_view data) { return feed(false, data); }
    const Envelope& env() const { return s.envelope(); }

    bool notes_contain(std::string_view needle) const {
        for (const auto& n : s.notes())
            if (s.note_text(n).find(needle) != std::string::npos) return true;
        return false;
    }
};

// A complete, well-behaved session up to and including the 250 after the dot.
void basic_session(Dialogue& d) {
    d.srv("220 mx.example.net ESMTP Postfix\r\n");
    d.c("EHLO client.example\r\n");
    d.srv("250-mx.example.net\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
    d.c("MAIL FROM:<spammer@spam.example> SIZE=1000\r\n");
    d.srv("250 2.1.0 Ok\r\n");
    d.c("RCPT TO:<alice@example.org>\r\n");
    d.srv("250 2.1.5 Ok\r\n");
    d.c("RCPT TO:<bob@example.org>\r\n");
    d.srv("250 2.1.5 Ok\r\n");
    d.c("DATA\r\n");
    d.srv("354 End data with <CR><LF>.<CR><LF>\r\n");
    d.c("Subject: hello\r\n\r\nMAIL FROM:<not-a-command@x>\r\n..dot-stuffed\r\n.\r\n");
    d.srv("250 2.0.0 Ok: queued as ABC123\r\n");
}

TEST(SmtpSession, BasicEnvelope) {
    Dialogue d;
    basic_session(d);
    d.c("QUIT\r\n");
    d.srv("221 2.0.0 Bye\r\n");
    const Envelope& e = d.env();
    EXPECT_TRUE(d.s.smtp_seen());
    EXPECT_FALSE(d.s.not_smtp());
    EXPECT_EQ(e.greeting, "mx.example.net ESMTP Postfix");
    EXPECT_EQ(e.helo, "client.example");
    EXPECT_EQ(e.mail_from, std::vector<std::string>{"spammer@spam.example"});
    EXPECT_EQ(e.rcpt_to, (std::vector<std::string>{"alice@example.org", "bob@example.org"}));
    EXPECT_EQ(e.mail_from_count, 1u);  // the MAIL FROM inside the content is not a command
    EXPECT_EQ(e.rcpt_count, 2u);
    EXPECT_EQ(e.rcpt_accepted, 2u);
    EXPECT_EQ(e.messages, 1u);
    EXPECT_FALSE(e.starttls);
    EXPECT_FALSE(e.auth);
}

TEST(SmtpSession, NotesCarryTheirFrame) {
    Dialogue d;
    d.srv("220 mx ESMTP\r\n");
    FrameNum ehlo = d.c("EHLO client.example\r\n");
    bool found = false;
    for (const auto& n : d.s.notes()) {
        if (d.s.note_text(n) == "EHLO client.example") {
            found = true;
            EXPECT_EQ(n.frame, ehlo);
            EXPECT_TRUE(n.from_client);
        }
    }
    EXPECT_TRUE(found);
}

TEST(SmtpSession, MultiLineReplyCountsAsOneReply) {
    // Pipelined EHLO, MAIL, RCPT: if the three-line EHLO reply were taken as
    // three replies, the RCPT would be matched with a 250 instead of the 550.
    Dialogue d;
    d.srv("220 mx.example.net ESMTP\r\n");
    d.c("EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n");
    d.srv("250-mx.example.net\r\n250-SIZE 10240000\r\n250 PIPELINING\r\n250 ok\r\n550 no such user\r\n");
    EXPECT_EQ(d.env().rcpt_count, 1u);
    EXPECT_EQ(d.env().rcpt_accepted, 0u);
}

TEST(SmtpSession, MultiLineGreeting) {
    Dialogue d;
    d.srv("220-mx.example.net ESMTP\r\n220-no UCE\r\n220 welcome\r\n");
    d.c("EHLO c\r\nRCPT TO:<b@y>\r\n");
    d.srv("250 hi\r\n250 ok\r\n");
    EXPECT_EQ(d.env().greeting, "mx.example.net ESMTP");
    EXPECT_EQ(d.env().rcpt_accepted, 1u);
}

TEST(SmtpSession, PipeliningInOneFeedEachWay) {
    Dialogue d;
    d.srv("220 mx ESMTP\r\n");
    d.c("EHLO c\r\n");
    d.srv("250-mx\r\n250 PIPELINING\r\n");
    d.c("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nDATA\r\n");
    d.srv("250 ok\r\n250 ok\r\n550 unknown\r\n354 go ahead\r\n");
    d.c("Subject: s\r\n\r\nbody\r\n.\r\n");
    d.srv("250 queued\r\n");
    EXPECT_EQ(d.env().rcpt_count, 2u);
    EXPECT_EQ(d.env().rcpt_accepted, 1u);
    EXPECT_EQ(d.env().messages, 1u);
}

TEST(SmtpSession, RsetBetweenTransactions) {
    Dialogue d;
    d.srv("220 mx ESMTP\r\n");
    d.c("EHLO c\r\n");
    d.srv("250 mx\r\n");
    d.c("MAIL FROM:<first@x>\r\nRCPT TO:<b@y>\r\nRSET\r\n");
    d.srv("250 ok\r\n250 ok\r\n250 reset\r\n");
    d.c("MAIL FROM:<second@x>\r\nRCPT TO:<c@y>\r\nDATA\r\n");
    d.srv("250 ok\r\n250 ok\r\n354 go\r\n");
    d.c("x\r\n.\r\n");
    d.srv("250 queued\r\n");
    EXPECT_EQ(d.env().mail_from, (std::vector<std::string>{"first@x", "second@x"}));
    EXPECT_EQ(d.env().rcpt_accepted, 2u);
    EXPECT_EQ(d.env().messages, 1u);
}

TEST(SmtpSession, TwoTransactionsTwoMessages) {
    Dialogue d;
    basic_session(d);
    d.c("MAIL FROM:<again@spam.example>\r\n");
    d.srv("250 ok\r\n");
    d.c("RCPT TO:<carol@example.org>\r\n");
    d.srv("250 ok\r\n");
    d.c("DATA\r\n");
    d.srv("354 go\r\n");
    d.c("second\r\n.\r\n");
    d.srv("250 queued\r\n");
    EXPECT_EQ(d.env().messages, 2u);
    EXPECT_EQ(d.env().mail_from_count, 2u);
    EXPECT_EQ(d.env().rcpt_count, 3u);
    EXPECT_EQ(d.env().rcpt_accepted, 3u);
}

TEST(SmtpSession, RejectedRcptNotAccepted) {
    Dialogue d;
    d.srv("220 mx ESMTP\r\n");
    d.c("EHLO c\r\n");
    d.srv("250 mx\r\n");
    d.c("MAIL FROM:<a@x>\r\n");
    d.srv("250 ok\r\n");
    d.c("RCPT TO:<good@y>\r\n");
    d.srv("250 ok\r\n");
    d.c("RCPT TO:<bad@y>\r\n");
    d.srv("550 5.1.1 <bad@y>: Recipient address rejected\r\n");
    EXPECT_EQ(d.env().rcpt_count, 2u);
    EXPECT_EQ(d.env().rcpt_accepted, 1u);
    EXPECT_EQ(d.env().rcpt_to.size(), 2u);
}

TEST(SmtpSession, RejectedDataMakesClientLinesCommandsAgain) {
    Dialogue d;
    d.srv("220 mx ESMTP\r\n");
    d.c("EHLO c\r\n");
    d.srv("250 mx\r\n");
    d.c("MAIL FROM:<a@x>\r\n");
    d.srv("250 ok\r\n");
    d.c("RCPT TO:<b@y>\r\n");
    d.srv("550 no\r\n");
    d.c("DATA\r\n");
    d.srv("554 5.5.1 Error: no valid recipients\r\n");
    d.c("RSET\r\nMAIL FROM:<retry@x>\r\n");
    d.srv("250 ok\r\n250 ok\r\n");
    EXPECT_EQ(d.env().mail_from_count, 2u);
    EXPECT_EQ(d.env().mail_from.back(), "retry@x");
    EXPECT_EQ(d.env().messages, 0u);
}

TEST(SmtpSession, BdatChunksAreNotParsedAsCommands) {
    Dialogue d;
    d.srv("220 mx ESMTP\r\n");
    d.c("EHLO c\r\n");
    d.srv("250-mx\r\n250 CHUNKING\r\n");
    d.c("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n");
    d.srv("250 ok\r\n250 ok\r\n");
    const std::string chunk1 = "MAIL FROM:<fake@x>\r\nRCPT TO:<fake@y>\r\n";
    const std::string chunk2 = "QUIT\r\nDATA\r\n";
    d.c("BDAT " + std::to_string(chunk1.size()) + "\r\n" + chunk1);
    d.srv("250 ok chunk\r\n");
    d.c("BDAT " + std::to_string(chunk2.size()) + " LAST\r\n" + chunk2);
    d.srv("250 queued\r\n");
    EXPECT_EQ(d.env().mail_from_count, 1u);
    EXPECT_EQ(d.env().rcpt_count, 1u);
    EXPECT_EQ(d.env().messages, 1u);  // only BDAT LAST completes a message
    d.c("MAIL FROM:<next@x>\r\n");    // commands again after the chunk
    EXPECT_EQ(d.env().mail_from_count, 2u);
}

TEST(SmtpSession, BdatChunkSplitAcrossFeeds) {
    Dialogue d;
    d.srv("220 mx ESMTP\r\n");
    d.c("EHLO c\r\n");
    d.srv("250 mx\r\n");
    const std::string chunk = "RCPT TO:<fake@y>\r\nRSET\r\n";
    const std::string all = "BDAT " + std::to_string(chunk.size()) + " LAST\r\n" + chunk + "MAIL FROM:<real@x>\r\n";
    for (char ch : all) d.c(std::string(1, ch));
    d.srv("250 queued\r\n250 ok\r\n");
    EXPECT_EQ(d.env().rcpt_count, 0u);
    EXPECT_EQ(d.env().mail_from, std::vector<std::string>{"real@x"});
    EXPECT_EQ(d.env().messages, 1u);
}

TEST(SmtpSession, StartTlsMakesTheRestOpaque) {
    Dialogue d;
    d.srv("220 mx ESMTP\r\n");
    d.c("EHLO before.example\r\n");
    d.srv("250-mx\r\n250 STARTTLS\r\n");
    d.c("STARTTLS\r\n");
    FrameNum ok = d.srv("220 2.0.0 Ready to start TLS\r\n");
    EXPECT_TRUE(d.s.opaque());
    EXPECT_TRUE(d.env().starttls);
    EXPECT_EQ(d.s.starttls_frame(), ok);
    const std::size_t notes = d.s.notes().size();
    const std::size_t stamps = d.s.stamps(true).size();
    d.c("EHLO after.example\r\nMAIL FROM:<hidden@x>\r\n");
    d.c(std::string("\x16\x03\x01\x00\x10", 5));
    d.srv("250 ok\r\n");
    EXPECT_EQ(d.env().helo, "before.example");
    EXPECT_EQ(d.env().mail_from_count, 0u);
    EXPECT_EQ(d.s.notes().size(), notes);
    EXPECT_EQ(d.s.stamps(true).size(), stamps);
    EXPECT_TRUE(d.s.smtp_seen());
    EXPECT_FALSE(d.s.not_smtp());
}

TEST(SmtpSession, StartTlsRefusedKeepsParsing) {
    Dialogue d;
    d.srv("220 mx ESMTP\r\n");
    d.c("EHLO c\r\n");
    d.srv("250 mx\r\n");
    d.c("STARTTLS\r\n");
    d.srv("454 4.7.0 TLS not available\r\n");
    EXPECT_FALSE(d.s.opaque());
    d.c("MAIL FROM:<a@x>\r\n");
    EXPECT_EQ(d.env().mail_from_count, 1u);
}

TEST(SmtpSession, AuthLoginCredentialsNeverInNotes) {
    Dialogue d;
    d.srv("220 mx ESMTP\r\n");
    d.c("EHLO c\r\n");
    d.srv("250-mx\r\n250 AUTH LOGIN PLAIN\r\n");
    d.c("AUTH LOGIN\r\n");
    d.srv("334 VXNlcm5hbWU6\r\n");
    d.c("c3BhbW1lcg==\r\n");
    d.srv("334 UGFzc3dvcmQ6\r\n");
    d.c("aHVudGVyMg==\r\n");
    d.srv("235 2.7.0 Authentication successful\r\n");
    d.c("MAIL FROM:<a@x>\r\n");
    d.srv("250 ok\r\n");
    d.c("RCPT TO:<b@y>\r\n");
    d.srv("250 ok\r\n");
    EXPECT_TRUE(d.env().auth);
    EXPECT_EQ(d.env().auth_mech, "LOGIN");
    EXPECT_FALSE(d.notes_contain("c3BhbW1lcg=="));
    EXPECT_FALSE(d.notes_contain("aHVudGVyMg=="));
    EXPECT_TRUE(d.notes_contain("AUTH LOGIN"));
    EXPECT_EQ(d.env().mail_from_count, 1u);
    EXPECT_EQ(d.env().rcpt_accepted, 1u);  // replies still matched after the 334s
}

TEST(SmtpSession, AuthPlainInlineCredentialsNeverInNotes) {
    Dialogue d;
    d.srv("220 mx ESMTP\r\n");
    d.c("EHLO c\r\n");
    d.srv("250 mx\r\n");
    d.c("AUTH PLAIN AHNwYW1tZXIAaHVudGVyMg==\r\n");
    d.srv("235 ok\r\n");
    EXPECT_EQ(d.env().auth_mech, "PLAIN");
    EXPECT_FALSE(d.notes_contain("AHNwYW1tZXIAaHVudGVyMg=="));
}

TEST(SmtpSession, TlsClientHelloFirst) {
    Dialogue d;
    const unsigned char hello[] = {0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03};
    d.c(std::string_view(reinterpret_cast<const char*>(hello), sizeof hello));
    EXPECT_TRUE(d.s.tls_first());
    EXPECT_TRUE(d.s.not_smtp());
    EXPECT_TRUE(d.s.opaque());
    EXPECT_FALSE(d.s.smtp_seen());
    d.c("EHLO x\r\n");  // nothing after is parsed
    EXPECT_FALSE(d.s.smtp_seen());
}

TEST(SmtpSession, BinaryGarbageIsNotSmtp) {
    Dialogue d;
    d.c(std::string_view("\x00\x01\xff\xfe\x10garbage\r\n", 14));
    EXPECT_TRUE(d.s.not_smtp());
    EXPECT_FALSE(d.s.smtp_seen());
    EXPECT_FALSE(d.s.tls_first());
}

TEST(SmtpSession, BinaryGarbageFromServerIsNotSmtp) {
    Dialogue d;
    d.srv(std::string_view("\x00\x00\x00\x2c\x01\x02", 6));
    EXPECT_TRUE(d.s.not_smtp());
}

TEST(SmtpSession, FtpLikeDialogueIsNotSmtp) {
    Dialogue d;
    d.srv("220 FTP server ready\r\n");
    EXPECT_FALSE(d.s.smtp_seen());
    d.c("USER anonymous\r\n");
    d.srv("331 Password required\r\n");
    d.c("PASS guest\r\n");
    d.srv("230 Logged in\r\n");
    d.c("SYST\r\n");
    EXPECT_FALSE(d.s.smtp_seen());
    EXPECT_TRUE(d.s.not_smtp());
}

TEST(SmtpSession, HttpAnswerIsNotSmtp) {
    Dialogue d;
    d.c("GET / HTTP/1.1\r\n");
    d.srv("HTTP/1.1 200 OK\r\n");
    EXPECT_TRUE(d.s.not_smtp());
    EXPECT_FALSE(d.s.smtp_seen());
}

TEST(SmtpSession, SmtpSeenFromGreetingAlone) {
    Dialogue d;
    FrameNum f = d.srv("220 mx ESMTP\r\n");
    EXPECT_TRUE(d.s.smtp_seen());
    EXPECT_EQ(d.s.smtp_frame(), f);
}

TEST(SmtpSession, SmtpSeenFromEhloAlone) {
    Dialogue d;
    FrameNum f = d.c("EHLO client.example\r\n");
    EXPECT_TRUE(d.s.smtp_seen());
    EXPECT_EQ(d.s.smtp_frame(), f);
    EXPECT_EQ(d.env().helo, "client.example");
}

TEST(SmtpSession, EhloPrefixOfOtherWordIsNotEhlo) {
    Dialogue d;
    d.c("EHLOXYZ c\r\n");
    EXPECT_FALSE(d.s.smtp_seen());
}

TEST(SmtpSession, StampsEqualForIdenticalLinesWhateverTheSegmentation) {
    const std::string client = "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n";
    const std::string server = "220 mx ESMTP\r\n250 mx\r\n250 ok\r\n250 ok\r\n";
    Dialogue whole;
    whole.srv(server);
    whole.c(client);
    Dialogue bytes;
    for (char ch : server) bytes.srv(std::string(1, ch));
    for (char ch : client) bytes.c(std::string(1, ch));
    for (bool from_client : {true, false}) {
        const auto& a = whole.s.stamps(from_client);
        const auto& b = bytes.s.stamps(from_client);
        ASSERT_EQ(a.size(), b.size());
        for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].hash, b[i].hash) << i;
    }
    ASSERT_EQ(whole.s.stamps(true).size(), 3u);
    EXPECT_EQ(whole.s.stamps(true)[0].hash, fnv1a("EHLO c"));
    EXPECT_EQ(whole.s.stamps(false)[0].hash, fnv1a("220 mx ESMTP"));
}

TEST(SmtpSession, StampsIgnoreCrlfVersusLf) {
    Dialogue crlf;
    crlf.c("EHLO c\r\n");
    Dialogue lf;
    lf.c("EHLO c\n");
    ASSERT_EQ(crlf.s.stamps(true).size(), 1u);
    ASSERT_EQ(lf.s.stamps(true).size(), 1u);
    EXPECT_EQ(crlf.s.stamps(true)[0].hash, lf.s.stamps(true)[0].hash);
}

TEST(SmtpSession, StampTimeIsWhenTheLineCompleted) {
    Dialogue d;
    d.c("EHLO ");
    d.c("c\r\n");
    ASSERT_EQ(d.s.stamps(true).size(), 1u);
    EXPECT_DOUBLE_EQ(d.s.stamps(true)[0].time, d.time);
}

TEST(SmtpSession, StampsAreBounded) {
    Dialogue d;
    for (int i = 0; i < 100; ++i) d.c("NOOP\r\n");
    EXPECT_EQ(d.s.stamps(true).size(), SmtpSession::kMaxStamps);
}

TEST(SmtpSession, LinesSplitAcrossFeeds) {
    Dialogue d;
    d.srv("220 mx ES");
    d.srv("MTP\r\n");
    d.c("EH");
    d.c("LO cl");
    d.c("ient\r");
    d.c("\nMAIL FROM:<a");
    d.c("@x>\r\n");
    d.srv("250-mx\r\n250");
    d.srv(" ok\r\n2");
    d.srv("50 ok\r\n");
    EXPECT_EQ(d.env().greeting, "mx ESMTP");
    EXPECT_EQ(d.env().helo, "client");
    EXPECT_EQ(d.env().mail_from, std::vector<std::string>{"a@x"});
    EXPECT_TRUE(d.s.smtp_seen());
}

TEST(SmtpSession, PathWithoutBracketsAndSpaceAfterColon) {
    Dialogue d;
    d.c("mail from: a@x.example\r\nrcpt to:<b@y.example> NOTIFY=NEVER\r\n");
    EXPECT_EQ(d.env().mail_from, std::vector<std::string>{"a@x.example"});
    EXPECT_EQ(d.env().rcpt_to, std::vector<std::string>{"b@y.example"});
}

TEST(SmtpSession, GapResynchronisesAtNextLine) {
    Dialogue d;
    d.srv("220 mx ESMTP\r\n");
    d.c("MAIL FROM:<lo");
    d.s.gap(true);
    d.c("RCPT TO:<b@y>\r\n");
    EXPECT_EQ(d.env().mail_from_count, 0u);
    EXPECT_EQ(d.env().rcpt_to, std::vector<std::string>{"b@y"});
}

TEST(SmtpSession, UndecidedTextEventuallyNotSmtp) {
    Dialogue d;
    // Reply-shaped lines that never make an SMTP dialogue: undecided until
    // kUndecidedBytes, then declared not SMTP.
    const std::string line = "250 " + std::string(96, 'z') + "\r\n";
    std::size_t sent = 0;
    while (sent + line.size() <= SmtpSession::kUndecidedBytes) {
        d.srv(line);
        sent += line.size();
    }
    EXPECT_FALSE(d.s.not_smtp());
    d.srv(line);
    EXPECT_TRUE(d.s.not_smtp());
    EXPECT_FALSE(d.s.smtp_seen());
}

TEST(SmtpSession, OverlongCommandLineDoesNotBreakMatching) {
    Dialogue d;
    d.srv("220 mx ESMTP\r\n");
    d.c("EHLO c\r\n" + std::string(SmtpSession::kMaxLine + 500, 'X') + "\r\nRCPT TO:<b@y>\r\n");
    d.srv("250 mx\r\n500 line too long\r\n250 ok\r\n");
    EXPECT_EQ(d.env().rcpt_accepted, 1u);
}

TEST(SmtpSession, OpeningBytesThatRuleSmtpOut) {
    using O = SmtpSession::Opening;
    auto open = [](bool from_client, std::string_view s) {
        return SmtpSession::opening(from_client, reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
    };
    EXPECT_EQ(open(false, "220 mx.example ESMTP\r\n"), O::Text);
    EXPECT_EQ(open(true, "EHLO a\r\n"), O::Text);
    EXPECT_EQ(open(true, std::string_view("\x16\x03\x01\x00\x05", 5)), O::Tls);
    // The same bytes from the server are no client hello, but still not text.
    EXPECT_EQ(open(false, std::string_view("\x16\x03\x01\x00\x05", 5)), O::Binary);
    EXPECT_EQ(open(true, std::string_view("SSH-2.0\0", 8)), O::Binary);
    EXPECT_EQ(open(true, "\tHELO\r\n"), O::Text);
    EXPECT_EQ(open(true, ""), O::Text);  // nothing to go on
}

}  // namespace
}  // namespace soh
