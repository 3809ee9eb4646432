#!/usr/bin/env bash
# The .deb end to end, as root on a Debian machine: `cpack -G DEB` from the
# build tree, install with apt, check the package's files and dependencies,
# verify the systemd unit (when systemd-analyze exists), run the installed
# node as user `peter` from /etc/peter/peter.toml (ports overridden on the
# command line: the test must not collide with a running node), read it
# with `peter status`, stop it, then remove and purge the package.
# Exit 77 (ctest: skipped) when not root, not on dpkg, or when a `peter`
# package is already installed (the test will not touch it).
# Usage: deb_test.sh BUILD_DIR WORK_DIR
set -euo pipefail

BUILD="$1"
WORK="$2"

skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAILED: $*" >&2; exit 1; }

[[ "$(id -u)" -eq 0 ]] || skip "the .deb test installs a package: run it as root"
command -v dpkg >/dev/null && command -v apt-get >/dev/null || skip "not a dpkg/apt system"

# One run at a time on a machine (dpkg's lock, the package's files).
exec 9>/tmp/peter-deb-test.lock
flock -w 300 9 || fail "another deb test holds /tmp/peter-deb-test.lock"

if dpkg-query -W -f='${db:Status-Status}' peter 2>/dev/null | grep -qx installed; then
  skip "a peter package is already installed; this test only tests a clean install"
fi

rm -rf "${WORK}"
mkdir -p "${WORK}"
NODE_PID=""
cleanup() {
  if [[ -n "${NODE_PID}" ]]; then kill -9 "${NODE_PID}" 2>/dev/null || true; fi
  if dpkg-query -W peter >/dev/null 2>&1; then
    dpkg --purge peter >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

echo "== cpack"
(cd "${BUILD}" && cpack -G DEB -B "${WORK}" >"${WORK}/cpack.log" 2>&1) \
  || { cat "${WORK}/cpack.log"; fail "cpack -G DEB failed"; }
DEB="$(ls "${WORK}"/peter_*.deb)"
echo "${DEB}: $(du -h "${DEB}" | cut -f1)"

echo "== package contents and control"
DEPENDS="$(dpkg-deb -f "${DEB}" Depends)"
echo "Depends: ${DEPENDS}"
for lib in libabsl libcapnp libspdlog libssl3 libcpp-httplib passwd; do
  [[ "${DEPENDS}" == *"${lib}"* ]] || fail "Depends lacks ${lib}"
done
CONTENTS="$(dpkg-deb -c "${DEB}")"
for f in ./usr/bin/peter ./lib/systemd/system/peter.service ./etc/peter/peter.toml \
         ./usr/include/peter/node.h ./usr/lib/libpeter_pubsub.so.0 \
         ./usr/lib/cmake/Peter/PeterConfig.cmake ./usr/lib/pkgconfig/peter.pc; do
  grep -q " ${f}" <<<"${CONTENTS}" || fail "${f} is not in the package"
done
dpkg-deb --ctrl-tarfile "${DEB}" | tar -xO ./conffiles | grep -qx /etc/peter/peter.toml \
  || fail "/etc/peter/peter.toml is not a conffile"

echo "== install"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${DEB}" \
  </dev/null >"${WORK}/apt.log" 2>&1 || { cat "${WORK}/apt.log"; fail "apt-get install failed"; }
getent passwd peter >/dev/null || fail "postinst did not create the user peter"
/usr/bin/peter --version
/usr/bin/peter node --help | grep -q -- "--config FILE" || fail "peter node --help lacks --config"

if command -v systemd-analyze >/dev/null; then
  echo "== systemd-analyze verify"
  # Complaints about other units of a machine without systemd running are
  # not ours: only lines naming peter.service count.
  if ! systemd-analyze verify /lib/systemd/system/peter.service >"${WORK}/verify.log" 2>&1; then
    if grep -i "peter.service" "${WORK}/verify.log"; then fail "the unit does not verify"; fi
  fi
else
  echo "systemd-analyze not installed: unit not verified"
fi

echo "== run the installed node as user peter"
# Created first: the node's shell opens it in the background, and awk below
# may run before that (set -e would end the test on awk's error).
: >"${WORK}/node.out"
# setpriv execs the node itself (runuser would stay in between as its parent).
setpriv --reuid=peter --regid=peter --init-groups /usr/bin/peter node --config /etc/peter/peter.toml \
  --listen 127.0.0.1:0 --admin 127.0.0.1:0 >"${WORK}/node.out" 2>"${WORK}/node.err" &
NODE_PID=$!
ADMIN=""
for _ in $(seq 1 200); do   # up to 10 s for the "listening" line
  ADMIN="$(awk '/^listening / {print $6}' "${WORK}/node.out")"
  [[ -n "${ADMIN}" ]] && break
  kill -0 "${NODE_PID}" 2>/dev/null || { cat "${WORK}/node.err"; fail "the node exited"; }
  sleep 0.05
done
[[ -n "${ADMIN}" ]] || { cat "${WORK}/node.err"; fail "the node did not start"; }
for _ in $(seq 1 200); do   # up to 10 s to become active
  grep -qx active "${WORK}/node.out" && break
  sleep 0.05
done
/usr/bin/peter status --json "${ADMIN}" >"${WORK}/status.json" || fail "peter status --json failed"
grep -q '"active": true' "${WORK}/status.json" || { cat "${WORK}/status.json"; fail "node not active"; }
/usr/bin/peter status "${ADMIN}" | tee "${WORK}/status.txt"
grep -q "^node .* active" "${WORK}/status.txt" || fail "peter status did not show an active node"
[[ "$(ps -o user= -p "${NODE_PID}" | tr -d ' ')" == peter ]] || fail "the node does not run as peter"

kill -TERM "${NODE_PID}"
wait "${NODE_PID}" || fail "the node did not exit 0 on SIGTERM"
NODE_PID=""

echo "== remove and purge"
DEBIAN_FRONTEND=noninteractive apt-get remove -y -q peter </dev/null >"${WORK}/apt.log" 2>&1 \
  || { cat "${WORK}/apt.log"; fail "apt-get remove failed"; }
[[ ! -e /usr/bin/peter ]] || fail "/usr/bin/peter remains after remove"
[[ -e /etc/peter/peter.toml ]] || fail "remove (not purge) must keep the conffile"
dpkg --purge peter >/dev/null
[[ ! -e /etc/peter/peter.toml ]] || fail "purge left /etc/peter/peter.toml"
rm -rf "${WORK}"
echo "deb test passed"
