#!/usr/bin/env bash
# Stand-in base images under Docker Hub's own names, for machines that reach
# no container registry on the internet (the tests, CI, this repo's demo).
#
#   busybox:latest        Debian's busybox-static and its applet links
#   debian:bookworm-slim  debootstrap --variant=minbase, slimmed as the real
#                         image is (apt lists, docs, man pages and locales
#                         removed; the same dpkg/apt settings)
#   hello-world:latest    a static C program printing Docker's hello text
#
# The stand-ins trust what the host trusts: the host's CA bundle becomes
# /etc/ssl/certs/ca-certificates.crt, and the host's certificates that are
# not Debian's own (e.g. a company or proxy CA) go to
# /usr/local/share/ca-certificates/, where update-ca-certificates keeps them
# when a Dockerfile installs ca-certificates. So `npm install` over https
# works where the host's https works, and the examples' Dockerfiles stay
# what a user with Docker Hub would write.
#
# Usage (as root; BERTH is the berth binary, BERTH_ROOT the state root):
#   scripts/base-images.sh make             rootfs tarballs, cached under
#                                           target/fixtures/base-images/
#   scripts/base-images.sh import           make, then `berth import` all three
#   scripts/base-images.sh serve DIR        make, start Debian's docker-registry
#                                           on a free 127.0.0.1 port (storage,
#                                           pid file and log under DIR), push the
#                                           images as docker.io's library/*, and
#                                           write DIR/config.toml naming it as
#                                           docker.io's mirror: use it with
#                                           BERTH_CONFIG=DIR/config.toml.
#                                           Stop it with: kill "$(cat DIR/registry.pid)"
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$repo/target/fixtures/base-images"
debian_rootfs="$repo/target/fixtures/debian-rootfs"
BERTH="${BERTH:-$repo/target/debug/berth}"
mkdir -p "$out"

log() { echo "base-images: $*" >&2; }

suite() {
  local s
  s=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
  echo "${s:-bookworm}"
}

# The debootstrapped minbase tree the tests also use (target/fixtures/debian-rootfs).
ensure_debian_rootfs() {
  [ -d "$debian_rootfs" ] && return
  exec 8>"$debian_rootfs.lock"
  flock 8
  if [ ! -d "$debian_rootfs" ]; then
    log "debootstrap --variant=minbase $(suite) (once; cached in $debian_rootfs)"
    rm -rf "$debian_rootfs.staging"
    debootstrap --variant=minbase "$(suite)" "$debian_rootfs.staging" >"$out/debootstrap.log" 2>&1 \
      || { tail -20 "$out/debootstrap.log" >&2; exit 1; }
    mv "$debian_rootfs.staging" "$debian_rootfs"
  fi
  exec 8>&-
}

# Adds the host's CAs to the tree at $1.
add_host_cas() {
  local dir=$1 f name
  mkdir -p "$dir/etc/ssl/certs" "$dir/usr/local/share/ca-certificates"
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
  fi
  # Certificates that are not Debian's Mozilla set: files in /etc/ssl/certs
  # that are not links into /usr/share/ca-certificates, and the host's own
  # /usr/local/share/ca-certificates.
  for f in /etc/ssl/certs/*.pem /etc/ssl/certs/*.crt /usr/local/share/ca-certificates/*.crt; do
    [ -f "$f" ] || continue
    [ "$(basename "$f")" = ca-certificates.crt ] && continue
    case "$(readlink -f "$f")" in /usr/share/ca-certificates/*) continue ;; esac
    grep -q 'BEGIN CERTIFICATE' "$f" || continue
    name=$(basename "$f"); name="host-${name%.*}.crt"
    cp "$f" "$dir/usr/local/share/ca-certificates/$name"
  done
}

# tar of a tree, numeric owners, sorted (stable bytes for the same tree).
tar_tree() {
  tar --numeric-owner --sort=name -C "$1" -cf "$2.staging" .
  mv "$2.staging" "$2"
}

make_busybox() {
  local t="$out/busybox.tar" d
  [ -f "$t" ] && return
  [ -x /bin/busybox ] || { log "/bin/busybox is missing: apt-get install busybox-static"; exit 1; }
  d=$(mktemp -d "$out/busybox.XXXXXX")
  mkdir -p "$d"/{bin,etc,tmp,root,home,proc,sys,dev,var/www}
  chmod 1777 "$d/tmp"
  cp /bin/busybox "$d/bin/busybox"
  for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -s busybox "$d/bin/$a"
  done
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'daemon:x:1:1:daemon:/usr/sbin:/bin/false' \
    'www-data:x:33:33:www-data:/var/www:/bin/false' 'nobody:x:65534:65534:nobody:/home:/bin/false' \
    >"$d/etc/passwd"
  printf '%s\n' 'root:x:0:' 'daemon:x:1:' 'www-data:x:33:' 'nogroup:x:65534:' >"$d/etc/group"
  add_host_cas "$d"
  tar_tree "$d" "$t"
  rm -rf "$d"
}

make_debian_slim() {
  local t="$out/debian-bookworm-slim.tar" d
  [ -f "$t" ] && return
  ensure_debian_rootfs
  d=$(mktemp -d "$out/debian.XXXXXX")
  cp -a "$debian_rootfs/." "$d/"
  # What the real image's debuerreotype --slimify and docker settings do.
  rm -rf "$d"/var/lib/apt/lists/* "$d"/var/cache/apt/*.bin "$d"/var/cache/apt/archives/*.deb \
    "$d"/var/log/*.log "$d"/var/log/apt/* "$d"/tmp/*
  mkdir -p "$d/var/lib/apt/lists/partial"
  find "$d/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$d/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$d"/usr/share/man/* "$d"/usr/share/info/* "$d"/usr/share/groff/* "$d"/usr/share/lintian/* \
    "$d"/usr/share/linda/*
  find "$d/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  cat >"$d/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# as in the debian:*-slim images (debuerreotype-slimify)
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat >"$d/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$d/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$d/etc/apt/apt.conf.d/docker-autoremove-suggests"
  rm -f "$d/etc/apt/sources.list"
  local s; s=$(suite)
  cat >"$d/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $s $s-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $s-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  : >"$d/etc/hostname"
  add_host_cas "$d"
  tar_tree "$d" "$t"
  rm -rf "$d"
}

make_hello() {
  local t="$out/hello-world.tar" d
  [ -f "$t" ] && return
  command -v gcc >/dev/null || { log "gcc is missing: apt-get install gcc libc6-dev"; exit 1; }
  d=$(mktemp -d "$out/hello.XXXXXX")
  cat >"$d/hello.c" <<'EOF'
/* The text of Docker's hello-world image (docker-library/hello-world). */
#include <unistd.h>
static const char message[] =
    "\n"
    "Hello from Docker!\n"
    "This message shows that your installation appears to be working correctly.\n"
    "\n"
    "To generate this message, Docker took the following steps:\n"
    " 1. The Docker client contacted the Docker daemon.\n"
    " 2. The Docker daemon pulled the \"hello-world\" image from the Docker Hub.\n"
    "    (" ARCH ")\n"
    " 3. The Docker daemon created a new container from that image which runs the\n"
    "    executable that produces the output you are currently reading.\n"
    " 4. The Docker daemon streamed that output to the Docker client, which sent it\n"
    "    to your terminal.\n"
    "\n"
    "To try something more ambitious, you can run an Ubuntu container with:\n"
    " $ docker run -it ubuntu bash\n"
    "\n"
    "Share images, automate workflows, and more with a free Docker ID:\n"
    " https://hub.docker.com/\n"
    "\n"
    "For more examples and ideas, visit:\n"
    " https://docs.docker.com/get-started/\n"
    "\n";
int main(void) {
    return write(1, message, sizeof message - 1) == (ssize_t)(sizeof message - 1) ? 0 : 1;
}
EOF
  mkdir -p "$d/rootfs"
  gcc -static -Os -s -DARCH="\"$(dpkg --print-architecture)\"" -o "$d/rootfs/hello" "$d/hello.c"
  tar_tree "$d/rootfs" "$t"
  rm -rf "$d"
}

make_all() {
  exec 9>"$out/.lock"
  flock 9
  make_busybox
  make_debian_slim
  make_hello
  exec 9>&-
}

# name tarball CMD-json
images() {
  echo "busybox:latest $out/busybox.tar [\"sh\"]"
  echo "debian:bookworm-slim $out/debian-bookworm-slim.tar [\"bash\"]"
  echo "hello-world:latest $out/hello-world.tar [\"/hello\"]"
}

import_all() {
  local name tar cmd
  while read -r name tar cmd; do
    "$BERTH" import -c "CMD $cmd" "$tar" "$name" >/dev/null
    log "imported $name"
  done < <(images)
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
    || shuf -i 20000-60000 -n 1
}

serve() {
  local dir=$1 port i name
  command -v docker-registry >/dev/null || { log "docker-registry is missing: apt-get install docker-registry"; exit 1; }
  mkdir -p "$dir/storage"
  dir=$(cd "$dir" && pwd)
  port=$(free_port)
  cat >"$dir/registry.yml" <<EOF
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
  secret: berth-base-images
EOF
  docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 </dev/null &
  echo $! >"$dir/registry.pid"
  for i in $(seq 150); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null || { cat "$dir/registry.log" >&2; exit 1; }
    sleep 0.1
  done
  # Push from a scratch state root, so the caller's root stays as it was.
  local scratch; scratch=$(mktemp -d "$dir/push-root.XXXXXX")
  BERTH_ROOT="$scratch" import_all
  while read -r name _ _; do
    BERTH_ROOT="$scratch" "$BERTH" tag "$name" "127.0.0.1:$port/library/$name"
    BERTH_ROOT="$scratch" "$BERTH" push -q "127.0.0.1:$port/library/$name" >/dev/null
    log "pushed library/$name to 127.0.0.1:$port"
  done < <(images)
  rm -rf "$scratch"
  cat >"$dir/config.toml" <<EOF
# docker.io's images come from the local registry at 127.0.0.1:$port
# (made by scripts/base-images.sh serve), then from Docker Hub.
[registry-mirrors]
"docker.io" = ["http://127.0.0.1:$port"]
EOF
  echo "127.0.0.1:$port"
}

case "${1:-}" in
  make) make_all ;;
  import) make_all; import_all ;;
  serve) [ -n "${2:-}" ] || { echo "usage: $0 serve DIR" >&2; exit 2; }; make_all; serve "$2" ;;
  *) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
