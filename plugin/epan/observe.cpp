// The one place that reads other protocols' field_info: turns a frame into an
// engine observation. Reads only primed fields (see register.cpp) and never
// throws into epan: engine exceptions (allocation failure) are caught here.
#include <epan/address.h>
#include <epan/proto.h>
#include <epan/tvbuff.h>

#include <vector>

#include "glue.h"

namespace soh::glue {
namespace {

// The single field_info of hfid in this frame, or null when absent or repeated
// (a TCP header quoted inside an ICMP error is not a segment of ours).
field_info* single(proto_tree* tree, int hfid) {
    if (hfid < 0) return nullptr;
    GPtrArray* arr = proto_get_finfo_ptr_array(tree, hfid);
    if (!arr || arr->len != 1) return nullptr;
    return static_cast<field_info*>(g_ptr_array_index(arr, 0));
}

// Integer value of a field whatever its width; false for other types, so a
// field whose type changed in another Wireshark build cannot trip an assertion.
bool field_uint(field_info* fi, std::uint64_t* out) {
    switch (fi->hfinfo->type) {
        case FT_UINT8:
        case FT_UINT16:
        case FT_UINT24:
        case FT_UINT32:
            *out = fvalue_get_uinteger(&fi->value);
            return true;
        case FT_BOOLEAN:
        case FT_UINT64:
            *out = fvalue_get_uinteger64(&fi->value);
            return true;
        default:
            return false;
    }
}

bool to_addr(const address& a, Addr* out) {
    if (a.type == AT_IPv4 && a.len == 4) {
        *out = Addr::v4(static_cast<const std::uint8_t*>(a.data));
        return true;
    }
    if (a.type == AT_IPv6 && a.len == 16) {
        *out = Addr::v6(static_cast<const std::uint8_t*>(a.data));
        return true;
    }
    return false;
}

const std::uint8_t* field_bytes(const field_info* fi, std::size_t want) {
    if (!fi || !fi->ds_tvb || fi->length < 0 || static_cast<std::size_t>(fi->length) != want) return nullptr;
    if (!tvb_bytes_exist(fi->ds_tvb, fi->start, fi->length)) return nullptr;
    return tvb_get_ptr(fi->ds_tvb, fi->start, fi->length);
}

void observe_tcp(packet_info* pinfo, proto_tree* tree, field_info* stream) {
    field_info* seq = single(tree, wanted.tcp_seq);
    field_info* flags = single(tree, wanted.tcp_flags);
    field_info* sport = single(tree, wanted.tcp_srcport);
    field_info* dport = single(tree, wanted.tcp_dstport);
    if (!seq || !flags || !sport || !dport) return;
    Segment s;
    if (!to_addr(pinfo->net_src, &s.src.addr) || !to_addr(pinfo->net_dst, &s.dst.addr)) return;
    s.frame = pinfo->num;
    s.time = static_cast<double>(pinfo->abs_ts.secs) + pinfo->abs_ts.nsecs / 1e9;
    // Ports come from the TCP header fields: dissectors of tunnelled payloads
    // (SOCKS, HTTP CONNECT) rewrite pinfo->srcport/destport.
    std::uint64_t stream_no = 0, seq_no = 0, flag_bits = 0, src_port = 0, dst_port = 0;
    if (!field_uint(stream, &stream_no) || !field_uint(seq, &seq_no) || !field_uint(flags, &flag_bits) ||
        !field_uint(sport, &src_port) || !field_uint(dport, &dst_port))
        return;
    s.stream = static_cast<StreamId>(stream_no);
    s.src.port = static_cast<std::uint16_t>(src_port);
    s.dst.port = static_cast<std::uint16_t>(dst_port);
    s.seq = static_cast<std::uint32_t>(seq_no);
    s.flags = static_cast<std::uint16_t>(flag_bits);
    // The first tcp.payload is the segment's own; SOCKS and others add a second
    // one when they hand the tunnelled bytes back to TCP's subdissectors.
    GPtrArray* payloads = proto_get_finfo_ptr_array(tree, wanted.tcp_payload);
    if (payloads && payloads->len > 0) {
        auto* payload = static_cast<field_info*>(g_ptr_array_index(payloads, 0));
        if (payload->length > 0) {
            s.data = field_bytes(payload, static_cast<std::size_t>(payload->length));
            s.len = s.data ? static_cast<std::size_t>(payload->length) : 0;
        }
    }
    engine->on_segment(s);
}

void observe_dns(proto_tree* tree) {
    field_info* resp = single(tree, wanted.dns_response);
    std::uint64_t is_response = 0;
    if (!resp || !field_uint(resp, &is_response) || !is_response) return;
    GPtrArray* names = proto_get_finfo_ptr_array(tree, wanted.dns_qry_name);
    if (!names || names->len == 0) return;
    auto* name_fi = static_cast<field_info*>(g_ptr_array_index(names, 0));
    if (name_fi->hfinfo->type != FT_STRING) return;
    const char* name = fvalue_get_string(&name_fi->value);
    if (!name) return;
    std::vector<Addr> addrs;
    for (int hfid : {wanted.dns_a, wanted.dns_aaaa}) {
        GPtrArray* arr = hfid < 0 ? nullptr : proto_get_finfo_ptr_array(tree, hfid);
        const std::size_t width = hfid == wanted.dns_a ? 4 : 16;
        for (guint i = 0; arr && i < arr->len && addrs.size() < 16; ++i) {
            const auto* b = field_bytes(static_cast<field_info*>(g_ptr_array_index(arr, i)), width);
            if (b) addrs.push_back(width == 4 ? Addr::v4(b) : Addr::v6(b));
        }
    }
    engine->on_dns(name, addrs);
}

}  // namespace

void observe(packet_info* pinfo, proto_tree* tree) {
    if (!tree) return;  // fields are not primed: nothing to read
    try {
        if (pinfo->ptype == PT_TCP) {
            if (field_info* stream = single(tree, wanted.tcp_stream)) observe_tcp(pinfo, tree, stream);
        } else if (pinfo->ptype == PT_UDP) {
            observe_dns(tree);
        }
    } catch (...) {
        // Out of memory inside the engine: skip this frame rather than abort.
    }
}

}  // namespace soh::glue
