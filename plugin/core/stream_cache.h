// Remembers which tcp.stream a TCP connection (its address/port 4-tuple) got,
// so the glue asks Wireshark's conversation table once per connection rather
// than once per frame. A SYN may start a new connection on a reused 4-tuple,
// so the glue refreshes the entry on a SYN; the SYN-ACK that follows may
// trust an entry written at that SYN. Bounded: when full, the cache is emptied
// and refills as frames go by.
//
// Looked up on every TCP frame, about half the time away from the entry of
// the frame before, where the cost is the memory the probe touches: flat
// open-addressing tables (linear probing, power-of-two size, at most half
// full), no allocation per entry, and an IPv4 entry of 16 bytes, so that the
// table of a capture with tens of thousands of connections stays within a
// megabyte. IPv6 connections have a table of their own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "types.h"

namespace soh {

class StreamCache {
public:
    explicit StreamCache(std::size_t max_entries = 1u << 20) : max_(max_entries < 1 ? 1 : max_entries) {}

    // Direction-free key of a 4-tuple: the smaller endpoint first, then the
    // other. Built once per frame and used for find and put.
    struct Key4 {
        std::uint32_t a, b;   // addresses as read from the frame
        std::uint32_t ports;  // a's port in the high half
        // One branch, not three: this runs on every frame.
        bool operator==(const Key4& o) const { return ((a ^ o.a) | (b ^ o.b) | (ports ^ o.ports)) == 0; }
    };
    struct Key6 {
        std::uint64_t a[2], b[2];
        std::uint32_t ports;
        bool operator==(const Key6& o) const {
            return a[0] == o.a[0] && a[1] == o.a[1] && b[0] == o.b[0] && b[1] == o.b[1] && ports == o.ports;
        }
    };
    struct Key {
        std::uint8_t family;  // 4: v4 holds the key, else v6
        union {
            Key4 v4;
            Key6 v6;
        };
    };

    // An IPv4 4-tuple; a and b point at the raw addresses. Endpoints compare
    // as (address read as a native word, port): any total order will do, and
    // this one is the smaller and the larger of two 48-bit numbers, taken
    // without a branch (either order is as likely, so a branch would be
    // mispredicted on every other frame).
    static Key key4(const std::uint8_t* a, std::uint16_t a_port, const std::uint8_t* b, std::uint16_t b_port) {
        std::uint32_t a4, b4;
        std::memcpy(&a4, a, 4);
        std::memcpy(&b4, b, 4);
        const std::uint64_t ea = std::uint64_t{a4} << 16 | a_port, eb = std::uint64_t{b4} << 16 | b_port;
        const std::uint64_t lo = ea < eb ? ea : eb, hi = ea < eb ? eb : ea;
        Key k;
        k.family = 4;
        k.v4.a = static_cast<std::uint32_t>(lo >> 16);
        k.v4.b = static_cast<std::uint32_t>(hi >> 16);
        k.v4.ports = static_cast<std::uint32_t>(lo & 0xFFFF) << 16 | static_cast<std::uint32_t>(hi & 0xFFFF);
        return k;
    }
    // a and b point at the raw addresses (4 bytes for family 4, else 16).
    static Key key(std::uint8_t family, const std::uint8_t* a, std::uint16_t a_port, const std::uint8_t* b,
                   std::uint16_t b_port) {
        if (family == 4) return key4(a, a_port, b, b_port);
        Key k;
        k.family = 6;
        std::uint64_t w[4];
        std::memcpy(w, a, 16);
        std::memcpy(w + 2, b, 16);
        const bool a_first = w[0] != w[2] ? w[0] < w[2] : w[1] != w[3] ? w[1] < w[3] : a_port <= b_port;
        k.v6 = a_first ? Key6{{w[0], w[1]}, {w[2], w[3]}, std::uint32_t{a_port} << 16 | b_port}
                       : Key6{{w[2], w[3]}, {w[0], w[1]}, std::uint32_t{b_port} << 16 | a_port};
        return k;
    }
    static Key key(const Endpoint& a, const Endpoint& b) {
        return key(a.addr.family, a.addr.bytes.data(), a.port, b.addr.bytes.data(), b.port);
    }

    // An entry as stored, for the per-frame path (a plain word: no optional
    // and no out-parameter going through memory): kMiss when the 4-tuple has
    // none, else its stream, with kAtSyn set when a SYN wrote it.
    static constexpr std::uint32_t kMiss = ~std::uint32_t{0};
    static constexpr std::uint32_t kAtSyn = 1u << 31;
    std::uint32_t lookup(const Key& k) const { return k.family == 4 ? v4_.lookup(k.v4) : v6_.lookup(k.v6); }

    // The stream of this 4-tuple; *at_syn tells whether the entry was written at a SYN.
    std::optional<StreamId> find(const Key& k, bool* at_syn = nullptr) const {
        const std::uint32_t v = lookup(k);
        if (v == kMiss) return std::nullopt;
        if (at_syn) *at_syn = (v & kAtSyn) != 0;
        return v & ~kAtSyn;
    }
    std::optional<StreamId> find(const Endpoint& a, const Endpoint& b, bool* at_syn = nullptr) const {
        return find(key(a, b), at_syn);
    }

    void put(const Key& k, StreamId id, bool at_syn = false) {
        if (size() >= max_) {
            v4_.clear();
            v6_.clear();
        }
        if (k.family == 4)
            v4_.put(k.v4, id, at_syn);
        else
            v6_.put(k.v6, id, at_syn);
    }
    void put(const Endpoint& a, const Endpoint& b, StreamId id, bool at_syn = false) { put(key(a, b), id, at_syn); }

    std::size_t size() const { return v4_.size() + v6_.size(); }

private:
    // Multiply-xor over the key's words.
    static std::uint64_t mix(std::uint64_t h, std::uint64_t w) {
        h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
        return h ^ (h >> 32);
    }
    static std::uint64_t hash(const Key4& k) { return mix(mix(0, std::uint64_t{k.a} << 32 | k.b), k.ports); }
    static std::uint64_t hash(const Key6& k) {
        return mix(mix(mix(mix(mix(0, k.a[0]), k.a[1]), k.b[0]), k.b[1]), k.ports);
    }

    // One table per key type. An entry's value holds the stream and, in its
    // top bit, whether a SYN wrote it; all ones (kMiss) marks a free slot. A
    // stream number that would need the top bit, or make all ones with it,
    // is not cached: the table is emptied instead, and the glue asks
    // Wireshark (no real capture gets near it).
    template <class K>
    class Table {
    public:
        std::uint32_t lookup(const K& k) const {
            // Most frames belong to the connection of the frame before, or of
            // the one before that (two connections taking turns): on the
            // benchmark capture, 74% and 19% of TCP frames.
            if (__builtin_expect(last_ != kNoSlot && slots_[last_].key == k, 1)) return slots_[last_].value;
            if (prev_ != kNoSlot && slots_[prev_].key == k) {
                std::swap(last_, prev_);
                return slots_[last_].value;
            }
            return probe(k);
        }

        void put(const K& k, StreamId id, bool at_syn) {
            if (id >= kAtSyn - 1) {  // would leave an older entry of this key standing
                clear();
                return;
            }
            if ((size_ + 1) * 2 > slots_.size()) grow();
            for (std::size_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
                Slot& s = slots_[i];
                if (s.value != kFree && !(s.key == k)) continue;
                if (s.value == kFree) ++size_;
                s.key = k;
                s.value = id | (at_syn ? kAtSyn : 0);
                remember(i);
                return;
            }
        }

        void clear() {
            for (Slot& s : slots_) s.value = kFree;
            size_ = 0;
            last_ = prev_ = kNoSlot;
        }

        std::size_t size() const { return size_; }

    private:
        static constexpr std::uint32_t kFree = kMiss;
        static constexpr std::size_t kNoSlot = ~std::size_t{0};

        struct Slot {
            K key;
            std::uint32_t value = kFree;
        };

        // The key by value: an IPv4 key then travels in registers, and the
        // per-frame path need not store it for a call it rarely makes.
        [[gnu::noinline]] std::uint32_t probe(K k) const {
            if (size_ == 0) return kMiss;
            for (std::size_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
                const Slot& s = slots_[i];
                if (s.value == kFree) return kMiss;
                if (s.key == k) {
                    remember(i);
                    return s.value;
                }
            }
        }

        void grow() {
            std::vector<Slot> old(slots_.empty() ? 64 : slots_.size() * 2);
            old.swap(slots_);  // slots_ is now the larger, empty table
            mask_ = slots_.size() - 1;
            size_ = 0;
            last_ = prev_ = kNoSlot;
            for (const Slot& s : old) {
                if (s.value == kFree) continue;
                for (std::size_t i = hash(s.key) & mask_;; i = (i + 1) & mask_) {
                    if (slots_[i].value != kFree) continue;
                    slots_[i] = s;
                    ++size_;
                    break;
                }
            }
        }

        void remember(std::size_t i) const {
            if (i != last_) prev_ = last_;
            last_ = i;
        }

        std::vector<Slot> slots_;
        std::size_t mask_ = 0;
        std::size_t size_ = 0;
        mutable std::size_t last_ = kNoSlot;  // slot of the last hit
        mutable std::size_t prev_ = kNoSlot;  // and of the one before, another slot
    };

    std::size_t max_;
    Table<Key4> v4_;
    Table<Key6> v6_;
};

}  // namespace soh
