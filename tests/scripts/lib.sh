# Shared by the script tests: a scratch folder, mpirun, and a check helper.
set -euo pipefail
: "${KMOE:?} ${MPIEXEC:?} ${PYTHON:?}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kmoe-script-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mpi() { "$MPIEXEC" --oversubscribe "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
