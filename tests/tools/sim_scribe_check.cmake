# Runs `peter sim scribe` on a few hundred nodes and checks its JSON:
#  1. transit-stub, no failures, twice with the same seed: byte-identical
#     output; every promised message delivered, in order; RAD/RMD >= 1 (a
#     tree path is never shorter than the shortest path); node and link
#     stress consistent;
#  2. 10% of the nodes failing mid-stream, reliable subscribers,
#     acknowledged publishes: delivered == expected, no duplicates, no order
#     violations; and byte-identical output with address-space layout
#     randomisation off (setarch -R) and on: nothing the run does may depend
#     on addresses (absl's hash seed is one);
#  3. bad flags: exit status 2 and a one-line error.
# Usage: cmake -DPETER=<path to peter> -P sim_scribe_check.cmake

function(run_peter out_var)
  execute_process(COMMAND ${PETER} ${ARGN}
    OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "peter ${ARGN} failed with ${rc}: ${err}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()

function(expect json field op value)
  string(JSON got GET "${json}" ${field})
  if(NOT got ${op} ${value})
    message(FATAL_ERROR "${field} = ${got}, expected ${op} ${value}:\n${json}")
  endif()
endfunction()

# 1. Determinism and sane fields.
set(args sim scribe --nodes 300 --topics 30 --group-size 15 --messages 5
    --seed 3 --json --no-timing)
run_peter(out1 ${args})
run_peter(out2 ${args})
if(NOT out1 STREQUAL out2)
  message(FATAL_ERROR "outputs differ:\n${out1}\n${out2}")
endif()
expect("${out1}" memberships EQUAL 450)
expect("${out1}" expected EQUAL 2250)
string(JSON expected GET "${out1}" expected)
expect("${out1}" delivered EQUAL ${expected})
expect("${out1}" duplicates EQUAL 0)
expect("${out1}" order_violations EQUAL 0)
expect("${out1}" numbering_conflicts EQUAL 0)
expect("${out1}" publishes_unconfirmed EQUAL 0)
expect("${out1}" attached_fraction EQUAL 1)
expect("${out1}" rad_mean GREATER_EQUAL 1)
expect("${out1}" rad_mean LESS 5)
expect("${out1}" rmd_mean GREATER_EQUAL 1)
expect("${out1}" node_stress_tables_mean GREATER_EQUAL 1)
expect("${out1}" node_stress_tables_max LESS_EQUAL 30)
string(JSON tables GET "${out1}" node_stress_tables_mean)
expect("${out1}" node_stress_entries_mean GREATER_EQUAL ${tables})
expect("${out1}" link_stress_mean GREATER_EQUAL 1)
string(JSON ip_max GET "${out1}" ip_multicast_link_stress_max)
expect("${out1}" ip_multicast_link_stress_max LESS_EQUAL 30)
expect("${out1}" link_stress_max GREATER_EQUAL 1)
# The histogram of links by stress ends at the maximum.
string(JSON bins LENGTH "${out1}" link_stress_histogram)
math(EXPR last "${bins} - 1")
expect("${out1}" link_stress_max EQUAL ${last})
expect("${out1}" control_msgs_per_node_s GREATER 0)
foreach(field wall_s peak_rss_mb)
  string(JSON missing ERROR_VARIABLE absent GET "${out1}" ${field})
  if(NOT absent)
    message(FATAL_ERROR "--no-timing output has ${field}")
  endif()
endforeach()

# 2. Failures with reliable subscribers, with and without ASLR.
set(fail_args sim scribe --nodes 300 --topics 30 --group-size 15 --messages 20
    --fail-fraction 0.1 --reliable --seed 4 --json --no-timing)
run_peter(fail ${fail_args})
find_program(SETARCH setarch REQUIRED)
execute_process(COMMAND uname -m OUTPUT_VARIABLE arch OUTPUT_STRIP_TRAILING_WHITESPACE)
execute_process(COMMAND ${SETARCH} ${arch} -R ${PETER} ${fail_args}
  OUTPUT_VARIABLE fixed ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "setarch -R peter ${fail_args} failed with ${rc}: ${err}")
endif()
if(NOT fail STREQUAL fixed)
  message(FATAL_ERROR "outputs differ with ASLR on and off:\n${fail}\n${fixed}")
endif()
expect("${fail}" failed EQUAL 30)
string(JSON expected GET "${fail}" expected)
expect("${fail}" expected GREATER 5000)
expect("${fail}" delivered EQUAL ${expected})
expect("${fail}" duplicates EQUAL 0)
expect("${fail}" order_violations EQUAL 0)
expect("${fail}" numbering_conflicts EQUAL 0)
string(JSON parent_failures GET "${fail}" parent_failures)
if(parent_failures EQUAL 0)
  message(FATAL_ERROR "no tree repaired a failure:\n${fail}")
endif()

# Timing fields without --no-timing.
run_peter(small sim scribe --nodes 50 --topics 3 --messages 2 --json)
expect("${small}" wall_s GREATER 0)
expect("${small}" peak_rss_mb GREATER 0)

# 3. Bad flags.
foreach(bad "--zipf;--group-size;5" "--fail-fraction;2" "--topology;moon" "--nodes;0")
  execute_process(COMMAND ${PETER} sim scribe ${bad}
    OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 2 OR NOT err MATCHES "^peter: error: ")
    message(FATAL_ERROR "'${bad}': exit ${rc}, stderr '${err}'")
  endif()
endforeach()
message(STATUS "deterministic; ${expected} promised deliveries with failures, all made")
