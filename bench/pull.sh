#!/usr/bin/env bash
# bench/pull.sh — pull and push of a ~100 MB image in 5 layers through a
# local registry (Debian's docker-registry on 127.0.0.1), cold store each
# run: berth vs skopeo. Prints the median of RUNS runs (default 5).
#
# docker and podman are not compared: `docker pull` needs dockerd and
# `podman pull` needs a container storage driver on this host; neither
# engine can run in the CI VM (no daemon, no nested overlay for podman's
# storage). The script says so when they are missing.
#
# Usage: bash bench/pull.sh   (as root; builds berth with --release)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
LAYERS=${LAYERS:-5}
LAYER_MB=${LAYER_MB:-20}

cargo build --release --quiet
BERTH=$PWD/target/release/berth
for tool in skopeo docker-registry jq sha256sum; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install skopeo docker-registry jq)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/berth-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts a registry with storage under $1; prints its port.
start_registry() {
  local dir=$1 port
  port=$(free_port)
  mkdir -p "$dir/storage"
  cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
http:
  addr: 127.0.0.1:$port
  secret: bench
YAML
  docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && { echo "$port"; return; }
    sleep 0.05
  done
  echo "registry did not start" >&2; exit 1
}

# --- the image: LAYERS layers of LAYER_MB MB of random data, as an OCI layout
layout=$work/layout
mkdir -p "$layout/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
blob() { local d; d=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" "$layout/blobs/sha256/$d"; echo "$d"; }
diff_ids=() layers=()
for i in $(seq "$LAYERS"); do
  mkdir -p "$work/l$i/data"
  head -c "${LAYER_MB}M" /dev/urandom >"$work/l$i/data/file$i"
  tar --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$work/l$i" -cf "$work/l$i.tar" data
  diff_ids+=("sha256:$(sha256sum "$work/l$i.tar" | cut -d' ' -f1)")
  gzip -1 -n -c "$work/l$i.tar" >"$work/l$i.tgz"
  size=$(stat -c %s "$work/l$i.tgz")
  layers+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$(blob "$work/l$i.tgz")\",\"size\":$size}")
  rm -rf "$work/l$i" "$work/l$i.tar"
done
arch=$(uname -m); case $arch in x86_64) arch=amd64;; aarch64) arch=arm64;; esac
printf '{"architecture":"%s","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":%s}}' \
  "$arch" "$(printf '%s\n' "${diff_ids[@]}" | jq -R . | jq -sc .)" >"$work/config.json"
csize=$(stat -c %s "$work/config.json")
cdigest=$(blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
  "$cdigest" "$csize" "$(IFS=,; echo "${layers[*]}")" >"$work/manifest.json"
msize=$(stat -c %s "$work/manifest.json")
mdigest=$(blob "$work/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"1"}}]}' \
  "$mdigest" "$msize" >"$layout/index.json"
total=$(du -sm "$layout" | cut -f1)
echo "image: $LAYERS layers, ${total} MB compressed, manifest sha256:$mdigest"

src=$(start_registry "$work/reg-src")
skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:$layout:1" "docker://127.0.0.1:$src/bench/img:1"
ref=127.0.0.1:$src/bench/img:1

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }
declare -A times
record() { times[$1]+="$2"$'\n'; }

export BERTH_CONFIG=$work/berth-config.toml DOCKER_CONFIG=$work/docker
: >"$BERTH_CONFIG"
for run in $(seq "$RUNS"); do
  # pull, cold store
  root=$work/root-$run
  t0=$(now); "$BERTH" --root "$root" pull -q "$ref" >/dev/null; t1=$(now)
  record "berth pull" "$(echo "$t1 - $t0" | bc)"
  out=$work/skopeo-$run
  t0=$(now); skopeo --insecure-policy copy --quiet --src-tls-verify=false "docker://$ref" "oci:$out:1"; t1=$(now)
  record "skopeo copy (pull to oci dir)" "$(echo "$t1 - $t0" | bc)"

  # push into a fresh registry (nothing to skip or mount)
  dst=$(start_registry "$work/reg-dst-$run-a")
  "$BERTH" --root "$root" tag "$ref" "127.0.0.1:$dst/bench/img:1"
  t0=$(now); "$BERTH" --root "$root" push -q "127.0.0.1:$dst/bench/img:1" >/dev/null; t1=$(now)
  record "berth push" "$(echo "$t1 - $t0" | bc)"
  dst2=$(start_registry "$work/reg-dst-$run-b")
  t0=$(now); skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:$layout:1" "docker://127.0.0.1:$dst2/bench/img:1"; t1=$(now)
  record "skopeo copy (push from oci dir)" "$(echo "$t1 - $t0" | bc)"
  rm -rf "$root" "$out"
done

echo "medians of $RUNS runs (seconds):"
for k in "berth pull" "skopeo copy (pull to oci dir)" "berth push" "skopeo copy (push from oci dir)"; do
  printf '  %-34s %s   [%s]\n' "$k" "$(printf '%s' "${times[$k]}" | median)" "$(printf '%s' "${times[$k]}" | sort -g | tr '\n' ' ')"
done
for engine in docker podman; do
  if ! command -v "$engine" >/dev/null; then
    echo "  $engine pull/push: not measured ($engine is not installed; it needs an engine — dockerd, or podman's container storage — that cannot run in this VM)"
  elif ! "$engine" info >/dev/null 2>&1; then
    echo "  $engine pull/push: not measured ($engine is installed but its engine does not run here)"
  else
    echo "  $engine is installed and running, but this script does not drive it"
  fi
done
echo "(berth pull = manifest + verified blobs into its store, like skopeo's copy to an OCI dir; layers are unpacked later, on first use)"
