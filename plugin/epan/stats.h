// Tap records behind the statistics tree (stats.cpp).
#pragma once

#include <epan/packet.h>

namespace soh::glue {

// What one frame adds to the statistics. Strings live in pinfo->pool.
struct TapRecord {
    const char* client;  // address only: one attacker, many source ports
    const char* proxy;   // address:port
    const char* target;  // as written, host:port
    const char* leg;      // "tunnel" or "attempt"
    const char* outcome;  // outcome_name
    const char* method;
    unsigned incidents;  // 1 on the frame that makes a proxy leg an incident
    int judged;          // 1 where its leg and outcome are counted
    int tentative;       // +1 counted before it was final, -1 once it is
    unsigned rcpts;
    unsigned messages;
};

void register_stats_tap();
void register_stats_tree();
bool stats_wanted();
void queue_stats(packet_info* pinfo, const TapRecord& record);

}  // namespace soh::glue
