#!/usr/bin/env bash
# The README's two commands on a fresh Debian 12 machine: a clean bookworm root made with
# debootstrap (a chroot), a `git clone` of this repository's committed HEAD into it, and
# inside it
#   ./setup.sh && build/kmoe demo --profile tiny        (the README runs `kmoe demo`; the
#                                                        tiny profile keeps this short)
#   python3 tests/check_imports.py                      (what .ci/run checks before the tests)
#   ./setup.sh && ctest --test-dir build --output-on-failure
# Not a CTest test: it takes an hour or more (1-2 GB of packages, the build, all tests).
# Run as root on a Debian/Ubuntu host with network access to deb.debian.org and PyPI:
#   sudo nice -n 19 tests/fresh_machine.sh
# Environment: KMOE_FRESH_DIR (where the root and the log go, default /var/tmp),
# KMOE_FRESH_MIRROR (default http://deb.debian.org/debian), KMOE_FRESH_VARIANT (debootstrap
# variant; default: Debian's default, required + important, like a new installation),
# KMOE_FRESH_KEEP=1 to keep the root after a successful run (it is always kept after a
# failure, for inspection). Prints a summary; exits non-zero when any step fails.
# Of the host the root gets only its network settings: /etc/resolv.conf, /etc/hosts, the CA
# certificates of /usr/local/share/ca-certificates and the proxy/CA-bundle variables (a host
# behind a TLS-intercepting proxy needs them for pip); the host's /usr/local/cuda is not seen.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "fresh_machine: must run as root (debootstrap, chroot, mount)" >&2; exit 2; }
base=${KMOE_FRESH_DIR:-/var/tmp}
mirror=${KMOE_FRESH_MIRROR:-http://deb.debian.org/debian}
root=$(mktemp -d "$base/kmoe-fresh-XXXXXX")
chmod 755 "$root"  # it becomes /: mktemp's 0700 would keep every user but root out (munge's postinst)
log=$root.log
: >"$log"
echo "fresh_machine: root $root, log $log"

say() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$log"; }
results=()
failed=0

mounted=()
cleanup() {
  local rc=$?
  # Processes left in the chroot (daemons of the SLURM tests, say) would keep its mounts busy.
  local pid
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$root" ] && kill -9 "$pid" 2>/dev/null
  done
  sleep 1
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount -R "${mounted[$i]}" 2>/dev/null || umount -lR "${mounted[$i]}" 2>/dev/null
  done
  # and what the tests mounted inside the root (`ip netns add` bind-mounts /run/netns)
  local m
  for m in $(awk -v r="$root/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  if [ "$failed" -eq 0 ] && [ "${KMOE_FRESH_KEEP:-0}" != 1 ] && [ "$rc" -eq 0 ]; then
    # Only once nothing is mounted below the root any more.
    if ! grep -q " $root/" /proc/mounts; then rm -rf --one-file-system "$root"; fi
  else
    echo "fresh_machine: the root is kept in $root" | tee -a "$log"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# step NAME COMMAND...: runs, times and records a step; its output goes to the log.
step() {
  local name=$1; shift
  say "== $name"
  local t0=$SECONDS
  "$@" >>"$log" 2>&1
  local rc=$?
  local dt=$((SECONDS - t0))
  results+=("$(printf '%-58s %s  %5d s' "$name" "$([ $rc -eq 0 ] && echo PASS || echo "FAIL (rc $rc)")" "$dt")")
  say "   $name: rc $rc, $dt s"
  [ $rc -eq 0 ] || failed=1
  return $rc
}

# Of the host's environment only its network settings (proxy, CA bundle) reach the root.
passed=()
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY SSL_CERT_FILE SSL_CERT_DIR \
         REQUESTS_CA_BUNDLE CURL_CA_BUNDLE PIP_CERT PIP_DEFAULT_TIMEOUT; do
  [ -n "${!v:-}" ] && passed+=("$v=${!v}")
done
in_root() {  # runs a bash command line inside the chroot, in the clone, with a clean environment
  env -i HOME=/root TERM=dumb LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    "${passed[@]}" chroot "$root" /bin/bash -c "cd /root/kmoe && $1"
}

head=$(git -C "$repo" rev-parse --short HEAD)  # what is cloned; the repository may move on during the run
summary() {
  echo
  echo "fresh_machine summary ($(date -u +%F\ %T) UTC, clone of $head):"
  printf '  %s\n' "${results[@]}"
  if grep -q "tests passed" "$log"; then
    echo "  ctest: $(grep -E '[0-9]+% tests passed' "$log" | tail -1)"
    grep -A200 "The following tests FAILED" "$log" | sed -n '1,60p' | sed 's/^/  /'
  fi
  echo "  log: $log"
}

{
  if ! command -v debootstrap >/dev/null; then
    step "install debootstrap on the host" bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap' || exit 1
  fi
  variant=()
  [ -n "${KMOE_FRESH_VARIANT:-}" ] && variant=(--variant="$KMOE_FRESH_VARIANT")
  step "debootstrap bookworm ($mirror)" debootstrap "${variant[@]}" bookworm "$root" "$mirror" || { summary; exit 1; }
  # What a new installation has: the updates and security suites, name resolution, a hosts file.
  cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
EOF
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  cp /etc/hosts "$root/etc/hosts"
  # The host's network, as a machine on it would have it: a TLS-intercepting proxy's CA that the
  # host trusts through /usr/local/share/ca-certificates is trusted in the root too (the
  # ca-certificates package that setup.sh brings adds it to /etc/ssl/certs).
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    [ -x "$root/usr/sbin/update-ca-certificates" ] && chroot "$root" /usr/sbin/update-ca-certificates >>"$log" 2>&1
    say "(the host's local CA certificates are copied into the root: $(ls /usr/local/share/ca-certificates/*.crt | xargs -n1 basename | tr '\n' ' '))"
  fi
  mount -t proc proc "$root/proc" && mounted+=("$root/proc")
  for d in sys dev; do
    mount --rbind "/$d" "$root/$d" && mount --make-rslave "$root/$d" && mounted+=("$root/$d")
  done
  [ -d /usr/local/cuda ] && [ ! -e "$root/usr/local/cuda" ] && say "(the host's /usr/local/cuda is not in the root: a CPU build)"
  step "git clone (committed HEAD $head) into the root" \
    git clone -q --no-hardlinks "$repo" "$root/root/kmoe" && git -C "$root/root/kmoe" checkout -q "$head" ||
    { summary; exit 1; }

  step "./setup.sh && build/kmoe demo --profile tiny" in_root './setup.sh && build/kmoe demo --profile tiny'
  step "python3 tests/check_imports.py" in_root 'python3 tests/check_imports.py'
  step "./setup.sh && ctest --test-dir build --output-on-failure" \
    in_root './setup.sh && ctest --test-dir build --output-on-failure'
  summary | tee -a "$log"
}
exit $failed
