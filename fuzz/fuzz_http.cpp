// Fuzz target: the HTTP request-line, authority, status-line and header
// parsers (http_parse.h) on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "http_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);

    soh::looks_like_proxy_request(data, size);

    if (auto req = soh::parse_request_line(text)) {
        if (req->method.empty()) std::abort();
        if (auto hp = soh::proxy_target(*req)) {
            if (hp->host.size() > size) std::abort();
        }
    }
    for (std::uint16_t dflt : {std::uint16_t{0}, std::uint16_t{80}}) {
        if (auto hp = soh::parse_authority(text, dflt)) {
            if (hp->host.size() > size) std::abort();
        }
    }
    if (auto st = soh::parse_status_line(text)) {
        if (st->reason.size() > size) std::abort();
    }
    for (std::string_view name : {"Host", "Proxy-Authorization", "Content-Length", ""}) {
        if (auto v = soh::header_value(text, name)) {
            // The value is a view into the line.
            if (v->data() < text.data() || v->data() + v->size() > text.data() + text.size()) std::abort();
        }
    }
    return 0;
}
