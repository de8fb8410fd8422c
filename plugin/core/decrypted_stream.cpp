// Streams read as their decrypted plaintext: an HTTPS proxy, where the
// client speaks TLS to the proxy and the proxy request (CONNECT, an
// absolute URI) travels inside it. Wireshark decrypts such a stream when the
// analyst supplies the TLS keys; the glue hands its application data here,
// record by record, numbered per direction from 0.
#include "correlator.h"

namespace soh {

void Correlator::on_decrypted(const Segment& seg) {
    frame_ = seg.frame;
    if (seg.len == 0 || !grow_slots(seg.stream)) return;
    if (close_pending_ && close_.frame != seg.frame) flush_close();
    if (!decrypted_.count(seg.stream)) {
        // Only a stream its ciphertext left unclassified or benign: one that
        // its own bytes made a proxy leg, a relay leg or a held tunnel keeps
        // them (TLS inside a tunnel is content, not a proxy connection).
        const std::uint32_t slot = slots_[seg.stream];
        if (slot >= kSlotBase || slot == kSlotRelayPending || slot == kSlotTunnelHeld) return;
        if (decrypted_.size() >= cfg_.max_flows) return;
        decrypted_.insert(seg.stream);
        unclassified_.erase(seg.stream);
        // Pending, not unseen: whether it is a relay leg was decided at its
        // handshake; its first plaintext is classified like a first segment.
        slots_[seg.stream] = kSlotPending;
    }
    ++counters_.segments;
    Segment plain = seg;
    plain.flags = kAck;  // the plaintext has no SYN, FIN or RST of its own
    dispatch(plain);
}

// A ciphertext segment of a decrypted stream: its frame belongs to the
// stream, its bytes do not (their plaintext comes through on_decrypted).
void Correlator::ciphertext(const Segment& seg) {
    Segment bare = seg;
    bare.data = nullptr;
    bare.len = 0;
    if ((seg.flags & (kFin | kRst)) && seg.len) {
        close_ = bare;
        close_pending_ = true;
        bare.flags &= static_cast<std::uint16_t>(~(kFin | kRst));
    }
    const std::uint32_t slot = slots_[seg.stream];
    if (slot == kSlotIgnored || fast_path(seg.stream, 0, bare.flags, seg.frame)) return;
    dispatch(bare);
}

void Correlator::flush_close() {
    close_pending_ = false;
    const std::uint32_t slot = slots_[close_.stream];
    if (slot != kSlotIgnored) dispatch(close_);
}

}  // namespace soh
