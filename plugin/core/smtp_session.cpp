#include "smtp_session.h"

#include <algorithm>

#include "ascii.h"

namespace soh {
namespace {

bool iprefix(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i)
        if (ascii::upper(s[i]) != prefix[i]) return false;
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

// The path of "MAIL FROM:<a@b> SIZE=1" or "RCPT TO: <c@d>" (RFC 5321 §4.1.2);
// spamware often drops the brackets.
std::string_view path_arg(std::string_view rest) {
    rest = trim(rest);
    if (!rest.empty() && rest.front() == '<') {
        auto close = rest.find('>');
        if (close == std::string_view::npos) return rest.substr(1);
        return rest.substr(1, close - 1);
    }
    auto sp = rest.find(' ');
    return rest.substr(0, sp);
}

// "250-PIPELINING" → code 250, continuation; nullopt-like -1 when not a reply.
int reply_code(std::string_view line, bool* more) {
    if (line.size() < 3) return -1;
    for (int i = 0; i < 3; ++i)
        if (!ascii::is_digit(line[i])) return -1;
    if (line.size() > 3 && line[3] != ' ' && line[3] != '-' && line[3] != '\t') return -1;
    *more = line.size() > 3 && line[3] == '-';
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    return code >= 200 && code < 600 ? code : -1;
}

bool contains_ci(std::string_view s, std::string_view needle) {
    if (needle.size() > s.size()) return false;
    for (std::size_t i = 0; i + needle.size() <= s.size(); ++i)
        if (iprefix(s.substr(i), needle)) return true;
    return false;
}

}  // namespace

void append_printable(std::string& out, std::string_view s, std::size_t max) {
    const std::size_t n = std::min(s.size(), max);
    const std::size_t at = out.size();
    out.append(s.data(), n);
    // Over a plain pointer: one load and compare per byte.
    char* to = &out[at];
    for (std::size_t i = 0; i < n; ++i)
        if (static_cast<unsigned char>(to[i]) - 0x20u >= 0x5fu) to[i] = '.';
    if (s.size() > max) out += "...";
}

std::string printable(std::string_view s, std::size_t max) {
    std::string out;
    append_printable(out, s, max);
    return out;
}

void SmtpSession::feed(bool from_client, const std::uint8_t* data, std::size_t len, FrameNum frame,
                       double time) {
    if (opaque_ || len == 0) return;
    frame_ = frame;
    time_ = time;
    from_client_ = from_client;
    first_bytes(from_client, data, len);
    if (opaque_) return;
    bytes_ += len;
    if (!smtp_seen() && bytes_ > kUndecidedBytes) not_smtp_ = true;

    if (from_client) {
        client_.feed(data, len);
        while (!opaque_) {
            if (bdat_left_ > 0) {
                // Chunk bytes of BDAT are raw message data, not lines.
                std::size_t want = static_cast<std::size_t>(
                    std::min<std::uint64_t>(bdat_left_, client_.buffered()));
                bdat_left_ -= client_.take_raw(want);
                if (bdat_left_ > 0) break;
                continue;
            }
            auto line = client_.next_line();
            if (!line) break;
            client_line(line->text, line->overlong);
        }
    } else {
        server_.feed(data, len);
        while (!opaque_) {
            auto line = server_.next_line();
            if (!line) break;
            server_line(line->text);
        }
    }
    if (opaque_) release_buffers();
}

SmtpSession::Opening SmtpSession::opening(bool from_client, const std::uint8_t* data, std::size_t len) {
    // A TLS handshake record (RFC 8446 §5.1: type 22, version 3.x) from the
    // client before any SMTP: implicit TLS (port 465) or not SMTP at all.
    if (from_client && len >= 3 && data[0] == 0x16 && data[1] == 0x03) return Opening::Tls;
    std::size_t n = std::min<std::size_t>(len, 64);
    for (std::size_t i = 0; i < n; ++i) {
        unsigned char c = data[i];
        if (c < 0x20 && c != '\r' && c != '\n' && c != '\t') return Opening::Binary;
    }
    return Opening::Text;
}

void SmtpSession::first_bytes(bool from_client, const std::uint8_t* data, std::size_t len) {
    bool& seen = from_client ? seen_client_bytes_ : seen_server_bytes_;
    if (seen) return;
    seen = true;
    const Opening o = opening(from_client, data, len);
    if (o == Opening::Text || smtp_seen()) return;
    not_smtp_ = true;
    if (o == Opening::Tls) {
        tls_first_ = true;
        opaque_ = true;
    }
}

void SmtpSession::gap(bool from_client) {
    (from_client ? client_ : server_).reset();
    if (from_client) {
        bdat_left_ = 0;
        in_data_ = false;
        auth_continue_ = false;
    } else {
        reply_open_ = false;
    }
    // Replies can no longer be matched to commands.
    pending_.clear();
}

void SmtpSession::release_buffers() {
    client_ = LineAssembler(kMaxLine);
    server_ = LineAssembler(kMaxLine);
    pending_.clear();
}

void SmtpSession::note(bool from_client, std::string_view text) {
    if (notes_.size() >= kMaxNotes) {
        caps_ |= kCapNotes;
        return;
    }
    if (note_text_.capacity() < kNoteTextFirst) note_text_.reserve(kNoteTextFirst);
    const std::size_t at = note_text_.size();
    append_printable(note_text_, text, kNoteChars);
    push_sized(notes_,
               SmtpNote{frame_, from_client, static_cast<std::uint16_t>(note_text_.size() - at),
                        static_cast<std::uint32_t>(at)},
               kNotesFirst);
}

FrameCounts* SmtpSession::count_slot() {
    if (!counts_.empty() && counts_.back().frame == frame_) return &counts_.back();
    if (counts_.size() >= kMaxCounted) {
        caps_ |= kCapCounted;
        return nullptr;
    }
    push_sized(counts_, FrameCounts{frame_, 0, 0}, kCountsFirst);
    return &counts_.back();
}

FrameCounts SmtpSession::counts(FrameNum frame) const {
    auto it = std::lower_bound(counts_.begin(), counts_.end(), frame,
                               [](const FrameCounts& c, FrameNum f) { return c.frame < f; });
    if (it != counts_.end() && it->frame == frame) return *it;
    return FrameCounts{frame, 0, 0};
}

void SmtpSession::push(Cmd c) {
    if (pending_.size() >= kMaxPending) {
        caps_ |= kCapPending;
        pending_.pop_front();
    }
    pending_.push_back(c);
}

void SmtpSession::mark_smtp() {
    if (!smtp_frame_) smtp_frame_ = frame_;
    not_smtp_ = false;
}

void SmtpSession::client_line(std::string_view line, bool overlong) {
    if (client_stamps_.size() < kMaxStamps)
        push_sized(client_stamps_, LineStamp{fnv1a(line), time_}, kMaxStamps);
    else
        caps_ |= kCapStamps;
    if (in_data_) {
        // RFC 5321 §4.1.1.4: a line holding only "." ends the content.
        if (line == ".") {
            in_data_ = false;
            push(Cmd::DataEnd);
            note(true, ".");
        }
        return;
    }
    if (auth_continue_) {
        auth_continue_ = false;
        note(true, "(AUTH response)");
        return;
    }
    ++client_lines_;
    if (overlong) {
        push(Cmd::Other);
        note(true, line);
        return;
    }
    line = trim(line);
    if (iprefix(line, "EHLO") || iprefix(line, "HELO")) {
        if (line.size() == 4 || line[4] == ' ') {
            env_.helo = printable(trim(line.substr(4)), 255);
            push(Cmd::Helo);
            client_smtp_ = true;
            mark_smtp();
        } else {
            push(Cmd::Other);
        }
    } else if (iprefix(line, "MAIL FROM:") || iprefix(line, "MAIL FROM :")) {
        std::string_view rest = line.substr(line.find(':') + 1);
        ++env_.mail_from_count;
        if (env_.mail_from.size() < kMaxListed)
            env_.mail_from.push_back(printable(path_arg(rest), 255));
        else
            caps_ |= kCapListed;
        push(Cmd::Mail);
        client_smtp_ = true;
        mark_smtp();
    } else if (iprefix(line, "RCPT TO:") || iprefix(line, "RCPT TO :")) {
        std::string_view rest = line.substr(line.find(':') + 1);
        ++env_.rcpt_count;
        if (FrameCounts* c = count_slot()) ++c->rcpts;
        if (env_.rcpt_to.size() < kMaxListed)
            env_.rcpt_to.push_back(printable(path_arg(rest), 255));
        else
            caps_ |= kCapListed;
        push(Cmd::Rcpt);
        client_smtp_ = true;
        mark_smtp();
    } else if (iprefix(line, "DATA") && line.size() == 4) {
        push(Cmd::Data);
        // Clients wait for 354, but spamware often does not: treat what follows
        // as content until the server says otherwise.
        in_data_ = true;
    } else if (iprefix(line, "BDAT ")) {
        std::string_view args = trim(line.substr(5));
        std::uint64_t n = 0;
        std::size_t i = 0;
        while (i < args.size() && i < 12 && ascii::is_digit(args[i]))
            n = n * 10 + static_cast<std::uint64_t>(args[i++] - '0');
        bool last = contains_ci(args.substr(i), "LAST");
        push(last ? Cmd::BdatLast : Cmd::Bdat);
        bdat_left_ = n;
    } else if (iprefix(line, "RSET")) {
        push(Cmd::Rset);
    } else if (iprefix(line, "STARTTLS")) {
        push(Cmd::StartTls);
    } else if (iprefix(line, "AUTH ")) {
        env_.auth = true;
        std::string_view mech = trim(line.substr(5));
        env_.auth_mech = printable(mech.substr(0, mech.find(' ')), 32);
        push(Cmd::Auth);
        note(true, "AUTH " + env_.auth_mech);
        return;  // never show credentials sent inline
    } else {
        push(Cmd::Other);
        if (client_lines_ >= 3 && !smtp_seen()) not_smtp_ = true;
    }
    note(true, line);
}

void SmtpSession::server_line(std::string_view line) {
    if (server_stamps_.size() < kMaxStamps)
        push_sized(server_stamps_, LineStamp{fnv1a(line), time_}, kMaxStamps);
    else
        caps_ |= kCapStamps;
    bool more = false;
    int code = reply_code(line, &more);
    if (code < 0) {
        if (!greeted_ && !smtp_seen()) not_smtp_ = true;
        return;
    }
    if (!greeted_) {
        // RFC 5321 §4.3.1: the connection opens with a 220 (or 554) greeting.
        if (!reply_open_) {
            if (env_.greeting.empty()) env_.greeting = printable(trim(line.substr(std::min<std::size_t>(line.size(), 4))), 200);
            note(false, line);
            if (code == 220 && contains_ci(line, "SMTP")) mark_smtp();
        }
        reply_open_ = more;
        if (!more) greeted_ = true;
        return;
    }
    if (!reply_open_) note(false, line);
    reply_open_ = more;
    if (more) return;
    if (pending_.empty()) return;
    Cmd c = pending_.front();
    if (c == Cmd::Auth && code == 334) {
        auth_continue_ = true;
        return;
    }
    pending_.pop_front();
    ++(c == Cmd::Other ? replies_other_ : replies_smtp_);
    bool ok = code >= 200 && code < 300;
    switch (c) {
        case Cmd::Rcpt:
            if (ok) ++env_.rcpt_accepted;
            break;
        case Cmd::Data:
            if (code != 354) in_data_ = false;
            break;
        case Cmd::DataEnd:
        case Cmd::BdatLast:
            if (ok) {
                ++env_.messages;
                if (FrameCounts* fc = count_slot()) ++fc->messages;
            }
            break;
        case Cmd::StartTls:
            if (code == 220) {
                env_.starttls = true;
                starttls_frame_ = frame_;
                opaque_ = true;
            }
            break;
        case Cmd::Auth:
            auth_continue_ = false;
            break;
        default:
            break;
    }
}

}  // namespace soh
