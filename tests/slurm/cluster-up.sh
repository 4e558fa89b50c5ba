#!/usr/bin/env bash
# Start a one-node SLURM 22.05 cluster on this machine (Debian 12, root, no systemd) for tests/CI.
#
#   tests/slurm/cluster-up.sh [--with-dbd]      stop with tests/slurm/cluster-down.sh
#
# Default: no accounting (slurmdbd), so `sacct` does not work and the profile must use
# `slurm-status-command: squeue` (profiles/slurm does). --with-dbd adds MariaDB + slurmdbd.
# One node named after this host, all its CPUs, SLURM_LOCAL_MEM_MB of memory (default: physical),
# one fake GPU (`--gpus=1` is accepted; there is no device behind it).
# Idempotent: daemons already running from a previous call are kept (their PIDs are in
# $SLURM_LOCAL_STATE/pids, default /tmp/asrsweep-slurm). Exit 3 = cannot run here (reason on
# stderr): tests skip on 3 and fail on anything else.
set -euo pipefail
WITH_DBD=0
for arg in "$@"; do
  case "$arg" in
    --with-dbd) WITH_DBD=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "cluster-up.sh: unknown argument '$arg' (only --with-dbd)" >&2; exit 2 ;;
  esac
done
cannot() { echo "cluster-up.sh: cannot start a local SLURM cluster: $*" >&2; exit 3; }
(( EUID == 0 )) || cannot "needs root (installs packages, starts daemons as root)"
grep -qs '^ID=debian' /etc/os-release || cannot "needs Debian (found: $(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-unknown}"))"
command -v apt-get >/dev/null || cannot "apt-get not found"

STATE=${SLURM_LOCAL_STATE:-/tmp/asrsweep-slurm}
HOST=$(hostname -s); NCPU=$(nproc)
# Physical memory less 512 MB for the daemons: slurmd drains a node claiming more than it has.
# A memory request above this (e.g. a retry's doubled mem_mb) is refused by sbatch.
MEM_MB=${SLURM_LOCAL_MEM_MB:-$(( $(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo) - 512 ))}
mkdir -p "$STATE"; touch "$STATE/pids"
t0=$(date +%s.%N)

# alive NAME: the daemon NAME recorded in $STATE/pids is still running.
alive() {
  local pid; pid=$(awk -v n="$1" '$1 == n {print $2}' "$STATE/pids" | tail -n1)
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}
record() { grep -v "^$1 " "$STATE/pids" > "$STATE/pids.tmp" || true; echo "$1 $2" >> "$STATE/pids.tmp"; mv "$STATE/pids.tmp" "$STATE/pids"; }
# foreign NAME PIDFILE: NAME runs but was not started by this script: use it, never stop it.
foreign() {
  [[ -s "$2" ]] && kill -0 "$(cat "$2")" 2>/dev/null || return 1
  echo "cluster-up: $1 already running (pid $(cat "$2"), not started here; left alone)" >&2
}
wait_pidfile() { for _ in $(seq 1 100); do [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# --- packages -------------------------------------------------------------------------------
export DEBIAN_FRONTEND=noninteractive
pkgs="slurm-wlm slurmctld slurmd slurm-client munge"
(( WITH_DBD )) && pkgs="$pkgs slurmdbd mariadb-server"
missing=""; for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [[ -n "$missing" ]]; then
  # Another apt/dpkg user holds the lock: wait for it instead of killing it.
  ok=0
  for i in $(seq 1 30); do
    if apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; then ok=1; break; fi
    echo "apt busy or failed, retry $i/30" >&2; sleep 10
  done
  (( ok )) || cannot "apt-get install$missing failed (offline?)"
fi
t1=$(date +%s.%N)

# --- configuration (rewritten every time; daemons already running keep theirs) ---------------
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
if (( WITH_DBD )); then
  acct="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30"
else
  acct="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi
# A configuration not written here is kept for cluster-down.sh to put back.
MARK="# Written by asrsweep tests/slurm/cluster-up.sh"
for f in slurm.conf gres.conf; do
  if [[ -f /etc/slurm/$f && ! -f $STATE/$f.orig ]] && ! head -n1 "/etc/slurm/$f" | grep -qF "$MARK"; then
    cp -p "/etc/slurm/$f" "$STATE/$f.orig"
  fi
done
old_conf=$(cat /etc/slurm/slurm.conf 2>/dev/null || true)
cat > /etc/slurm/slurm.conf <<CONF
${MARK}: a one-node test cluster.
ClusterName=asrsweep
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, a job with no --mem takes the whole node and jobs run one at a time.
DefMemPerCPU=1000
ReturnToService=2
# The plugin's squeue status check needs finished jobs to stay visible for a while.
MinJobAge=300
# Seconds between SIGTERM and SIGKILL at the time limit: time for training to checkpoint.
KillWait=30
GresTypes=gpu
${acct}
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${NCPU} RealMemory=${MEM_MB} Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=ALL MaxTime=INFINITE State=UP
CONF
cat > /etc/slurm/gres.conf <<CONF
${MARK}.
# A fake GPU: --gpus=1 is accepted and sets CUDA_VISIBLE_DEVICES=0; code falls back to CPU.
AutoDetect=off
NodeName=${HOST} Name=gpu File=/dev/null
CONF

if [[ -n "$old_conf" && "$old_conf" != "$(cat /etc/slurm/slurm.conf)" ]] && alive slurmctld; then
  echo "cluster-up: slurm.conf changed; running daemons keep the old one (cluster-down.sh, then up)" >&2
fi

# --- daemons -------------------------------------------------------------------------------
if ! alive munged && ! foreign munged /run/munge/munged.pid; then
  [[ -s /etc/munge/munge.key ]] || cannot "/etc/munge/munge.key missing (munge postinst did not run)"
  chown munge:munge /run/munge
  rm -f /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged
  wait_pidfile /run/munge/munged.pid || { echo "munged did not start" >&2; exit 1; }
  record munged "$(cat /run/munge/munged.pid)"
fi

if (( WITH_DBD )) && ! alive mariadbd && ! foreign mariadbd /run/mysqld/mysqld.pid; then
  mkdir -p /run/mysqld; chown mysql:root /run/mysqld
  /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql --socket=/run/mysqld/mysqld.sock \
      --pid-file=/run/mysqld/mysqld.pid --bind-address=127.0.0.1 > /var/log/slurm/mariadbd.log 2>&1 &
  record mariadbd $!
  for _ in $(seq 1 100); do mariadb -uroot -e 'select 1' >/dev/null 2>&1 && break; sleep 0.2; done
  mariadb -uroot -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpass';
    CREATE DATABASE IF NOT EXISTS slurm_acct_db; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
fi
if (( WITH_DBD )) && ! alive slurmdbd && ! foreign slurmdbd /run/slurmdbd.pid; then
  install -m 600 /dev/stdin /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=slurmpass
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
CONF
  rm -f /run/slurmdbd.pid
  /usr/sbin/slurmdbd
  for _ in $(seq 1 100); do [[ -s /run/slurmdbd.pid ]] && (echo > /dev/tcp/127.0.0.1/6819) 2>/dev/null && break; sleep 0.2; done
  record slurmdbd "$(cat /run/slurmdbd.pid)"
fi

if ! alive slurmctld && ! foreign slurmctld /run/slurmctld.pid; then
  rm -f /run/slurmctld.pid
  /usr/sbin/slurmctld
  wait_pidfile /run/slurmctld.pid || { echo "slurmctld did not start; see /var/log/slurm/slurmctld.log" >&2; exit 1; }
  record slurmctld "$(cat /run/slurmctld.pid)"
fi
if ! alive slurmd && ! foreign slurmd /run/slurmd.pid; then
  rm -f /run/slurmd.pid
  /usr/sbin/slurmd
  wait_pidfile /run/slurmd.pid || { echo "slurmd did not start; see /var/log/slurm/slurmd.log" >&2; exit 1; }
  record slurmd "$(cat /run/slurmd.pid)"
fi

state=""
for _ in $(seq 1 150); do
  state=$(sinfo -h -N -o %T 2>/dev/null | head -n1)
  [[ "$state" == idle || "$state" == mixed || "$state" == allocated ]] && break
  # A node left DOWN/DRAIN by an earlier crash comes back with an explicit resume.
  [[ "$state" == down* || "$state" == drain* ]] && scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true
  sleep 0.2
done
[[ "$state" == idle || "$state" == mixed || "$state" == allocated ]] \
  || { echo "node not ready (state '$state'); see /var/log/slurm/" >&2; exit 1; }
if (( WITH_DBD )); then
  for _ in $(seq 1 50); do sacct -n -X >/dev/null 2>&1 && break; sleep 0.2; done
fi
t2=$(date +%s.%N)
printf 'cluster-up: install %.1fs, daemons %.1fs; node %s %s\n' \
  "$(echo "$t1-$t0" | bc)" "$(echo "$t2-$t1" | bc)" "$HOST" "$state"
cat "$STATE/pids"
