#!/usr/bin/env bash
# Project lifecycle timings: berth next to docker-compose and podman-compose,
# in the same run, on the same three-service busybox project (the one of
# examples/three-services, with db and api stopping promptly on SIGTERM),
# written once as berth.toml and once as docker-compose YAML (same services,
# commands, health check, depends_on with condition: service_healthy, port,
# stop_grace_period), each in its own temporary directory:
#   cold `up -d`   images present, project network and containers absent
#   no-op `up -d`  everything already up (3 per run)
#   `down`         stop and remove the three containers and the network
# Wall clock of the command, medians with min/max and n of RUNS runs; the
# tools take turns within each run, so load from elsewhere hits them alike.
# The first cold `up` of each tool is also checked for whether api was
# started only after db had passed its health check (printed).
#
# The image is Debian's busybox-static as a one-layer rootfs, imported into
# each engine (`berth import`, `docker import`, `podman import`). docker-compose
# runs against a private dockerd and podman-compose against private podman
# storage (bench/engines.sh), both removed at the end with whatever they
# added to the host (bridges, iptables rules, processes, mounts).
# A missing tool's row says "not measured" and why; to have them all:
#   apt-get install docker.io docker-compose podman podman-compose
#
#   cargo build --release && RUNS=5 BERTH=target/release/berth bash bench/project.sh
# BERTH_BEFORE=PATH adds a row for another berth build (e.g. the commit
# before a change), with its own state root, taking turns with the others.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-7}
BERTH=${BERTH:-target/debug/berth}
BERTH=$(realpath "$BERTH")
[ -x "$BERTH" ] || { echo "build berth first (cargo build --release)" >&2; exit 1; }
for tool in busybox jq curl python3; do
  command -v "$tool" >/dev/null || { echo "bench needs $tool (apt-get install busybox-static jq curl python3)" >&2; exit 1; }
done
source bench/engines.sh

work=$(mktemp -d /tmp/berth-bench-project-XXXXXX)
root="$work/berth-root"                 # berth's state root
name="bench$(od -An -N3 -tx1 /dev/urandom | tr -d ' ')"
BERTH_BEFORE=${BERTH_BEFORE:-}
[ -z "$BERTH_BEFORE" ] || BERTH_BEFORE=$(realpath "$BERTH_BEFORE")
cleanup() {
  set +e
  (cd "$work/berth" && "$BERTH" --root "$root" down -t 0 -p "$name") >/dev/null 2>&1
  [ -z "$BERTH_BEFORE" ] || (cd "$work/berth" && "$BERTH_BEFORE" --root "$work/before-root" down -t 0 -p "$name") >/dev/null 2>&1
  engines_end "$work"
}
engines_begin "$work" cleanup

# The busybox image, from Debian's busybox-static.
busybox_rootfs "$work/rootfs" "$work/busybox.tar"
"$BERTH" --root "$root" import "$work/busybox.tar" busybox >/dev/null
[ -z "$BERTH_BEFORE" ] || "$BERTH_BEFORE" --root "$work/before-root" import "$work/busybox.tar" busybox >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export WEB_PORT=$port
mkdir -p "$work/berth" "$work/compose"
cat > "$work/berth/berth.toml" <<'EOF'
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
cat > "$work/compose/docker-compose.yml" <<'EOF'
services:
  db:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; touch /tmp/ready; sleep 1000000 & wait"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      timeout: 1s
      retries: 30
  api:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; echo api is up; sleep 1000000 & wait"]
    depends_on:
      db:
        condition: service_healthy
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports: ["${WEB_PORT}:80"]
    depends_on: [api]
    stop_grace_period: 2s
EOF
compose_file="$work/compose/docker-compose.yml"

# The tools: up, down, and inspect (JSON of one service's container).
berth_up()      { (cd "$work/berth" && "$BERTH" --root "$root" up -d -p "$name"); }
berth_down()    { (cd "$work/berth" && "$BERTH" --root "$root" down -p "$name"); }
berth_inspect() { "$BERTH" --root "$root" inspect "$("$BERTH" --root "$root" ps -aq --filter "label=berth.project=$name" --filter "label=berth.service=$1")"; }
bb_up()         { (cd "$work/berth" && "$BERTH_BEFORE" --root "$work/before-root" up -d -p "$name"); }
bb_down()       { (cd "$work/berth" && "$BERTH_BEFORE" --root "$work/before-root" down -p "$name"); }
bb_inspect()    { "$BERTH_BEFORE" --root "$work/before-root" inspect "$("$BERTH_BEFORE" --root "$work/before-root" ps -aq --filter "label=berth.project=$name" --filter "label=berth.service=$1")"; }
dc_up()         { docker-compose -f "$compose_file" -p "$name" up -d; }
dc_down()       { docker-compose -f "$compose_file" -p "$name" down; }
dc_inspect()    { "$DOCKER" inspect "${name}_$1_1"; }
# podman-compose 1.0.3 ignores stop_grace_period (its down uses -t 10) and
# leaves the project network behind: -t 2 is web's stop_grace_period, as the
# others use, and the network is removed as part of down, as the others do.
pc_up()         { podman-compose -f "$compose_file" -p "$name" up -d; }
pc_down()       { podman-compose -f "$compose_file" -p "$name" down -t 2 && podman network rm "${name}_default"; }
pc_inspect()    { podman inspect "${name}_$1_1"; }

tools=(berth); labels=(berth)
[ -z "$BERTH_BEFORE" ] || { tools+=(bb); labels+=("berth (before)"); }
declare -A why=()
if ! command -v docker-compose >/dev/null; then
  why[docker-compose]="docker-compose is not installed (apt-get install docker-compose)"
elif docker_start && docker_import_tar "$work/busybox.tar" busybox; then
  tools+=(dc); labels+=(docker-compose)
else
  why[docker-compose]=${docker_why:-"docker import failed"}
fi
if ! command -v podman-compose >/dev/null; then
  why[podman-compose]="podman-compose is not installed (apt-get install podman-compose)"
elif podman_setup && podman_import_tar "$work/busybox.tar" busybox; then
  tools+=(pc); labels+=(podman-compose)
else
  why[podman-compose]=$podman_why
fi

ms() { # ms CMD...: runs CMD (output kept in $work/last.log), prints its wall time in ms
  local t0 t1
  t0=$(date +%s%N)
  if ! "$@" >"$work/last.log" 2>&1; then
    { echo "failed: $*"; tail -20 "$work/last.log"; } >&2; return 1
  fi
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}
stats() { sort -n | awk '{a[NR]=$1} END {printf "%d ms (%d-%d, n=%d)", a[int((NR+1)/2)], a[1], a[NR], NR}'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
secs() { date -d "$1" +%s.%N; }

waits() { # TOOL: what the first cold up did: did api start after db was healthy?
  local db api db_start healthy api_start
  db=$("${1}_inspect" db); api=$("${1}_inspect" api)
  db_start=$(secs "$(jq -r '.[0].State.StartedAt' <<<"$db")")
  api_start=$(secs "$(jq -r '.[0].State.StartedAt' <<<"$api")")
  healthy=$(jq -r '[(.[0].State.Health // .[0].State.Healthcheck).Log // [] | .[] | select(.ExitCode == 0)][0].End // empty' <<<"$db")
  curl -fsS "http://127.0.0.1:$port/" >/dev/null || echo "  (web does not answer on 127.0.0.1:$port!)"
  if [ -z "$healthy" ]; then
    awk -v a="$api_start" -v d="$db_start" 'BEGIN {printf "api started %.2f s after db, db had not passed a health check: does not wait for healthy", a-d}'
  else
    healthy=$(secs "$healthy")
    awk -v a="$api_start" -v d="$db_start" -v h="$healthy" 'BEGIN {
      printf "db first healthy %.2f s after its start, api started %.2f s after db: %s", h-d, a-d,
        (a >= h ? "waits for db healthy" : "does NOT wait for db healthy") }'
  fi
}

declare -A note=()
for run in $(seq "$RUNS"); do
  for t in "${tools[@]}"; do
    ms "${t}_up" >> "$work/$t.cold"
    [ "$run" != 1 ] || note[$t]=$(waits "$t")
    for _ in 1 2 3; do ms "${t}_up" >> "$work/$t.noop"; done
    ms "${t}_down" >> "$work/$t.down"
  done
done

echo "bench/project.sh: $RUNS runs, $(nproc) cores; medians (min-max, n) of wall time"
echo "berth          $("$BERTH" --version | awk '{print $2}') ($BERTH)"
[ -z "$BERTH_BEFORE" ] || echo "berth (before) $("$BERTH_BEFORE" --version | awk '{print $2}') ($BERTH_BEFORE)"
[ -z "${note[dc]:-}" ] || echo "docker-compose $(docker-compose version --short), docker engine $("$DOCKER" version -f '{{.Server.Version}}') (private dockerd)"
[ -z "${note[pc]:-}" ] || echo "podman-compose $(podman-compose version 2>/dev/null | awk '/compose.* version/ {print $NF}' | tail -1), podman $(podman version -f '{{.Client.Version}}') (private storage)"
echo
echo "cold up -d waits for (Docker runs db's first health check one interval, 1 s, after db starts; berth probes early, see ARCHITECTURE.md):"
for i in "${!tools[@]}"; do printf '  %-15s %s\n' "${labels[$i]}" "${note[${tools[$i]}]}"; done
[ -z "${note[pc]:-}" ] || echo "                  (podman-compose 1.0.3 ignores depends_on conditions: it runs the containers in order with a fixed 1 s sleep after each; podman's health checks need systemd timers, absent here)"
echo
printf '%-12s' ""; for l in "${labels[@]}"; do printf ' %-28s' "$l"; done; echo
for op in cold noop down; do
  case $op in cold) printf '%-12s' "cold up -d";; noop) printf '%-12s' "no-op up -d";; down) printf '%-12s' "down";; esac
  for t in "${tools[@]}"; do printf ' %-28s' "$(stats < "$work/$t.$op")"; done; echo
done
for l in docker-compose podman-compose; do
  [ -z "${why[$l]:-}" ] || echo "$l: not measured: ${why[$l]}"
done
[ "${#why[@]}" = 0 ] || echo "(all of them: apt-get install docker.io docker-compose podman podman-compose)"
[ -z "${note[pc]:-}" ] || echo "(podman-compose down: -t 2 given, and 'podman network rm' of the project network counted in)"
echo
b_cold=$(median < "$work/berth.cold"); b_noop=$(median < "$work/berth.noop")
for i in "${!tools[@]}"; do
  t=${tools[$i]}; [ "$t" != berth ] || continue
  awk -v l="${labels[$i]}" -v b="$b_cold" -v o="$(median < "$work/$t.cold")" -v bn="$b_noop" -v on="$(median < "$work/$t.noop")" \
      -v bd="$(median < "$work/berth.down")" -v od="$(median < "$work/$t.down")" \
    'BEGIN { printf "%s / berth: cold up %.1fx, no-op up %.1fx, down %.1fx\n", l, o/b, on/bn, od/bd }'
done
echo "targets: berth cold up 5x faster than docker-compose; no-op up under 50 ms (berth: $b_noop ms)"
