# ctest driver (cmake -P) of the install test: installs the build tree into
# a fresh prefix under WORK, configures and builds tests/install/consumer
# against it with find_package(Peter) and pkg-config, and runs the consumer
# linked three ways. Arguments: -DBUILD=<build dir> -DSOURCE=<consumer dir>
# -DWORK=<scratch dir> [-DLAUNCHER=ccache].
foreach(var IN ITEMS BUILD SOURCE WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "install_test: -D${var}= is required")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    string(JOIN " " command ${ARGN})
    message(FATAL_ERROR "install_test: `${command}` failed (${rc}):\n${out}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK})
set(prefix ${WORK}/prefix)
run(${CMAKE_COMMAND} --install ${BUILD} --prefix ${prefix})

# The daemon's files (/etc, /lib/systemd) stay out of a prefix install.
if(EXISTS ${prefix}/etc OR EXISTS ${prefix}/lib/systemd)
  message(FATAL_ERROR "install_test: daemon files were installed under the prefix")
endif()
foreach(file IN ITEMS bin/peter include/peter/node.h include/peter/pubsub/options.h)
  if(NOT EXISTS ${prefix}/${file})
    message(FATAL_ERROR "install_test: ${file} not installed")
  endif()
endforeach()

set(configure ${CMAKE_COMMAND} -S ${SOURCE} -B ${WORK}/build -G Ninja
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${prefix})
if(LAUNCHER)
  list(APPEND configure -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
endif()
set(ENV{PKG_CONFIG_PATH} "")
file(GLOB_RECURSE pc_files ${prefix}/*/peter.pc)
list(GET pc_files 0 pc_file)
get_filename_component(pc_dir ${pc_file} DIRECTORY)
set(ENV{PKG_CONFIG_PATH} ${pc_dir})
run(${configure})
run(${CMAKE_COMMAND} --build ${WORK}/build)

# The shared libraries carry an SONAME of their major version.
file(GLOB_RECURSE sonames ${prefix}/*/libpeter_pubsub.so.0)
if(NOT sonames)
  message(FATAL_ERROR "install_test: no libpeter_pubsub.so.0 installed")
endif()

foreach(exe IN ITEMS consumer_shared consumer_static consumer_pkgconfig)
  run(${WORK}/build/${exe})
  message(STATUS "${exe}: ${out}")
endforeach()
file(REMOVE_RECURSE ${WORK})
