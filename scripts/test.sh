#!/usr/bin/env bash
# The one command that runs berth's whole test suite on a fresh Debian
# bookworm machine, as root: installs the Debian packages the tests use,
# checks formatting and lints, builds, and runs every test. Fixtures (the
# busybox image, registries, Debian bases) are made by the tests themselves
# from these packages, cached under target/fixtures/.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  libseccomp-dev pkg-config file tar   # build + fixture tooling
  busybox-static                       # the busybox test image
  skopeo umoci runc                    # interop and comparison
  podman                               # Podman driving `berth oci` as its runtime
  docker-registry apache2-utils openssl  # a real local registry, htpasswd, TLS
  nftables iproute2 jq conntrack      # NAT, links, clearing a removed container's connections
  iptables                             # living beside Docker's FORWARD DROP policy (network_forward)
  debootstrap                          # the Debian base for the apt-get test
  tini gcc libc6-dev bsdutils        # --init; the static syscall probe; script(1) for pty tests
  time                                 # bench/images.sh: GNU time for peak RSS
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# taplo validates example and test manifests against schema/berth.schema.json
# (tests/manifest_schema.rs); it comes from npm's registry as @taplo/cli.
if ! command -v taplo >/dev/null 2>&1; then
  if ! command -v npm >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm
  fi
  npm install -g @taplo/cli
fi
# docker-registry's package starts a service; the tests run their own.
systemctl disable --now docker-registry >/dev/null 2>&1 || true

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo build --all-targets --locked
before=$(mktemp); after=$(mktemp)
trap 'rm -f "$before" "$after"' EXIT
bash scripts/leftovers.sh | sort > "$before"
cargo test --locked -- --test-threads="${BERTH_TEST_THREADS:-4}"
# Nothing may be left behind: compare berth's kernel objects and processes
# with those before the suite (a supervisor may take a moment to finish).
for _ in $(seq 30); do
  bash scripts/leftovers.sh | sort > "$after"
  [ -z "$(comm -13 "$before" "$after")" ] && break
  sleep 0.5
done
if [ -n "$(comm -13 "$before" "$after")" ]; then
  echo "the test suite left these behind:" >&2
  comm -13 "$before" "$after" >&2
  exit 1
fi
echo "nothing left behind (links, nft tables, FORWARD rules, mounts, supervisors, cgroups)"
