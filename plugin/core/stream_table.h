// A small map from tcp.stream to per-stream state, for streams the engine
// holds briefly (a handshake waiting for its first data). Direct-mapped on
// the stream index: Wireshark numbers streams as they start, so streams held
// at the same time rarely share a slot, and an entry costs no allocation.
// On a clash the table doubles, up to `max` slots; past that the newer
// stream takes the slot (the older one's state is forgotten, which callers
// accept as they would a full table).
//
// A value exists only while its stream is held: insert constructs it in its
// slot and erase destroys it. Empty slots hold no T, so the table's slots
// cost no constructor when it grows, and holding a stream briefly costs one
// construction and one destruction rather than building a temporary and
// moving it in (T may be large: HeldTunnel holds a Flow).
#pragma once

#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

#include "types.h"

namespace soh {

template <class T>
class StreamTable {
public:
    explicit StreamTable(std::size_t max_slots) {
        while (max_ * 2 <= max_slots) max_ *= 2;
    }

    T* find(StreamId s) {
        if (slots_.empty()) return nullptr;
        Slot& e = slots_[s & (slots_.size() - 1)];
        return e.value && e.stream == s ? &*e.value : nullptr;
    }
    const T* find(StreamId s) const { return const_cast<StreamTable*>(this)->find(s); }

    // The stream whose entry insert(s) would take (the table is at its
    // largest and s's slot holds another stream), for callers that must not
    // lose it: they deal with it first.
    std::optional<StreamId> displaces(StreamId s) const {
        if (slots_.empty() || slots_.size() < max_) return std::nullopt;
        const Slot& e = slots_[s & (slots_.size() - 1)];
        if (!e.value || e.stream == s) return std::nullopt;
        return e.stream;
    }

    // The entry for s, default-constructed if new.
    T& insert(StreamId s) {
        if (slots_.empty()) slots_.resize(kFirst < max_ ? kFirst : max_);
        for (;;) {
            Slot& e = slots_[s & (slots_.size() - 1)];
            if (e.value && e.stream == s) return *e.value;
            if (!e.value || slots_.size() >= max_) {
                if (!e.value) ++size_;
                e.stream = s;
                return e.value.emplace();  // destroys the older stream's value first
            }
            grow();
        }
    }

    void erase(StreamId s) {
        if (slots_.empty()) return;
        Slot& e = slots_[s & (slots_.size() - 1)];
        if (!e.value || e.stream != s) return;
        e.value.reset();  // frees what the entry held
        --size_;
    }

    std::size_t size() const { return size_; }
    std::size_t capacity() const { return slots_.size(); }

    // Calls fn(stream, value) for every held stream; stops when fn returns true.
    template <class F>
    bool any(F&& fn) const {
        if (size_ == 0) return false;
        for (const Slot& e : slots_)
            if (e.value && fn(e.stream, *e.value)) return true;
        return false;
    }

private:
    static constexpr std::size_t kFirst = 64;

    struct Slot {
        StreamId stream = 0;
        std::optional<T> value;  // empty: a free slot
    };

    void grow() {
        std::vector<Slot> old(slots_.size() * 2);
        old.swap(slots_);
        for (Slot& e : old)
            if (e.value) slots_[e.stream & (slots_.size() - 1)] = std::move(e);  // no clash: one more index bit
    }

    std::vector<Slot> slots_;
    std::size_t max_ = 1;
    std::size_t size_ = 0;
};

}  // namespace soh
