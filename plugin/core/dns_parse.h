// Reads the name and the A/AAAA answers of a DNS response (RFC 1035 §4.1,
// RFC 3596), so host-name targets can be matched with the addresses the
// proxy connected to. Compression pointers are followed a bounded number of
// times; anything malformed yields nullopt.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "types.h"

namespace soh {

struct DnsAnswer {
    std::string name;         // the question name
    std::vector<Addr> addrs;  // A and AAAA records, at most 16
};

std::optional<DnsAnswer> parse_dns_response(const std::uint8_t* data, std::size_t len);

}  // namespace soh
