#!/usr/bin/env bash
# Brings up a one-node SLURM cluster (Debian's slurm-wlm + munge) for tests, as root, in a
# container without systemd or cgroups. Everything lives under STATE_DIR: its own munge key
# and socket, slurm.conf with free ports, state, spool, logs and pid files, so two clusters
# (two tests) can run side by side and neither touches the system's munge or slurm.
#
#   slurm/cluster-up.sh STATE_DIR      then: source STATE_DIR/env.sh   (exports SLURM_CONF)
#   slurm/cluster-down.sh STATE_DIR    stops what this started (by its pid files)
#
# KMOE_SLURM_NODES=2 makes it two nodes on this one machine: two network namespaces, each
# with its own host name (node1, node2, in a UTS namespace), address and slurmd, joined to
# slurmctld on this host by a bridge with a veth pair per node, on a private /24 of 10.213.x
# (x from STATE_DIR). Each slurmd reads its own copy of slurm.conf (STATE_DIR/nodeN/), beside
# an mpi.conf that gives it its own PMIx folder, as /tmp is node-local on a real cluster
# (one shared folder makes the two nodes' step folders collide). No mount namespace, so it
# also works inside a chroot, where / is not a mount point. Jobs,
# MPI and PMIx traffic between the nodes stay on that bridge. cluster-down.sh removes the
# namespaces and the bridge.
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
NODES=${KMOE_SLURM_NODES:-1}
case $NODES in
  1)
    CTLD_ADDR=127.0.0.1
    NODE_LINES="NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN"
    NODE_LIST=$HOST
    SLURMD_FILES="SlurmdSpoolDir=$STATE/spool
SlurmdPidFile=$STATE/slurmd.pid
SlurmdLogFile=$STATE/slurmd.log"
    ;;
  2)
    command -v ip > /dev/null || { echo "cluster-up.sh: two nodes need ip (iproute2)" >&2; exit 1; }
    tag=$(($(cksum <<< "$STATE" | cut -d' ' -f1) % 100000))
    NET=10.213.$((tag % 250))
    BRIDGE=kmbr$tag
    NETNS="kmoe${tag}n1 kmoe${tag}n2"
    printf 'BRIDGE=%s\nNETNS="%s"\n' "$BRIDGE" "$NETNS" > "$STATE/net.env"
    ip link add "$BRIDGE" type bridge
    ip addr add "$NET.1/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    CTLD_ADDR=$NET.1
    NODE_LINES="" NODE_LIST=node1,node2
    i=0
    for ns in $NETNS; do
      i=$((i + 1))
      ip netns add "$ns"
      ip link add "kmv${tag}h$i" type veth peer name eth0 netns "$ns"
      ip link set "kmv${tag}h$i" master "$BRIDGE" up
      # (nsenter, not `ip -n`: that also remounts / as a slave, which fails in a chroot)
      nsenter --net="/run/netns/$ns" ip addr add "$NET.$((i + 1))/24" dev eth0
      nsenter --net="/run/netns/$ns" ip link set eth0 up
      nsenter --net="/run/netns/$ns" ip link set lo up
      NODE_LINES+="NodeName=node$i NodeAddr=$NET.$((i + 1)) NodeHostname=node$i CPUs=$CPUS RealMemory=$((MEM_MB / 2)) State=UNKNOWN
"
    done
    SLURMD_FILES="SlurmdSpoolDir=$STATE/spool-%n
SlurmdPidFile=$STATE/slurmd-%n.pid
SlurmdLogFile=$STATE/slurmd-%n.log"
    ;;
  *) echo "cluster-up.sh: KMOE_SLURM_NODES must be 1 or 2, not '$NODES'" >&2; exit 1 ;;
esac

cat > "$STATE/slurm.conf" <<EOF
# Written by slurm/cluster-up.sh: a one-node test cluster, no cgroups, no accounting.
ClusterName=kmoe
SlurmctldHost=$HOST($CTLD_ADDR)
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
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmctldLogFile=$STATE/slurmctld.log
$SLURMD_FILES
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=600
KillWait=5
$NODE_LINES
PartitionName=debug Nodes=$NODE_LIST Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
# The pmix plugin's per-step folders (default /tmp/spmix_appdir_UID_JOB.STEP) would collide
# between clusters side by side, whose job ids both start at 1, and with leftovers.
mkdir -p "$STATE/pmix"
echo "PMIxCliTmpDirBase=$STATE/pmix" > "$STATE/mpi.conf"
echo "export SLURM_CONF=$STATE/slurm.conf" > "$STATE/env.sh"
export SLURM_CONF=$STATE/slurm.conf

# -c: a fresh controller state, whatever a killed run left behind.
slurmctld -c -f "$SLURM_CONF"
if [ "$NODES" = 1 ]; then
  slurmd -c -f "$SLURM_CONF" -N "$HOST"
else
  i=0
  for ns in $NETNS; do
    i=$((i + 1))
    mkdir -p "$STATE/spool-node$i"
    # Its own network and host name (slurmd and every job step it starts see node$i), and
    # its own slurm.conf folder, whose mpi.conf names its own PMIx folder.
    mkdir -p "$STATE/node$i/pmix"
    cp "$SLURM_CONF" "$STATE/node$i/slurm.conf"
    echo "PMIxCliTmpDirBase=$STATE/node$i/pmix" > "$STATE/node$i/mpi.conf"
    nsenter --net="/run/netns/$ns" unshare --uts \
      sh -c "hostname node$i && exec slurmd -c -f '$STATE/node$i/slurm.conf' -N node$i"
  done
fi

timeout=${KMOE_SLURM_UP_TIMEOUT:-60}
for ((i = 0; i < timeout * 2; i++)); do
  states=$(sinfo -h -N -o %t 2> /dev/null | sort -u)
  if [ "$states" = idle ] && [ "$(sinfo -h -N -o %N 2> /dev/null | wc -l)" = "$NODES" ]; then
    echo "slurm up: $NODES node(s) $NODE_LIST idle, SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.5
done
echo "slurm did not come up within ${timeout}s; sinfo: $(sinfo -N 2>&1 || true)" >&2
for log in munge/munged.log slurmctld.log slurmd*.log; do
  echo "---- $STATE/$log" >&2
  tail -n 40 "$STATE/$log" >&2 || true
done
exit 1
