#!/usr/bin/env bash
# Image build timings: `berth build` next to `docker build` (classic builder
# and BuildKit, same engine) and `podman build` (buildah inside), in the same
# run, on the same Dockerfile and the same context directory:
#
#   FROM busybox                       (present in each engine beforehand)
#   ENV APP=bench MODE=build
#   WORKDIR /app
#   COPY src/ ./                       (201 small files: f001..f200 + main.txt)
#   RUN mkdir gen && for i in $(seq 1 100); do echo "$APP $i" > gen/f$i; done
#   RUN n=$(ls | wc -l) && sha256sum main.txt > main.sum && echo "$n entries" > count
#   CMD ["sh", "-c", "cat main.txt main.sum count; ls gen | wc -l"]
#
# Three builds each, wall clock of the command:
#   cold     `--no-cache`: every step runs (the base image is present)
#   cached   the same build again, nothing changed: every step from cache
#   changed  after a new content of src/main.txt: ENV and WORKDIR from cache,
#            the COPY and every step after it run again
# Medians with min/max and n of RUNS runs. Each run starts (untimed) by
# removing the images each tool built in the previous run, so only busybox is
# there; within each of the three phases of a run the tools take turns, so
# load from elsewhere hits them alike. Before timing, each tool builds once
# untimed (warm-up; a tool that fails there is "not measured" with its error). The cache hits each tool reported in the
# first timed run are printed, and the image each tool built last is run once
# to show that it holds the changed file and the RUN steps' files.
#
# RUN steps have no network: `--network none` for every tool (berth build,
# docker build, podman build all take it); no step needs the network.
# The image is Debian's busybox-static as a one-layer rootfs, imported into
# each engine (`berth import`, `docker import`, `podman import`). docker runs
# as a private dockerd (Debian's docker.io 20.10: `DOCKER_BUILDKIT=0 docker
# build` for the classic builder, `DOCKER_BUILDKIT=1 docker build --progress
# plain` for the BuildKit built into that dockerd), podman with private
# storage (bench/engines.sh); both are removed at the end with whatever they
# added to the host, and berth's state root with its mounts. A missing tool's
# row says "not measured" and why; to have them all: apt-get install docker.io podman
#
#   cargo build --release && RUNS=5 BERTH=target/release/berth bash bench/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
BERTH=${BERTH:-target/debug/berth}
BERTH=$(realpath "$BERTH")
[ -x "$BERTH" ] || { echo "build berth first (cargo build --release)" >&2; exit 1; }
command -v busybox >/dev/null || { echo "bench needs busybox (apt-get install busybox-static)" >&2; exit 1; }
source bench/engines.sh

work=$(mktemp -d /tmp/berth-bench-build-XXXXXX)
root="$work/berth-root"                 # berth's state root
ctx="$work/context"                     # the build context, shared by all tools
tag="benchbuild$(od -An -N3 -tx1 /dev/urandom | tr -d ' ')"
cleanup() {
  set +e
  local ids
  ids=$("$BERTH" --root "$root" ps -aq 2>/dev/null)
  # shellcheck disable=SC2086 # one argument per id
  [ -z "$ids" ] || "$BERTH" --root "$root" rm -f $ids >/dev/null 2>&1
  if [ -n "$dockerd_pid" ]; then   # the builds' intermediate images, quietly
    "$DOCKER" image prune -af >/dev/null 2>&1
    "$DOCKER" builder prune -af >/dev/null 2>&1
  fi
  engines_end "$work"
}
engines_begin "$work" cleanup

# The busybox image, from Debian's busybox-static.
busybox_rootfs "$work/rootfs" "$work/busybox.tar"
"$BERTH" --root "$root" import "$work/busybox.tar" busybox >/dev/null

# The context: the Dockerfile and src/ (200 small files and main.txt).
mkdir -p "$ctx/src"
for i in $(seq -w 1 200); do printf 'file %s\nsome content of a small source file\n' "$i" > "$ctx/src/f$i.txt"; done
cat > "$ctx/Dockerfile" <<'EOF'
FROM busybox
ENV APP=bench MODE=build
WORKDIR /app
COPY src/ ./
RUN mkdir gen && for i in $(seq 1 100); do echo "$APP $i" > gen/f$i; done
RUN n=$(ls | wc -l) && sha256sum main.txt > main.sum && echo "$n entries" > count
CMD ["sh", "-c", "cat main.txt main.sum count; ls gen | wc -l"]
EOF
nonce=$(od -An -N4 -tx1 /dev/urandom | tr -d ' ')
set_main() { echo "$1 $nonce" > "$ctx/src/main.txt"; }

# The tools: build (extra flags first) and run of the built image.
b_build()  { "$BERTH" --root "$root" build --network none -t "$tag-berth" "$@" "$ctx"; }
b_run()    { "$BERTH" --root "$root" run --rm --network none "$tag-berth"; }
dc_build() { DOCKER_BUILDKIT=0 "$DOCKER" build --network none -t "$tag-classic" "$@" "$ctx"; }
dc_run()   { "$DOCKER" run --rm --network none "$tag-classic"; }
dk_build() { DOCKER_BUILDKIT=1 "$DOCKER" build --progress plain --network none -t "$tag-buildkit" "$@" "$ctx"; }
dk_run()   { "$DOCKER" run --rm --network none "$tag-buildkit"; }
p_build()  { podman build --network none -t "$tag-podman" "$@" "$ctx"; }
p_run()    { podman run --rm --network none "$tag-podman"; }
# Before each run's cold builds (untimed): the images the tool built before
# are removed (the build cache with them), only busybox stays. podman needs
# it: after a --no-cache build, buildah 1.28 finds two cached images for the
# ENV step and takes the older one, so the next build is not fully cached.
# The others get the same, so that every cold build starts alike.
b_reset()  { "$BERTH" --root "$root" rmi "$tag-berth" && "$BERTH" --root "$root" image prune -f; }
dc_reset() { "$DOCKER" rmi "$tag-classic" && "$DOCKER" image prune -f; }
dk_reset() { "$DOCKER" rmi "$tag-buildkit" && "$DOCKER" builder prune -af; }
p_reset()  { podman rmi "$tag-podman" && podman image prune -f; }

tools=(b); labels=(berth)
declare -A why=()
try() { # KEY LABEL: warm-up build (untimed); the tool is measured if it works
  if "${1}_build" --no-cache >"$work/warmup.$1.log" 2>&1; then
    tools+=("$1"); labels+=("$2")
  else
    why[$2]="warm-up build failed: $(grep -v '^\s*$' "$work/warmup.$1.log" | tail -1)"
  fi
}
set_main "warm-up"
"${tools[0]}_build" --no-cache >"$work/warmup.b.log" 2>&1 || {
  echo "berth build failed:" >&2; cat "$work/warmup.b.log" >&2; exit 1; }
if docker_start && docker_import_tar "$work/busybox.tar" busybox; then
  try dc "docker (classic)"
  try dk "docker (BuildKit)"
else
  why["docker (classic)"]=${docker_why:-"docker import failed"}
  why["docker (BuildKit)"]=${why["docker (classic)"]}
fi
if podman_setup && podman_import_tar "$work/busybox.tar" busybox; then
  try p "podman (buildah)"
else
  why["podman (buildah)"]=$podman_why
fi

mkdir -p "$work/logs"
ms() { # ms LOG CMD...: runs CMD (output in LOG), prints its wall time in ms
  local log=$1 t0 t1; shift
  t0=$(date +%s%N)
  if ! "$@" >"$log" 2>&1; then
    { echo "failed: $*"; tail -20 "$log"; } >&2; return 1
  fi
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}
stats() { sort -n | awk '{a[NR]=$1} END {printf "%d ms (%d-%d, n=%d)", a[int((NR+1)/2)], a[1], a[NR], NR}'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
hits() { grep -cE 'Using cache|^#[0-9]+ CACHED' "$1" || true; }   # classic/berth/podman, BuildKit

for run in $(seq "$RUNS"); do
  for t in "${tools[@]}"; do "${t}_reset" >"$work/logs/$t.reset.$run" 2>&1 || {
    echo "$t: removing the images of the previous build failed:" >&2; cat "$work/logs/$t.reset.$run" >&2; exit 1; }
  done
  set_main "run $run"
  for t in "${tools[@]}"; do ms "$work/logs/$t.cold.$run" "${t}_build" --no-cache >> "$work/$t.cold"; done
  for t in "${tools[@]}"; do ms "$work/logs/$t.cached.$run" "${t}_build" >> "$work/$t.cached"; done
  set_main "run $run changed"
  for t in "${tools[@]}"; do ms "$work/logs/$t.changed.$run" "${t}_build" >> "$work/$t.changed"; done
done

echo "bench/build.sh: $RUNS runs, $(nproc) cores; medians (min-max, n) of wall time"
echo "berth  $("$BERTH" --version | awk '{print $2}') ($BERTH)"
[ -n "${why["docker (classic)"]:-}" ] || echo "docker $("$DOCKER" version -f '{{.Server.Version}}') (private dockerd, storage driver $("$DOCKER" info -f '{{.Driver}}'), client $DOCKER)"
[ -n "${why["podman (buildah)"]:-}" ] || echo "podman $(podman version -f '{{.Client.Version}}') (private storage, driver $(podman info -f '{{.Store.GraphDriverName}}'), buildah $(podman info -f '{{.Host.BuildahVersion}}'), runtime $(podman info -f '{{.Host.OCIRuntime.Name}}'))"
echo "RUN steps: --network none for every tool"
echo
printf '%-18s' ""; for l in "${labels[@]}"; do printf ' %-27s' "$l"; done; echo
for op in cold cached changed; do
  case $op in
    cold) printf '%-18s' "cold (--no-cache)";;
    cached) printf '%-18s' "cached rebuild";;
    changed) printf '%-18s' "1 file changed";;
  esac
  for t in "${tools[@]}"; do printf ' %-27s' "$(stats < "$work/$t.$op")"; done; echo
done
printf '%-18s' "cache hits, run 1"
for t in "${tools[@]}"; do
  printf ' %-27s' "$(hits "$work/logs/$t.cold.1") / $(hits "$work/logs/$t.cached.1") / $(hits "$work/logs/$t.changed.1") (cold/cached/chg)"
done; echo
for l in "docker (classic)" "docker (BuildKit)" "podman (buildah)"; do
  [ -z "${why[$l]:-}" ] || echo "$l: not measured: ${why[$l]}"
done
echo
for i in "${!labels[@]}"; do
  t=${tools[$i]}; [ "$t" != b ] || continue
  awk -v l="${labels[$i]}" \
      -v bc="$(median < "$work/b.cold")" -v oc="$(median < "$work/$t.cold")" \
      -v bn="$(median < "$work/b.cached")" -v on="$(median < "$work/$t.cached")" \
      -v bx="$(median < "$work/b.changed")" -v ox="$(median < "$work/$t.changed")" \
    'BEGIN { printf "%s / berth: cold %.1fx, cached %.1fx, 1 file changed %.1fx\n", l, oc/bc, on/bn, ox/bx }'
done
echo
echo "the last image each tool built, run once (main.txt, its sha256, the entries of /app at the second RUN, the files the first RUN made):"
for i in "${!labels[@]}"; do
  printf '  %-18s %s\n' "${labels[$i]}" "$("${tools[$i]}_run" 2>&1 | tr '\n' ' ')"
done
