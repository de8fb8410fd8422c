// Remembers which tcp.stream a TCP connection (its address/port 4-tuple) got,
// so the glue asks Wireshark's conversation table once per connection rather
// than once per frame. A SYN may start a new connection on a reused 4-tuple,
// so the glue refreshes the entry on every SYN. Bounded: when full, the cache
// is emptied and refills as frames go by.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <unordered_map>

#include "types.h"

namespace soh {

class StreamCache {
public:
    explicit StreamCache(std::size_t max_entries = 1u << 22) : max_(max_entries) {}

    std::optional<StreamId> find(const Endpoint& a, const Endpoint& b) const {
        auto it = map_.find(key(a, b));
        if (it == map_.end()) return std::nullopt;
        return it->second;
    }

    void put(const Endpoint& a, const Endpoint& b, StreamId id) {
        if (map_.size() >= max_) map_.clear();
        map_[key(a, b)] = id;
    }

    std::size_t size() const { return map_.size(); }

private:
    // Direction-free: the smaller endpoint first.
    struct Key {
        std::uint8_t bytes[2 * 18 + 1];
        bool operator==(const Key& o) const { return std::memcmp(bytes, o.bytes, sizeof bytes) == 0; }
    };
    struct Hash {
        // Word-wise multiply-xor: this runs for every TCP frame.
        std::size_t operator()(const Key& k) const {
            std::uint64_t h = k.bytes[36];
            for (std::size_t i = 0; i + 8 <= 36; i += 8) {
                std::uint64_t w;
                std::memcpy(&w, k.bytes + i, 8);
                h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
                h ^= h >> 32;
            }
            std::uint32_t tail;
            std::memcpy(&tail, k.bytes + 32, 4);
            h = (h ^ tail) * 0x9E3779B97F4A7C15ULL;
            return static_cast<std::size_t>(h ^ (h >> 29));
        }
    };

    static void put_endpoint(std::uint8_t* out, const Endpoint& e) {
        std::memcpy(out, e.addr.bytes.data(), 16);
        out[16] = static_cast<std::uint8_t>(e.port >> 8);
        out[17] = static_cast<std::uint8_t>(e.port);
    }

    static Key key(const Endpoint& a, const Endpoint& b) {
        Key k{};
        std::uint8_t ea[18], eb[18];
        put_endpoint(ea, a);
        put_endpoint(eb, b);
        bool swap = std::memcmp(ea, eb, 18) > 0;
        std::memcpy(k.bytes, swap ? eb : ea, 18);
        std::memcpy(k.bytes + 18, swap ? ea : eb, 18);
        k.bytes[36] = a.addr.family;
        return k;
    }

    std::size_t max_;
    std::unordered_map<Key, StreamId, Hash> map_;
};

}  // namespace soh
