// Remembers which tcp.stream a TCP connection (its address/port 4-tuple) got,
// so the glue asks Wireshark's conversation table once per connection rather
// than once per frame. A SYN may start a new connection on a reused 4-tuple,
// so the glue refreshes the entry on a SYN; the SYN-ACK that follows may
// trust an entry written at that SYN. Bounded: when full, the cache is emptied
// and refills as frames go by.
//
// Looked up on every TCP frame: a flat open-addressing table (linear probing,
// power-of-two size, at most half full), one cache line per probe, no
// allocation per entry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "types.h"

namespace soh {

class alignas(64) StreamCache {
public:
    explicit StreamCache(std::size_t max_entries = 1u << 20) : max_(max_entries < 1 ? 1 : max_entries) {}

    // Direction-free key of a 4-tuple: the smaller endpoint first, then the
    // address family. Built once per frame and used for find and put.
    struct Key {
        std::uint64_t w[5];
        bool operator==(const Key& o) const {
            return w[0] == o.w[0] && w[1] == o.w[1] && w[2] == o.w[2] && w[3] == o.w[3] && w[4] == o.w[4];
        }
    };

    // a and b point at the raw addresses (4 bytes for family 4, else 16).
    static Key key(std::uint8_t family, const std::uint8_t* a, std::uint16_t a_port, const std::uint8_t* b,
                   std::uint16_t b_port) {
        std::uint64_t a0 = 0, a1 = 0, b0 = 0, b1 = 0;
        if (family == 4) {
            std::uint32_t a4, b4;
            std::memcpy(&a4, a, 4);
            std::memcpy(&b4, b, 4);
            a0 = a4;
            b0 = b4;
        } else {
            std::memcpy(&a0, a, 8);
            std::memcpy(&a1, a + 8, 8);
            std::memcpy(&b0, b, 8);
            std::memcpy(&b1, b + 8, 8);
        }
        // Any total order of endpoints will do: compare as native words.
        const bool a_first = a0 != b0 ? a0 < b0 : a1 != b1 ? a1 < b1 : a_port <= b_port;
        const std::uint64_t ports = a_first ? (std::uint64_t{a_port} << 16 | b_port) : (std::uint64_t{b_port} << 16 | a_port);
        return a_first ? Key{{a0, a1, b0, b1, ports << 8 | family}} : Key{{b0, b1, a0, a1, ports << 8 | family}};
    }
    static Key key(const Endpoint& a, const Endpoint& b) {
        return key(a.addr.family, a.addr.bytes.data(), a.port, b.addr.bytes.data(), b.port);
    }

    // The stream of this 4-tuple; *at_syn tells whether the entry was written at a SYN.
    std::optional<StreamId> find(const Key& k, bool* at_syn = nullptr) const {
        // Most frames belong to the connection of the frame before.
        if (__builtin_expect(last_ != kNoSlot && slots_[last_].key == k, 1)) {
            if (at_syn) *at_syn = slots_[last_].at_syn;
            return slots_[last_].id;
        }
        return probe(k, at_syn);
    }
    std::optional<StreamId> find(const Endpoint& a, const Endpoint& b, bool* at_syn = nullptr) const {
        return find(key(a, b), at_syn);
    }

    void put(const Key& k, StreamId id, bool at_syn = false) {
        if (size_ >= max_) clear();
        if ((size_ + 1) * 2 > slots_.size()) grow();
        const std::uint64_t h = hash(k);
        for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
            Slot& s = slots_[i];
            if (s.used && !(s.hash == h && s.key == k)) continue;
            if (!s.used) ++size_;
            s = Slot{h, k, id, true, at_syn};
            last_ = i;
            return;
        }
    }
    void put(const Endpoint& a, const Endpoint& b, StreamId id, bool at_syn = false) { put(key(a, b), id, at_syn); }

    std::size_t size() const { return size_; }

private:
    [[gnu::noinline]] std::optional<StreamId> probe(const Key& k, bool* at_syn) const {
        if (size_ == 0) return std::nullopt;
        const std::uint64_t h = hash(k);
        for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
            const Slot& s = slots_[i];
            if (!s.used) return std::nullopt;
            if (s.hash == h && s.key == k) {
                if (at_syn) *at_syn = s.at_syn;
                last_ = i;
                return s.id;
            }
        }
    }

    // One cache line each, so that a probe or the memo check reads one line.
    struct alignas(64) Slot {
        std::uint64_t hash = 0;
        Key key{};
        StreamId id = 0;
        bool used = false;
        bool at_syn = false;
    };

    // Word-wise multiply-xor over the key.
    static std::uint64_t hash(const Key& k) {
        std::uint64_t h = 0;
        for (std::uint64_t w : k.w) {
            h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
            h ^= h >> 32;
        }
        return h;
    }

    void clear() {
        slots_.assign(slots_.size(), Slot{});
        size_ = 0;
        last_ = kNoSlot;
    }

    void grow() {
        std::vector<Slot> old;
        old.swap(slots_);
        slots_.assign(old.empty() ? 64 : old.size() * 2, Slot{});
        mask_ = slots_.size() - 1;
        size_ = 0;
        last_ = kNoSlot;
        for (const Slot& s : old) {
            if (!s.used) continue;
            for (std::size_t i = s.hash & mask_;; i = (i + 1) & mask_) {
                if (slots_[i].used) continue;
                slots_[i] = s;
                ++size_;
                break;
            }
        }
    }

    std::size_t max_;
    std::vector<Slot> slots_;
    std::size_t mask_ = 0;
    std::size_t size_ = 0;
    static constexpr std::size_t kNoSlot = ~std::size_t{0};
    mutable std::size_t last_ = kNoSlot;  // slot of the last hit
};

}  // namespace soh
