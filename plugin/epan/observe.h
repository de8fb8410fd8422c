// Feeds the engine with the TCP segments and DNS answers Wireshark decodes
// (observe.cpp).
#pragma once

namespace soh::glue {

// At handoff: makes the handles that go in front of TCP and UDP in
// "ip.proto", and remembers what they hand on to.
void register_shims();
// Per file (init and cleanup): puts them there, or takes them away.
void use_shims(bool on);

}  // namespace soh::glue
