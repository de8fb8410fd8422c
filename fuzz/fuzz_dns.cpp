// Fuzz target: the DNS response reader (dns_parse.h), which sees every UDP
// datagram from port 53. Whatever the bytes (compression loops, pointers
// past the end, counts that lie), it returns within its bounds: a name of at
// most 255 characters and at most 16 addresses, each IPv4 or IPv6.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "dns_parse.h"

using namespace soh;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 65535) return 0;
    const auto answer = parse_dns_response(data, size);
    if (!answer) return 0;
    if (answer->name.size() > 255 || answer->addrs.size() > 16) std::abort();
    for (const Addr& a : answer->addrs)
        if (a.family != 4 && a.family != 6) std::abort();
    return 0;
}
