#!/usr/bin/env bash
# Published-port throughput: busybox httpd in berth containers, fetched with
# wrk (a) straight at a container's address, (b) through berth's published
# port on 127.0.0.1 (nft DNAT + route_localnet + masquerade), (c) through the
# published port on the host's own non-loopback address, and (d) for
# comparison through a userland proxy on 127.0.0.1 (socat, fork per
# connection: the shape of docker-proxy). Short bounded runs, loopback and
# namespaces only; medians of RUNS runs.
#
# Two identical containers are used: one measured directly, one through its
# published port. With one container, direct connections (source = the
# gateway, the host's TCP timestamps for that pair) leave TIME_WAIT sockets
# in the container that the masqueraded loopback connections (same source
# address, other timestamp offset) then collide with (PAWS drops the SYN,
# 1 s retransmit), which would measure that interaction, not the path.
#
# docker and podman cannot run on this machine (no daemon, no registry
# access, no images), so their rows are not measured here.
#
#   bash bench/ports.sh            # RUNS=5 DURATION=5s CONNS=32 THREADS=2
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}

for tool in wrk ip busybox bc; do
  command -v "$tool" >/dev/null || { echo "bench needs $tool (apt-get install wrk iproute2 busybox-static bc)" >&2; exit 1; }
done
have_socat=1; command -v socat >/dev/null || have_socat=0

cargo build -q --bin berth
berth="$PWD/target/debug/berth"
export BERTH_ROOT; BERTH_ROOT=$(mktemp -d /tmp/berth-bench-XXXXXX)
rootfs=$(mktemp -d /tmp/berth-bench-rootfs-XXXXXX)
mkdir -p "$rootfs"/{bin,etc,tmp,proc,sys,dev,var/www}
cp /bin/busybox "$rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$rootfs/bin/$a"; done
echo "root:x:0:0:root:/root:/bin/sh" > "$rootfs/etc/passwd"
echo "root:x:0:" > "$rootfs/etc/group"
echo "hello from berth" > "$rootfs/var/www/index.html"

cleanup() {
  [ -n "${socat_pid:-}" ] && kill "$socat_pid" 2>/dev/null || true
  "$berth" rm -f bench-direct bench-published >/dev/null 2>&1 || true
  rm -rf "$BERTH_ROOT" "$rootfs"
}
trap cleanup EXIT

httpd=(--rootfs "$rootfs" httpd -f -p 80 -h /var/www)
"$berth" run -d --name bench-direct "${httpd[@]}" >/dev/null
"$berth" run -d --name bench-published -p 80 "${httpd[@]}" >/dev/null
dip=$("$berth" inspect -f '{{.NetworkSettings.IPAddress}}' bench-direct)
hport=$("$berth" port bench-published 80 | head -1 | sed 's/.*://')
hostip=$(ip -4 -o addr show scope global | awk '$2 !~ /^(br-|berth|bv)/ {split($4,a,"/"); print a[1]; exit}')
sleep 0.5

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
once() { wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" "$1" | awk '/Requests\/sec/ {print $2}'; }
ratio() { echo "$1/$2" | bc -l; }

if [ "$have_socat" = 1 ]; then
  pport=$((20000 + RANDOM % 20000))
  socat TCP-LISTEN:$pport,bind=127.0.0.1,reuseaddr,fork TCP:"$dip":80 2>/dev/null & socat_pid=$!
  sleep 0.3
fi
# Round-robin over the paths so that load from elsewhere on the machine
# hits them alike; medians per path.
out=$(mktemp -d)
for _ in $(seq "$RUNS"); do
  once "http://$dip:80/index.html" >> "$out/direct"
  once "http://127.0.0.1:$hport/index.html" >> "$out/loop"
  once "http://$hostip:$hport/index.html" >> "$out/host"
  [ "$have_socat" = 1 ] && once "http://127.0.0.1:$pport/index.html" >> "$out/proxy"
done
direct=$(median < "$out/direct"); loop=$(median < "$out/loop"); hostaddr=$(median < "$out/host")
printf '%-46s %12s %8s\n' "path" "req/s" "ratio"
printf '%-46s %12.0f %8s\n' "direct to container $dip:80" "$direct" "1.00"
printf '%-46s %12.0f %8.2f\n' "berth -p, 127.0.0.1:$hport (nft DNAT)" "$loop" "$(ratio "$loop" "$direct")"
printf '%-46s %12.0f %8.2f\n' "berth -p, $hostip:$hport (nft DNAT)" "$hostaddr" "$(ratio "$hostaddr" "$direct")"
if [ "$have_socat" = 1 ]; then
  proxy=$(median < "$out/proxy")
  printf '%-46s %12.0f %8.2f\n' "userland proxy 127.0.0.1:$pport (socat)" "$proxy" "$(ratio "$proxy" "$direct")"
else
  echo "(socat not installed: userland-proxy row skipped; apt-get install socat)"
fi
rm -rf "$out"
echo "docker (userland-proxy on/off) and podman: not measured, they cannot run on this machine"
