#!/usr/bin/env bash
# Brings up a one-node SLURM cluster (Debian's slurm-wlm + munge) for tests, as root, in a
# container without systemd or cgroups. Everything lives under STATE_DIR: its own munge key
# and socket, slurm.conf with free ports, state, spool, logs and pid files, so two clusters
# (two tests) can run side by side and neither touches the system's munge or slurm.
#
#   slurm/cluster-up.sh STATE_DIR      then: source STATE_DIR/env.sh   (exports SLURM_CONF)
#   slurm/cluster-down.sh STATE_DIR    stops what this started (by its pid files)
#
# Waits (at most KMOE_SLURM_UP_TIMEOUT seconds, default 60) until sinfo shows the node idle;
# on failure prints the daemons' logs and exits non-zero. A leftover cluster in STATE_DIR
# (a killed test) is stopped first.
set -euo pipefail
STATE=${1:?usage: cluster-up.sh STATE_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
"$HERE/cluster-down.sh" "$STATE" > /dev/null 2>&1 || true

# munged runs as the munge user, which must reach its folder: the path down to it is
# traversable and the folder itself is writable by munge alone.
chmod 755 "$STATE"
runuser -u munge -- test -x "$STATE" ||
  { echo "cluster-up.sh: the munge user cannot reach $STATE (make the folders above it traversable)" >&2; exit 1; }
mkdir -p "$STATE/munge" "$STATE/ctld" "$STATE/spool"
chown munge:munge "$STATE/munge"
chmod 755 "$STATE/munge"
[ -e "$STATE/munge/munge.key" ] ||
  runuser -u munge -- mungekey --create --keyfile="$STATE/munge/munge.key"
runuser -u munge -- munged --socket="$STATE/munge/munge.socket" --key-file="$STATE/munge/munge.key" \
  --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/munge/munged.log" \
  --seed-file="$STATE/munge/munged.seed"

# Two free TCP ports for slurmctld and slurmd (the kernel picks them).
read -r CTLD_PORT SLURMD_PORT < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(($(awk '/MemAvailable/ {print $2}' /proc/meminfo) / 2048))  # half of what is free

cat > "$STATE/slurm.conf" <<EOF
# Written by slurm/cluster-up.sh: a one-node test cluster, no cgroups, no accounting.
ClusterName=kmoe
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a requeued job may start again after this many seconds (default 120).
AuthInfo=socket=$STATE/munge/munge.socket,cred_expire=10
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=600
KillWait=5
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
# The pmix plugin's per-step folders (default /tmp/spmix_appdir_UID_JOB.STEP) would collide
# between clusters side by side, whose job ids both start at 1, and with leftovers.
mkdir -p "$STATE/pmix"
echo "PMIxCliTmpDirBase=$STATE/pmix" > "$STATE/mpi.conf"
echo "export SLURM_CONF=$STATE/slurm.conf" > "$STATE/env.sh"
export SLURM_CONF=$STATE/slurm.conf

# -c: a fresh controller state, whatever a killed run left behind.
slurmctld -c -f "$SLURM_CONF"
slurmd -c -f "$SLURM_CONF" -N "$HOST"

timeout=${KMOE_SLURM_UP_TIMEOUT:-60}
for ((i = 0; i < timeout * 2; i++)); do
  if [ "$(sinfo -h -N -o %t 2> /dev/null)" = idle ]; then
    echo "slurm up: node $HOST idle, SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.5
done
echo "slurm did not come up within ${timeout}s; sinfo: $(sinfo -N 2>&1 || true)" >&2
for log in munge/munged.log slurmctld.log slurmd.log; do
  echo "---- $STATE/$log" >&2
  tail -n 40 "$STATE/$log" >&2 || true
done
exit 1
