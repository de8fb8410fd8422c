// What the correlator knows about one TCP connection it tracks: a proxy leg
// (client → proxy, carrying a proxy request) or a relay candidate (a
// connection to a requested target). Read-only for the renderer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "line_assembler.h"
#include "method.h"
#include "smtp_session.h"
#include "socks_parse.h"
#include "stream_reassembler.h"
#include "types.h"

namespace soh {

inline constexpr std::uint32_t kNone = 0xFFFFFFFFu;

enum class Role : std::uint8_t { Proxy, Relay };


enum class Status : std::uint8_t { NoResponse, Established, Refused };
const char* status_name(Status s);

// What the mail server did with what the proxy relayed (outcome.cpp).
enum class Outcome : std::uint8_t {
    MessagesAccepted,    // at least one message accepted for delivery
    RecipientsAccepted,  // recipients accepted, no message completed
    Rejected,            // recipients or messages offered, none accepted
    NoMail,              // the mail server answered; nothing was offered to it
    Dropped,             // it hung up on the HTTP lines of an absolute-URI relay
    NotReached,          // the relay leg got no answer from a mail server
    Unknown,             // no leg shows the mail server's answers
};
const char* outcome_name(Outcome o);

// A request that asked a proxy to reach the next proxy of a chain the client
// builds itself (its tunnel then carried the next request).
struct Hop {
    Method method = Method::Connect;
    std::string host;  // as written
    std::uint16_t port = 0;
};

// Evidence linking a proxy leg to one relay candidate.
struct Link {
    std::uint32_t relay = kNone;  // flow index
    std::uint8_t checked_client = 0;
    std::uint8_t checked_server = 0;
    std::uint8_t matched = 0;  // lines found equal on both legs
    bool mismatch = false;     // content or ordering proves they are unrelated
};

// Parser state, dropped when the connection ends or the memory cap evicts it.
struct LiveState {
    StreamReassembler dir[2];  // 0: client → server, 1: server → client
    LineAssembler http[2]{LineAssembler(8192), LineAssembler(8192)};
    std::string socks[2];      // handshake bytes buffered so far
    std::uint64_t body_left = 0;
    std::uint8_t client_phase = 0;
    std::uint8_t server_phase = 0;
    bool fin[2] = {false, false};
    bool interim = false;  // inside a 1xx response's headers
    bool tunnel_started = false;  // bytes passed through the tunnel (either way)
};

struct Flow {
    StreamId stream = 0;
    Role role = Role::Proxy;
    Endpoint client;  // the side that opened the connection / sent the request
    Endpoint server;
    FrameNum first_frame = 0;
    double first_time = 0;
    // Frames of the connection before first_frame that belong to this flow:
    // from 0 (its handshake) for the connection's first flow, none (its
    // first frame) for a later request on it; and the flow of the request
    // before it on the same connection (kNone: the first).
    FrameNum covers_from = 0;
    std::uint32_t prev_on_stream = 0xFFFFFFFFu;
    FrameNum last_frame = 0;

    // Proxy leg: the request and its outcome. In a chain the client builds,
    // `via` holds the earlier requests and method/target the innermost one.
    Method method = Method::Connect;
    std::vector<Hop> via;
    std::string target_host;  // as written
    std::uint16_t target_port = 0;
    bool target_literal = false;
    Addr target_addr;  // the literal target, parsed once
    // A host-name target's address from the capture's DNS, and the answer's
    // frame (evidence an export must keep: it shows as leg "dns").
    Addr resolved_addr;
    FrameNum dns_frame = 0;
    bool mail_port = false;
    bool proxy_auth = false;   // the request carried credentials for the proxy
    bool malformed = false;    // the request line was not well-formed HTTP
    FrameNum request_frame = 0;  // where the incident starts
    FrameNum target_frame = 0;   // the request naming the current target
    double request_time = 0;
    FrameNum response_frame = 0;
    double response_time = 0;
    Status status = Status::NoResponse;
    std::uint16_t status_code = 0;
    bool benign = false;  // decided: not SMTP, target not a mail port
    bool tunnel_data = false;  // bytes went through the tunnel: no request can follow
    std::vector<Link> links;
    // Links before this index are all known to mismatch (mismatch is never
    // undone): counting survivors and comparing lines start here.
    mutable std::uint32_t live_links_from = 0;
    std::size_t first_live_link() const {
        while (live_links_from < links.size() && links[live_links_from].mismatch) ++live_links_from;
        return live_links_from;
    }
    std::uint32_t paired = kNone;  // relay flow index when unique
    bool candidates_capped = false;
    bool release_pending = false;

    // Relay candidate: the proxy legs it may belong to, with the index of the
    // Link for it in each (links are never removed, so indices stay valid).
    // kDeadLink marks a link known to mismatch: it never survives again, and
    // the relay's lines skip it without reading that proxy leg.
    std::vector<std::uint32_t> tunnels;
    std::vector<std::uint32_t> tunnel_links;
    static constexpr std::uint32_t kDeadLink = 0x80000000u;
    std::uint32_t link_index(std::size_t i) const { return tunnel_links[i] & ~kDeadLink; }
    bool link_dead(std::size_t i) const { return (tunnel_links[i] & kDeadLink) != 0; }
    std::uint32_t owner = kNone;
    bool hop = false;        // a relay candidate that turned out to be a proxy request itself
    bool hop_only = false;   // a candidate only as the next proxy of a chain, not by target
    bool server_closed_first = false;  // the server side ended the connection first
    bool closed = false;
    bool evicted = false;
    std::size_t live_bytes = 0;  // parser memory counted against the budget
    bool eviction_noted = false;

    std::unique_ptr<SmtpSession> smtp;
    std::unique_ptr<LiveState> live;

    // Single pass (finality.cpp): set once nothing later in the capture can
    // change this proxy leg's incident, and the frame where that was found.
    mutable bool final = false;
    mutable FrameNum final_frame = 0;
    mutable std::uint32_t walk_mark = 0;  // component_final's visited mark

    // How the client first asked: the outermost request of a chain it builds.
    Method first_method() const { return via.empty() ? method : via.front().method; }

    bool suspect_proxy() const {
        return role == Role::Proxy && request_frame != 0 &&
               (mail_port || (smtp && smtp->smtp_seen()));
    }
};

}  // namespace soh
