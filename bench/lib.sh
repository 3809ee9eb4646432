# shellcheck shell=bash disable=SC2034  # its variables are for the scripts that source it
# Start-up code shared by the bench/ scripts (sourced, not run): messages,
# the binaries and tools a script needs, its work folder, the servers it
# starts (`peter node --resp`, redis-server) and their cleanup.
#
# Sourcing it sets BENCH_NAME (the script's name, for messages), BENCH_REPO
# (the repository), BUILD (BENCH_REPO/build; a script's --build changes it),
# PETER (empty until --peter or bench_binaries), BENCH_PAYLOAD (64 bytes)
# and an EXIT trap that stops every process passed to bench_track, whether
# the script ends, fails or is interrupted (bash runs the trap on Ctrl-C and
# SIGTERM too; background processes ignore Ctrl-C, so the trap is what stops
# them). A script that sets its own EXIT trap must call bench_cleanup from it.
#
# Environment: REDIS_SERVER, REDIS_CLI (default: found on PATH, else
# /usr/bin/...).

BENCH_NAME="$(basename "$0")"
BENCH_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BENCH_REPO}/build"
BENCH_PAYLOAD="$(printf 'x%.0s' {1..64})"
REDIS_SERVER="${REDIS_SERVER:-$(command -v redis-server || echo /usr/bin/redis-server)}"
REDIS_CLI="${REDIS_CLI:-$(command -v redis-cli || echo /usr/bin/redis-cli)}"
PETER=""                  # --peter BINARY; bench_binaries gives the default
WORK=""
BENCH_WORK_NOTE="output"  # "NAME: output in WORK" on exit; "" removes WORK
BENCH_PIDS=()             # "PID SIGNAL": what bench_cleanup stops
PETER_WRAP=()             # a command peter runs under (valgrind ...)

bench_log() { echo "${BENCH_NAME}: $*" >&2; }
bench_die() { bench_log "$@"; exit 1; }

# bench_other_argument ARG: for an argument a script does not take itself:
# -h or --help prints the script's leading comment block and exits 0; any
# other is an error (exit 2).
bench_other_argument() {
  case "$1" in
    -h|--help) awk 'NR > 1 { if (!/^#/) exit; print }' "$0"; exit 0 ;;
    *) bench_log "unknown argument $1"; exit 2 ;;
  esac
}

# PETER and CLIENT from BUILD, unless PETER was given (call after the
# arguments are read).
bench_binaries() {
  PETER="${PETER:-${BUILD}/bin/peter}"
  CLIENT="${BUILD}/bin/resp_fanout_bench"
}

# bench_require TOOL...: each a path to an executable or a command on PATH;
# exits with a message naming the first one missing.
bench_require() {
  local tool
  for tool in "$@"; do
    if [[ "${tool}" == */* ]]; then
      [[ -x "${tool}" ]] && continue
    else
      command -v "${tool}" >/dev/null && continue
    fi
    bench_die "${tool} missing (build it, or tools/install-deps)"
  done
}

# bench_workdir PREFIX [NOTE]: a fresh /tmp/peter-PREFIX.XXXXXX as WORK.
# On exit "NAME: NOTE in WORK" is printed (NOTE: output, the default, or
# logs); NOTE "" removes WORK instead.
bench_workdir() {
  WORK="$(mktemp -d "/tmp/peter-$1.XXXXXX")"
  BENCH_WORK_NOTE="${2-output}"
}

# bench_track PID [SIGNAL]: PID is sent SIGNAL (default TERM) and waited for
# on exit.
bench_track() { BENCH_PIDS+=("$1 ${2:-TERM}"); }

# bench_forget PID: not to be stopped on exit (it has been waited for).
bench_forget() {
  local entry kept=()
  for entry in ${BENCH_PIDS[@]+"${BENCH_PIDS[@]}"}; do
    [[ "${entry%% *}" == "$1" ]] || kept+=("${entry}")
  done
  BENCH_PIDS=(${kept[@]+"${kept[@]}"})
}

# bench_stop PID: sends PID its signal, waits for it, forgets it.
bench_stop() {
  local entry
  for entry in ${BENCH_PIDS[@]+"${BENCH_PIDS[@]}"}; do
    if [[ "${entry%% *}" == "$1" ]]; then kill -s "${entry#* }" "$1" 2>/dev/null || true; fi
  done
  wait "$1" 2>/dev/null || true
  bench_forget "$1"
}

# Stops what bench_track was given, the last started first (an observer such
# as perf or strace before the server it watches), then reports or removes
# WORK.
bench_cleanup() {
  local entry i
  for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; --i)); do
    entry="${BENCH_PIDS[i]}"
    kill -s "${entry#* }" "${entry%% *}" 2>/dev/null || true
  done
  for entry in ${BENCH_PIDS[@]+"${BENCH_PIDS[@]}"}; do
    wait "${entry%% *}" 2>/dev/null || true
  done
  BENCH_PIDS=()
  if [[ -n "${WORK}" ]]; then
    if [[ -n "${BENCH_WORK_NOTE}" ]]; then
      bench_log "${BENCH_WORK_NOTE} in ${WORK}"
    else
      rm -rf "${WORK}"
    fi
  fi
}
trap bench_cleanup EXIT

# A free loopback TCP port below the ephemeral range (redis-server has no
# port 0).
bench_free_port() {
  local port
  while true; do
    port=$((20000 + RANDOM % 10000))
    [[ -z "$(ss -Hltn "sport = :${port}")" ]] && { echo "${port}"; return; }
  done
}

# Prints the last lines of FILE to stderr, indented, then exits 1.
bench_die_with_log() {
  bench_log "$1; the end of $2:"
  tail -n 20 "$2" 2>/dev/null | sed 's/^/  /' >&2
  exit 1
}

# bench_start_peter NAME [FLAG...]: starts `PETER node --listen 127.0.0.1:0
# --resp 127.0.0.1:0 FLAG...` (under PETER_WRAP, if set), stdout in
# WORK/NAME.out and log in WORK/NAME.log, and waits until it is active (up to
# 30 s, 90 s under PETER_WRAP); exits with its log's end if it is not. Sets
# NODE_PID, NODE_LISTEN, NODE_ADMIN and NODE_RESP (host:port).
bench_start_peter() {
  local name="$1" i tries=300
  shift
  ((${#PETER_WRAP[@]} == 0)) || tries=900
  ${PETER_WRAP[@]+"${PETER_WRAP[@]}"} "${PETER}" node --listen 127.0.0.1:0 --resp 127.0.0.1:0 "$@" \
    >"${WORK}/${name}.out" 2>"${WORK}/${name}.log" &
  NODE_PID=$!
  bench_track "${NODE_PID}"
  for ((i = 0; i < tries; ++i)); do
    if grep -q '^active' "${WORK}/${name}.out" 2>/dev/null; then
      # listening LISTEN id ID admin ADMIN resp RESP
      read -r _ NODE_LISTEN _ _ _ NODE_ADMIN _ NODE_RESP <"${WORK}/${name}.out"
      return
    fi
    kill -0 "${NODE_PID}" 2>/dev/null ||
      bench_die_with_log "${name}: peter node exited before it was active" "${WORK}/${name}.log"
    sleep 0.1
  done
  bench_die_with_log "${name}: peter node not active after $((tries / 10)) s" "${WORK}/${name}.log"
}

# bench_start_redis NAME [FLAG...]: starts REDIS_SERVER on a free loopback
# port without persistence, its log in WORK/NAME.log, and waits (up to 10 s)
# until it answers PING; exits with its log's end if it does not. Sets
# REDIS_PID, REDIS_PORT and REDIS_ADDR (host:port).
bench_start_redis() {
  local name="$1" i
  shift
  REDIS_PORT="$(bench_free_port)"
  REDIS_ADDR="127.0.0.1:${REDIS_PORT}"
  "${REDIS_SERVER}" --bind 127.0.0.1 --port "${REDIS_PORT}" --save '' --appendonly no \
    --dir "${WORK}" "$@" >"${WORK}/${name}.log" 2>&1 &
  REDIS_PID=$!
  bench_track "${REDIS_PID}"
  for ((i = 0; i < 100; ++i)); do
    "${REDIS_CLI}" -p "${REDIS_PORT}" ping >/dev/null 2>&1 && return
    kill -0 "${REDIS_PID}" 2>/dev/null ||
      bench_die_with_log "${name}: redis-server exited before it answered on ${REDIS_ADDR}" "${WORK}/${name}.log"
    sleep 0.1
  done
  bench_die_with_log "${name}: redis-server did not answer on ${REDIS_ADDR} in 10 s" "${WORK}/${name}.log"
}

# CPU time (user + system, all threads) the given processes used so far, in
# clock ticks; bench_user_system_ticks PID: "USER SYSTEM". Fields 14 and 15
# of /proc/PID/stat, counted from after the command name's parenthesis.
bench_user_system_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12, $13}'; }
bench_cpu_ticks() {
  local pid user system total=0
  for pid in "$@"; do
    read -r user system < <(bench_user_system_ticks "${pid}")
    total=$((total + user + system))
  done
  echo "${total}"
}

# The messages delivered in a resp_fanout_bench row (its next-to-last
# column), 0 without a row.
bench_row_delivered() { awk -F'|' 'NF > 1 {n = $(NF-1)} END {print n + 0}' <<<"$1"; }
