// Shared state of the epan glue: registered ids and the engine instance.
// Only this layer sees Wireshark types; the engine sees only plain values.
#pragma once

#include <epan/expert.h>
#include <epan/packet.h>

#include "correlator.h"
#include "stream_cache.h"

namespace soh::glue {

struct Fields {
    int proto = -1;
    int leg = -1, method = -1, tunnel_stream = -1, relay_stream = -1;
    int connect_in = -1, response_in = -1, relay_in = -1;
    int client = -1, proxy = -1;
    int target_host = -1, target_port = -1, target_ip = -1, target_ipv6 = -1;
    int status = -1, status_code = -1, smtp = -1, pairing = -1;
    int relay_candidate = -1, tunnel_candidate = -1;
    int helo = -1, mail_from = -1, rcpt_to = -1, messages = -1, rcpt_count = -1;
    int mail_from_count = -1, rcpt_accepted = -1, starttls = -1, auth = -1, greeting = -1;
    int proxy_auth = -1, malformed = -1, line = -1;
    int chain_length = -1, chain_proxy = -1, chain_method = -1, chain_stream = -1, reaction = -1;
    int outcome = -1, filter = -1, evidence = -1;
};

struct Experts {
    expert_field connect_mail_port = EI_INIT;
    expert_field smtp_in_tunnel = EI_INIT;
    expert_field relayed = EI_INIT;
    expert_field refused = EI_INIT;
    expert_field ambiguous = EI_INIT;
    expert_field starttls = EI_INIT;
    expert_field encrypted = EI_INIT;
    expert_field malformed = EI_INIT;
    expert_field gap = EI_INIT;
    expert_field evicted = EI_INIT;
    expert_field table_full = EI_INIT;
    expert_field chained = EI_INIT;
    expert_field server_dropped = EI_INIT;
    expert_field mail_accepted = EI_INIT;
    expert_field capped = EI_INIT;
};

// Other protocols and taps the glue refers to.
struct Wanted {
    int proto_tcp = -1;
    int expert_tap = -1;
};

extern Fields hf;
extern Experts ei;
extern Wanted wanted;
extern int ett_soh;
extern int ett_envelope;
extern int ett_evidence;
extern Correlator* engine;    // one per capture file, between init and cleanup
extern StreamCache* streams;  // likewise
extern bool file_enabled;     // both exist and the protocol is enabled (init_file)

// Whether anything refers to a field of our subtree (register.cpp).
bool subtree_referenced();

// What feeds the engine is in observe.h.
// Adds our subtree, expert items and Info tag for this frame, from its note
// (null: the frame has none, but may carry the notes-overflow item).
// complete: a later pass, after the whole capture was observed.
void render(tvbuff_t* tvb, packet_info* pinfo, proto_tree* tree, const FrameNote* n, bool complete);

}  // namespace soh::glue
