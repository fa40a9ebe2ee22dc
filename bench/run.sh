#!/usr/bin/env bash
# Container start latency and supervisor memory: berth next to runc, docker
# and podman, in the same run, on the same busybox rootfs.
#
#   bench/run.sh [RUNS]      (default 20; needs root; BERTH=path/to/berth, or
#                             a release build is made)
#   e.g. cargo build --release && BERTH=target/release/berth bash bench/run.sh 20
#
# Wall time of `true` in a fresh container, removed afterwards; one warm-up,
# then median (min-max, n) of RUNS runs:
#   berth run --rm --network none IMAGE true   (a network namespace with
#       loopback only, an overlay rootfs, Docker's default confinement, a
#       supervisor)
#   runc run of the same rootfs as an OCI bundle, with runc's default spec
#       (new network namespace, no overlay, no supervisor), and with berth's
#       own spec (same confinement as berth: seccomp, masked paths, cgroups)
#   docker run --rm --network none busybox true   (a private dockerd, Debian's
#       docker.io 20.10: client -> dockerd -> containerd -> shim -> runc)
#   podman run --rm --network none busybox true   (podman 4.3 with private
#       storage: podman -> conmon -> runc)
# then the same with each engine's default bridge network (berth, docker,
# podman: a veth on the engine's bridge), and the memory of the process that
# stays beside a running container: berth's supervisor, docker's
# containerd-shim-runc-v2, podman's conmon (VmRSS and Pss).
# docker and podman use the same rootfs, imported (`docker import`,
# `podman import`); bench/engines.sh starts them privately and removes
# everything they made at the end. A missing one is "not measured" with the
# reason; to have them all: apt-get install docker.io podman
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-20}"

if [ -n "${BERTH:-}" ]; then
  berth=$(realpath "$BERTH")
else
  cargo build --release --quiet
  berth="$PWD/target/release/berth"
fi
for tool in runc jq busybox; do
  command -v "$tool" >/dev/null || { echo "bench needs $tool (apt-get install runc jq busybox-static)" >&2; exit 1; }
done
source bench/engines.sh

work="$(mktemp -d /tmp/berth-bench.XXXXXX)"
root="$work/root"
cleanup() {
  set +e
  "$berth" --root "$root" rm -f $("$berth" --root "$root" ps -aq 2>/dev/null) >/dev/null 2>&1
  engines_end "$work"
}
engines_begin "$work" cleanup

# The busybox root filesystem, as the tests make it.
rootfs="$work/bundle/rootfs"
busybox_rootfs "$rootfs" "$work/busybox.tar"

# berth: an image when the image store can import one, else --rootfs.
image=(--rootfs "$rootfs")
if "$berth" --root "$root" import "$work/busybox.tar" bench-busybox >/dev/null 2>&1; then
  image=(bench-busybox)
fi

# runc: the same rootfs as a bundle.
(cd "$work/bundle" && runc spec)
jq '.process.terminal=false | .process.args=["true"]' "$work/bundle/config.json" > "$work/c.json"
mv "$work/c.json" "$work/bundle/config.json"

# docker and podman, when they can run here.
have_docker=0; have_podman=0
if docker_start && docker_import_tar "$work/busybox.tar" busybox; then have_docker=1; fi
if podman_setup && podman_import_tar "$work/busybox.tar" busybox; then have_podman=1; fi

now() { date +%s%N; }
med() { sort -n "$work/$1.ns" | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1e6}'; }
stats() { sort -n "$work/$1.ns" | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2;
  printf "%7.1f ms  (%.1f-%.1f, n=%d)", m/1e6, a[1]/1e6, a[NR]/1e6, NR}'; }
row() { printf '%-48s %s\n' "$1" "$2"; }
ratio() { awk -v a="$(med "$1")" -v b="$(med "$2")" 'BEGIN { printf "%.2fx", a/b }'; }

# The timed commands, one function each (c_KEY).
i=0
c_berth()      { "$berth" --root "$root" run --rm --network none "${image[@]}" true; }
c_runc()       { i=$((i+1)); runc --root "$work/runc" run --bundle "$work/bundle" "bench-$$-$i-$RANDOM"; }
c_runc2()      { i=$((i+1)); runc --root "$work/runc" run --bundle "$work/bundle2" "bench2-$$-$i-$RANDOM"; }
c_docker()     { "$DOCKER" run --rm --network none busybox true; }
c_podman()     { podman run --rm --network none busybox true; }
# Each engine's default bridge network.
c_berth_net()  { "$berth" --root "$root" run --rm "${image[@]}" true; }
c_docker_net() { "$DOCKER" run --rm busybox true; }
c_podman_net() { podman run --rm busybox true; }

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

keys=(berth runc runc2 berth_net)
[ "$have_docker" = 0 ] || keys+=(docker docker_net)
[ "$have_podman" = 0 ] || keys+=(podman podman_net)
for k in "${keys[@]}"; do   # one warm-up each; a failure stops the bench
  "c_$k" >/dev/null 2>&1 || { echo "$k: failed:" >&2; "c_$k" >&2; exit 1; }
  : > "$work/$k.ns"
done
# Round-robin over the commands, so that load from elsewhere on the machine
# hits them alike.
for _ in $(seq "$runs"); do
  for k in "${keys[@]}"; do
    t0=$(now); "c_$k" >/dev/null 2>&1; echo $(( $(now) - t0 )) >> "$work/$k.ns"
  done
done

echo "bench/run.sh: $runs runs, $(nproc) cores; median (min-max, n) of wall time"
echo "berth $("$berth" --version | awk '{print $2}') ($berth), $(runc --version | head -1)"
[ "$have_docker" = 0 ] || echo "docker $("$DOCKER" version -f '{{.Server.Version}}') (private dockerd, client $DOCKER)"
[ "$have_podman" = 0 ] || echo "podman $(podman version -f '{{.Client.Version}}') (private storage, runtime $(podman info -f '{{.Host.OCIRuntime.Name}}'))"
echo
echo "no network (--network none):"
row "berth run --rm ${image[*]} true" "$(stats berth)"
row "runc run (same rootfs bundle, runc's spec)" "$(stats runc)"
row "runc run (berth's spec, same confinement)" "$(stats runc2)"
if [ "$have_docker" = 1 ]; then row "docker run --rm busybox true" "$(stats docker)"
else row "docker run --rm busybox true" "not measured: $docker_why"; fi
if [ "$have_podman" = 1 ]; then row "podman run --rm busybox true" "$(stats podman)"
else row "podman run --rm busybox true" "not measured: $podman_why"; fi
echo "default bridge network of each engine:"
row "berth run --rm ${image[*]} true" "$(stats berth_net)"
[ "$have_docker" = 0 ] || row "docker run --rm busybox true" "$(stats docker_net)"
[ "$have_podman" = 0 ] || row "podman run --rm busybox true" "$(stats podman_net)"
echo
echo "ratio berth/runc: $(ratio berth runc) (target: within 2x); berth/runc(same spec): $(ratio berth runc2)"
[ "$have_docker" = 0 ] || echo "ratio docker/berth: $(ratio docker berth) (no network), $(ratio docker_net berth_net) (bridge)"
[ "$have_podman" = 0 ] || echo "ratio podman/berth: $(ratio podman berth) (no network), $(ratio podman_net berth_net) (bridge)"

# Memory of what stays beside a running container.
mem() { # LABEL PID
  printf '%-48s VmRSS %6s kB  Pss %6s kB\n' "$1" "$(awk '/^VmRSS/ {print $2}' "/proc/$2/status")" \
    "$(awk '/^Pss:/ {s+=$2} END {print s}' "/proc/$2/smaps_rollup")"
}
echo
"$berth" --root "$root" run -d --name rss "${image[@]}" sleep 1000 >/dev/null
[ "$have_docker" = 0 ] || "$DOCKER" run -d --network none --name rss busybox sleep 1000 >/dev/null
[ "$have_podman" = 0 ] || podman run -d --network none --name rss busybox sleep 1000 >/dev/null
sleep 1
mem "berth supervisor (target: VmRSS under 4096 kB)" "$("$berth" --root "$root" inspect -f '{{.State.SupervisorPid}}' rss)"
if [ "$have_docker" = 1 ]; then
  mem "docker: containerd-shim-runc-v2" "$(ps -o ppid= -p "$("$DOCKER" inspect -f '{{.State.Pid}}' rss)" | tr -d ' ')"
else echo "containerd-shim: not measured: $docker_why"; fi
if [ "$have_podman" = 1 ]; then
  mem "podman: conmon" "$(podman inspect -f '{{.State.ConmonPid}}' rss)"
else echo "conmon: not measured: $podman_why"; fi
"$berth" --root "$root" rm -f rss >/dev/null
[ "$have_docker$have_podman" = 11 ] || echo "(both engines: apt-get install docker.io podman)"
