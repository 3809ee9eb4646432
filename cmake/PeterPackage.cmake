# `cpack -G DEB` (run in the build directory): one package, `peter`, with the
# daemon, the libraries, the headers and the CMake/pkg-config files.
#   /usr/bin/peter, /usr/lib/libpeter_{pastry,pubsub}.so.*, .a, /usr/include/peter
#   /lib/systemd/system/peter.service   (User=peter, Restart=on-failure)
#   /etc/peter/peter.toml               (a conffile: upgrades keep local edits)
# postinst creates the system user `peter`. Dependencies on Debian's runtime
# libraries come from dpkg-shlibdeps. Binaries are stripped.
#
# The daemon's files have absolute destinations (/etc, /lib/systemd), so they
# are in the `daemon` component, left out of a plain `cmake --install`
# (which must not write to /etc for `--prefix ~/opt`); install them with
# `cmake --install build --component daemon` when not using the .deb.
install(FILES ${PROJECT_SOURCE_DIR}/packaging/peter.service
  DESTINATION /lib/systemd/system COMPONENT daemon EXCLUDE_FROM_ALL)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/peter.toml
  DESTINATION /etc/peter COMPONENT daemon EXCLUDE_FROM_ALL)
install(FILES ${PROJECT_SOURCE_DIR}/docs/operations.md ${PROJECT_SOURCE_DIR}/docs/embedding.md
  DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/peter COMPONENT runtime OPTIONAL)

set(CPACK_PACKAGE_NAME peter)
set(CPACK_PACKAGE_VENDOR "Peter")
set(CPACK_PACKAGE_CONTACT "Peter maintainers <peter@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "Broker-less publish/subscribe node (Pastry overlay with Scribe)")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
# One package holding every component, the daemon's included.
set(CPACK_COMPONENTS_ALL runtime dev daemon)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libpeter_pubsub needs libpeter_pastry, shipped in the same package.
# (dpkg-shlibdeps runs in the staging directory.)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS usr/${CMAKE_INSTALL_LIBDIR})
# useradd (postinst); the headers need Debian's -dev packages only to build
# against them, so those are suggestions.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS
  "libabsl-dev, libspdlog-dev, libcapnp-dev, libssl-dev, cmake, pkg-config")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/packaging/postinst
  ${PROJECT_SOURCE_DIR}/packaging/prerm
  ${PROJECT_SOURCE_DIR}/packaging/postrm
  ${PROJECT_SOURCE_DIR}/packaging/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
