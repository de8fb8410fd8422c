// Feeds the engine with the TCP segments and DNS answers Wireshark decodes
// (observe.cpp).
#pragma once

#include <epan/packet.h>

namespace soh::glue {

// At handoff: makes the handles that go in front of TCP and UDP in
// "ip.proto", and remembers what they hand on to.
void register_shims();
// Per file (init and cleanup): puts them there, or takes them away.
void use_shims(bool on);
// The TLS application data Wireshark decrypted in this frame (an HTTPS
// proxy's connection, with the analyst's keys), for the frame's TCP stream.
void observe_decrypted(packet_info* pinfo);

}  // namespace soh::glue
