# An exception on one rank, while the others are in collectives, ends the whole job with
# one message naming the rank, a non-zero exit, and nothing under the final name.
source "$(dirname "$0")/lib.sh"
set +e
timeout 120 "$MPIEXEC" --oversubscribe -np 3 "$KMOE_ARTIFACT_WRITER" "$WORK/emb.h5" --throw-rank 2 > "$WORK/log" 2>&1
rc=$?
set -e
[ $rc -ne 124 ] || fail "job hung"
[ $rc -ne 0 ] || fail "job exited 0"
grep -q "error on rank 2 of 3: injected failure in block 1" "$WORK/log" || fail "message: $(cat "$WORK/log")"
[ ! -e "$WORK/emb.h5" ] || fail "something under the final name"
echo "error on one rank ended the job: ok (exit $rc)"
