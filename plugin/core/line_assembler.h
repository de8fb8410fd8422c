// Turns one direction's byte stream into lines. Lines end at LF (a preceding
// CR is dropped); text protocols in the wild mix CRLF and bare LF.
//
// Bounded: a line longer than max_line is cut, delivered once with `overlong`
// set, and the rest of it is discarded up to the next LF, so an attacker's
// endless line costs at most max_line bytes of memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace soh {

struct Line {
    std::string_view text;  // valid until the next call on the assembler
    bool overlong = false;
};

class LineAssembler {
public:
    explicit LineAssembler(std::size_t max_line = 4096) : max_line_(max_line) {}

    // Appends bytes; take them back out with next_line() / take_raw().
    void feed(const std::uint8_t* data, std::size_t len);
    // The next complete line, or nullopt when more bytes are needed.
    std::optional<Line> next_line();
    // Removes up to n raw bytes (a message body, a BDAT chunk); returns how many.
    std::size_t take_raw(std::size_t n);
    // Like take_raw, but returns the bytes (valid until the next call).
    std::string_view take_raw_view(std::size_t n);
    // Removes everything buffered and returns it (hand-over to another parser).
    std::string take_all();
    // Forgets buffered bytes and any partial line (after a gap in the stream).
    void reset();

    std::size_t buffered() const { return buf_.size() - head_; }
    // Bytes of memory held, for the engine's memory budget.
    std::size_t memory() const { return buf_.capacity() + out_.capacity(); }

private:
    void compact();

    std::string buf_;
    std::size_t head_ = 0;
    std::size_t max_line_;
    bool discarding_ = false;  // inside the tail of an overlong line
    std::string out_;          // storage for an overlong line's prefix
};

}  // namespace soh
