#!/usr/bin/env bash
# Container start latency and supervisor memory, berth next to runc (and
# docker/podman/conmon/containerd-shim when installed; they are not on the
# project's build machine, and the script says so).
#
#   bench/run.sh [RUNS]      (default 20; needs root, a release build is made)
#
# Measures the median wall time of `berth run --rm IMAGE true` (a fresh
# network namespace with loopback only, an overlay rootfs, Docker's default
# confinement, a supervisor) against `runc run` of the same rootfs as an OCI
# bundle (runc's default spec: new network namespace, no overlay, no
# supervisor), then the supervisor's VmRSS.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-20}"

cargo build --release --quiet
berth="$PWD/target/release/berth"
work="$(mktemp -d /tmp/berth-bench.XXXXXX)"
root="$work/root"
cleanup() {
  "$berth" --root "$root" rm -f $("$berth" --root "$root" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The busybox root filesystem, as the tests make it.
rootfs="$work/bundle/rootfs"
mkdir -p "$rootfs"/{bin,etc,tmp,proc,sys,dev,root}
cp /bin/busybox "$rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\n' > "$rootfs/etc/group"

# berth: an image when the image store can import one, else --rootfs.
image=(--rootfs "$rootfs")
if "$berth" --root "$root" import --help >/dev/null 2>&1; then
  tar -C "$rootfs" -cf "$work/busybox.tar" .
  if "$berth" --root "$root" import "$work/busybox.tar" bench-busybox >/dev/null 2>&1; then
    image=(bench-busybox)
  fi
fi

# runc: the same rootfs as a bundle.
(cd "$work/bundle" && runc spec)
jq '.process.terminal=false | .process.args=["true"]' "$work/bundle/config.json" > "$work/c.json"
mv "$work/c.json" "$work/bundle/config.json"

now() { date +%s%N; }
median_ms() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1e6}'; }

time_cmd() { # label, command...
  local label="$1"; shift
  "$@" >/dev/null 2>&1 || { echo "$label: failed: $*" >&2; return 1; }   # warm-up
  for _ in $(seq "$runs"); do
    local t0; t0=$(now); "$@" >/dev/null 2>&1; echo $(( $(now) - t0 ))
  done | median_ms
}

echo "runs: $runs (median wall time)"
b=$(time_cmd berth "$berth" --root "$root" run --rm --network none "${image[@]}" true)
echo "berth run --rm ${image[*]} true:  ${b} ms"
i=0
runc_run() { i=$((i+1)); runc --root "$work/runc" run --bundle "$work/bundle" "bench-$$-$i-$RANDOM"; }
r=$(time_cmd runc runc_run)
echo "runc run (same rootfs bundle):      ${r} ms"
awk -v b="$b" -v r="$r" 'BEGIN { printf "ratio berth/runc: %.2fx (target: within 2x)\n", b/r }'

# runc again with berth's own spec (Docker's confinement: seccomp profile,
# masked paths, cgroup limits, devices), so the two runtimes do equal work.
"$berth" --root "$root" run -d --name specsrc "${image[@]}" sleep 1000 >/dev/null
cid=$("$berth" --root "$root" inspect -f '{{.Id}}' specsrc)
mkdir -p "$work/bundle2"
jq --arg rootfs "$rootfs" '.root.path=$rootfs | .process.args=["true"]
    | .linux.namespaces |= map(del(.path)) | del(.linux.cgroupsPath)
    | .mounts |= map(select(.destination != "/etc/hosts" and .destination != "/etc/resolv.conf" and .destination != "/etc/hostname"))' \
  "$root/containers/$cid/bundle/config.json" > "$work/bundle2/config.json"
"$berth" --root "$root" rm -f specsrc >/dev/null
runc_run2() { i=$((i+1)); runc --root "$work/runc" run --bundle "$work/bundle2" "bench2-$$-$i-$RANDOM"; }
r2=$(time_cmd runc2 runc_run2)
echo "runc run (berth's spec, same confinement): ${r2} ms"
awk -v b="$b" -v r="$r2" 'BEGIN { printf "ratio berth/runc(same spec): %.2fx\n", b/r }'

for engine in docker podman; do
  if ! command -v "$engine" >/dev/null; then
    echo "$engine: not installed on this machine, not measured"
  elif ! "$engine" info >/dev/null 2>&1; then
    echo "$engine: the client is installed but no engine answers (no daemon/service here), not measured"
  else
    "$engine" rmi -f berth-bench-busybox >/dev/null 2>&1 || true
    tar -C "$rootfs" -c . | "$engine" import - berth-bench-busybox >/dev/null
    d=$(time_cmd "$engine" "$engine" run --rm --network none berth-bench-busybox true)
    echo "$engine run --rm --network none (same rootfs): ${d} ms"
  fi
done

# Supervisor memory.
"$berth" --root "$root" run -d --name rss "${image[@]}" sleep 1000 >/dev/null
sleep 1
sup=$("$berth" --root "$root" inspect -f '{{.State.SupervisorPid}}' rss)
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$sup/status")
pss=$(awk '/^Pss:/ {s+=$2} END {print s}' "/proc/$sup/smaps_rollup")
echo "supervisor VmRSS: ${rss} kB (Pss ${pss} kB; target: under 4096 kB)"
"$berth" --root "$root" rm -f rss >/dev/null
for shim in conmon containerd-shim containerd-shim-runc-v2; do
  command -v "$shim" >/dev/null || echo "$shim: not installed on this machine, not measured"
done
