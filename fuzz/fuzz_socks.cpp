// Fuzz target: the SOCKS4/4a/5 request and reply parsers (socks_parse.h).
// The correlator calls them on the bytes buffered so far, so every prefix of
// the input is parsed too and must agree with the whole once it is Done.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "socks_parse.h"

using namespace soh;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 4096) return 0;
    looks_like_socks(data, size);

    SocksRequest whole = parse_socks_request(data, size);
    if (whole.state == ParseState::Done && whole.consumed > size) std::abort();

    // Prefixes: once a prefix parses to Done, more bytes must not change the request.
    for (std::size_t n = 0; n <= size && n <= 600; ++n) {
        SocksRequest r = parse_socks_request(data, n);
        if (r.state == ParseState::Done) {
            if (r.consumed > n) std::abort();
            if (whole.state != ParseState::Done || whole.consumed != r.consumed || whole.host != r.host ||
                whole.port != r.port || whole.version != r.version)
                std::abort();
            break;
        }
        if (r.state == ParseState::Invalid) break;
    }

    for (SocksVersion v : {SocksVersion::None, SocksVersion::V4, SocksVersion::V4a, SocksVersion::V5}) {
        SocksReply rep = parse_socks_reply(v, data, size);
        if (rep.state == ParseState::Done && rep.consumed > size) std::abort();
        for (std::size_t n = 0; n <= size && n <= 64; ++n) {
            SocksReply p = parse_socks_reply(v, data, n);
            if (p.state == ParseState::Done && p.consumed > n) std::abort();
        }
    }
    return 0;
}
