# `kmoe score` on the tiny scoring model (scoring_reference.py) with three adapters: the same
# scores.h5 datasets byte for byte under np = 1, 2, 3, and after a rank killed (SIGKILL)
# mid-run, a re-run of the same command redoes only the missing units.
source "$(dirname "$0")/lib.sh"
: "${KMOE_PARITY_DIR:?}"
D="$KMOE_PARITY_DIR/scoring"
args=(score --model "$D/model" --bank "$D/adapters" --kshot "$D/kshot.jsonl" --answer-format exact
      --max-new-tokens 3 --chunk-size 2 --batch-size 2 --threads 1)
# 4 rows (base + 3 adapters) x 4 chunks of the 7 examples = 16 units

for np in 1 2 3; do
  mpi -np $np "$KMOE" "${args[@]}" --output "$WORK/s$np.h5" 2> "$WORK/err$np" || { cat "$WORK/err$np"; fail "np=$np"; }
done
grep -q "16 units; skipping 0 units already done" "$WORK/err1" || fail "unit count line: $(cat "$WORK/err1")"

compare() {  # every dataset of $1 and $2 identical (bytes), and the expected layout
  "$PYTHON" - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert sorted(a.keys()) == sorted(b.keys()), (sorted(a.keys()), sorted(b.keys()))
for k in a.keys():
    x, y = a[k][()], b[k][()]
    assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), k
names = [s.decode() for s in a["adapters"][()]]
assert names == ["base", "a_qv", "b_all", "c_mlp"], names
assert a["nll"].shape == (4, 7) and a["correct"].dtype == np.int64 and a["prediction"].shape == (28,)
nll, ppl = a["nll"][()], a["ppl"][()]
assert np.all(np.isfinite(nll)) and np.all(nll > 0) and np.all(ppl > 1)
assert not np.array_equal(nll[0], nll[1]), "adapter rows equal to the base"
# examples without a rationale: reasoning perplexity is the answer perplexity, and flagged
flag = a["ppl_reasoning_is_answer"][()]
assert list(flag) == [1, 0, 0, 1, 1, 1, 0], flag
assert np.array_equal(a["ppl_reasoning"][()][:, flag == 1], ppl[:, flag == 1])
assert np.allclose(a["ppl_sum"][()], a["ppl_reasoning"][()].sum(1), rtol=1e-5)
assert a["acc_ll"].shape == (4,) and np.all((a["acc_ll"][()] >= 0) & (a["acc_ll"][()] <= 1))
assert list(a["skipped"][()]) == [0, 0, 0, 0]
PY
}
compare "$WORK/s1.h5" "$WORK/s2.h5" || fail "np=1 and np=2 differ"
compare "$WORK/s1.h5" "$WORK/s3.h5" || fail "np=1 and np=3 differ"

# A real kill after 5 units committed, then the same command again.
set +e
KMOE_TEST_KILL_AFTER_UNITS=5 mpi -np 1 "$KMOE" "${args[@]}" --output "$WORK/r.h5" 2> "$WORK/errk"; rc=$?
set -e
[ $rc -ne 0 ] || fail "the killed run exited 0"
[ ! -e "$WORK/r.h5" ] || fail "a killed run left a final artifact"
n=$(ls "$WORK/r.h5.units" | grep -c safetensors || true)
[ "$n" -eq 5 ] || fail "expected 5 journalled units after the kill, found $n"
mpi -np 2 "$KMOE" "${args[@]}" --output "$WORK/r.h5" 2> "$WORK/errr" || { cat "$WORK/errr"; fail "resume"; }
grep -q "skipping 5 units already done, 11 to do" "$WORK/errr" || fail "resume log: $(cat "$WORK/errr")"
[ ! -e "$WORK/r.h5.units" ] || fail "journal left after the artifact was committed"
compare "$WORK/s1.h5" "$WORK/r.h5" || fail "resumed run differs"
echo "ok"
