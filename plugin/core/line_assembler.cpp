#include "line_assembler.h"

#include <algorithm>
#include <cstring>

namespace soh {

void LineAssembler::feed(const std::uint8_t* data, std::size_t len) {
    if (len == 0) return;
    compact();
    buf_.append(reinterpret_cast<const char*>(data), len);
}

void LineAssembler::compact() {
    if (head_ == 0) return;
    if (head_ >= buf_.size()) {
        buf_.clear();
        head_ = 0;
    } else if (head_ > 4096 && head_ * 2 > buf_.size()) {
        buf_.erase(0, head_);
        head_ = 0;
    }
}

std::optional<Line> LineAssembler::next_line() {
    for (;;) {
        std::size_t avail = buf_.size() - head_;
        if (avail == 0) return std::nullopt;
        const char* start = buf_.data() + head_;
        const void* nl = std::memchr(start, '\n', avail);
        if (discarding_) {
            if (!nl) {
                head_ = buf_.size();
                return std::nullopt;
            }
            head_ += static_cast<std::size_t>(static_cast<const char*>(nl) - start) + 1;
            discarding_ = false;
            continue;
        }
        if (!nl) {
            // A trailing CR may be the first half of a CRLF: it is not content.
            std::size_t content = avail;
            if (start[content - 1] == '\r') --content;
            if (content <= max_line_) return std::nullopt;
            // No LF within max_line bytes: deliver the prefix, drop the tail.
            out_.assign(start, max_line_);
            head_ = buf_.size();
            discarding_ = true;
            return Line{out_, true};
        }
        std::size_t len = static_cast<std::size_t>(static_cast<const char*>(nl) - start);
        head_ += len + 1;
        if (len > 0 && start[len - 1] == '\r') --len;
        if (len > max_line_) {
            out_.assign(start, max_line_);
            return Line{out_, true};
        }
        return Line{std::string_view(start, len), false};
    }
}

std::size_t LineAssembler::take_raw(std::size_t n) {
    std::size_t k = std::min(n, buf_.size() - head_);
    head_ += k;
    return k;
}

std::string_view LineAssembler::take_raw_view(std::size_t n) {
    std::size_t k = std::min(n, buf_.size() - head_);
    std::string_view v(buf_.data() + head_, k);
    head_ += k;
    return v;
}

std::string LineAssembler::take_all() {
    std::string rest = buf_.substr(head_);
    reset();
    return rest;
}

void LineAssembler::reset() {
    buf_.clear();
    if (buf_.capacity() > 16 * 1024) buf_.shrink_to_fit();
    head_ = 0;
    discarding_ = false;
}

}  // namespace soh
