// Fuzz target: SmtpSession (smtp_session.h), the SMTP state machine. The
// input is a sequence of chunks, each for the client or the server side,
// with occasional gaps and buffer releases, as the correlator drives it.
// Checks the session's documented bounds.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "smtp_session.h"

using soh::SmtpSession;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider fdp(data, size);
    SmtpSession s;
    soh::FrameNum frame = 1;
    double time = 1.0;
    std::size_t ops = 0;
    while (fdp.remaining_bytes() > 0 && ++ops < 4096) {
        const int op = fdp.ConsumeIntegralInRange<int>(0, 15);
        const bool from_client = fdp.ConsumeBool();
        if (op == 0) {
            s.gap(from_client);
        } else if (op == 1) {
            s.release_buffers();
        } else if (op == 2) {
            // A long run without a newline (an endless line).
            std::string run(fdp.ConsumeIntegralInRange<std::size_t>(0, 40000), 'A');
            s.feed(from_client, reinterpret_cast<const std::uint8_t*>(run.data()), run.size(), frame, time);
        } else {
            std::string chunk = fdp.ConsumeRandomLengthString(1024);
            s.feed(from_client, reinterpret_cast<const std::uint8_t*>(chunk.data()), chunk.size(), frame, time);
        }
        if (fdp.ConsumeBool()) {
            ++frame;
            time += 0.001;
        }
    }

    const soh::Envelope& env = s.envelope();
    if (env.mail_from.size() > SmtpSession::kMaxListed || env.rcpt_to.size() > SmtpSession::kMaxListed) std::abort();
    if (env.mail_from.size() > env.mail_from_count || env.rcpt_to.size() > env.rcpt_count) std::abort();
    if (s.notes().size() > SmtpSession::kMaxNotes) std::abort();
    if (s.stamps(true).size() > SmtpSession::kMaxStamps || s.stamps(false).size() > SmtpSession::kMaxStamps)
        std::abort();
    if (s.smtp_seen() && (s.smtp_frame() == 0 || s.smtp_frame() > frame)) std::abort();
    std::uint64_t rc = 0;
    for (soh::FrameNum f = 0; f <= frame + 1 && f < 5000; ++f) rc += s.counts(f).rcpts;
    (void)rc;
    for (const auto& n : s.notes())
        if (n.frame == 0 || n.frame > frame) std::abort();
    (void)s.not_smtp();
    (void)s.tls_first();
    (void)s.opaque();
    return 0;
}
