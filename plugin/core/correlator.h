// The engine: takes plain observations of TCP segments and DNS answers, in
// capture order, and yields per-frame annotations of SMTP relayed through
// proxies. Deterministic, standard library only, no Wireshark types.
//
// Two-pass model: observations arrive once (Wireshark's first pass); every
// frame of a tracked connection gets a FrameNote. Rendering asks for the note
// of a frame and evaluates the incident from the state *at that time*: after
// the first pass that is the final state, so `tshark -2` and GUI
// re-dissection show everything, while a single pass shows what was known
// when the frame went by.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "flow.h"
#include "stream_table.h"
#include "types.h"

namespace soh {

struct Config {
    std::vector<std::uint16_t> mail_ports{25, 465, 587, 2525};
    double pair_window = 30.0;  // seconds after a request in which its relay may open
    double slack = 0.05;        // clock tolerance between the two legs, seconds
    bool content_detection = true;  // look for SMTP inside tunnels to any port
    bool hold_tunnels = true;       // such a tunnel gets a flow only once its first bytes may be SMTP (HeldTunnel)
    std::size_t max_flows = 200000;       // tracked connections, ever
    std::size_t max_live_flows = 20000;   // connections with parser state
    std::size_t max_live_bytes = 256u << 20;  // their buffers, in bytes
    std::size_t max_frame_notes = 8000000;
    std::size_t max_streams = 16u << 20;  // highest tcp.stream index tracked
    std::size_t max_dns_names = 65536;
    std::size_t max_candidates = 64;      // relay candidates per proxy leg, and proxy legs per relay
};

struct Segment {
    FrameNum frame = 0;
    double time = 0;
    StreamId stream = 0;
    Endpoint src;
    Endpoint dst;
    std::uint32_t seq = 0;
    std::uint16_t flags = 0;
    const std::uint8_t* data = nullptr;
    std::size_t len = 0;
};

// Per-frame facts worth an expert item.
enum Event : std::uint16_t {
    kEvRequest = 1u << 0,     // the proxy request
    kEvResponse = 1u << 1,    // the proxy's answer to it
    kEvSmtpFirst = 1u << 2,   // first SMTP line inside the tunnel
    kEvRelayFirst = 1u << 3,  // first frame of a relay leg
    kEvStartTls = 1u << 4,    // STARTTLS accepted: the rest is opaque
    kEvEncrypted = 1u << 5,   // tunnel content is TLS from its first byte
    kEvEvicted = 1u << 6,     // parser state dropped to respect the memory cap
    kEvTableFull = 1u << 7,   // connection not tracked: flow table full
    kEvGap = 1u << 8,         // bytes missing from the capture; parsing resynchronised
    kEvMalformed = 1u << 9,   // request line is not well-formed HTTP
    kEvCandidatesCapped = 1u << 10,
    kEvServerDropped = 1u << 11,  // a relay's mail server hung up after rejecting the HTTP lines
    kEvDns = 1u << 12,            // a DNS answer that resolved the target (a UDP frame, no leg)
    kEvCapped = 1u << 13,         // a limit was first reached here (Cap)
};

// Limits whose reaching would otherwise go unsaid: each is reported once,
// by an expert note on the frame where it was first reached.
enum class Cap : std::uint8_t {
    SmtpPending,    // pipelined SMTP commands awaiting replies (SmtpSession::kMaxPending)
    SmtpStamps,     // lines per direction kept for comparing the legs (kMaxStamps)
    SmtpNotes,      // SMTP lines kept for showing on their frames (kMaxNotes)
    SmtpCounted,    // frames with envelope growth kept for the statistics (kMaxCounted)
    SmtpListed,     // senders or recipients listed (kMaxListed)
    DnsNames,       // host names resolved (Config::max_dns_names)
    DnsAddrs,       // addresses kept per name (kMaxAddrsPerName)
    Streams,        // tcp.stream index (Config::max_streams)
    Watched,        // proxy connections watched for a later request (web_clients_)
    Handshakes,     // connections waiting for their first data (unclassified_)
    PendingRelays,  // possible relay legs waiting for their first data (pending_relays_)
    Settle,         // pairing changes followed through at one time (settle's budget)
    Count
};
const char* cap_text(Cap c);

struct FrameNote {
    FrameNum frame = 0;
    std::uint32_t flow = kNone;
    std::uint16_t events = 0;
};

// Tentative: a single pass, before the pairing is final (finality.cpp).
enum class Pairing : std::uint8_t { Unique, Ambiguous, None, Tentative };
const char* pairing_name(Pairing p);

// The incident a frame belongs to, as the renderer needs it.
struct View {
    // Asked by the caller: false when nothing reads the candidate lists, the
    // chain or the streams (no field shown or referenced, no expert item on
    // the frame), which are then left empty.
    bool detail = true;
    bool suspect = false;
    const char* leg = "";           // "tunnel", "relay", "hop", "attempt" or "dns"
    // A single pass, before nothing later can change the incident: only
    // what is already certain is set (status_known: leg, request and
    // answer), pairing is Tentative with the candidates so far, and there
    // is no relay, envelope, outcome, chain or filter.
    bool provisional = false;
    bool status_known = true;
    Status status = Status::NoResponse;  // the proxy's answer, as outcome.cpp reads it
    Outcome outcome = Outcome::Unknown;
    // The incident's streams (every leg, ambiguous candidates included) and
    // the DNS answers it rests on: the display filter that isolates it.
    std::vector<StreamId> streams;
    std::vector<FrameNum> dns_frames;
    const Flow* proxy = nullptr;    // the proxy leg (null for an ambiguous relay)
    const Flow* relay = nullptr;    // the paired relay leg (null when unpaired)
    const Flow* self = nullptr;     // the flow the frame is in
    Pairing pairing = Pairing::None;
    std::vector<StreamId> relay_candidates;   // on a proxy leg when ambiguous
    std::vector<StreamId> tunnel_candidates;  // on a relay leg when ambiguous
    const SmtpSession* smtp = nullptr;        // where the envelope comes from
    Addr target_addr;                         // resolved target, when known
    // Chains of proxies: the proxies in order, and the legs seen (first proxy
    // leg, hops, relay). Empty for a single proxy.
    struct ChainProxy {
        std::string proxy;  // "ip:port" or the host:port a request named
        Method method = Method::Connect;  // how that proxy was asked
    };
    std::vector<ChainProxy> chain;
    std::vector<const Flow*> chain_legs;
    const Flow* last_proxy = nullptr;  // the proxy leg whose relay is the mail server's
    // Absolute-URI relay: how the mail server took the HTTP lines
    // ("rejected-lines", "dropped", "none"); null otherwise.
    const char* reaction = nullptr;
};

// Why one relay candidate of a proxy leg was kept or ruled out (pairing.cpp).
struct CandidateEvidence {
    StreamId stream = 0;
    Endpoint server;
    bool kept = false;
    const char* address = "";  // how its address matched the request
    std::int64_t after_ms = 0;  // its first frame, after the request (negative: before, within the slack)
    std::uint32_t lines = 0;    // lines found equal on both legs
    const char* reason = "";    // why it was ruled out, or what keeps it from being the only one
    StreamId owner_stream = 0;  // the tunnel that took it, when reason says so
};

// How a relay leg's mail server reacted to an absolute-URI request.
const char* relay_reaction(const Flow& relay);

struct Counters {
    std::uint64_t segments = 0;
    std::uint64_t flows = 0;
    std::uint64_t evicted = 0;
    std::uint64_t untracked = 0;  // refused by the flow-table cap
    std::uint64_t notes_dropped = 0;
};

// Cache-line aligned: the members every frame reads share one line.
class alignas(64) Correlator {
public:
    explicit Correlator(Config cfg = {});

    void on_segment(const Segment& seg);
    // The fast path, for a segment of a stream the glue knows: true when it
    // needs no Segment at all. Either its stream was classified and will
    // never be looked at again; or it carries no data and its stream,
    // already seen, still waits for its first data (of those, only a SYN, a
    // client retransmitting or reusing the 4-tuple, is recorded; the SYN-ACK
    // is not, see classify); or it is a bare ACK of a tracked connection,
    // which only joins its flow, and that is recorded here as process would.
    // A bare ACK of a possible relay leg not yet decided (kSlotRelayPending)
    // or of a held tunnel (kSlotTunnelHeld) is kept as its frame number, for
    // the flow it may become; their other segments go to on_segment.
    // A segment with data of a watched proxy connection (kSlotProxyWeb) that
    // cannot start a request (an answer, a body: given `data`) needs no
    // Segment either: most segments of proxied web browsing.
    // Inline, only the test most frames stop at; the rest is out of line
    // (empty_segment), so that the per-frame code stays short.
    bool fast_path(StreamId stream, std::size_t len, std::uint16_t flags, FrameNum frame,
                   const std::uint8_t* data = nullptr) {
        if (__builtin_expect(frame < frame_stream_.size(), 1))
            frame_stream_[frame] = stream + 1;
        else
            note_stream(frame, stream);
        if (stream >= slots_.size()) return false;
        const std::uint32_t slot = slots_[stream];
        if (slot == kSlotIgnored) return true;
        if (len == 0) return empty_segment(slot, stream, flags, frame);
        return slot == kSlotProxyWeb && data && !starts_request(data, len);
    }
    // Plaintext of a TCP stream that Wireshark decrypted (TLS to an HTTPS
    // proxy, with the analyst's key log): seq counts the bytes of the
    // application data in the sender's direction from 0, flags are ignored.
    // A stream that its own bytes left unclassified (its ciphertext looked
    // benign) is read from then on as its plaintext, and its ciphertext
    // segments only give their frames, FIN and RST (decrypted_stream.cpp).
    // A stream already tracked from its own bytes keeps them: TLS inside a
    // tunnel stays opaque.
    void on_decrypted(const Segment& seg);
    // A DNS answer in `frame`: name (any case, optional trailing dot) resolves to addrs.
    void on_dns(std::string_view name, const std::vector<Addr>& addrs, FrameNum frame = 0);

    // Every pass asks frame after frame, so the answer is almost always at
    // the position where the previous search ended: that is checked inline
    // (this runs on every frame), anything else is a binary search.
    const FrameNote* note(FrameNum frame) const {
        // No note past the newest one: on the first pass, most frames stop
        // here (touching no note).
        if (frame > last_noted_) return nullptr;
        const std::size_t n = notes_.size(), i = note_hint_;
        if (i > n || (i < n && notes_[i].frame < frame) || (i > 0 && notes_[i - 1].frame >= frame))
            return note_search(frame);
        if (i == n || notes_[i].frame != frame) return nullptr;
        note_hint_ = i + 1;
        return &notes_[i];
    }
    // Whether no frame from this one on has a note yet: on the first pass,
    // most frames.
    bool past_notes(FrameNum frame) const { return frame > last_noted_; }
    // complete: the whole capture was observed (tshark -2's second pass, the
    // GUI after loading): the final state. Otherwise the state as of the
    // newest frame observed, of which only what is final is told.
    View view(const FrameNote& note, bool complete = true) const;
    // Same, reusing the caller's View (no allocation once its vectors have grown).
    void view_into(const FrameNote& note, View& out, bool complete = true) const;
    // The tracked connection a frame's TCP segment belonged to (kNone: none),
    // for frames without a note: the handshake before a proxy request, and
    // segments taken while the stream looked of no interest. Complete legs.
    std::uint32_t frame_flow(FrameNum frame) const {
        if (frame >= frame_stream_.size() || frame_stream_[frame] == 0) return kNone;
        const StreamId s = frame_stream_[frame] - 1;
        const std::uint32_t slot = s < slots_.size() ? slots_[s] : kSlotUnseen;
        return slot >= kSlotBase && slot != kSlotHandled ? flow_at(slot - kSlotBase, frame) : kNone;
    }
    // The single-pass frame at which an incident (its proxy leg) became
    // final, once view_into found it so; 0 before.
    FrameNum final_frame(const Flow& proxy) const { return proxy.final_frame; }
    const Flow& flow(std::uint32_t idx) const { return flows_[idx]; }
    // The evidence for proxy.links[i], as the final state has it.
    CandidateEvidence evidence(const Flow& proxy, std::size_t i) const;
    std::size_t flow_count() const { return flows_.size(); }
    const Counters& counters() const { return counters_; }
    const Config& config() const { return cfg_; }
    // First frame whose note was not kept because of max_frame_notes (0: none).
    FrameNum notes_overflow_frame() const { return notes_overflow_; }
    // The frame where a limit was first reached (0: never).
    FrameNum cap_frame(Cap c) const { return cap_frame_[static_cast<std::size_t>(c)]; }

    bool is_mail_port(std::uint16_t port) const;

private:
    static constexpr std::uint32_t kSlotUnseen = 0;
    static constexpr std::uint32_t kSlotIgnored = 1;
    static constexpr std::uint32_t kSlotPending = 2;
    static constexpr std::uint32_t kSlotRelayPending = 3;  // see PendingRelay
    static constexpr std::uint32_t kSlotTunnelHeld = 4;    // see HeldTunnel
    static constexpr std::uint32_t kSlotProxyWeb = 5;      // see web_segment
    static constexpr std::uint32_t kSlotBase = 6;
    // In awaiting_ and PendingRelay::proxies, a held tunnel: this bit and its
    // stream (the constructor keeps max_flows and max_streams under it).
    static constexpr std::uint32_t kHeldTag = 0x80000000u;
    static constexpr std::uint32_t kSlotHandled = 0xFFFFFFFFu;  // classify() already processed it

    static constexpr std::size_t kMaxChain = 4;  // proxies followed in one chain
    static constexpr std::size_t kMaxRequestsWalked = 64;  // earlier requests frame_flow looks back through
    static constexpr std::size_t kClassifyBytes = 64;      // a first segment and held ones after it, to classify
    static constexpr std::size_t kCompactLiveOrder = 4096;  // released entries before live_order_ is compacted
    // A SOCKS request or reply is at most 262 bytes (RFC 1928 §4, a 255-byte
    // name); past this it is not one.
    static constexpr std::size_t kMaxSocksHandshake = 1024;
    static constexpr std::uint64_t kMaxContentLength = 1ULL << 40;  // digits past this are not read

    // on_segment past the stream checks.
    void dispatch(const Segment& seg);
    // The flow of a connection's requests that a frame belongs to, walking
    // back from the newest (kNone: a frame of no request of ours).
    std::uint32_t flow_at(std::uint32_t idx, FrameNum frame) const;
    // The flow a stream's segments go to now (a later request on the
    // connection may have taken over from idx).
    std::uint32_t current_flow(StreamId stream, std::uint32_t idx) const;
    // Proxy connections whose requests were of no interest so far: each
    // client segment that starts a request is looked at (web_segment).
    void watch(StreamId stream, const Endpoint& client);
    static bool starts_request(const std::uint8_t* data, std::size_t len);
    void web_segment(const Segment& seg);
    bool may_request_again(const Flow& f) const;
    // A request after an earlier one that was an incident: a flow of its own.
    std::uint32_t next_request(std::uint32_t idx, const Segment& seg);
    void note_stream(FrameNum frame, StreamId stream);
    // A limit reached at the frame at hand (frame_): said once.
    void reached(Cap c);
    bool grow_slots(StreamId stream);
    // Decrypted streams (decrypted_stream.cpp).
    void ciphertext(const Segment& seg);
    void flush_close();
    std::uint32_t classify(const Segment& seg, std::uint32_t slot);
    std::uint32_t classify_hop(const Segment& seg);
    bool defers_relay(const std::vector<std::uint32_t>& proxies, const Segment& seg) const;
    std::uint32_t relay_pending(const Segment& seg);
    bool pending_ack(StreamId stream, FrameNum frame);
    // What a replay needs of a bare ACK the fast path kept: process reads
    // only its frame (and, through its flags, that it is bare).
    static Segment kept_ack(StreamId stream, FrameNum frame) {
        Segment s;
        s.frame = frame;
        s.stream = stream;
        s.flags = kAck;
        return s;
    }
    std::uint32_t new_relay(const Segment& opening, bool forward, const std::vector<std::uint32_t>& proxies);
    void note_handshake(const Segment& seg, std::uint32_t slot);
    void prune_awaiting(std::vector<std::uint32_t>& list, const Segment& seg) const;
    void begin_request(Flow& f, const std::uint8_t* d, std::size_t n);
    bool starts_chain(const Flow& f, const std::uint8_t* d, std::size_t n) const;
    void drop_hop_candidate(std::uint32_t idx);
    std::uint32_t classify_payload(const Segment& seg, bool may_hold);
    bool plainly_benign_request(const std::uint8_t* d, std::size_t n) const;
    // Held tunnels (held_tunnel.cpp).
    bool hold_tunnel(const Segment& seg);
    void tunnel_held(const Segment& seg);
    bool held_ack(StreamId stream, FrameNum frame);
    std::uint32_t promote_tunnel(StreamId stream, const Segment* current);
    void drop_tunnel(StreamId stream, bool refused);
    // The request an awaiting_ entry stands for (null: a held tunnel dropped
    // or promoted since), and the flow a relay candidate is once decided
    // (promoting a held tunnel; kNone when it proved benign).
    const Flow* request_of(std::uint32_t id) const;
    std::uint32_t candidate_flow(std::uint32_t id);
    // The flows of those candidates still open (not benign), in order.
    std::vector<std::uint32_t> open_candidates(const std::vector<std::uint32_t>& ids);
    static void set_target(Flow& f, std::string_view host, std::uint16_t port, bool literal);
    // A request that can end in mail relay: to a mail port, or a tunnel
    // whose bytes may turn out to be SMTP. Any other is benign at once.
    bool may_relay_mail(Method m, std::uint16_t port) const;
    void replay_held(std::uint32_t idx, StreamId stream);
    FrameNote* note_slot(FrameNum frame);
    const FrameNote* note_search(FrameNum frame) const;
    std::uint32_t new_flow(const Segment& seg, Role role, const Endpoint& client, const Endpoint& server);
    void add_event(FrameNum frame, std::uint32_t flow, std::uint16_t ev);
    void record_frame(FrameNum frame, std::uint32_t flow);
    bool bare_ack(std::uint32_t idx, FrameNum frame);
    // fast_path for a segment without data of a stream that is not ignored.
    bool empty_segment(std::uint32_t slot, StreamId stream, std::uint16_t flags, FrameNum frame);
    void process(std::uint32_t idx, const Segment& seg);
    void proxy_bytes(std::uint32_t idx, bool from_client, const std::uint8_t* d, std::size_t n,
                     const Segment& seg);
    void http_client(std::uint32_t idx, const Segment& seg);
    void http_server(std::uint32_t idx, const Segment& seg);
    void socks_bytes(std::uint32_t idx, bool from_client, const Segment& seg);
    void tunnel_bytes(std::uint32_t idx, bool from_client, const std::uint8_t* d, std::size_t n,
                      const Segment& seg);
    // Returns the flow that now holds the request (next_request).
    std::uint32_t set_request(std::uint32_t idx, Method m, std::string_view host, std::uint16_t port,
                              bool literal, const Segment& seg);
    void set_response(std::uint32_t idx, bool granted, std::uint16_t code, const Segment& seg);
    void after_smtp(std::uint32_t idx, const Segment& seg, bool had_smtp, FrameNum tls_before);
    void mark_benign(std::uint32_t idx);
    void release(std::uint32_t idx);
    void enforce_live_cap(std::uint32_t keep);
    void account(std::uint32_t idx);

    // Relay matching and pairing (pairing.cpp).
    // The pairing window, its one home: a relay leg opens after the request
    // (within the clock slack) and before this: pair_window after it, or,
    // once the proxy answered, the answer (a proxy connects before it says
    // 200) plus the slack.
    double window_end(const Flow& proxy) const;
    bool in_window(const Flow& proxy, const Segment& seg) const;
    bool may_be_relay(const Flow& proxy, const Segment& seg, std::uint16_t port, bool forward) const;
    bool may_be_hop(const Flow& proxy, const Segment& seg, bool forward) const;
    // The proxy leg an incident starts from, up a chain of hops.
    std::uint32_t chain_head(std::uint32_t idx) const;
    void link_candidates(std::uint32_t relay_idx, const Segment& seg, const std::vector<std::uint32_t>& proxies);
    // What content_changed is told about a leg.
    enum class Evidence : std::uint8_t { Lines, FirstLines, Closed };
    void content_changed(std::uint32_t idx, Evidence what);
    bool evaluate(Flow& proxy, Link& link);
    bool compare_lines(const SmtpSession& proxy, const SmtpSession& relay, Link& link);
    bool has_content(const Flow& proxy) const;
    bool survives(std::uint32_t proxy_idx, const Link& link, bool content) const;
    // Candidates of a proxy leg still standing, counted up to two (none, one
    // or several); *only gets the first one.
    std::size_t count_survivors(std::uint32_t proxy_idx, std::uint32_t* only) const;
    // Re-pairs the proxy legs in work (and those a change frees), within a
    // budget; leaves work empty.
    void settle(std::vector<std::uint32_t>& work);
    const std::vector<Addr>* resolve(const std::string& host) const;
    // DNS evidence: the answer that gave `addr` for `host` (0: none), and
    // marking it on a proxy leg's incident.
    FrameNum dns_frame_of(const std::string& host, const Addr& addr) const;
    void dns_evidence(std::uint32_t proxy, FrameNum frame);
    void await_dns(std::uint32_t idx);

    // What a single pass may state (finality.cpp).
    bool window_over(const Flow& proxy) const;
    bool pending_refs(std::uint32_t proxy_idx) const;
    bool proxy_final(std::uint32_t idx, int depth) const;
    bool component_final(std::uint32_t idx) const;
    bool incident_final(const View& v, FrameNum frame) const;
    void make_provisional(View& v) const;
    // Outcome and the proxy's status as an incident states them (outcome.cpp).
    void judge(View& v) const;
    void incident_streams(View& v) const;

    // Read for every frame (fast_path, note): first, so they share a cache line.
    std::vector<std::uint32_t> slots_;  // per tcp.stream: kSlot* or kSlotBase + flow
    std::vector<StreamId> frame_stream_;  // per frame: tcp.stream + 1 of its segment, 0 for none
    std::vector<FrameNote> notes_;
    mutable std::size_t note_hint_ = 0;  // where note() expects the next frame
    FrameNum last_noted_ = 0;            // notes_.back().frame, 0 when empty

    Config cfg_;
    std::vector<bool> mail_port_;  // 65536 entries
    std::vector<Flow> flows_;
    FrameNum notes_overflow_ = 0;
    bool table_full_noted_ = false;
    // Proxy legs still waiting for their relay, by requested port.
    std::unordered_map<std::uint16_t, std::vector<std::uint32_t>> awaiting_;
    // Proxy legs asked for a mail server, by the proxy's address: a new
    // connection from there may be the proxy passing the request upstream.
    std::unordered_map<Addr, std::vector<std::uint32_t>, AddrHash> awaiting_hop_;
    struct DnsName {
        std::vector<Addr> addrs;
        std::vector<FrameNum> frames;  // the answer that first gave each address
    };
    std::unordered_map<std::string, DnsName> dns_;
    // Mail-port requests for a host name the capture has not resolved yet,
    // by name: the answer that comes is their evidence.
    std::unordered_map<std::string, std::vector<std::uint32_t>> dns_wait_;
    double now_ = 0;      // newest time observed (capture times may go backwards)
    mutable std::vector<std::uint32_t> walk_;  // component_final's list, kept between calls
    mutable std::uint32_t walk_mark_ = 0;
    FrameNum frame_ = 0;  // the frame being observed
    FrameNum cap_frame_[static_cast<std::size_t>(Cap::Count)] = {};
    static constexpr std::size_t kMaxAddrsPerName = 16;
    // settle follows a change through at most this many proxy legs, plus
    // this many per leg it started from (a bound on one segment's work).
    static constexpr std::size_t kSettleBudget = 64;
    static constexpr std::size_t kSettleBudgetPerLeg = 16;
    // Room for candidate links given at the first (push_sized): concurrent
    // tunnels through one proxy to one mail server have several each.
    static constexpr std::size_t kLinksFirst = 8;
    // Streams whose handshake we saw but whose first data is not classified
    // yet: where their data starts, and segments that arrived early.
    struct HeldSegment {
        Segment seg;
        std::string bytes;
    };
    struct Unclassified {
        Endpoint syn_sender;
        std::uint32_t next_seq[2] = {0, 0};  // 0: from syn_sender, 1: towards it
        bool known[2] = {false, false};
        std::vector<HeldSegment> held;
        std::size_t held_bytes = 0;
    };
    static constexpr std::size_t kMaxHeldPerStream = 2048;
    StreamTable<Unclassified> unclassified_{16384};
    // A connection that may be the relay leg of tunnels to ports that are not
    // mail ports, held from its handshake to its first data, FIN or RST: by
    // then most such tunnels (proxied HTTPS) proved benign and it is an
    // ordinary connection. If one is still open, the relay flow is built as
    // it would have been at the handshake, which is replayed into it.
    struct PendingRelay {
        Segment opening;  // the SYN (or the SYN-ACK when the SYN was missed)
        bool forward = true;
        std::vector<std::uint32_t> proxies;  // candidates at the handshake
        std::vector<Segment> handshake;      // later segments without data (bounded)
    };
    static constexpr std::size_t kMaxPendingHandshake = 8;
    // The handshake and held-tunnel lists hold a few items each (SYN-ACK,
    // ACKs, the proxy's answer): room for 4 at the first push costs one
    // allocation where growing 1, 2, 4 cost three, on every proxied HTTPS
    // connection.
    template <class V, class T>
    static void push_few(V& v, T&& item) {
        if (v.capacity() == 0) v.reserve(4);
        v.push_back(std::forward<T>(item));
    }
    StreamTable<PendingRelay> pending_relays_{4096};
    // A CONNECT to a port that is not a mail port whose request head came
    // whole in one segment: most are proxied HTTPS, told apart by the
    // tunnel's first bytes. Until then its segments are kept (only the
    // proxy's status line is read), and relay legs take it as a candidate
    // by its stream (kHeldTag). TLS or binary bytes, or a refusal, drop it:
    // it never costs a flow. Anything else makes it the flow it would have
    // been, its segments replayed.
    struct HeldTunnel {
        Flow request;  // what relay matching reads: endpoints, target, times
        struct Item {
            Segment seg;              // data points nowhere while held
            std::uint32_t offset = 0; // of its payload in `bytes`
        };
        std::vector<Item> segs;  // in capture order, the request first
        std::string bytes;
        std::uint32_t next_client_seq = 0;
    };
    static void keep(HeldTunnel& h, const Segment& seg);
    static constexpr std::size_t kMaxHeldTunnelSegments = 16;
    static constexpr std::size_t kMaxHeldTunnelBytes = 2048;
    StreamTable<HeldTunnel> held_tunnels_{4096};
    // The client of each watched proxy connection (kSlotProxyWeb); one the
    // table forgets is of no interest any more (its stream is ignored).
    StreamTable<Endpoint> web_clients_{65536};
    // Streams read as their decrypted plaintext (on_decrypted), at most
    // max_flows of them. A FIN or RST on a ciphertext segment that carries
    // data waits in `close_` until the frame's records were read: the
    // last record may complete in that very segment.
    std::unordered_set<StreamId> decrypted_;
    Segment close_;
    bool close_pending_ = false;
    // content_changed's list for settle, kept between calls: it runs on
    // every SMTP line of a suspect flow, and would allocate each time. Its
    // size is bounded by settle's budget times max_candidates.
    std::vector<std::uint32_t> content_work_;
    std::vector<std::uint32_t> live_order_;  // flows with live state, oldest first
    std::size_t live_head_ = 0;
    std::size_t live_count_ = 0;
    std::size_t live_bytes_ = 0;
    Counters counters_;
};

}  // namespace soh
