# Debian package (cpack -G DEB): smtp-over-http_<version>_<arch>.deb with
#   - the plugin in Wireshark's system plugin folder
#     (${Wireshark_PLUGIN_INSTALL_DIR}/epan, e.g.
#     /usr/lib/x86_64-linux-gnu/wireshark/plugins/4.6/epan),
#   - the SMTP-over-HTTP profile in /usr/share/wireshark/profiles,
#   - soh-report in /usr/bin.
#
# The plugin and profile folders are the cache variables SOH_PLUGIN_DIR and
# SOH_PROFILE_DIR, whose defaults depend on who configures (a personal folder
# for a non-root user).  A package must never carry a home folder, so build it
# in a tree configured for packaging:
#
#   cmake -S . -B build-pkg -DSOH_BUILD_TESTS=OFF \
#       -DSOH_PLUGIN_DIR=/usr/lib/x86_64-linux-gnu/wireshark/plugins/4.6/epan \
#       -DSOH_PROFILE_DIR=/usr/share/wireshark/profiles
#   cmake --build build-pkg -j2
#   (cd build-pkg && cpack -G DEB)
#
# scripts/package-test.sh does exactly that.  In any other tree, cpack stops
# with a message naming the two options (see soh_cpack_check.cmake below).
# Building the package needs no root: cpack installs into its own staging
# folder.

set(SOH_PKG_PLUGIN_DIR "${Wireshark_PLUGIN_INSTALL_DIR}/epan")
set(SOH_PKG_PROFILE_DIR "${Wireshark_INSTALL_PREFIX}/share/wireshark/profiles")

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "smtp-over-http")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VENDOR "smtp-over-http")
# Maintainer field: give your own with -DCPACK_PACKAGE_CONTACT="Name <address>".
if(NOT CPACK_PACKAGE_CONTACT)
  set(CPACK_PACKAGE_CONTACT "smtp-over-http maintainers")
endif()
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Wireshark plugin flagging HTTP/SOCKS proxy tunnels that relay SMTP")
set(CPACK_PACKAGE_DESCRIPTION
    "A Wireshark ${SOH_WS_MINOR} post-dissector that flags HTTP-proxy tunnels (CONNECT, \
absolute-URI relay, SOCKS) abused to relay SMTP, pairs each tunnel with the \
proxy's own connection to the mail server and extracts the SMTP envelope. \
Ships the SMTP-over-HTTP configuration profile and the soh-report batch command.")
set(CPACK_RESOURCE_FILE_README "${PROJECT_SOURCE_DIR}/README.md")

# Install rules with an absolute destination (plugin, profile) must land in
# cpack's staging folder, not on the build machine: use DESTDIR.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX "/usr")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")

set(CPACK_DEBIAN_PACKAGE_NAME "smtp-over-http")
# One package per Wireshark release: the version names the release it was
# built for (0.1.0+ws4.6), and so does the file name.
set(CPACK_DEBIAN_PACKAGE_VERSION "${PROJECT_VERSION}+ws${SOH_WS_MINOR}")
set(CPACK_DEBIAN_FILE_NAME "DEB-DEFAULT")        # <name>_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
# The plugin ABI is tied to the Wireshark minor release it was built against.
# Debian names the library's package after its soname (libwireshark.so.16 in
# libwireshark16 for 4.0, 18 for 4.4, 19 for 4.6): read the soname off the
# imported epan target, and bound the package to that minor release.
get_target_property(soh_epan_configs epan IMPORTED_CONFIGURATIONS)
set(soh_epan_soname "")
foreach(cfg IN LISTS soh_epan_configs)
  get_target_property(soh_epan_soname epan IMPORTED_SONAME_${cfg})
  if(soh_epan_soname)
    break()
  endif()
endforeach()
if(NOT soh_epan_soname MATCHES "^libwireshark\\.so\\.([0-9]+)$")
  message(FATAL_ERROR "cannot tell libwireshark's soname from the epan target (got '${soh_epan_soname}')")
endif()
set(SOH_LIBWIRESHARK_PACKAGE "libwireshark${CMAKE_MATCH_1}")
math(EXPR soh_ws_next_minor "${Wireshark_MINOR_VERSION} + 1")
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "${SOH_LIBWIRESHARK_PACKAGE} (>= ${SOH_WS_MINOR}), ${SOH_LIBWIRESHARK_PACKAGE} (<< ${Wireshark_MAJOR_VERSION}.${soh_ws_next_minor}), tshark, python3")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)            # adds libc6, libstdc++6, libwsutil
set(CPACK_STRIP_FILES ON)

# Refuse to package a tree whose plugin or profile folder is not the system one.
set(soh_pkg_problems "")
foreach(pair "SOH_PLUGIN_DIR=${SOH_PKG_PLUGIN_DIR}" "SOH_PROFILE_DIR=${SOH_PKG_PROFILE_DIR}")
  string(REPLACE "=" ";" kv "${pair}")
  list(GET kv 0 var)
  list(GET kv 1 want)
  if(DEFINED ${var} AND NOT "${${var}}" STREQUAL "${want}")
    string(APPEND soh_pkg_problems "  ${var} is ${${var}}, a package needs ${want}\n")
  endif()
endforeach()
set(soh_check "${PROJECT_BINARY_DIR}/soh_cpack_check.cmake")
if(soh_pkg_problems)
  file(WRITE "${soh_check}"
    "message(FATAL_ERROR \"this build tree is not configured for packaging:\n"
    "${soh_pkg_problems}"
    "Configure a separate tree with -DSOH_PLUGIN_DIR=${SOH_PKG_PLUGIN_DIR} "
    "-DSOH_PROFILE_DIR=${SOH_PKG_PROFILE_DIR} (scripts/package-test.sh does).\")\n")
else()
  file(WRITE "${soh_check}" "# configured for packaging: nothing to check\n")
endif()
set(CPACK_PROJECT_CONFIG_FILE "${soh_check}")

include(CPack)
