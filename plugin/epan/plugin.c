/* Symbols Wireshark looks up when it loads a plugin. Kept in C: in C++ a
 * braced extern "C" block gives these constants internal linkage and the
 * plugin is skipped without a word. */
#include <ws_symbol_export.h>
#include <ws_version.h>
#include <epan/proto.h>
#include <epan/tap.h>

#include "soh_register.h"
#include "ws_compat.h"

WS_DLL_PUBLIC_DEF const char plugin_version[] = SOH_VERSION;
WS_DLL_PUBLIC_DEF const int plugin_want_major = WIRESHARK_VERSION_MAJOR;
WS_DLL_PUBLIC_DEF const int plugin_want_minor = WIRESHARK_VERSION_MINOR;

WS_DLL_PUBLIC void plugin_register(void);

#ifdef SOH_PLUGIN_DESCRIBES_ITSELF
WS_DLL_PUBLIC uint32_t plugin_describe(void);

uint32_t plugin_describe(void)
{
    return WS_PLUGIN_DESC_DISSECTOR | WS_PLUGIN_DESC_TAP_LISTENER;
}
#endif

void plugin_register(void)
{
    static proto_plugin plug;
    plug.register_protoinfo = soh_register_protocol;
    plug.register_handoff = soh_register_handoff;
    proto_register_plugin(&plug);
    static tap_plugin stats;
    stats.register_tap_listener = soh_register_stats;
    tap_register_plugin(&stats);
}
