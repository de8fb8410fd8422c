/* What differs between the Wireshark releases the plugin builds against
 * (4.0, 4.4 and 4.6: README, "Wireshark releases"). The rest of the glue is
 * written once, against the API they share. Used from C (plugin.c) and C++. */
#ifndef SOH_WS_COMPAT_H
#define SOH_WS_COMPAT_H

#include <ws_version.h>

/* From 4.2 on, a plugin describes itself (plugin_describe, returning
 * WS_PLUGIN_DESC_* flags); without it `tshark -G plugins` and the About
 * dialog call its type "unknown". 4.0 installs no wsutil/plugins.h and asks
 * for no description. */
#if defined(__has_include)
#if __has_include(<wsutil/plugins.h>)
#include <wsutil/plugins.h>
#endif
#endif
#if defined(WS_PLUGIN_DESC_DISSECTOR)
#define SOH_PLUGIN_DESCRIBES_ITSELF 1
#endif

#ifdef __cplusplus
#include <epan/prefs.h>

#include <tuple>
#include <type_traits>

namespace soh::glue {

// The variable behind a boolean preference: gboolean* up to 4.0, bool* from
// 4.2 on (Wireshark moved its API from GLib types to C99). Read off the
// declaration, so that no version number has to be right.
template <typename F>
struct BoolPrefArg;
template <typename R, typename... A>
struct BoolPrefArg<R (*)(A...)> {
    // prefs_register_bool_preference(module, name, title, description, var)
    using type = std::remove_pointer_t<std::tuple_element_t<4, std::tuple<A...>>>;
};
using PrefBool = BoolPrefArg<decltype(&prefs_register_bool_preference)>::type;

}  // namespace soh::glue
#endif

#endif
