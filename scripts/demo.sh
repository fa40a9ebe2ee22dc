#!/usr/bin/env bash
# The classic Docker tutorial, walked with berth, in one command, on a fresh
# Debian bookworm machine, as root:
#
#   bash scripts/demo.sh
#
# It installs what it needs (Debian packages; Rust through rustup if there
# is no cargo), builds berth (release), makes the stand-in base images
# (scripts/base-images.sh) and serves them from a local registry that berth
# uses as docker.io's mirror, then walks the tutorial: hello-world twice,
# busybox, ps, create + start -a, logs, stop/kill, the redis image
# (examples/redis), the Node app (examples/simpleweb) on port 8090 with the
# build cache lesson, and the Compose step (examples/visits). Each step
# prints what it runs and what it got; the script stops with status 1 at
# the first step that does not do what the tutorial says. It uses its own
# state root (target/demo/root) and leaves nothing running.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
demo="$repo/target/demo"
started=$(date +%s)

bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
STEP=""
step() { STEP="$*"; echo; bold "== $*"; }
fail() { echo; bold "demo: FAILED: $STEP: $*"; exit 1; }
OUT=""
# run CMD...: prints `$ CMD`, runs it with its output shown (indented) as
# it comes and kept in $OUT; a non-zero status fails the step.
run() {
  local rc
  echo "\$ $*"
  set +e
  "$@" 2>&1 </dev/null | tee "$demo/out" | sed -u 's/^/    /'
  rc=${PIPESTATUS[0]}
  set -e
  OUT=$(cat "$demo/out")
  [ "$rc" -eq 0 ] || fail "\`$*\` exited with status $rc"
}
# expect TEXT / refuse TEXT: the last output holds / does not hold TEXT.
expect() { grep -qF -- "$1" <<<"$OUT" || fail "expected to see: $1"; echo "    ok: shows \"$1\""; }
refuse() { ! grep -qF -- "$1" <<<"$OUT" || fail "did not expect: $1"; echo "    ok: no \"$1\""; }
# get URL TEXT: polls the URL (30 s) until its body is TEXT.
get() {
  local body=""
  echo "\$ curl -s $1"
  for _ in $(seq 150); do
    body=$(curl -s --max-time 2 "$1" || true)
    [ "$body" = "$2" ] && break
    sleep 0.2
  done
  echo "    $body"
  [ "$body" = "$2" ] || fail "expected \"$2\" from $1"
}

# ------------------------------------------------------------------ setup
step "set-up: Debian packages"
packages=(ca-certificates curl gcc libc6-dev pkg-config libseccomp-dev
  busybox-static debootstrap docker-registry nftables iproute2 tar)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The package starts a registry service on port 5000; the demo runs its own.
systemctl disable --now docker-registry >/dev/null 2>&1 || true
echo "    ok: ${packages[*]}"

step "set-up: build berth (cargo build --release)"
if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] || curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  export PATH="$HOME/.cargo/bin:$PATH"
fi
cargo build --release --locked --quiet
BIN="$repo/target/release/berth"
echo "    ok: $BIN"

# The demo's own state root, registry and copies of the examples.
export BERTH_ROOT="$demo/root"
berth() { "$BIN" "$@"; }
cleanup() {
  local rc=$?
  set +e
  if [ -d "$demo/examples/visits" ]; then
    (cd "$demo/examples/visits" && berth down -t 1 -v >/dev/null 2>&1)
  fi
  ids=$(berth ps -aq 2>/dev/null)
  [ -n "$ids" ] && berth rm -f $ids >/dev/null 2>&1
  [ -f "$demo/registry/registry.pid" ] && kill "$(cat "$demo/registry/registry.pid")" 2>/dev/null
  if [ "$rc" -eq 0 ]; then
    bold "demo: every step did what the tutorial says ($(($(date +%s) - started)) s); nothing is left running"
  fi
  exit "$rc"
}
if [ -d "$demo" ]; then
  # A previous demo's root: make sure none of its containers runs, then start afresh.
  ids=$(berth ps -aq 2>/dev/null || true)
  [ -n "$ids" ] && berth rm -f $ids >/dev/null 2>&1 || true
  [ -f "$demo/registry/registry.pid" ] && kill "$(cat "$demo/registry/registry.pid")" 2>/dev/null || true
  rm -rf "$demo"
fi
mkdir -p "$demo/examples"
trap cleanup EXIT

step "set-up: stand-in base images, served by a local registry as docker.io's mirror"
echo "\$ BERTH=$BIN scripts/base-images.sh serve $demo/registry"
registry=$(BERTH="$BIN" bash scripts/base-images.sh serve "$demo/registry") || fail "scripts/base-images.sh failed"
export BERTH_CONFIG="$demo/registry/config.toml"
echo "    ok: registry on $registry; BERTH_CONFIG=$BERTH_CONFIG:"
sed 's/^/      /' "$BERTH_CONFIG"

# ---------------------------------------------------------- single containers
step "hello-world: the image is not here yet, so berth pulls it"
run berth run hello-world
expect "Unable to find image 'hello-world:latest' locally"
expect "latest: Pulling from library/hello-world"
expect "Hello from Docker!"

step "hello-world again: now it comes from the image cache"
run berth run hello-world
expect "Hello from Docker!"
refuse "Unable to find image"
refuse "Pulling from"

step "override the default command"
run berth run busybox echo hi there
expect "hi there"
run berth run busybox ls
expect "bin"

step "ps shows running containers, ps -a all of them"
run berth run -d --name counter busybox sh -c 'i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done'
run berth ps
expect "counter"
refuse "hello-world"
run berth ps -a
expect "hello-world"
expect "Exited (0)"

step "create, then start -a: the two halves of run"
run berth create busybox echo hi there
id=$(tail -n1 <<<"$OUT")
run berth start -a "$id"
expect "hi there"
step "logs: what a container printed, without running it again"
run berth logs "$id"
expect "hi there"

step "stop (SIGTERM, 10 s grace, then SIGKILL) vs kill (SIGKILL at once)"
t0=$(date +%s)
run berth stop counter
echo "    (took $(($(date +%s) - t0)) s: sh as pid 1 ignores SIGTERM, so berth waited the grace period)"
run berth run -d --name counter2 busybox sh -c 'while true; do sleep 1; done'
t0=$(date +%s)
run berth kill counter2
echo "    (took $(($(date +%s) - t0)) s)"
run berth ps -a
expect "Exited (137)"
run berth system prune -f
run berth ps -aq
[ -z "$OUT" ] || fail "system prune left containers"
echo "    ok: no containers left"

# ---------------------------------------------------------------- redis
step "a custom image: examples/redis (FROM debian:bookworm-slim, apt-get install redis-server)"
run berth build -t you/redis examples/redis
expect "Successfully tagged you/redis:latest"
run berth run -d --name redis you/redis
echo "\$ berth exec redis redis-cli ping"
for _ in $(seq 50); do OUT=$(berth exec redis redis-cli ping 2>&1 || true); [ "$OUT" = PONG ] && break; sleep 0.2; done
echo "    $OUT"
expect "PONG"
run berth exec redis redis-cli set greeting "hi there"
expect "OK"
run berth exec redis redis-cli get greeting
expect "hi there"
run berth exec redis sh -c 'echo a shell in $(hostname), in $(pwd)'
expect "a shell in"

step "commit, tag, push to the local registry, pull back"
run berth commit -c 'CMD ["redis-server"]' redis you/redis:committed
run berth tag you/redis:committed "$registry/you/redis:latest"
run berth push "$registry/you/redis:latest"
expect "latest: digest: sha256:"
run berth rm -f redis
run berth rmi you/redis:committed "$registry/you/redis:latest"
run berth pull "$registry/you/redis:latest"
expect "Status: Downloaded newer image"
run berth run --rm "$registry/you/redis:latest" redis-server --version
expect "Redis server"

# -------------------------------------------------------------- simpleweb
cp -a examples/simpleweb "$demo/examples/"
web="$demo/examples/simpleweb"
step "the Node app: examples/simpleweb (cold build: apt-get install nodejs npm, npm install)"
t0=$(date +%s)
run berth build -t you/simpleweb "$web"
echo "    (the cold build took $(($(date +%s) - t0)) s)"
expect "Successfully tagged you/simpleweb:latest"
run berth run -d --name simpleweb -p 8090:8080 you/simpleweb
get http://127.0.0.1:8090/ "hi there"

step "change index.js and rebuild: only the steps from COPY ./ ./ on run again"
echo "\$ sed -i 's/hi there/bye there/' $web/index.js"
sed -i 's/hi there/bye there/' "$web/index.js"
run berth build -t you/simpleweb "$web"
expect "$(printf 'Step 5/7 : RUN npm install\n ---> Using cache')"
echo "    the steps, and which came from the cache:"
grep -E '^Step |Using cache' <<<"$OUT" | sed 's/^/      /'
run berth rm -f simpleweb
run berth run -d --name simpleweb -p 8090:8080 you/simpleweb
get http://127.0.0.1:8090/ "bye there"
run berth rm -f simpleweb

# ----------------------------------------------------------------- visits
cp -a examples/redis examples/visits "$demo/examples/"
step "the Compose step: examples/visits (node + redis) with berth up"
cd "$demo/examples/visits"
run berth up -d --wait
get http://127.0.0.1:4001/ "Number of visits is 1"
get http://127.0.0.1:4001/ "Number of visits is 2"
run berth compose ps
expect "visits-web-1"
expect "visits-redis-1"
run berth down
run berth ps -aq
[ -z "$OUT" ] || fail "down left containers"
echo "    ok: nothing left"
cd "$repo"
