// An SMTP session seen from the outside: both directions' lines in, envelope
// and dialogue facts out. Commands and replies are matched in order through a
// pending-command queue, which is what PIPELINING (RFC 2920) requires of the
// server too. Handles multi-line replies (RFC 5321 §4.2.1), DATA and its
// dot-terminated content (§4.1.1.4), BDAT chunks (RFC 3030), RSET, AUTH
// continuations (RFC 4954 §4) and STARTTLS (RFC 3207), after which the rest is
// ciphertext and we say so instead of guessing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "line_assembler.h"
#include "types.h"

namespace soh {

struct Envelope {
    std::string helo;                    // last EHLO/HELO argument
    std::vector<std::string> mail_from;  // first kMaxListed senders, in order
    std::vector<std::string> rcpt_to;    // first kMaxListed recipients, in order
    std::uint32_t mail_from_count = 0;   // MAIL FROM commands
    std::uint32_t rcpt_count = 0;        // RCPT TO commands
    std::uint32_t rcpt_accepted = 0;     // RCPT TO answered 2xx
    std::uint32_t messages = 0;          // DATA/BDAT LAST answered 2xx
    bool starttls = false;               // TLS started: the rest is opaque
    bool auth = false;
    std::string auth_mech;
    std::string greeting;  // first line of the server greeting
};

// One command or reply worth showing on its frame.
// Its text is kept in the session's one buffer (SmtpSession::note_text):
// one allocation per session rather than one per line.
struct SmtpNote {
    FrameNum frame = 0;
    bool from_client = false;
    std::uint16_t len = 0;
    std::uint32_t at = 0;
};

// Envelope growth on one frame, for statistics counted as frames go by.
struct FrameCounts {
    FrameNum frame = 0;
    std::uint16_t rcpts = 0;     // RCPT TO commands in this frame
    std::uint16_t messages = 0;  // messages accepted in this frame
};

// A line hash kept for comparing the two legs of a relay.
struct LineStamp {
    std::uint64_t hash = 0;
    double time = 0;
};

class SmtpSession {
public:
    static constexpr std::size_t kMaxLine = 2048;     // RFC 5321 §4.5.3.1.6 allows 1000
    static constexpr std::size_t kMaxListed = 64;     // addresses kept per list
    static constexpr std::size_t kMaxPending = 256;   // pipelined commands awaiting replies
    static constexpr std::size_t kMaxNotes = 96;      // per-frame notes kept per session
    static constexpr std::size_t kNoteChars = 160;    // of each note's line
    static constexpr std::size_t kMaxStamps = 24;     // line hashes kept per direction
    static constexpr std::size_t kMaxCounted = 4096;  // frames with envelope growth kept
    static constexpr std::size_t kUndecidedBytes = 16 * 1024;
    // Room given at the first entry (push_sized): a typical spam session's worth.
    static constexpr std::size_t kNotesFirst = 16;
    static constexpr std::size_t kNoteTextFirst = 512;
    static constexpr std::size_t kCountsFirst = 8;

    // What the first bytes of one direction say: text may be SMTP; a TLS
    // handshake record from the client, or control characters, rule it out.
    enum class Opening : std::uint8_t { Text, Tls, Binary };
    static Opening opening(bool from_client, const std::uint8_t* data, std::size_t len);

    // Feeds in-order bytes of one direction, seen in frame `frame` at `time`.
    void feed(bool from_client, const std::uint8_t* data, std::size_t len, FrameNum frame, double time);
    // Bytes of this direction were lost: resynchronise at the next line.
    void gap(bool from_client);
    // Drops parser buffers, keeping what was learnt (envelope, notes, stamps).
    void release_buffers();
    // Bytes held by the parser buffers.
    std::size_t buffer_memory() const { return client_.memory() + server_.memory() + pending_.size(); }

    // SMTP recognised: a well-formed EHLO/HELO/MAIL/RCPT or an SMTP greeting.
    bool smtp_seen() const { return smtp_frame_ != 0; }
    FrameNum smtp_frame() const { return smtp_frame_; }
    // The bytes are evidently something else (binary, TLS, other text protocol).
    bool not_smtp() const { return not_smtp_; }
    // The client opened with a TLS record: the content is encrypted from the start.
    bool tls_first() const { return tls_first_; }
    bool opaque() const { return opaque_; }
    FrameNum starttls_frame() const { return starttls_frame_; }

    // The client sent a well-formed EHLO/HELO/MAIL/RCPT (not only the server greeted).
    bool client_smtp() const { return client_smtp_; }
    // Replies the server gave to SMTP commands, and to lines that are none
    // (e.g. the HTTP request line an absolute-URI relay delivers first).
    std::uint32_t replies_to_smtp() const { return replies_smtp_; }
    std::uint32_t replies_to_other() const { return replies_other_; }

    const Envelope& envelope() const { return env_; }
    // Which of the caps above this session reached (bits: SmtpCap).
    enum SmtpCap : std::uint8_t {
        kCapPending = 1u << 0,  // kMaxPending commands awaited replies: the oldest was dropped
        kCapStamps = 1u << 1,   // kMaxStamps lines per direction kept for comparing the legs
        kCapNotes = 1u << 2,    // kMaxNotes lines kept for showing on their frames
        kCapCounted = 1u << 3,  // kMaxCounted frames with envelope growth kept for the statistics
        kCapListed = 1u << 4,   // kMaxListed senders or recipients listed
    };
    std::uint8_t caps() const { return caps_; }
    const std::vector<SmtpNote>& notes() const { return notes_; }
    // A note's text: printable, truncated.
    std::string_view note_text(const SmtpNote& n) const { return std::string_view(note_text_).substr(n.at, n.len); }
    // Envelope growth of one frame (zeroes when nothing grew there).
    FrameCounts counts(FrameNum frame) const;
    const std::vector<LineStamp>& stamps(bool from_client) const {
        return from_client ? client_stamps_ : server_stamps_;
    }

private:
    enum class Cmd : std::uint8_t { Helo, Mail, Rcpt, Data, DataEnd, Bdat, BdatLast, Rset, StartTls, Auth, Other };

    void client_line(std::string_view line, bool overlong);
    void server_line(std::string_view line);
    void first_bytes(bool from_client, const std::uint8_t* data, std::size_t len);
    void note(bool from_client, std::string_view text);
    void push(Cmd c);
    void mark_smtp();
    FrameCounts* count_slot();

    // Commands awaiting replies, oldest first: a fixed ring, as a deque would
    // allocate on every session for the few commands usually in flight.
    class CmdQueue {
    public:
        bool empty() const { return size_ == 0; }
        std::size_t size() const { return size_; }
        Cmd front() const { return ring_[head_]; }
        void pop_front() {
            head_ = static_cast<std::uint16_t>((head_ + 1) % kMaxPending);
            --size_;
        }
        void push_back(Cmd c) { ring_[(head_ + size_++) % kMaxPending] = c; }  // callers keep size_ < kMaxPending
        void clear() { head_ = size_ = 0; }

    private:
        Cmd ring_[kMaxPending]{};
        std::uint16_t head_ = 0;
        std::uint16_t size_ = 0;
    };

    LineAssembler client_{kMaxLine};
    LineAssembler server_{kMaxLine};
    CmdQueue pending_;
    std::uint8_t caps_ = 0;
    std::uint64_t bdat_left_ = 0;   // raw chunk bytes still to skip
    bool in_data_ = false;          // client is sending message content
    bool auth_continue_ = false;    // next client line answers a 334 challenge
    bool greeted_ = false;
    bool reply_open_ = false;       // inside a multi-line reply
    bool opaque_ = false;
    bool not_smtp_ = false;
    bool tls_first_ = false;
    bool seen_client_bytes_ = false;
    bool client_smtp_ = false;
    std::uint32_t replies_smtp_ = 0;
    std::uint32_t replies_other_ = 0;
    bool seen_server_bytes_ = false;
    std::uint32_t client_lines_ = 0;
    std::uint64_t bytes_ = 0;

    FrameNum frame_ = 0;  // frame being fed
    double time_ = 0;
    bool from_client_ = false;
    FrameNum smtp_frame_ = 0;
    FrameNum starttls_frame_ = 0;

    Envelope env_;
    std::vector<SmtpNote> notes_;
    std::string note_text_;
    std::vector<FrameCounts> counts_;  // in frame order
    std::vector<LineStamp> client_stamps_;
    std::vector<LineStamp> server_stamps_;
};

// Printable ASCII copy of at most max bytes; other bytes become '.'.
std::string printable(std::string_view s, std::size_t max);
void append_printable(std::string& out, std::string_view s, std::size_t max);

}  // namespace soh
