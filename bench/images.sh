#!/usr/bin/env bash
# Time and peak memory of berth's import, save and load of a ~100 MB image
# in four layers, next to `skopeo copy` between the same formats.
#
# Reproduce (as root, on the machine the tests run on):
#   bash bench/images.sh [RUNS]        # RUNS defaults to 5; medians are printed
#
# Each measurement is one process run under /usr/bin/time (GNU time, Debian
# package `time`): wall seconds and maximum resident set size. Stores and
# outputs are removed between runs so every run does the full work.
#   import       berth import rootfs.tar          vs skopeo copy tarball:rootfs.tar oci:DIR
#   load docker  berth load -i docker-archive      vs skopeo copy docker-archive: oci:DIR
#   save docker  berth save -o F (docker-archive)  vs skopeo copy oci:STORE docker-archive:F
#   save oci     berth save --format oci -o F      vs skopeo copy oci:STORE oci-archive:F
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
for tool in skopeo jq sha256sum; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (bash scripts/test.sh installs it)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is missing: apt-get install time" >&2; exit 1; }
cargo build --release --locked -q
B=$PWD/target/release/berth
W=$(mktemp -d /var/tmp/berth-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT

# --- the image: 4 layers of ~25 MB, random and text files mixed -----------
echo "making a ~100 MB image in 4 layers under $W ..." >&2
diff_ids=()
layers=()
mkdir -p "$W/all"
for i in 1 2 3 4; do
  d="$W/l$i"; mkdir -p "$d/data$i/bin" "$d/data$i/text"
  for j in 1 2 3 4 5; do head -c 4000000 /dev/urandom > "$d/data$i/bin/r$j"; done
  for j in $(seq 1 50); do seq $((j * 1000)) $((j * 1000 + 10000)) > "$d/data$i/text/t$j"; done
  tar --numeric-owner --owner=0 --group=0 --mtime=@1600000000 -C "$d" -cf "$W/layer$i.tar" .
  cp -a "$d/." "$W/all/"
  diff_ids+=("sha256:$(sha256sum "$W/layer$i.tar" | cut -d' ' -f1)")
  layers+=("layer$i.tar")
done
tar --numeric-owner --owner=0 --group=0 --mtime=@1600000000 -C "$W/all" -cf "$W/rootfs.tar" .
jq -n --args '{architecture:"amd64", os:"linux", created:"2020-09-13T12:26:40Z",
  config:{Cmd:["sh"]}, rootfs:{type:"layers", diff_ids:$ARGS.positional}}' "${diff_ids[@]}" > "$W/config.json"
jq -n --args '[{Config:"config.json", RepoTags:["bench/img:1"], Layers:$ARGS.positional}]' "${layers[@]}" > "$W/manifest.json"
tar -C "$W" -cf "$W/image-docker.tar" manifest.json config.json "${layers[@]}"
size_mb=$(( $(stat -c %s "$W/image-docker.tar") / 1000000 ))
echo "image: ${size_mb} MB docker-archive, rootfs tarball $(( $(stat -c %s "$W/rootfs.tar") / 1000000 )) MB" >&2

# A berth store holding the image, for save (and skopeo's save source).
"$B" --root "$W/store" load -i "$W/image-docker.tar" >/dev/null
STORE_REF="oci:$W/store/images:docker.io/bench/img:1"

# measure NAME SETUP CMD... : runs SETUP then CMD RUNS times; records wall s and max RSS KB.
declare -A WALL RSS
measure() {
  local name=$1 setup=$2; shift 2
  local walls=() rsss=()
  for _ in $(seq 1 "$RUNS"); do
    eval "$setup"
    sync
    /usr/bin/time -f '%e %M' -o "$W/time.out" "$@" >/dev/null 2>"$W/err.out" || { cat "$W/err.out" >&2; exit 1; }
    read -r wall rss < "$W/time.out"
    walls+=("$wall"); rsss+=("$rss")
  done
  WALL[$name]=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  RSS[$name]=$(printf '%s\n' "${rsss[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
}

clean='rm -rf "$W/r" "$W/sk" "$W/out.tar"'
measure "import/berth"       "$clean" "$B" --root "$W/r" import "$W/rootfs.tar" bench/imp:1
measure "import/skopeo"      "$clean" skopeo copy -q "tarball:$W/rootfs.tar" "oci:$W/sk:bench"
measure "load docker/berth"  "$clean" "$B" --root "$W/r" load -i "$W/image-docker.tar"
measure "load docker/skopeo" "$clean" skopeo copy -q "docker-archive:$W/image-docker.tar" "oci:$W/sk:bench"
measure "save docker/berth"  "$clean" "$B" --root "$W/store" save -o "$W/out.tar" bench/img:1
measure "save docker/skopeo" "$clean" skopeo copy -q "$STORE_REF" "docker-archive:$W/out.tar:bench/img:1"
measure "save oci/berth"     "$clean" "$B" --root "$W/store" save --format oci -o "$W/out.tar" bench/img:1
measure "save oci/skopeo"    "$clean" skopeo copy -q "$STORE_REF" "oci-archive:$W/out.tar:bench/img:1"

echo
echo "image: ~${size_mb} MB, 4 layers; medians of $RUNS runs; $(nproc) CPUs"
printf '%-12s  %12s  %12s  %14s  %14s\n' operation "berth s" "skopeo s" "berth RSS MB" "skopeo RSS MB"
for op in "import" "load docker" "save docker" "save oci"; do
  printf '%-12s  %12s  %12s  %14s  %14s\n' "$op" "${WALL[$op/berth]}" "${WALL[$op/skopeo]}" \
    "$(awk -v k="${RSS[$op/berth]}" 'BEGIN {printf "%.1f", k / 1024}')" \
    "$(awk -v k="${RSS[$op/skopeo]}" 'BEGIN {printf "%.1f", k / 1024}')"
done
echo
echo "reproduce: bash bench/images.sh $RUNS"
