// Registration of the smtp-over-http protocol: fields, expert items,
// preferences, the post-dissector and its per-file init/cleanup.
//
// Two-pass model (see correlator.h): the engine is fed on the first pass only
// (!PINFO_FD_VISITED), with the TCP segments and DNS answers Wireshark's IP
// layer hands on (observe.cpp), so it asks Wireshark for no fields and
// tshark builds no protocol tree on our account; the post-dissector then
// renders each frame from the engine's state, on every pass.
#include <epan/prefs.h>
#include <epan/range.h>
#include <epan/tap.h>

#include <algorithm>
#include <new>

#include "glue.h"
#include "observe.h"
#include "stats.h"
#include "soh_register.h"
#include "ws_compat.h"

namespace soh::glue {

Fields hf;
Experts ei;
Wanted wanted;
int ett_soh = -1;
int ett_envelope = -1;
int ett_evidence = -1;
Correlator* engine = nullptr;
StreamCache* streams = nullptr;
bool file_enabled = false;

namespace {

dissector_handle_t handle;
protocol_t* protocol = nullptr;
range_t* pref_mail_ports = nullptr;
guint pref_window_s = 30;
guint pref_slack_ms = 50;
PrefBool pref_content = true;
const hf_register_info* subtree_fields = nullptr;  // every field but the protocol's own
std::size_t subtree_field_count = 0;

void init_file() {
    Config cfg;
    cfg.mail_ports.clear();
    // Each of the preference's ranges in turn (range.h): not a test of all
    // 65535 ports, at every file opened. Overlaps only repeat a port.
    for (guint i = 0; pref_mail_ports && i < pref_mail_ports->nranges; ++i) {
        const range_admin_t& r = pref_mail_ports->ranges[i];
        for (guint32 p = std::max<guint32>(r.low, 1); p <= std::min<guint32>(r.high, 65535); ++p)
            cfg.mail_ports.push_back(static_cast<std::uint16_t>(p));
    }
    cfg.pair_window = pref_window_s;
    cfg.slack = pref_slack_ms / 1000.0;
    cfg.content_detection = pref_content != 0;
    delete engine;
    engine = new (std::nothrow) Correlator(std::move(cfg));
    delete streams;
    streams = new (std::nothrow) StreamCache();

    wanted.proto_tcp = proto_get_id_by_filter_name("tcp");
    wanted.expert_tap = find_tap_id("expert");
    // The handle carries no protocol (see soh_register_protocol), so the
    // "enabled" check Wireshark would make per frame is made here, once:
    // enabling or disabling a protocol makes Wireshark redissect, which
    // starts with the init routines (epan_new → init_dissection).
    file_enabled = engine && streams && proto_is_protocol_enabled(protocol);
    use_shims(file_enabled);
}

void cleanup_file() {
    file_enabled = false;
    use_shims(false);
    delete engine;
    engine = nullptr;
    delete streams;
    streams = nullptr;
}

// Once a field that a filter or -e refers to has been added to a tree, epan
// keeps an index of such fields in the tree's data
// (tree_data_t.interesting_hfids), and proto_tree_reset only empties it:
// every later frame pays for walking and clearing it, and the filter for a
// lookup in it. When our fields are the ones that matched, that cost on
// every frame is ours. So an index still empty when the post-dissector runs
// (no referenced field on this frame so far) is freed: that is the state
// proto_tree_create_root starts from, and epan builds the index again when
// a referenced field is added.
inline void drop_empty_field_index(proto_tree* tree) {
    GHashTable*& index = PTREE_DATA(tree)->interesting_hfids;
    if (index && g_hash_table_size(index) == 0) {
        g_hash_table_destroy(index);
        index = nullptr;
    }
}

// A frame that may have a note: any frame of a later pass, few of the first.
// On a later pass the capture is complete: a frame without a note that
// belongs to a leg (its handshake before the request, a segment taken while
// the stream looked of no interest) is shown as part of it.
[[gnu::noinline]] int dissect_noted(tvbuff_t* tvb, packet_info* pinfo, proto_tree* tree) {
    const bool complete = PINFO_FD_VISITED(pinfo);
    const FrameNote* n = engine->note(pinfo->num);
    FrameNote leg_frame;
    if (!n && complete) {
        leg_frame.frame = pinfo->num;
        leg_frame.flow = engine->frame_flow(pinfo->num);
        if (leg_frame.flow != kNone) n = &leg_frame;
    }
    if (!n && pinfo->num != engine->notes_overflow_frame()) {
        if (tree) drop_empty_field_index(tree);
        return 0;
    }
    const char* saved = pinfo->current_proto;
    pinfo->current_proto = "SMTP-over-HTTP";  // names us in expert items and errors
    render(tvb, pinfo, tree, n, complete);
    pinfo->current_proto = saved;
    return 0;
}

// Runs on every frame, after every other dissector (and so after the
// frame's segments were observed): the common case (the first pass, past
// the newest note) is a few lines of code in .text.hot.
[[gnu::hot]] int dissect(tvbuff_t* tvb, packet_info* pinfo, proto_tree* tree, void*) {
    if (!file_enabled) return 0;
    // Decrypted TLS adds a data source; most frames have only their own,
    // and only the first pass feeds the engine.
    const bool visited = PINFO_FD_VISITED(pinfo);
    if (__builtin_expect(pinfo->data_src && pinfo->data_src->next, 0) && !visited) observe_decrypted(pinfo);
    if (__builtin_expect(!engine->past_notes(pinfo->num) || pinfo->num == engine->notes_overflow_frame(), 0) ||
        (visited && engine->frame_flow(pinfo->num) != kNone))
        return dissect_noted(tvb, pinfo, tree);
    if (tree) drop_empty_field_index(tree);
    return 0;
}

}  // namespace

// Wireshark keeps the header_field_info of a registered field where it was
// registered (which is why registration arrays are static) and marks it
// there when a filter, colouring rule, -e or tap refers to it
// (proto_tree_prime_with_hfid), so reading our own array is enough.
bool subtree_referenced() {
    for (std::size_t i = 0; i < subtree_field_count; ++i)
        if (subtree_fields[i].hfinfo.ref_type != HF_REF_TYPE_NONE) return true;
    return false;
}

}  // namespace soh::glue

using namespace soh::glue;

#define STR(id, name, abbrev, blurb) \
    { &hf.id, { name, "smtp-over-http." abbrev, FT_STRING, BASE_NONE, NULL, 0x0, blurb, HFILL } }
#define UINT(id, name, abbrev, type, blurb) \
    { &hf.id, { name, "smtp-over-http." abbrev, type, BASE_DEC, NULL, 0x0, blurb, HFILL } }
#define BOOL(id, name, abbrev, blurb) \
    { &hf.id, { name, "smtp-over-http." abbrev, FT_BOOLEAN, BASE_NONE, NULL, 0x0, blurb, HFILL } }
#define FRAME(id, name, abbrev, kind, blurb) \
    { &hf.id, { name, "smtp-over-http." abbrev, FT_FRAMENUM, BASE_NONE, FRAMENUM_TYPE(kind), 0x0, blurb, HFILL } }

extern "C" void soh_register_protocol(void) {
    static hf_register_info fields[] = {
        STR(leg, "Leg", "leg",
            "tunnel (client to proxy), hop (proxy to next proxy of a chain), relay (proxy to target), "
            "attempt (refused request) or dns (the DNS answer that resolved the target)"),
        STR(method, "Method", "method", "How the proxy was asked to connect: CONNECT, POST, SOCKS5, ..."),
        UINT(tunnel_stream, "Tunnel stream", "tunnel.stream", FT_UINT32, "tcp.stream of the client-to-proxy leg"),
        UINT(relay_stream, "Relay stream", "relay.stream", FT_UINT32, "tcp.stream of the paired proxy-to-target leg"),
        FRAME(connect_in, "Request in", "connect_in", FT_FRAMENUM_REQUEST, "Frame of the proxy request"),
        FRAME(response_in, "Response in", "response_in", FT_FRAMENUM_RESPONSE, "Frame of the proxy's answer"),
        FRAME(relay_in, "Relay in", "relay_in", FT_FRAMENUM_NONE, "First frame of the paired relay leg"),
        STR(client, "Client", "client", "Who asked the proxy (address:port)"),
        STR(proxy, "Proxy", "proxy", "The proxy that was asked (address:port)"),
        STR(target_host, "Target host", "target.host", "Target as written in the request"),
        UINT(target_port, "Target port", "target.port", FT_UINT16, "Target port"),
        { &hf.target_ip, { "Target address", "smtp-over-http.target.ip", FT_IPv4, BASE_NONE, NULL, 0x0,
            "Target IPv4 address (literal, resolved through DNS in the capture, or seen on the relay leg)", HFILL } },
        { &hf.target_ipv6, { "Target address", "smtp-over-http.target.ipv6", FT_IPv6, BASE_NONE, NULL, 0x0,
            "Target IPv6 address (literal, resolved through DNS in the capture, or seen on the relay leg)", HFILL } },
        STR(status, "Status", "status",
            "established (the proxy connected: a 2xx answer, or the relay leg shows the mail server answering), "
            "refused or no-response"),
        UINT(status_code, "Status code", "status_code", FT_UINT16, "HTTP status code, or SOCKS reply code"),
        BOOL(smtp, "SMTP inside", "smtp", "An SMTP dialogue was seen inside the tunnel"),
        STR(pairing, "Pairing", "pairing",
            "unique, ambiguous or none; tentative in a single pass until no later frame can change it"),
        UINT(relay_candidate, "Relay candidate", "relay.candidate", FT_UINT32, "Candidate relay stream when ambiguous"),
        UINT(tunnel_candidate, "Tunnel candidate", "tunnel.candidate", FT_UINT32, "Candidate tunnel stream when ambiguous"),
        STR(helo, "HELO", "smtp.helo", "EHLO/HELO argument"),
        STR(mail_from, "MAIL FROM", "smtp.mail_from", "Envelope sender"),
        STR(rcpt_to, "RCPT TO", "smtp.rcpt_to", "Envelope recipient"),
        UINT(messages, "Messages", "smtp.messages", FT_UINT32, "Messages accepted for delivery (DATA completed)"),
        UINT(rcpt_count, "Recipients", "smtp.rcpt_count", FT_UINT32, "RCPT TO commands"),
        UINT(mail_from_count, "Senders", "smtp.mail_from_count", FT_UINT32, "MAIL FROM commands"),
        UINT(rcpt_accepted, "Recipients accepted", "smtp.rcpt_accepted", FT_UINT32, "RCPT TO answered 2xx"),
        BOOL(starttls, "STARTTLS", "smtp.starttls", "TLS was started: the rest of the dialogue is opaque"),
        STR(auth, "AUTH mechanism", "smtp.auth", "SMTP AUTH mechanism used"),
        STR(greeting, "Greeting", "smtp.greeting", "First line of the mail server's greeting"),
        BOOL(proxy_auth, "Proxy credentials", "proxy_auth", "The request carried Proxy-Authorization"),
        BOOL(malformed, "Malformed request", "malformed", "The request line is not well-formed HTTP"),
        STR(line, "SMTP line", "line", "SMTP command or reply in this frame, C: client, S: server"),
        UINT(chain_length, "Proxies in chain", "chain.length", FT_UINT32, "Number of proxies the mail went through"),
        STR(chain_proxy, "Chain proxy", "chain.proxy", "A proxy of the chain, in order (address:port, or host:port as requested)"),
        STR(chain_method, "Chain method", "chain.method", "How that proxy of the chain was asked"),
        UINT(chain_stream, "Chain stream", "chain.stream", FT_UINT32, "tcp.stream of each leg of the chain, in order"),
        STR(reaction, "Mail server reaction", "relay.reaction",
            "Absolute-URI relay: rejected-lines (the mail server answered the HTTP lines with errors and read on), "
            "dropped (it hung up on them), none"),
        STR(outcome, "Outcome", "outcome",
            "What the mail server did: messages-accepted, recipients-accepted, rejected, no-mail (nothing offered), "
            "dropped (hung up on the HTTP lines), not-reached (the relay leg got no answer), unknown (no leg shows its answers)"),
        STR(filter, "Incident filter", "filter",
            "Display filter for every leg of the incident and the DNS answers it rests on"),
        { &hf.evidence, { "Pairing evidence", "smtp-over-http.pairing.evidence", FT_NONE, BASE_NONE, NULL, 0x0,
            "Why each candidate relay leg was kept or ruled out (text in the tree, no value)", HFILL } },
    };
    static gint* etts[] = {&ett_soh, &ett_envelope, &ett_evidence};
    static ei_register_info experts[] = {
        { &ei.connect_mail_port, { "smtp-over-http.connect_mail_port", PI_SECURITY, PI_WARN,
            "Proxy asked to connect to a mail port", EXPFILL } },
        { &ei.smtp_in_tunnel, { "smtp-over-http.smtp_in_tunnel", PI_SECURITY, PI_WARN,
            "SMTP dialogue inside a proxy tunnel", EXPFILL } },
        { &ei.relayed, { "smtp-over-http.relayed", PI_SECURITY, PI_WARN,
            "Proxy relays SMTP for a tunnel client", EXPFILL } },
        { &ei.refused, { "smtp-over-http.refused", PI_SECURITY, PI_NOTE,
            "Proxy refused to connect to a mail port", EXPFILL } },
        { &ei.ambiguous, { "smtp-over-http.ambiguous", PI_SEQUENCE, PI_NOTE,
            "Relay leg cannot be told apart", EXPFILL } },
        { &ei.starttls, { "smtp-over-http.starttls", PI_SECURITY, PI_NOTE,
            "STARTTLS: the rest of the SMTP dialogue is encrypted", EXPFILL } },
        { &ei.encrypted, { "smtp-over-http.encrypted", PI_SECURITY, PI_NOTE,
            "Tunnel content is TLS from its first byte", EXPFILL } },
        { &ei.malformed, { "smtp-over-http.malformed_request", PI_MALFORMED, PI_NOTE,
            "Proxy request line is not well-formed HTTP", EXPFILL } },
        { &ei.gap, { "smtp-over-http.gap", PI_SEQUENCE, PI_NOTE,
            "Bytes missing from the capture; parsing resynchronised", EXPFILL } },
        { &ei.evicted, { "smtp-over-http.evicted", PI_PROTOCOL, PI_NOTE,
            "Tracking state evicted to respect the memory cap", EXPFILL } },
        { &ei.chained, { "smtp-over-http.chained", PI_SECURITY, PI_WARN,
            "Proxy chain: the proxy passes the tunnel on to another proxy", EXPFILL } },
        { &ei.server_dropped, { "smtp-over-http.server_dropped", PI_SECURITY, PI_NOTE,
            "The mail server hung up on the HTTP request line of an absolute-URI relay", EXPFILL } },
        { &ei.mail_accepted, { "smtp-over-http.mail_accepted", PI_SECURITY, PI_WARN,
            "The mail server accepted a message the proxy relayed", EXPFILL } },
        { &ei.capped, { "smtp-over-http.capped", PI_PROTOCOL, PI_NOTE,
            "A tracking limit was reached: later data of that kind is dropped", EXPFILL } },
        { &ei.table_full, { "smtp-over-http.table_full", PI_PROTOCOL, PI_NOTE,
            "Connection not tracked: flow table full", EXPFILL } },
    };

    hf.proto = proto_register_protocol("SMTP over HTTP proxy", "SMTP-over-HTTP", "smtp-over-http");
    proto_register_field_array(hf.proto, fields, G_N_ELEMENTS(fields));
    subtree_fields = fields;
    subtree_field_count = G_N_ELEMENTS(fields);
    proto_register_subtree_array(etts, G_N_ELEMENTS(etts));
    expert_module_t* em = expert_register_protocol(hf.proto);
    expert_register_field_array(em, experts, G_N_ELEMENTS(experts));

    module_t* module = prefs_register_protocol(hf.proto, nullptr);
    range_convert_str(wmem_epan_scope(), &pref_mail_ports, "25,465,587,2525", 65535);
    prefs_register_range_preference(module, "mail_ports", "Mail ports",
                                    "A proxy request to one of these ports is flagged whatever happens next",
                                    &pref_mail_ports, 65535);
    prefs_register_uint_preference(module, "pair_window", "Pairing window (s)",
                                   "How long after a proxy request its relay leg may open", 10, &pref_window_s);
    prefs_register_uint_preference(module, "clock_slack_ms", "Clock slack (ms)",
                                   "Timing tolerance between the two legs when comparing them", 10,
                                   &pref_slack_ms);
    prefs_register_bool_preference(module, "content_detection", "Detect SMTP inside any tunnel",
                                   "Recognise SMTP from the bytes in tunnels to ports that are not mail ports",
                                   &pref_content);

    // A handle without a protocol: Wireshark then calls the post-dissector
    // without pushing and popping a protocol layer on every frame (which cost
    // more than our own work on benign frames). Our dissector never claims
    // bytes, so the layer was always popped again anyway.
    protocol = find_protocol_by_id(hf.proto);
    handle = create_dissector_handle_with_name_and_description(dissect, -1, "smtp-over-http", "SMTP-over-HTTP");
    register_stats_tap();
    register_init_routine(init_file);
    register_cleanup_routine(cleanup_file);
}

extern "C" void soh_register_handoff(void) {
    register_postdissector(handle);
    register_shims();
}

extern "C" void soh_register_stats(void) {
    register_stats_tree();
}
