#!/usr/bin/env bash
# Stop the daemons started by tests/slurm/cluster-up.sh, by their recorded PIDs, in reverse
# start order, and put back the configuration found before (or none). Daemons this script did
# not start are never touched. Idempotent.
# Why the configuration too: with a slurm.conf naming a controller that is down, every
# `scontrol` call waits ~9 s, and the SLURM executor plugin runs `scontrol show config` each
# time snakemake starts, local runs included.
#
#   tests/slurm/cluster-down.sh
set -uo pipefail
STATE=${SLURM_LOCAL_STATE:-/tmp/asrsweep-slurm}
MARK="# Written by asrsweep tests/slurm/cluster-up.sh"
restore_config() {
  local f
  for f in slurm.conf gres.conf; do
    head -n1 "/etc/slurm/$f" 2>/dev/null | grep -qF "$MARK" || continue
    if [[ -f "$STATE/$f.orig" ]]; then
      mv "$STATE/$f.orig" "/etc/slurm/$f" && echo "cluster-down: put back the earlier /etc/slurm/$f"
    else
      rm -f "/etc/slurm/$f" && echo "cluster-down: removed /etc/slurm/$f (written by cluster-up.sh)"
    fi
  done
}
trap restore_config EXIT
[[ -s "$STATE/pids" ]] || { echo "cluster-down: nothing recorded in $STATE/pids"; exit 0; }
tac "$STATE/pids" | while read -r name pid; do
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then echo "cluster-down: $name ($pid) still running after 10 s" >&2
    else echo "cluster-down: stopped $name ($pid)"; fi
  fi
done
: > "$STATE/pids"
