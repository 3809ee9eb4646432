# What `cmake --install` and `cpack` ship: the public headers (include/peter),
# two libraries, the `peter` program, a CMake package (find_package(Peter))
# and a pkg-config file. Included last from the top-level CMakeLists.txt,
# once every library target exists.
#
# The two libraries. The tree builds many small static libraries, one per
# layer (peter_pastry_core, _wire, _net, peter_pubsub, peter_node, ...), and
# tests and tools link those. A user gets two:
#   libpeter_pastry  the overlay: core, wire (with its generated Cap'n Proto
#                    code) and the TCP runtime;
#   libpeter_pubsub  Scribe, its wire layer and the embedded node of
#                    include/peter/node.h; needs libpeter_pastry;
# each as a shared library (SONAME libpeter_X.so.<major>, the version
# PROJECT_VERSION) and a static one. They are made from the object files of
# the layers' libraries ($<TARGET_OBJECTS>), so nothing is compiled twice and
# the in-tree targets stay as they are; the layers are therefore compiled as
# position-independent code. Exported targets: Peter::pastry and
# Peter::pubsub (shared), Peter::pastry_static and Peter::pubsub_static.
#
# A layer that gains a dependency must add it to the lists below:
# --no-undefined makes a missing one a link error of the shared library,
# not a user's surprise.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(PETER_PASTRY_LAYERS
  peter_pastry_core peter_pastry_wire peter_pastry_wire_schema peter_pastry_net)
set(PETER_PUBSUB_LAYERS
  peter_pubsub_wire peter_pubsub_wire_schema peter_pubsub peter_node)

# Used by include/peter headers: every user needs them.
set(PETER_PUBLIC_DEPS absl::status absl::statusor absl::time spdlog::spdlog)
# Used only inside the libraries.
set(PETER_PASTRY_PRIVATE_DEPS
  absl::strings absl::flat_hash_map absl::flat_hash_set absl::hash
  CapnProto::capnp CapnProto::kj OpenSSL::SSL OpenSSL::Crypto Threads::Threads)
set(PETER_PUBSUB_PRIVATE_DEPS
  absl::strings absl::flat_hash_map absl::flat_hash_set absl::hash
  absl::function_ref CapnProto::capnp CapnProto::kj OpenSSL::Crypto
  Threads::Threads)

set_target_properties(${PETER_PASTRY_LAYERS} ${PETER_PUBSUB_LAYERS}
  PROPERTIES POSITION_INDEPENDENT_CODE ON)

# peter_add_dist_library(NAME LAYERS... ) defines peter_NAME_shared and
# peter_NAME_static, both with the file name libpeter_NAME. They are built in
# build/lib/dist so they never clash with the layers' own archives.
function(peter_add_dist_library name)
  cmake_parse_arguments(ARG "" "" "LAYERS;PUBLIC;PRIVATE" ${ARGN})
  set(objects)
  foreach(layer IN LISTS ARG_LAYERS)
    list(APPEND objects $<TARGET_OBJECTS:${layer}>)
  endforeach()
  foreach(kind IN ITEMS shared static)
    set(target peter_${name}_${kind})
    string(TOUPPER ${kind} upper)
    add_library(${target} ${upper} ${objects})
    set_target_properties(${target} PROPERTIES
      OUTPUT_NAME peter_${name}
      ARCHIVE_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib/dist
      LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib/dist)
    target_include_directories(${target} INTERFACE
      $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
      $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
    target_compile_features(${target} INTERFACE cxx_std_20)
    target_link_libraries(${target} PUBLIC ${ARG_PUBLIC} PRIVATE ${ARG_PRIVATE})
  endforeach()
  set_target_properties(peter_${name}_shared PROPERTIES
    EXPORT_NAME ${name}
    VERSION ${PROJECT_VERSION}
    SOVERSION ${PROJECT_VERSION_MAJOR})
  target_link_options(peter_${name}_shared PRIVATE LINKER:--no-undefined)
  set_target_properties(peter_${name}_static PROPERTIES EXPORT_NAME ${name}_static)
endfunction()

peter_add_dist_library(pastry
  LAYERS ${PETER_PASTRY_LAYERS}
  PUBLIC ${PETER_PUBLIC_DEPS}
  PRIVATE ${PETER_PASTRY_PRIVATE_DEPS})
peter_add_dist_library(pubsub
  LAYERS ${PETER_PUBSUB_LAYERS}
  PRIVATE ${PETER_PUBSUB_PRIVATE_DEPS})
target_link_libraries(peter_pubsub_shared PUBLIC peter_pastry_shared)
target_link_libraries(peter_pubsub_static PUBLIC peter_pastry_static)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/peter
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT dev
  FILES_MATCHING PATTERN "*.h")
install(TARGETS peter_pastry_shared peter_pubsub_shared
  EXPORT PeterTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime
    NAMELINK_COMPONENT dev)
install(TARGETS peter_pastry_static peter_pubsub_static
  EXPORT PeterTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
# `cmake --install --strip` (and cpack, CPACK_STRIP_FILES) strips the
# programs and shared libraries; install(TARGETS) leaves archives alone, so
# their debug sections (most of their size) are removed here.
install(CODE "
  if(CMAKE_INSTALL_DO_STRIP)
    foreach(name IN ITEMS peter_pastry peter_pubsub)
      execute_process(COMMAND \"${CMAKE_STRIP}\" --strip-debug
        \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/lib\${name}.a\")
    endforeach()
  endif()" COMPONENT dev)
install(TARGETS peter RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)

set(PETER_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/Peter)
install(EXPORT PeterTargets
  NAMESPACE Peter::
  DESTINATION ${PETER_CMAKE_DIR}
  COMPONENT dev)
configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/PeterConfig.cmake.in
  ${PROJECT_BINARY_DIR}/PeterConfig.cmake
  INSTALL_DESTINATION ${PETER_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/PeterConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/PeterConfig.cmake
  ${PROJECT_BINARY_DIR}/PeterConfigVersion.cmake
  DESTINATION ${PETER_CMAKE_DIR}
  COMPONENT dev)

# pkg-config: `pkg-config --cflags --libs peter` (both libraries). The
# absl and spdlog modules are public requirements; the rest matter only
# when linking statically (`pkg-config --static`).
# Relocatable: the prefix is found from the file's own place, so a tree
# installed with `cmake --install --prefix P` works where it lands.
file(RELATIVE_PATH PETER_PC_TO_PREFIX
  /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(${CMAKE_CURRENT_LIST_DIR}/peter.pc.in
  ${PROJECT_BINARY_DIR}/peter.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/peter.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
  COMPONENT dev)
