// Reads the records Wireshark's TLS dissector decrypted, where it keeps them
// for its own second pass and for Follow TLS Stream: per frame, a list of
// SslRecordInfo with the content type and the offset in the direction's
// plaintext (packet-tls-utils.h, part of each release's development
// headers; the fields read here are the same in 4.0, 4.4 and 4.6; where the
// list is kept differs, see ws_compat.h).
#include <epan/dissectors/packet-tls-utils.h>
#include <epan/proto_data.h>
#include <epan/wmem_scopes.h>

#include "tls_records.h"
#include "ws_compat.h"

namespace soh::glue {
namespace {

int proto_tls = -1;

// The records of the frame's outermost TLS layer: the connection to the
// proxy (TLS inside its tunnel would be a second layer).
const SslPacketInfo* packet_info_of(packet_info* pinfo) {
    return static_cast<const SslPacketInfo*>(
        p_get_proto_data(wmem_file_scope(), pinfo, proto_tls, SOH_TLS_RECORDS_KEY));
}

}  // namespace

void register_tls_records() { proto_tls = proto_get_id_by_filter_name("tls"); }

void for_each_tls_record(packet_info* pinfo, void (*fn)(void*, const std::uint8_t*, std::size_t, std::uint32_t),
                         void* ctx) {
    if (proto_tls < 0) return;
    const SslPacketInfo* pi = packet_info_of(pinfo);
    if (!pi) return;
    // Handshake messages, alerts and change-cipher-spec are TLS's own; only
    // application data (RFC 8446 §5.1: content type 23) has a flow offset.
    for (const SslRecordInfo* r = pi->records; r; r = r->next)
        if (r->type == SSL_ID_APP_DATA && r->flow && r->plain_data && r->data_len)
            fn(ctx, r->plain_data, r->data_len, r->seq);
}

}  // namespace soh::glue
