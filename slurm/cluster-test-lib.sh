# shellcheck shell=bash
# Sourced by tests/scripts/slurm_*.sh after their lib.sh: a one-node cluster in $WORK/slurm
# brought up by cluster-up.sh and torn down on exit (also when the test fails), and a
# bounded wait for a job that prints the daemons' logs and the job's output on failure.
: "${WORK:?source lib.sh first}"
SLURM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
chmod 755 "$WORK"  # munged runs as the munge user and must reach $WORK/slurm
slurm_cleanup() {
  "$SLURM_DIR/cluster-down.sh" "$WORK/slurm"
  rm -rf "$WORK"
}
trap slurm_cleanup EXIT
"$SLURM_DIR/cluster-up.sh" "$WORK/slurm"
source "$WORK/slurm/env.sh"
cd "$WORK" || exit 1

slurm_logs() {  # the daemons' logs and any job output, for a failure
  local f
  for f in "$WORK"/slurm/slurmctld.log "$WORK"/slurm/slurmd*.log "$WORK"/*.out; do
    [ -e "$f" ] && { echo "---- $f"; tail -n 60 "$f"; }
  done
  scontrol show job 2> /dev/null | head -n 80 || true
}
slurm_fail() {
  slurm_logs >&2
  fail "$@"
}
job_state() { scontrol show job "$1" 2> /dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n 1; }
job_wait() {  # job_wait ID SECONDS: until the job has ended; fails unless it COMPLETED
  local id=$1 state="" i
  for ((i = 0; i < $2 * 2; i++)); do
    state=$(job_state "$id")
    case $state in
      COMPLETED) return 0 ;;
      FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) break ;;
    esac
    sleep 0.5
  done
  slurm_fail "job $id ended as '$state' (waited at most $2 s)"
}
file_wait() {  # file_wait PATH ID SECONDS: until PATH exists; fails when job ID ends first or time runs out
  local i state
  for ((i = 0; i < $3 * 2; i++)); do
    [ -e "$1" ] && return 0
    state=$(job_state "$2")
    [ "$state" = COMPLETED ] && slurm_fail "job $2 ended before $1 appeared"
    [ "$state" = FAILED ] && slurm_fail "job $2 failed before $1 appeared"
    sleep 0.5
  done
  slurm_fail "no $1 within $3 s"
}
