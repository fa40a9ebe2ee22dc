#!/usr/bin/env bash
# bench/watch.sh: how long `berth watch` takes from a file saved on the host
# to its effect in the container, median (min-max) over RUNS runs:
#   sync      save a file under a sync rule -> the new content is in the
#             running container (read through /proc/PID/root, no exec);
#   rebuild   save a file the Dockerfile COPYs -> a new container runs and
#             has the new content;
#   cached    save the same content again -> watch prints "is up to date".
# Every figure includes watch's 500 ms debounce (Compose's quiet period).
# No other tool is compared: Debian's docker-compose 1.29 has no `watch`
# (Compose v2.22+ has it, and is not packaged here).
#
# reproduce (as root): cargo build --release && RUNS=5 BERTH=target/release/berth bash bench/watch.sh
set -euo pipefail

RUNS=${RUNS:-5}
BERTH=$(realpath "${BERTH:-target/debug/berth}")
HERE=$(cd "$(dirname "$0")/.." && pwd)
TAR=${BUSYBOX_TAR:-$HERE/target/fixtures/busybox-rootfs.tar}
[ -f "$TAR" ] || { echo "no busybox rootfs tar at $TAR: run cargo test --test watch once" >&2; exit 1; }

WORK=$(mktemp -d /tmp/berth-bench-watch.XXXXXX)
export BERTH_ROOT=$WORK/root
PROJ=$WORK/wbench
WATCH_PID=
cleanup() {
    [ -n "$WATCH_PID" ] && kill -INT "$WATCH_PID" 2>/dev/null && wait "$WATCH_PID" 2>/dev/null || true
    (cd "$PROJ" && "$BERTH" down -t 0 >/dev/null 2>&1) || true
    grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

"$BERTH" import "$TAR" busybox >/dev/null
mkdir -p "$PROJ/src" "$PROJ/www"
cat >"$PROJ/berth.toml" <<'EOF'
[services.web]
build = "."
stop_signal = "KILL"

[[services.web.develop.watch]]
action = "sync"
path = "./www"
target = "/www"

[[services.web.develop.watch]]
action = "rebuild"
path = "./src"
EOF
printf 'FROM busybox\nCOPY src /app/src\nCMD ["sleep", "100000"]\n' >"$PROJ/Dockerfile"
echo v0 >"$PROJ/src/greeting"
cd "$PROJ"
"$BERTH" watch >"$WORK/watch.log" 2>&1 &
WATCH_PID=$!
until grep -q "Watch enabled" "$WORK/watch.log"; do sleep 0.05; done

now_ms() { date +%s%3N; }
pid_of() { # the running container's init pid
    local id
    id=$("$BERTH" compose ps -q)
    jq -r .pid "$BERTH_ROOT/containers/$id/state.json"
}
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%d ms (%d-%d, n=%d)", m, a[1], a[NR], NR}'; }

sync=() rebuild=() cached=()
for i in $(seq 1 "$RUNS"); do
    pid=$(pid_of)
    t0=$(now_ms)
    echo "sync $i" >"$PROJ/www/index.html"
    until [ "$(cat "/proc/$pid/root/www/index.html" 2>/dev/null)" = "sync $i" ]; do sleep 0.01; done
    sync+=($(($(now_ms) - t0)))

    old=$("$BERTH" compose ps -q)
    t0=$(now_ms)
    echo "v$i" >"$PROJ/src/greeting"
    while :; do
        id=$("$BERTH" compose ps -q 2>/dev/null || true)
        if [ -n "$id" ] && [ "$id" != "$old" ]; then
            p=$(jq -r .pid "$BERTH_ROOT/containers/$id/state.json" 2>/dev/null || echo 0)
            [ "$p" -gt 0 ] && [ "$(cat "/proc/$p/root/app/src/greeting" 2>/dev/null)" = "v$i" ] && break
        fi
        sleep 0.01
    done
    rebuild+=($(($(now_ms) - t0)))

    n=$(grep -c "is up to date" "$WORK/watch.log" || true)
    t0=$(now_ms)
    echo "v$i" >"$PROJ/src/greeting"
    until [ "$(grep -c "is up to date" "$WORK/watch.log")" -gt "$n" ]; do sleep 0.01; done
    cached+=($(($(now_ms) - t0)))
done

echo "bench/watch.sh: $RUNS runs, $(nproc) cores; $("$BERTH" --version) ($BERTH)"
echo "save -> effect in the container, median (min-max, n), 500 ms debounce included"
printf '  %-34s %s\n' "sync (one file)" "$(printf '%s\n' "${sync[@]}" | median)"
printf '  %-34s %s\n' "rebuild + recreate (COPY changed)" "$(printf '%s\n' "${rebuild[@]}" | median)"
printf '  %-34s %s\n' "rebuild, all cache (no recreate)" "$(printf '%s\n' "${cached[@]}" | median)"
