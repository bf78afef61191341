# Shared by the script tests: a scratch folder, mpirun, and a check helper.
set -euo pipefail
: "${KMOE:?} ${MPIEXEC:?} ${PYTHON:?}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kmoe-script-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mpi() { "$MPIEXEC" --oversubscribe "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# fuzz_run TARGET DEFAULT_RUNS WHAT: runs ./TARGET (a libFuzzer binary, in the current folder,
# seeds in ./corpus) for KMOE_FUZZ_RUNS inputs (default DEFAULT_RUNS) from KMOE_FUZZ_SEED
# (default 1); on a finding prints the log tail and the input, then fails with WHAT.
fuzz_run() {
  if ! "./$1" -runs="${KMOE_FUZZ_RUNS:-$2}" -seed="${KMOE_FUZZ_SEED:-1}" -timeout=10 -rss_limit_mb=2048 \
    -max_len=8192 -print_final_stats=1 corpus > fuzz.log 2>&1; then
    tail -60 fuzz.log
    for f in crash-* leak-* timeout-* oom-*; do
      [ -e "$f" ] && { echo "input $f:"; od -c "$f" | head -20; }
    done
    fail "$3"
  fi
  grep -E "stat::number_of_executed_units|cov:" fuzz.log | tail -2
  echo ok
}
