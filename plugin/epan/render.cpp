// Renders the engine's view of a frame: the smtp-over-http subtree, expert
// items and the Info-column tag. Runs on every pass; reads engine state only.
//
// epan reports errors by longjmp, which skips C++ destructors: nothing with a
// destructor lives in the scope of an epan call here. Text is formatted into
// stack buffers and the View is a static object reused frame after frame.
#include <arpa/inet.h>
#include <epan/column-utils.h>
#include <epan/expert.h>
#include <epan/proto.h>
#include <epan/tap.h>

#include <cstring>

#include "glue.h"
#include "stats.h"
#include "text_writer.h"

namespace soh::glue {
namespace {

constexpr std::size_t kEndpointLen = INET6_ADDRSTRLEN + 8;

void fmt_addr(char* out, std::size_t n, const Addr& a) { TextWriter(out, n).addr(a); }

void fmt_endpoint(char* out, std::size_t n, const Endpoint& e) { TextWriter(out, n).endpoint(e); }

// "mx.example:25" or "[2001:db8::7]:25", as the request wrote it.
TextWriter& write_target(TextWriter& w, const Flow& p) {
    if (p.target_host.find(':') != std::string::npos) return w.str("[").str(p.target_host).str("]:").num(p.target_port);
    return w.str(p.target_host).str(":").num(p.target_port);
}

void fmt_target(char* out, std::size_t n, const Flow& p) {
    TextWriter w(out, n);
    write_target(w, p);
}

void add_uint(proto_tree* t, tvbuff_t* tvb, int id, std::uint32_t v) {
    proto_item_set_generated(proto_tree_add_uint(t, id, tvb, 0, 0, v));
}

void add_str(proto_tree* t, tvbuff_t* tvb, int id, const char* s) {
    proto_item_set_generated(proto_tree_add_string(t, id, tvb, 0, 0, s));
}

void add_bool(proto_tree* t, tvbuff_t* tvb, int id, bool b) {
    proto_item_set_generated(proto_tree_add_boolean(t, id, tvb, 0, 0, b ? 1 : 0));
}

void render_envelope(proto_tree* t, tvbuff_t* tvb, const SmtpSession& s) {
    const Envelope& e = s.envelope();
    if (!e.helo.empty()) add_str(t, tvb, hf.helo, e.helo.c_str());
    for (const auto& m : e.mail_from) add_str(t, tvb, hf.mail_from, m.c_str());
    for (const auto& r : e.rcpt_to) add_str(t, tvb, hf.rcpt_to, r.c_str());
    add_uint(t, tvb, hf.mail_from_count, e.mail_from_count);
    add_uint(t, tvb, hf.rcpt_count, e.rcpt_count);
    add_uint(t, tvb, hf.rcpt_accepted, e.rcpt_accepted);
    add_uint(t, tvb, hf.messages, e.messages);
    if (e.starttls) add_bool(t, tvb, hf.starttls, true);
    if (e.auth) add_str(t, tvb, hf.auth, e.auth_mech.c_str());
    if (!e.greeting.empty()) add_str(t, tvb, hf.greeting, e.greeting.c_str());
}

// SMTP lines carried by this very frame, with the true direction.
void render_lines(proto_tree* t, tvbuff_t* tvb, const Flow& f, FrameNum frame) {
    if (!f.smtp) return;
    char buf[200];
    for (const SmtpNote& n : f.smtp->notes()) {
        if (n.frame != frame) continue;
        add_str(t, tvb, hf.line,
                TextWriter(buf, sizeof buf).str(n.from_client ? "C: " : "S: ").str(f.smtp->note_text(n)).c_str());
    }
}

void summarise(char* out, std::size_t n, const View& v) {
    const Flow& p = *v.proxy;
    TextWriter w(out, n);
    if (v.provisional) {
        // Only what is final: see finality.cpp.
        w.str("tentative ").str(*v.leg ? v.leg : "request").str(", ").endpoint(p.client);
        w.str(" -> proxy ").endpoint(p.server);
        if (v.status_known) write_target(w.str(" -> "), p).str(" (").str(status_name(v.status)).str(")");
        w.str(", relay not final, ").num(static_cast<std::uint32_t>(v.relay_candidates.size()));
        w.str(v.relay_candidates.size() == 1 ? " candidate so far" : " candidates so far");
        return;
    }
    w.str(v.leg).str(" ").str(method_name(p.first_method())).str(", ").endpoint(p.client);
    w.str(" -> proxy ").endpoint(p.server);
    for (std::size_t i = 1; i < v.chain.size(); ++i) w.str(" -> proxy ").str(v.chain[i].proxy);
    write_target(w.str(" -> "), p).str(" (").str(status_name(v.status));
    if (p.status_code) w.str(" ").num(p.status_code);
    w.str("), ");
    if (v.pairing == Pairing::Unique && v.relay)
        w.str("relay stream ").num(v.relay->stream);
    else if (v.pairing == Pairing::Ambiguous)
        w.str("relay ambiguous");
    else
        w.str("no relay leg");
    w.str(", mail ").str(outcome_name(v.outcome));
    const Envelope* e = v.smtp ? &v.smtp->envelope() : nullptr;
    const std::uint32_t rcpts = e ? e->rcpt_count : 0, messages = e ? e->messages : 0;
    w.str(", ").num(rcpts).str(rcpts == 1 ? " recipient, " : " recipients, ");
    w.num(messages).str(messages == 1 ? " message" : " messages");
}

// The fields of the subtree (none without a tree: nothing would keep them).
// Who asked which proxy (formatted only when something reads them).
void add_parties(proto_tree* t, tvbuff_t* tvb, const Flow& p) {
    char a[kEndpointLen];
    if (proto_field_is_referenced(t, hf.client)) {
        fmt_endpoint(a, sizeof a, p.client);
        add_str(t, tvb, hf.client, a);
    }
    if (proto_field_is_referenced(t, hf.proxy)) {
        fmt_endpoint(a, sizeof a, p.server);
        add_str(t, tvb, hf.proxy, a);
    }
}

// The target as the request wrote it, and its address when known.
void add_target(proto_tree* t, tvbuff_t* tvb, const Flow& p, const Addr& addr) {
    add_str(t, tvb, hf.target_host, p.target_host.c_str());
    add_uint(t, tvb, hf.target_port, p.target_port);
    if (addr.family == 4)
        proto_item_set_generated(
            proto_tree_add_ipv4(t, hf.target_ip, tvb, 0, 0, *reinterpret_cast<const guint32*>(addr.bytes.data())));
    if (addr.family == 6)
        proto_item_set_generated(
            proto_tree_add_ipv6(t, hf.target_ipv6, tvb, 0, 0, reinterpret_cast<const ws_in6_addr*>(addr.bytes.data())));
}

// The display filter that isolates the incident, as TRANSUM's clip_filter
// does for an APDU (set members separated by commas: Wireshark 4.0 wants them).
void write_filter(TextWriter& w, const View& v) {
    w.str("tcp.stream in {");
    for (std::size_t i = 0; i < v.streams.size(); ++i) w.str(i ? "," : "").num(v.streams[i]);
    w.str("}");
    if (v.dns_frames.empty()) return;
    w.str(" || frame.number in {");
    for (std::size_t i = 0; i < v.dns_frames.size(); ++i) w.str(i ? "," : "").num(v.dns_frames[i]);
    w.str("}");
}

// A single pass before the incident is final: only what no later frame can
// change (finality.cpp).
void add_provisional_fields(proto_tree* t, tvbuff_t* tvb, packet_info* pinfo, const View& v) {
    const Flow& p = *v.proxy;
    if (*v.leg) add_str(t, tvb, hf.leg, v.leg);
    if (v.status_known) add_str(t, tvb, hf.method, method_name(p.first_method()));
    add_uint(t, tvb, hf.tunnel_stream, p.stream);
    add_uint(t, tvb, hf.connect_in, p.request_frame);
    if (v.status_known && p.response_frame) add_uint(t, tvb, hf.response_in, p.response_frame);
    add_parties(t, tvb, p);
    if (v.status_known) {
        add_target(t, tvb, p, v.target_addr);
        add_str(t, tvb, hf.status, status_name(v.status));
        if (p.status_code || is_socks(p.method)) add_uint(t, tvb, hf.status_code, p.status_code);
        if (p.proxy_auth) add_bool(t, tvb, hf.proxy_auth, true);
        if (p.malformed) add_bool(t, tvb, hf.malformed, true);
    }
    if (p.smtp && p.smtp->smtp_seen() && relays_verbatim(p.first_method())) add_bool(t, tvb, hf.smtp, true);
    add_str(t, tvb, hf.pairing, pairing_name(v.pairing));
    for (StreamId s : v.relay_candidates) add_uint(t, tvb, hf.relay_candidate, s);
    if (proto_field_is_referenced(t, hf.line)) render_lines(t, tvb, p, pinfo->num);
}

// Why each candidate leg was kept or ruled out: in the displayed tree only.
void add_evidence(proto_tree* t, tvbuff_t* tvb, const View& v) {
    const Flow* p = v.last_proxy ? v.last_proxy : v.proxy;
    if (!p || p->links.empty()) return;
    proto_item* ti = proto_tree_add_none_format(t, hf.evidence, tvb, 0, 0, "Relay candidates of tunnel stream %u: %zu",
                                                p->stream, p->links.size());
    proto_tree* et = proto_item_add_subtree(ti, ett_evidence);
    char text[400];
    for (std::size_t i = 0; i < p->links.size(); ++i) {
        CandidateEvidence e = engine->evidence(*p, i);
        TextWriter w(text, sizeof text);
        w.str("stream ").num(e.stream).str(": ").str(e.kept ? "kept" : "ruled out");
        w.str(" - to ").endpoint(e.server).str(" (").str(e.address).str("), opened ");
        if (e.after_ms < 0) w.str("-");
        w.num(static_cast<std::uint32_t>(e.after_ms < 0 ? -e.after_ms : e.after_ms)).str(" ms after the request");
        if (e.lines) w.str(", ").num(e.lines).str(e.lines == 1 ? " line" : " lines").str(" equal on both legs");
        if (*e.reason) w.str("; ").str(e.reason);
        if (e.owner_stream || *e.reason == 't') w.str(" (stream ").num(e.owner_stream).str(")");
        proto_item_set_generated(proto_tree_add_none_format(et, hf.evidence, tvb, 0, 0, "%s", w.c_str()));
    }
}

void add_fields(proto_tree* t, tvbuff_t* tvb, packet_info* pinfo, const View& v) {
    if (v.provisional) return add_provisional_fields(t, tvb, pinfo, v);
    const Flow& self = *v.self;
    const Flow& p = *v.proxy;
    const bool on_proxy_leg = &self == &p;
    add_str(t, tvb, hf.leg, v.leg);
    add_str(t, tvb, hf.method, method_name(p.first_method()));
    if (on_proxy_leg || v.pairing == Pairing::Unique) add_uint(t, tvb, hf.tunnel_stream, p.stream);
    if (v.relay && (!on_proxy_leg || v.pairing == Pairing::Unique)) add_uint(t, tvb, hf.relay_stream, v.relay->stream);
    if (on_proxy_leg || v.pairing == Pairing::Unique) {
        add_uint(t, tvb, hf.connect_in, p.request_frame);
        if (p.response_frame) add_uint(t, tvb, hf.response_in, p.response_frame);
    }
    if (v.relay) add_uint(t, tvb, hf.relay_in, v.relay->first_frame);
    add_parties(t, tvb, p);
    add_target(t, tvb, p, v.target_addr);
    add_str(t, tvb, hf.status, status_name(v.status));
    add_str(t, tvb, hf.outcome, outcome_name(v.outcome));
    // A SOCKS grant is code 0: show the code whenever the proxy answered with one.
    if (p.response_frame && (p.status_code || is_socks(p.method))) add_uint(t, tvb, hf.status_code, p.status_code);
    // Through a tunnel, any SMTP dialogue; in an absolute-URI request, SMTP
    // commands in the body (a mail server's banner alone does not count).
    add_bool(t, tvb, hf.smtp,
             p.smtp && (relays_verbatim(p.first_method()) ? p.smtp->smtp_seen() : p.smtp->client_smtp()));
    add_str(t, tvb, hf.pairing, pairing_name(v.pairing));
    for (StreamId s : v.relay_candidates) add_uint(t, tvb, hf.relay_candidate, s);
    for (StreamId s : v.tunnel_candidates) add_uint(t, tvb, hf.tunnel_candidate, s);
    if (!v.chain.empty()) {
        add_uint(t, tvb, hf.chain_length, static_cast<std::uint32_t>(v.chain.size()));
        for (const auto& c : v.chain) {
            add_str(t, tvb, hf.chain_proxy, c.proxy.c_str());
            add_str(t, tvb, hf.chain_method, method_name(c.method));
        }
        for (const Flow* leg : v.chain_legs) add_uint(t, tvb, hf.chain_stream, leg->stream);
    }
    if (v.reaction) add_str(t, tvb, hf.reaction, v.reaction);
    if (p.proxy_auth) add_bool(t, tvb, hf.proxy_auth, true);
    if (p.malformed) add_bool(t, tvb, hf.malformed, true);
    if (v.smtp) render_envelope(t, tvb, *v.smtp);
    if (proto_field_is_referenced(t, hf.line)) render_lines(t, tvb, self, pinfo->num);
    if (proto_field_is_referenced(t, hf.filter)) {
        char filter[1024];
        TextWriter w(filter, sizeof filter);
        write_filter(w, v);
        add_str(t, tvb, hf.filter, w.c_str());
    }
    // On the request frame and on a relay leg's first frame (Request in,
    // Relay in lead there): a line per candidate on every frame of every
    // leg would cost more than the rest of the frame's rendering.
    const Flow* asked = v.last_proxy ? v.last_proxy : &p;
    if (PTREE_DATA(t)->visible && (pinfo->num == asked->request_frame || pinfo->num == p.request_frame ||
                                   (self.role == Role::Relay && pinfo->num == self.first_frame)))
        add_evidence(t, tvb, v);
}

// The frame's contribution to the statistics: the incident once (on its
// request frame, or where SMTP showed that a tunnel to another port is one),
// and the recipients and messages the frame carried, counted on the leg that
// sees the mail server's answers: the tunnel, or for absolute-URI relay the
// relay leg. In a single pass an incident not yet final is counted as
// "tentative", and moved to its leg and outcome on the frame where it
// became final (finality.cpp); it stays tentative if it never did.
void tap_frame(packet_info* pinfo, const View& v, const Flow& self, std::uint16_t ev, bool complete) {
    const Flow& p = *v.proxy;
    const bool on_proxy_leg = &self == &p;
    TapRecord r{};
    if (on_proxy_leg && (((ev & kEvRequest) && p.mail_port && pinfo->num == p.target_frame) ||
                         ((ev & kEvSmtpFirst) && !p.mail_port))) {
        r.incidents = 1;
        (v.provisional ? r.tentative : r.judged) = 1;
    } else if (!complete && !v.provisional && p.final_frame == pinfo->num) {
        // Became final here, after its request frame was counted tentative.
        r.tentative = -1;
        r.judged = 1;
    }
    if (self.smtp && on_proxy_leg == relays_verbatim(p.method)) {
        FrameCounts c = self.smtp->counts(pinfo->num);
        r.rcpts = c.rcpts;
        r.messages = c.messages;
    }
    if (!r.incidents && !r.judged && !r.rcpts && !r.messages) return;
    char buf[300];
    fmt_addr(buf, sizeof buf, p.client.addr);
    r.client = wmem_strdup(pinfo->pool, buf);
    fmt_endpoint(buf, sizeof buf, p.server);
    r.proxy = wmem_strdup(pinfo->pool, buf);
    fmt_target(buf, sizeof buf, p);
    r.target = wmem_strdup(pinfo->pool, buf);
    r.leg = v.status == Status::Refused ? "attempt" : "tunnel";
    r.outcome = outcome_name(v.outcome);
    r.method = method_name(p.first_method());
    queue_stats(pinfo, r);
}

}  // namespace

void render(tvbuff_t* tvb, packet_info* pinfo, proto_tree* tree, const FrameNote* n, bool complete) {
    // Nobody looks at this frame's tree, columns, expert items or statistics
    // (e.g. tshark -q -z conv,tcp): nothing to do.
    const bool experts = wanted.expert_tap >= 0 && have_tap_listener(wanted.expert_tap);
    if (!tree && !pinfo->cinfo && !experts && !stats_wanted()) return;
    if (pinfo->num == engine->notes_overflow_frame())
        expert_add_info_format(pinfo, nullptr, &ei.table_full,
                               "Frames from here on are not annotated: limit of %zu frames reached",
                               engine->config().max_frame_notes);
    if (!n) return;
    if ((n->events & kEvTableFull) && n->flow == kNone) {
        expert_add_info_format(pinfo, nullptr, &ei.table_full,
                               "Connection not tracked: flow table full (%zu connections)",
                               engine->config().max_flows);
    }
    if (n->events & kEvCapped)
        for (std::size_t c = 0; c < static_cast<std::size_t>(Cap::Count); ++c)
            if (engine->cap_frame(static_cast<Cap>(c)) == pinfo->num)
                expert_add_info_format(pinfo, nullptr, &ei.capped, "Limit reached: %s",
                                       cap_text(static_cast<Cap>(c)));
    static View v;  // static: see the note at the top of this file
    // Fields are added to a displayed tree, or to a hidden one when a filter,
    // -e or a colouring rule refers to one of them; expert items stand on
    // event frames. Elsewhere the candidate lists, chain and streams are not
    // worked out.
    const bool visible = tree && PTREE_DATA(tree)->visible;
    const bool fields = tree && (visible || subtree_referenced());
    v.detail = fields || n->events;
    try {
        engine->view_into(*n, v, complete);
    } catch (...) {
        return;
    }
    if (!v.suspect || !v.proxy) return;
    const Flow& self = *v.self;
    const Flow& p = *v.proxy;
    const bool on_proxy_leg = &self == &p;
    char text[512], a[kEndpointLen], b[300];

    // The Info tag says what the fields say: tentative until final, else the
    // leg and what the mail server did.
    if (v.provisional)
        col_append_fstr(pinfo->cinfo, COL_INFO, " [SMTP-over-HTTP %s, tentative]", *v.leg ? v.leg : "request");
    else
        col_append_fstr(pinfo->cinfo, COL_INFO, " [SMTP-over-HTTP %s, mail %s]", v.leg, outcome_name(v.outcome));

    // Text is formatted only where something reads it: a filter (-Y, colouring
    // rules) builds a tree that is never displayed, and there only the fields
    // it refers to are kept.
    proto_item* ti = proto_tree_add_item(tree, hf.proto, tvb, 0, 0, ENC_NA);
    if (visible) {
        summarise(text, sizeof text, v);
        proto_item_set_text(ti, "SMTP-over-HTTP: %s", text);
    }
    proto_tree* t = proto_item_add_subtree(ti, ett_soh);

    // A tree nobody displays keeps only the fields something refers to; a
    // filter on the protocol alone (-Y smtp-over-http) needs none of them.
    if (t && fields) add_fields(t, tvb, pinfo, v);

    // Expert items, added even without a tree so -z expert, the dialog and the
    // status bar see them. They stand on a few event frames per incident only.
    const std::uint16_t ev = n->events;
    if (stats_wanted()) tap_frame(pinfo, v, self, ev, complete);
    // The mail server's acceptance of a message, on the leg that carries its
    // replies (RFC 5321 §4.1.1.4: 250 after the data's final dot).
    if (self.smtp && on_proxy_leg == relays_verbatim(p.method) && self.smtp->counts(pinfo->num).messages) {
        fmt_target(b, sizeof b, p);
        fmt_endpoint(a, sizeof a, p.server);
        expert_add_info_format(pinfo, ti, &ei.mail_accepted, "Mail server %s accepted a message relayed by proxy %s",
                               b, a);
    }
    if (!ev) return;
    fmt_target(b, sizeof b, p);
    fmt_endpoint(a, sizeof a, p.server);
    if (on_proxy_leg && (ev & kEvRequest) && p.mail_port && pinfo->num == p.target_frame) {
        if (p.via.empty())
            expert_add_info_format(pinfo, ti, &ei.connect_mail_port, "Proxy %s asked (%s) to connect to mail port: %s",
                                   a, method_name(p.method), b);
        else
            expert_add_info_format(pinfo, ti, &ei.connect_mail_port,
                                   "Proxy %s:%u asked (%s), through the tunnel via proxy %s, to connect to mail port: %s",
                                   p.via.back().host.c_str(), p.via.back().port, method_name(p.method), a, b);
    }
    if (on_proxy_leg && (ev & kEvMalformed))
        expert_add_info_format(pinfo, ti, &ei.malformed, "Proxy request line is not well-formed HTTP");
    // As frames go by, a refusal of a request relayed verbatim is final: such
    // a proxy did not connect (an absolute-URI relay's may still turn out
    // to have, see outcome.cpp).
    if (on_proxy_leg && (ev & kEvResponse) && v.status == Status::Refused &&
        (!v.provisional || relays_verbatim(p.method)))
        expert_add_info_format(pinfo, ti, &ei.refused, "Proxy %s refused to connect to %s (status %u)", a, b,
                               p.status_code);
    if (on_proxy_leg && (ev & kEvRequest) && v.pairing == Pairing::Ambiguous)
        expert_add_info_format(pinfo, ti, &ei.ambiguous, "Relay leg cannot be told apart: %u candidate streams",
                               static_cast<unsigned>(v.relay_candidates.size()));
    if (on_proxy_leg && (ev & kEvSmtpFirst)) {
        if (relays_verbatim(p.first_method()))
            expert_add_info_format(pinfo, ti, &ei.smtp_in_tunnel, "SMTP dialogue inside the tunnel to %s", b);
        else if (p.smtp && p.smtp->client_smtp())  // not for a mail server's banner alone
            expert_add_info_format(pinfo, ti, &ei.smtp_in_tunnel, "SMTP commands in the request body for %s", b);
    }
    if (!on_proxy_leg && (ev & kEvRelayFirst) && self.hop) {
        fmt_addr(a, sizeof a, self.client.addr);
        fmt_endpoint(b, sizeof b, self.server);
        expert_add_info_format(pinfo, ti, &ei.chained, "Proxy chain: proxy %s passes tunnel stream %u on to proxy %s",
                               a, p.stream, b);
    } else if (!on_proxy_leg && (ev & kEvRelayFirst)) {
        fmt_addr(a, sizeof a, self.client.addr);
        if (v.pairing == Pairing::Unique)
            expert_add_info_format(pinfo, ti, &ei.relayed, "Relay leg: proxy %s connects to %s for tunnel stream %u",
                                   a, b, p.stream);
        else
            expert_add_info_format(pinfo, ti, &ei.relayed,
                                   "Relay leg: proxy %s connects to %s for one of %u tunnels", a, b,
                                   static_cast<unsigned>(v.tunnel_candidates.size()));
    }
    if (!on_proxy_leg && (ev & kEvServerDropped) && v.reaction && std::strcmp(v.reaction, "dropped") == 0)
        expert_add_info_format(pinfo, ti, &ei.server_dropped,
                               "Mail server hung up on the HTTP request line: no SMTP command of the body was answered");
    if (!on_proxy_leg && (ev & kEvCandidatesCapped))
        expert_add_info_format(pinfo, ti, &ei.ambiguous, "Too many relay candidates: list capped at %zu",
                               engine->config().max_candidates);
    if (ev & kEvStartTls)
        expert_add_info(pinfo, ti, &ei.starttls);
    if (ev & kEvEncrypted)
        expert_add_info(pinfo, ti, &ei.encrypted);
    if (ev & kEvGap)
        expert_add_info(pinfo, ti, &ei.gap);
    if (ev & kEvEvicted)
        expert_add_info_format(pinfo, ti, &ei.evicted,
                               "Tracking state evicted to respect the memory cap (%zu live connections)",
                               engine->config().max_live_flows);
}

}  // namespace soh::glue
