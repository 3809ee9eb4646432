# Runs `peter sim route` twice with the same seed and checks that the two
# outputs are byte-identical and that every lookup reached the right root.
# Usage: cmake -DPETER=<path to peter> [-DNODES=500] -P sim_route_determinism.cmake
if(NOT DEFINED NODES)
  set(NODES 500)
endif()
set(args sim route --nodes ${NODES} --lookups 2000 --seed 3 --json --no-timing)
foreach(run IN ITEMS 1 2)
  execute_process(COMMAND ${PETER} ${args}
    OUTPUT_VARIABLE out${run} RESULT_VARIABLE rc${run})
  if(NOT rc${run} EQUAL 0)
    message(FATAL_ERROR "run ${run} failed with ${rc${run}}")
  endif()
endforeach()
if(NOT out1 STREQUAL out2)
  message(FATAL_ERROR "outputs differ:\n${out1}\n${out2}")
endif()
string(JSON correct GET "${out1}" correct_fraction)
string(JSON lost GET "${out1}" lost)
if(NOT correct EQUAL 1 OR NOT lost EQUAL 0)
  message(FATAL_ERROR "correct_fraction ${correct}, lost ${lost}:\n${out1}")
endif()
message(STATUS "identical; correct_fraction ${correct}")
