// Puts one direction of a TCP connection back in sequence order: drops bytes
// already delivered (retransmissions), holds segments that arrive early, and
// delivers contiguous data. Sequence numbers compare in serial-number
// arithmetic (RFC 1982) so wrap-around is harmless.
//
// Bounded: at most kMaxHeldBytes / kMaxHeldSegments wait for a hole to fill;
// beyond that the hole is declared lost, a gap is reported and delivery
// resumes after it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "function_ref.h"

namespace soh {

class StreamReassembler {
public:
    static constexpr std::size_t kMaxHeldBytes = 32 * 1024;
    static constexpr std::size_t kMaxHeldSegments = 32;

    // deliver(data, len) gets in-order bytes; gap() is called when bytes were lost.
    // Both are called only during add().
    using Deliver = FunctionRef<void(const std::uint8_t*, std::size_t)>;
    using Gap = FunctionRef<void()>;

    // seq is the sequence number of the first payload byte; for a SYN pass
    // syn=true and the SYN's own sequence number.
    void add(std::uint32_t seq, bool syn, const std::uint8_t* data, std::size_t len,
             Deliver deliver, Gap gap);

    bool started() const { return started_; }
    std::size_t held_bytes() const { return held_bytes_; }
    std::uint64_t gaps() const { return gaps_; }

private:
    void drain(Deliver deliver);

    bool started_ = false;
    std::uint32_t next_ = 0;
    std::map<std::uint32_t, std::string> held_;  // keyed by seq - next_ offset base
    std::size_t held_bytes_ = 0;
    std::uint64_t gaps_ = 0;
};

}  // namespace soh
