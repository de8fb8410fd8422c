// Feeds the engine with what a frame shows (observe.cpp).
#pragma once

#include <epan/packet.h>

namespace soh::glue {

// First pass only. Runs on every frame of every capture.
void observe(tvbuff_t* tvb, packet_info* pinfo);

}  // namespace soh::glue
