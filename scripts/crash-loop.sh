#!/usr/bin/env bash
# The crash-consistency loop for many rounds (the suite runs a few:
# tests/faults.rs sigkilled_up_and_down_at_random_points_converge_with_nothing_left).
#
#   scripts/crash-loop.sh [ROUNDS]     (default 40; as root)
#
# Sets BERTH_CRASH_ROUNDS for that test: each round SIGKILLs `up -d` (even
# rounds) or `down` (odd rounds) at a random point, then `up --wait` must
# converge (three running containers, one network, `plan` has nothing to
# do); at the end `down` must leave no container, mount or cgroup. Then
# scripts/leftovers.sh must print what it printed before.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-40}"
before="$(mktemp)"
after="$(mktemp)"
trap 'rm -f "$before" "$after"' EXIT
bash scripts/leftovers.sh | sort >"$before"
BERTH_CRASH_ROUNDS="$rounds" cargo test --test faults \
  sigkilled_up_and_down_at_random_points_converge_with_nothing_left -- --exact --nocapture
bash scripts/leftovers.sh | sort >"$after"
if ! diff -u "$before" "$after"; then
  echo "crash-loop: left behind (lines starting with +)" >&2
  exit 1
fi
echo "crash-loop: $rounds rounds converged, nothing left behind"
