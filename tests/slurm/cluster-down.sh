#!/usr/bin/env bash
# Stop the daemons started by tests/slurm/cluster-up.sh, by their recorded PIDs, in reverse
# start order. Daemons this script did not start are never touched. Idempotent.
#
#   tests/slurm/cluster-down.sh
set -uo pipefail
STATE=${SLURM_LOCAL_STATE:-/tmp/asrsweep-slurm}
[[ -s "$STATE/pids" ]] || { echo "cluster-down: nothing recorded in $STATE/pids"; exit 0; }
tac "$STATE/pids" | while read -r name pid; do
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then echo "cluster-down: $name ($pid) still running after 10 s" >&2
    else echo "cluster-down: stopped $name ($pid)"; fi
  fi
done
: > "$STATE/pids"
