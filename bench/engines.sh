# shellcheck shell=bash
# Docker and Podman for the side-by-side rows of bench/project.sh, run.sh
# and ports.sh; sourced by them, not run on its own.
#
# Nothing of a system Docker or Podman is used or touched:
#   docker  a private dockerd (Debian's docker.io, started by hand): its own
#           data root, exec root (and so its own containerd), socket, pid file,
#           config file and key, all under the bench's work directory; the
#           client is pointed at it with DOCKER_HOST.
#   podman  private containers.conf and storage.conf (CONTAINERS_CONF,
#           CONTAINERS_STORAGE_CONF): its own graph root, run root, tmp dir,
#           events log and network config dir. Its default network gets
#           10.85.0.0/16 instead of 10.88.0.0/16: that is also berth's
#           default subnet, and netavark does not check the host's routes
#           before taking it. The containers.conf also sets
#           default_ulimits: this machine withholds CAP_SYS_RESOURCE and
#           podman's default RLIMIT_NOFILE/NPROC are above the caller's hard
#           limit, so container init would fail ("error setting rlimit
#           type 7: operation not permitted").
#
# What the engines change outside those directories is put back by
# engines_cleanup: the bridges they made (docker0, docker's br-* for its
# networks, netavark's podmanN), the iptables rules and chains (dockerd and
# netavark add them; a table that changed is restored from the snapshot
# taken by engines_snapshot, which also brings back the FORWARD policy), the
# sysctls dockerd sets (ip_forward, bridge-nf-call-*), the fixed system
# directories they write to when they were not there before (see
# engines_system_dirs), and processes
# left by the engines (found by our private directories in their command
# line, ended by pid).
#
# Usage, in a script with `set -euo pipefail`:
#   source bench/engines.sh
#   cleanup() { set +e; ...the bench's own...; engines_end "$work"; }
#   engines_begin "$work" cleanup        # first, before any engine starts
#   busybox_rootfs "$work/rootfs" "$work/busybox.tar"
#   docker_start  || echo "docker: not measured: $docker_why"
#   podman_setup  || echo "podman: not measured: $podman_why"
#   docker_import_tar ROOTFS.tar busybox / podman_import_tar ROOTFS.tar busybox

ENG=""               # work directory of the engines (snapshot, state)
DOCKER=""            # the docker client
dockerd_pid=""       # the dockerd this script started (only that one is stopped)
docker_why=""        # why docker is not measured
podman_why=""        # why podman is not measured
podman_ok=0
made_links=()        # bridges made by the engines, removed at cleanup

engines_snapshot() { # DIR: record the host's network state before any engine runs
  ENG=$1
  mkdir -p "$ENG"
  ip -o link | awk -F': ' '{print $2}' | cut -d@ -f1 > "$ENG/links.before"
  if command -v iptables-save >/dev/null; then
    iptables-save > "$ENG/iptables.before"
    ip6tables-save > "$ENG/ip6tables.before"
  fi
  if command -v nft >/dev/null; then nft list tables > "$ENG/nft.before"; fi
  local s
  for s in net/ipv4/ip_forward net/bridge/bridge-nf-call-iptables net/bridge/bridge-nf-call-ip6tables; do
    if [ -e "/proc/sys/$s" ]; then echo "$s $(cat "/proc/sys/$s")"; fi
  done > "$ENG/sysctl.before"
  local d
  for d in "${engines_system_dirs[@]}"; do [ ! -e "$d" ] || echo "$d"; done > "$ENG/dirs.before"
  return 0
}

# Directories outside their private ones that the engines write to (fixed
# paths): netavark's IPAM database and aardvark-dns config, podman's blob
# info cache, the runc state root podman uses, containerd shims' sockets.
# Removed at cleanup when they did not exist before: the first two whole
# (our data only), the others only when empty.
engines_system_dirs=(/run/containers/networks /var/lib/containers/cache
  /run/runc /run/containerd/s /run/containerd /run/containers /var/lib/containers)

# --- docker -----------------------------------------------------------------

docker_start() { # start a private dockerd; sets DOCKER and DOCKER_HOST
  if ! command -v dockerd >/dev/null; then
    docker_why="dockerd is not installed (apt-get install docker.io)"; return 1
  fi
  DOCKER=/usr/bin/docker   # the client packaged with the engine
  [ -x "$DOCKER" ] || DOCKER=$(command -v docker) || {
    docker_why="no docker client (apt-get install docker.io)"; return 1; }
  if pgrep -x dockerd >/dev/null || grep -qx docker0 "$ENG/links.before"; then
    # A second dockerd would share docker0 and the DOCKER iptables chains.
    docker_why="another dockerd runs here (or docker0 exists): not starting a second one"
    return 1
  fi
  local d="$ENG/docker"
  mkdir -p "$d/data" "$d/exec"
  # The daemon's key would be /etc/docker/key.json otherwise.
  printf '{"deprecated-key-path": "%s"}\n' "$d/key.json" > "$d/daemon.json"
  # setsid: Ctrl-C in the terminal must not stop dockerd before cleanup has
  # removed its containers and networks through it.
  setsid dockerd --config-file "$d/daemon.json" --data-root "$d/data" \
    --exec-root "$d/exec" --pidfile "$d/dockerd.pid" --host "unix://$d/docker.sock" \
    </dev/null >"$d/dockerd.log" 2>&1 &
  dockerd_pid=$!
  made_links+=(docker0)
  export DOCKER_HOST="unix://$d/docker.sock"
  local _
  for _ in $(seq 60); do
    "$DOCKER" info >/dev/null 2>&1 && return 0
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.5
  done
  docker_why="dockerd did not start: $(grep -i -m1 -E 'level=(error|fatal)|failed' "$d/dockerd.log" || tail -1 "$d/dockerd.log")"
  return 1
}

docker_import_tar() { # TAR NAME: the image NAME:latest from a rootfs tarball
  "$DOCKER" import "$1" "$2:latest" >/dev/null
}

docker_note_networks() { # remember the bridges of docker's networks (other than docker0)
  local id
  for id in $("$DOCKER" network ls -q --filter driver=bridge --no-trunc 2>/dev/null); do
    [ "$("$DOCKER" network inspect -f '{{.Name}}' "$id" 2>/dev/null)" = bridge ] || made_links+=("br-${id:0:12}")
  done
}

docker_stop() { # remove everything through dockerd, stop it, remove its directories
  [ -n "$dockerd_pid" ] || return 0
  local d="$ENG/docker" ids pid _
  if "$DOCKER" info >/dev/null 2>&1; then
    ids=$("$DOCKER" ps -aq)
    [ -z "$ids" ] || "$DOCKER" rm -f $ids >/dev/null
    docker_note_networks
    "$DOCKER" network prune -f >/dev/null
    ids=$("$DOCKER" images -aq)
    [ -z "$ids" ] || "$DOCKER" rmi -f $ids >/dev/null
  else
    echo "warning: dockerd did not answer at cleanup: its containers and networks are removed by hand" >&2
  fi
  kill -TERM "$dockerd_pid" 2>/dev/null || true
  for _ in $(seq 40); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL "$dockerd_pid" 2>/dev/null || true
  wait "$dockerd_pid" 2>/dev/null || true
  # dockerd stops its containerd (and shims) itself; after a SIGKILL they
  # would be left: end those that name our private directory, by pid.
  for pid in $(pgrep -f -- "$d/" || true); do kill -KILL "$pid" 2>/dev/null || true; done
  engines_umount_under "$d"
  rm -rf "$d"
  dockerd_pid=""
}

# --- podman -----------------------------------------------------------------

podman_setup() { # private podman configuration; exports CONTAINERS_CONF, CONTAINERS_STORAGE_CONF
  if ! command -v podman >/dev/null; then
    podman_why="podman is not installed (apt-get install podman)"; return 1
  fi
  local p="$ENG/podman"
  mkdir -p "$p/root" "$p/runroot" "$p/tmp" "$p/networks"
  cat > "$p/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[network]
network_config_dir = "$p/networks"
default_subnet = "10.85.0.0/16"
[engine]
tmp_dir = "$p/tmp"
image_copy_tmp_dir = "$p/tmp"
events_logger = "file"
events_logfile_path = "$p/tmp/events.log"
EOF
  cat > "$p/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$p/root"
runroot = "$p/runroot"
EOF
  export CONTAINERS_CONF="$p/containers.conf" CONTAINERS_STORAGE_CONF="$p/storage.conf"
  podman_ok=1
  local root
  root=$(podman info --format '{{.Store.GraphRoot}}' 2>&1) || true
  if [ "$root" != "$p/root" ]; then
    podman_why="podman does not use the private storage ($root)"; return 1
  fi
}

podman_import_tar() { # TAR NAME: the image localhost/NAME:latest; checks the ulimits took effect
  podman import "$1" "$2:latest" >/dev/null 2>&1
  local lim
  lim=$(podman run --rm --network none "$2" sh -c 'ulimit -Hn; ulimit -Hu' 2>&1 | tr '\n' ' ') || true
  if [ "$lim" != "1024 1024 " ]; then
    podman_why="containers.conf default_ulimits not in effect (got: $lim)"; return 1
  fi
}

podman_cleanup() {
  [ "$podman_ok" = 1 ] || return 0
  local p="$ENG/podman" pid _
  podman rm -af -t 0 >/dev/null 2>&1 || true
  podman pod rm -af >/dev/null 2>&1 || true
  podman network prune -f >/dev/null 2>&1 || true
  podman rmi -af >/dev/null 2>&1 || true
  # conmon runs `podman container cleanup` (netavark teardown) after a
  # container exits, asynchronously: let those finish, so that they do not
  # touch iptables after engines_cleanup has restored it. Then end what is
  # left that names our private directory (conmon, aardvark-dns of a podman
  # that was killed), by pid.
  for _ in $(seq 40); do pgrep -f -- "$p/" >/dev/null || break; sleep 0.25; done
  for pid in $(pgrep -f -- "$p/" || true); do kill -KILL "$pid" 2>/dev/null || true; done
  engines_umount_under "$p"
  rm -rf "$p"
  podman_ok=0
}

# --- the image --------------------------------------------------------------

busybox_rootfs() { # ROOTFS TAR: Debian's busybox-static as a root filesystem at ROOTFS
  # (also a runc bundle's rootfs) and as a one-layer tarball at TAR, as the tests make it
  local rootfs=$1 tar=$2 a
  mkdir -p "$rootfs"/{bin,etc,tmp,proc,sys,dev,root}
  cp "$(command -v busybox)" "$rootfs/bin/busybox"
  for a in $("$rootfs/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$rootfs/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$rootfs/etc/passwd"
  printf 'root:x:0:\n' > "$rootfs/etc/group"
  tar -C "$rootfs" -cf "$tar" .
}

# --- the host ---------------------------------------------------------------

engines_umount_under() { # DIR: unmount everything below DIR, deepest first
  grep -o " $1/[^ ]*" /proc/self/mountinfo | sort -ru | xargs -r -n1 umount -l 2>/dev/null || true
}

engines_restore_tables() { # CMD SNAPSHOT FAMILY: put CMD's tables back as in SNAPSHOT
  local cmd=$1 before=$2 family=$3 t
  [ -f "$before" ] || return 0
  norm() { grep -v '^#' | sed 's/ \[[0-9]*:[0-9]*\]$//'; }
  if ! diff -q <(norm < "$before") <("$cmd-save" | norm) >/dev/null; then
    echo "restoring $cmd rules changed by the engines:" >&2
    diff <(norm < "$before") <("$cmd-save" | norm) | grep '^[<>]' | sed 's/^/  /' >&2 || true
    "$cmd-restore" < "$before"   # replaces each table in the snapshot, policies included
    # Tables the engines created (absent from the snapshot): removed whole.
    for t in $("$cmd-save" | sed -n 's/^\*//p'); do
      grep -qx "\*$t" "$before" || nft delete table "$family" "$t" 2>/dev/null || true
    done
  fi
}

engines_begin() { # WORK CLEANUP: run the function CLEANUP on exit, Ctrl-C and TERM
  # included, then record the host's state in WORK/engines
  trap "$2" EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  engines_snapshot "$1/engines"
}

engines_end() { # WORK: the end of a bench's CLEANUP: undo what the engines did to the
  # host, unmount what is left under WORK and remove it
  engines_cleanup
  engines_umount_under "$1"
  rm -rf "$1"
}

engines_cleanup() { # undo what the engines did to the host (call from the EXIT trap)
  [ -n "$ENG" ] || return 0
  local errexit=0
  case $- in *e*) errexit=1 ;; esac
  set +e             # every step below runs, whatever fails before it
  docker_stop
  podman_cleanup
  local l s v
  # Bridges: the ones we know the engines made, and netavark's podmanN.
  for l in "${made_links[@]}" $(ip -o link | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^(cni-)?podman[0-9]+$'); do
    grep -qx "$l" "$ENG/links.before" || ip link del "$l" 2>/dev/null
  done
  if command -v iptables-save >/dev/null; then
    engines_restore_tables iptables "$ENG/iptables.before" ip
    engines_restore_tables ip6tables "$ENG/ip6tables.before" ip6
  fi
  while read -r s v; do
    [ "$(cat "/proc/sys/$s" 2>/dev/null)" = "$v" ] || echo "$v" > "/proc/sys/$s"
  done < "$ENG/sysctl.before"
  # aardvark-dns (netavark's DNS server, its config in /run/containers/networks)
  # is stopped by netavark with the last container; one still running from
  # that directory when we made the directory is ours.
  if ! grep -qxF /run/containers/networks "$ENG/dirs.before"; then
    for l in $(pgrep -f -- "aardvark-dns --config /run/containers/networks" || true); do kill -KILL "$l" 2>/dev/null; done
  fi
  for l in "${engines_system_dirs[@]}"; do
    grep -qxF "$l" "$ENG/dirs.before" && continue
    case $l in
      /run/containers/networks|/var/lib/containers/cache) rm -rf "$l" ;;
      *) rmdir "$l" 2>/dev/null ;;
    esac
  done
  # Left over from an engine we could not stop cleanly: say so.
  l=$(ip -o link | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -vxF -f "$ENG/links.before" | grep -E '^(docker0|br-|veth|cni-podman|podman)' | tr '\n' ' ')
  [ -z "$l" ] || echo "note: links made during the bench still present (not all ours to remove?): $l" >&2
  ENG=""
  [ "$errexit" = 0 ] || set -e
}
