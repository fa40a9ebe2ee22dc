#!/usr/bin/env bash
# Project lifecycle timings on the three-service busybox project
# (examples/three-services, with services that stop promptly on SIGTERM so
# `down` measures berth rather than stop_grace_period):
#   cold `up -d`   images present, project network and containers absent
#                  (includes waiting for db's health check: api depends on it)
#   no-op `up -d`  everything already up: read state, plan, nothing to do
#   `down`         stop and remove the three containers and the network
# Medians (and min/max) of RUNS runs, wall clock, with the binary in
# $BERTH (default target/debug/berth; build with --release for the figure
# that matters, e.g. BERTH=target/release/berth).
#
# docker-compose and podman-compose need a container engine (dockerd, or
# podman with its own storage and images from a registry): neither can
# run here (no daemon, no registry access), so they are not measured.
#
#   bash bench/project.sh            # RUNS=7
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-7}
BERTH=${BERTH:-target/debug/berth}
BERTH=$(realpath "$BERTH")
[ -x "$BERTH" ] || { echo "build berth first (cargo build)" >&2; exit 1; }
command -v busybox >/dev/null || { echo "bench needs busybox-static" >&2; exit 1; }

root=$(mktemp -d /tmp/berth-bench-project-XXXXXX)
proj=$(mktemp -d /tmp/berth-bench-dir-XXXXXX)
rootfs=$(mktemp -d /tmp/berth-bench-rootfs-XXXXXX)
name="bench$(od -An -N3 -tx1 /dev/urandom | tr -d ' ')"
cleanup() {
  (cd "$proj" && "$BERTH" --root "$root" down -t 0 -p "$name" >/dev/null 2>&1) || true
  grep " $root" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$root" "$proj" "$rootfs"
}
trap cleanup EXIT

# The busybox image, from Debian's busybox-static.
mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/etc"
cp "$(command -v busybox)" "$rootfs/bin/busybox"
for a in $("$rootfs/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$rootfs/bin/$a"; done
echo "root:x:0:0:root:/root:/bin/sh" > "$rootfs/etc/passwd"
echo "root:x:0:" > "$rootfs/etc/group"
tar -C "$rootfs" -cf "$rootfs.tar" .
"$BERTH" --root "$root" import "$rootfs.tar" busybox >/dev/null
rm -f "$rootfs.tar"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$proj/berth.toml" <<'EOF'
[services.db]
image = "busybox"
command = ["sh", "-c", "trap 'exit 0' TERM; touch /tmp/ready; sleep 1000000 & wait"]
[services.db.healthcheck]
test = ["CMD", "test", "-f", "/tmp/ready"]
interval = "1s"
timeout = "1s"
retries = 30

[services.api]
image = "busybox"
command = ["sh", "-c", "trap 'exit 0' TERM; echo api is up; sleep 1000000 & wait"]
depends_on = { db = "healthy" }

[services.web]
image = "busybox"
command = ["sh", "-c", "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www"]
ports = ["${WEB_PORT}:80"]
depends_on = ["api"]
stop_grace_period = "2s"
EOF
export WEB_PORT=$port
cd "$proj"

ms() { # ms CMD...: runs CMD, prints its wall time in ms
  local t0 t1
  t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}
stats() { sort -n | awk '{a[NR]=$1} END {printf "median %d ms (min %d, max %d, n=%d)\n", a[int((NR+1)/2)], a[1], a[NR], NR}'; }

cold=(); noop=(); down=()
for _ in $(seq "$RUNS"); do
  cold+=("$(ms "$BERTH" --root "$root" up -d -p "$name")")
  for _ in 1 2 3; do noop+=("$(ms "$BERTH" --root "$root" up -d -p "$name")"); done
  down+=("$(ms "$BERTH" --root "$root" down -p "$name")")
done
echo "berth $("$BERTH" --version | awk '{print $2}') ($BERTH), $RUNS runs"
printf 'cold up -d : '; printf '%s\n' "${cold[@]}" | stats
printf 'no-op up -d: '; printf '%s\n' "${noop[@]}" | stats
printf 'down       : '; printf '%s\n' "${down[@]}" | stats
echo "docker-compose, podman-compose: not measured (no container engine can run here)"
