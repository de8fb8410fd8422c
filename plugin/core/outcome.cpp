// How an incident ended, as the mail server saw it, and the proxy's answer
// as the incident states it.
//
// A proxy's non-2xx answer is a refusal only when no relay leg shows a mail
// server answering: tinyproxy answers 503 to an absolute-URI POST whose
// target spoke SMTP instead of HTTP, after it connected and passed the body
// on (the relay leg then shows the message accepted). The outcome is read
// from the leg that carries the mail server's replies: the relay leg when it
// is known, else a tunnel (CONNECT, SOCKS: replies come back verbatim).
// Reply codes: RFC 5321 §4.2 (2xx accepted), §4.1.1.3 (RCPT), §4.1.1.4 (DATA).
#include <algorithm>
#include <cstring>

#include "correlator.h"

namespace soh {
namespace {

bool server_answered(const SmtpSession& s) {
    return !s.envelope().greeting.empty() || s.replies_to_smtp() > 0 || s.replies_to_other() > 0;
}

}  // namespace

const char* outcome_name(Outcome o) {
    switch (o) {
        case Outcome::MessagesAccepted: return "messages-accepted";
        case Outcome::RecipientsAccepted: return "recipients-accepted";
        case Outcome::Rejected: return "rejected";
        case Outcome::NoMail: return "no-mail";
        case Outcome::Dropped: return "dropped";
        case Outcome::NotReached: return "not-reached";
        case Outcome::Unknown: return "unknown";
    }
    return "?";
}

void Correlator::judge(View& v) const {
    const Flow& p = *v.proxy;
    const SmtpSession* relay = v.relay && v.relay->smtp && server_answered(*v.relay->smtp) ? v.relay->smtp.get() : nullptr;
    v.status = p.status;
    if (v.status == Status::Refused && relay) v.status = Status::Established;
    if (v.status == Status::Refused && std::strcmp(v.leg, "tunnel") == 0) v.leg = "attempt";

    const SmtpSession* s = relay;
    if (!s && relays_verbatim(p.first_method()) && p.smtp && server_answered(*p.smtp)) s = p.smtp.get();
    if (v.reaction && std::strcmp(v.reaction, "dropped") == 0) {
        v.outcome = Outcome::Dropped;
    } else if (!s) {
        v.outcome = v.relay ? Outcome::NotReached : Outcome::Unknown;
    } else {
        const Envelope& e = s->envelope();
        v.outcome = e.messages > 0        ? Outcome::MessagesAccepted
                    : e.rcpt_accepted > 0 ? Outcome::RecipientsAccepted
                    : (e.rcpt_count > 0 || e.mail_from_count > 0) ? Outcome::Rejected
                                                                  : Outcome::NoMail;
    }
}

// Every leg of the incident and the DNS answers it rests on.
void Correlator::incident_streams(View& v) const {
    auto add_leg = [&](const Flow& f) {
        v.streams.push_back(f.stream);
        if (f.dns_frame) v.dns_frames.push_back(f.dns_frame);
    };
    add_leg(*v.proxy);
    for (const Flow* leg : v.chain_legs) add_leg(*leg);
    if (v.relay) add_leg(*v.relay);
    for (StreamId s : v.relay_candidates) v.streams.push_back(s);
    for (StreamId s : v.tunnel_candidates) v.streams.push_back(s);
    std::sort(v.streams.begin(), v.streams.end());
    v.streams.erase(std::unique(v.streams.begin(), v.streams.end()), v.streams.end());
    std::sort(v.dns_frames.begin(), v.dns_frames.end());
    v.dns_frames.erase(std::unique(v.dns_frames.begin(), v.dns_frames.end()), v.dns_frames.end());
}

}  // namespace soh
