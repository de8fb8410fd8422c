// The TLS application data Wireshark decrypted in a frame (tls_records.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include <epan/packet.h>

namespace soh::glue {

// At handoff.
void register_tls_records();

// Calls fn(ctx, data, len, seq) for each decrypted application-data record
// of this frame's TLS, in order; seq is the record's offset in the
// plaintext of its direction. Nothing when no key decrypted it.
void for_each_tls_record(packet_info* pinfo, void (*fn)(void*, const std::uint8_t*, std::size_t, std::uint32_t),
                         void* ctx);

}  // namespace soh::glue
