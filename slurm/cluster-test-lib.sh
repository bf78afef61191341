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
# A rank that crashes inside MPI_Init_thread is an MPI start-up failure, not kmoe's (kmoe
# says so: runtime/mpi_world.h; Open MPI 4.1 under srun across the two test nodes did it in 2 of
# about 85 launches here). requeue_start_crash ID requeues a FAILED job whose output holds more
# such lines than it has been requeued for, at most twice per job, and says so; else fails.
declare -A START_CRASH_REQUEUES=()
requeue_start_crash() {
  local out n done=${START_CRASH_REQUEUES[$1]:-0}
  out=$(scontrol show job "$1" 2> /dev/null | sed -n 's/^ *StdOut=//p' | head -n 1)
  [ -n "$out" ] && [ -e "$out" ] || return 1
  n=$(grep -c "inside MPI_Init_thread" "$out") || true
  ((n > done && done < 2)) || return 1
  START_CRASH_REQUEUES[$1]=$((done + 1))
  echo "job $1: a rank crashed inside MPI_Init (an MPI start-up failure, see $out); requeued" >&2
  scontrol requeue "$1" || return 1
  sleep 1
}
job_wait() {  # job_wait ID SECONDS: until the job has ended; fails unless it COMPLETED
  local id=$1 state="" i
  for ((i = 0; i < $2 * 2; i++)); do
    state=$(job_state "$id")
    case $state in
      COMPLETED) return 0 ;;
      FAILED) requeue_start_crash "$id" && continue; break ;;
      CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) break ;;
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
    [ "$state" = FAILED ] && ! requeue_start_crash "$2" && slurm_fail "job $2 failed before $1 appeared"
    sleep 0.5
  done
  slurm_fail "no $1 within $3 s"
}
