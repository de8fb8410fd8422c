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

/* Where the TLS dissector keeps a frame's decrypted records (the key of its
 * per-frame data for proto_tls): 0 in 4.0, whose packet-tls.c pins it
 * (its comment on bug 16109); from 4.2 on the number of that TLS layer among
 * the frame's TLS layers, 1 for the outermost. Checked on 4.0.17, 4.4.19
 * and 4.6.9 by the https_proxy capture test. */
#if WIRESHARK_VERSION_MAJOR == 4 && WIRESHARK_VERSION_MINOR < 2
#define SOH_TLS_RECORDS_KEY 0
#else
#define SOH_TLS_RECORDS_KEY 1
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
