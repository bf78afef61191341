# A rank killed (SIGKILL) in the middle of a collective write leaves nothing under the
# final name; the same command run again commits a complete artifact.
source "$(dirname "$0")/lib.sh"
set +e
timeout 120 "$MPIEXEC" --oversubscribe -np 3 "$KMOE_ARTIFACT_WRITER" "$WORK/emb.h5" --rows 1000 \
  --kill-rank 1 --kill-after-blocks 3 > "$WORK/log" 2>&1
rc=$?
set -e
[ $rc -ne 0 ] || fail "the killed job exited 0"
[ $rc -ne 124 ] || fail "the job hung after a rank was killed"
[ ! -e "$WORK/emb.h5" ] || fail "something was left under the final name"
[ -e "$WORK/emb.h5.partial" ] || fail "expected the partial file of the killed run"
mpi -np 3 "$KMOE_ARTIFACT_WRITER" "$WORK/emb.h5" --rows 1000
[ -f "$WORK/emb.h5" ] && [ ! -e "$WORK/emb.h5.partial" ] || fail "re-run did not commit"
"$PYTHON" -c "import h5py,sys; f=h5py.File(sys.argv[1]); assert f.attrs['complete']==1 and f['embeddings'][999,0]==999" "$WORK/emb.h5"
echo "killed rank left nothing under the final name: ok"
