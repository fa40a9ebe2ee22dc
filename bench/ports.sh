#!/usr/bin/env bash
# Published-port throughput: busybox httpd in berth containers, fetched with
# wrk (a) straight at a container's address, (b) through berth's published
# port on 127.0.0.1 (nft DNAT + route_localnet + masquerade), (c) through the
# published port on the host's own non-loopback address, (d) for comparison
# through a userland proxy on 127.0.0.1 (socat, a process forked per
# connection), and (e) the same httpd and rootfs in a docker container
# published with -p 127.0.0.1::80 under a private dockerd (Debian's
# docker.io 20.10: loopback traffic to a published port goes through
# docker-proxy, its userland proxy, one Go process for all connections).
# Short bounded runs, loopback and namespaces only; the paths take turns
# within each run; medians (min-max, n) of RUNS runs.
#
# Two identical berth containers are used: one measured directly, one through
# its published port. With one container, direct connections (source = the
# gateway, the host's TCP timestamps for that pair) leave TIME_WAIT sockets
# in the container that the masqueraded loopback connections (same source
# address, other timestamp offset) then collide with (PAWS drops the SYN,
# 1 s retransmit), which would measure that interaction, not the path.
#
# docker: bench/engines.sh starts a private dockerd and removes everything it
# made at the end (containers, docker0, iptables rules); without docker.io
# the row says "not measured" (apt-get install docker.io). Podman is not
# measured here.
#
#   cargo build --release && BERTH=target/release/berth bash bench/ports.sh
#                          # RUNS=5 DURATION=5s CONNS=32 THREADS=2
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

if [ -n "${BERTH:-}" ]; then
  berth=$(realpath "$BERTH")
else
  cargo build -q --release --bin berth
  berth="$PWD/target/release/berth"
fi
source bench/engines.sh
work=$(mktemp -d /tmp/berth-bench-ports-XXXXXX)
export BERTH_ROOT="$work/berth-root"
rootfs="$work/rootfs"
cleanup() {
  set +e
  [ -z "${socat_pid:-}" ] || kill "$socat_pid" 2>/dev/null
  "$berth" rm -f bench-direct bench-published >/dev/null 2>&1
  engines_end "$work"
}
engines_begin "$work" cleanup
hostip=$(ip -4 -o addr show scope global | awk '$2 !~ /^(br-|berth|bv|docker|podman|veth)/ {split($4,a,"/"); print a[1]; exit}')

mkdir -p "$rootfs"/{bin,etc,tmp,proc,sys,dev,var/www}
cp /bin/busybox "$rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$rootfs/bin/$a"; done
echo "root:x:0:0:root:/root:/bin/sh" > "$rootfs/etc/passwd"
echo "root:x:0:" > "$rootfs/etc/group"
echo "hello from berth" > "$rootfs/var/www/index.html"

httpd=(--rootfs "$rootfs" httpd -f -p 80 -h /var/www)
"$berth" run -d --name bench-direct "${httpd[@]}" >/dev/null
"$berth" run -d --name bench-published -p 80 "${httpd[@]}" >/dev/null
dip=$("$berth" inspect -f '{{.NetworkSettings.IPAddress}}' bench-direct)
hport=$("$berth" port bench-published 80 | head -1 | sed 's/.*://')

# docker: the same rootfs as an image, the same httpd, published on loopback.
have_docker=0
if docker_start; then
  tar -C "$rootfs" -cf "$work/httpd.tar" .
  docker_import_tar "$work/httpd.tar" bench-httpd
  "$DOCKER" run -d --name bench-docker -p 127.0.0.1::80 bench-httpd httpd -f -p 80 -h /var/www >/dev/null
  dport=$("$DOCKER" port bench-docker 80 | head -1 | sed 's/.*://')
  have_docker=1
fi
sleep 0.5

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
range() { sort -n | awk '{a[NR]=$1} END {printf "%.0f-%.0f, n=%d", a[1], a[NR], NR}'; }
once() { wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" "$1" | awk '/Requests\/sec/ {print $2}'; }
ratio() { echo "$1/$2" | bc -l; }

if [ "$have_socat" = 1 ]; then
  pport=$((20000 + RANDOM % 20000))
  socat TCP-LISTEN:$pport,bind=127.0.0.1,reuseaddr,fork TCP:"$dip":80 2>/dev/null & socat_pid=$!
  sleep 0.3
fi
# Round-robin over the paths so that load from elsewhere on the machine
# hits them alike; medians per path.
out="$work/out"; mkdir -p "$out"
for _ in $(seq "$RUNS"); do
  once "http://$dip:80/index.html" >> "$out/direct"
  once "http://127.0.0.1:$hport/index.html" >> "$out/loop"
  once "http://$hostip:$hport/index.html" >> "$out/host"
  [ "$have_socat" = 0 ] || once "http://127.0.0.1:$pport/index.html" >> "$out/proxy"
  [ "$have_docker" = 0 ] || once "http://127.0.0.1:$dport/index.html" >> "$out/docker"
done
direct=$(median < "$out/direct")
line() { # LABEL FILE
  local m; m=$(median < "$2")
  printf '%-46s %10.0f %8.2f   (%s)\n' "$1" "$m" "$(ratio "$m" "$direct")" "$(range < "$2")"
}
echo "bench/ports.sh: $RUNS runs of wrk -t$THREADS -c$CONNS -d$DURATION, $(nproc) cores; berth $("$berth" --version | awk '{print $2}') ($berth)"
printf '%-46s %10s %8s   %s\n' "path" "req/s" "ratio" "(min-max, n)"
line "direct to container $dip:80" "$out/direct"
line "berth -p, 127.0.0.1:$hport (nft DNAT)" "$out/loop"
line "berth -p, $hostip:$hport (nft DNAT)" "$out/host"
if [ "$have_socat" = 1 ]; then
  line "userland proxy 127.0.0.1:$pport (socat)" "$out/proxy"
else
  echo "userland proxy (socat): not measured: socat is not installed (apt-get install socat)"
fi
if [ "$have_docker" = 1 ]; then
  line "docker -p, 127.0.0.1:$dport (docker-proxy)" "$out/docker"
  echo "(docker $("$DOCKER" version -f '{{.Server.Version}}'), private dockerd, userland proxy on: its default)"
else
  echo "docker -p 127.0.0.1 (docker-proxy): not measured: $docker_why"
fi
echo "podman: not measured here"
