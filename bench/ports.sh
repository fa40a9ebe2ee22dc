#!/usr/bin/env bash
# Published-port throughput: busybox httpd in network namespaces attached
# to berth networks, fetched with wrk (a) straight at a container's address,
# (b) through berth's published port on 127.0.0.1 (nft DNAT + route_localnet
# + masquerade), (c) through the published port on the host's own
# non-loopback address, and (d) for comparison through a userland proxy
# (socat, fork per connection, the shape of docker-proxy) on 127.0.0.1.
# Short bounded runs, loopback/namespaces only; medians of RUNS runs.
#
# Two identical containers are used: one measured directly, one through its
# published port. With one container, direct connections (source = the
# gateway, host's TCP timestamps for that pair) leave TIME_WAIT sockets in
# the container that the masqueraded loopback connections (same source
# address, other timestamp offset) then collide with (PAWS drops the SYN,
# 1 s retransmit), which measures that interaction rather than the path.
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

for tool in wrk ip busybox; do
  command -v "$tool" >/dev/null || { echo "bench needs $tool (apt-get install wrk iproute2 busybox-static)" >&2; exit 1; }
done
have_socat=1; command -v socat >/dev/null || have_socat=0

cargo build -q --example publish_netns
bin=target/debug/examples/publish_netns

tag=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
ns="bb-$tag"; root=$(mktemp -d /tmp/berth-bench-XXXXXX); www=$(mktemp -d)
echo "hello from berth" > "$www/index.html"
ip netns add "$ns"; ip netns add "$ns-d"
coproc FIX { exec "$bin" "$root" "$ns" "bench$tag" 80; }
fix_in=${FIX[1]}
exec {dfix_in}> >(exec "$bin" "$root-d" "$ns-d" "benchd$tag" > "$root.direct")
cleanup() {
  [ -n "${httpd_pid:-}" ] && kill "$httpd_pid" 2>/dev/null || true
  [ -n "${socat_pid:-}" ] && kill "$socat_pid" 2>/dev/null || true
  [ -n "${dhttpd_pid:-}" ] && kill "$dhttpd_pid" 2>/dev/null || true
  exec {fix_in}>&- 2>/dev/null || true
  exec {dfix_in}>&- 2>/dev/null || true
  wait 2>/dev/null || true
  sleep 1
  ip netns del "$ns" 2>/dev/null || true
  ip netns del "$ns-d" 2>/dev/null || true
  rm -rf "$root" "$root-d" "$root.direct" "$www"
}
trap cleanup EXIT
read -r cip hport <&"${FIX[0]}" || { echo "fixture failed" >&2; exit 1; }
ip netns exec "$ns" busybox httpd -f -p 80 -h "$www" & httpd_pid=$!
for _ in $(seq 50); do [ -s "$root.direct" ] && break; sleep 0.1; done
read -r dip < "$root.direct" || { echo "direct fixture failed" >&2; exit 1; }
ip netns exec "$ns-d" busybox httpd -f -p 80 -h "$www" & dhttpd_pid=$!
hostip=$(ip -4 -o addr show scope global | awk '$2 !~ /^(br-|berth|bv)/ {split($4,a,"/"); print a[1]; exit}')
sleep 0.5

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
measure() { # URL -> median requests/s
  for _ in $(seq "$RUNS"); do
    wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" "$1" | awk '/Requests\/sec/ {print $2}'
  done | median
}

direct=$(measure "http://$dip:80/index.html")
loop=$(measure "http://127.0.0.1:$hport/index.html")
hostaddr=$(measure "http://$hostip:$hport/index.html")
printf '%-44s %12s %8s\n' "path" "req/s" "ratio"
printf '%-44s %12.0f %8s\n' "direct to container $dip:80" "$direct" "1.00"
printf '%-44s %12.0f %8.2f\n' "berth published 127.0.0.1:$hport (nft DNAT)" "$loop" "$(echo "$loop/$direct" | bc -l)"
printf '%-44s %12.0f %8.2f\n' "berth published $hostip:$hport (nft DNAT)" "$hostaddr" "$(echo "$hostaddr/$direct" | bc -l)"
if [ "$have_socat" = 1 ]; then
  pport=$((20000 + RANDOM % 20000))
  socat TCP-LISTEN:$pport,bind=127.0.0.1,reuseaddr,fork TCP:"$dip":80 & socat_pid=$!
  sleep 0.3
  proxy=$(measure "http://127.0.0.1:$pport/index.html")
  printf '%-44s %12.0f %8.2f\n' "userland proxy 127.0.0.1:$pport (socat)" "$proxy" "$(echo "$proxy/$direct" | bc -l)"
else
  echo "(socat not installed: userland-proxy row skipped; apt-get install socat)"
fi
echo "docker (userland-proxy on/off) and podman: not measured, they cannot run on this machine"
