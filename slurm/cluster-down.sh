#!/usr/bin/env bash
# Stops the cluster that slurm/cluster-up.sh started in STATE_DIR: cancels its jobs, then
# ends slurmd, slurmctld and munged by their pid files. A pid is signalled only when that
# process is alive and its command line names STATE_DIR, so a stale pid file (a killed test,
# a reused pid) never ends someone else's process. Safe to run twice.
set -uo pipefail
STATE=${1:?usage: cluster-down.sh STATE_DIR}
[ -d "$STATE" ] || exit 0
STATE=$(cd "$STATE" && pwd)

ours() {  # the pid in file $1, when it is a live process started for this STATE_DIR
  local pid
  pid=$(cat "$1" 2> /dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' < "/proc/$pid/cmdline" 2> /dev/null | grep -qF "$STATE/" &&
    echo "$pid"
}

# Jobs first, while the daemons can still end their steps.
if ours "$STATE/slurmctld.pid" > /dev/null; then
  export SLURM_CONF=$STATE/slurm.conf
  scancel --full --quiet --user=root 2> /dev/null || true
  for ((i = 0; i < 20; i++)); do
    [ -z "$(squeue -h -o %i 2> /dev/null)" ] && break
    sleep 0.5
  done
fi

for pidfile in slurmd.pid slurmd-node1.pid slurmd-node2.pid slurmctld.pid munge/munged.pid; do
  pid=$(ours "$STATE/$pidfile") || { rm -f "$STATE/$pidfile"; continue; }
  kill -TERM "$pid" 2> /dev/null
  for ((i = 0; i < 20; i++)); do
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.5
  done
  kill -KILL "$pid" 2> /dev/null || true
  rm -f "$STATE/$pidfile"
done
# Two nodes (KMOE_SLURM_NODES=2): the namespaces (with the processes left in them), their
# veth pairs and the bridge.
if [ -e "$STATE/net.env" ]; then
  source "$STATE/net.env"
  for ns in $NETNS; do
    for pid in $(ip netns pids "$ns" 2> /dev/null); do kill -KILL "$pid" 2> /dev/null; done
    ip netns del "$ns" 2> /dev/null
  done
  ip link del "$BRIDGE" 2> /dev/null
  rm -f "$STATE/net.env"
fi
exit 0
