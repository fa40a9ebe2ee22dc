#!/usr/bin/env bash
# Prints, one per line, the kernel objects and processes berth makes:
# links (bridges `berth*`/`br-*`, host veths `bv*`), nft tables, iptables
# FORWARD rules tagged by berth, mounts under container directories,
# supervisors (and detached exec terminals), and per-container cgroups. scripts/test.sh compares this
# before and after the suite: a suite that leaves any behind fails.
set -uo pipefail
ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 |
  grep -E '^(berth|br-|bv)' | sed 's/^/link /'
nft list tables 2>/dev/null | grep -E 'berth' | sed 's/^/nft /'
iptables -w -S FORWARD 2>/dev/null | grep -E 'berth[^ ]*:net:' | sed 's/^/iptables /'
awk '{print $5}' /proc/self/mountinfo | grep -E '/containers/[0-9a-f]{64}(/|$)' | sed 's/^/mount /'
pgrep -af -- '__supervise|__pty-drain' | grep -v pgrep | sed 's/^[0-9]* /process /'
find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -type d -path '*/berth/*' 2>/dev/null | sed 's/^/cgroup /'
exit 0
