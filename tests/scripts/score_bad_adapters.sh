# `kmoe score` with a bank list file naming an adapter that does not fit the base: an error
# naming it, or with --skip-bad-adapters a skipped row with the reason recorded.
source "$(dirname "$0")/lib.sh"
: "${KMOE_PARITY_DIR:?}"
D="$KMOE_PARITY_DIR/scoring"
cp -r "$D/adapters/a_qv" "$WORK/broken"
# rank 3 in the config, rank 4 in the tensors
sed -i 's/"r": 4/"r": 3/' "$WORK/broken/adapter_config.json"
grep -q '"r": 3' "$WORK/broken/adapter_config.json" || fail "could not break the adapter"
printf '%s\n' "# a bank list" "$D/adapters/a_qv" "" "$WORK/broken" > "$WORK/bank.txt"
args=(score --model "$D/model" --bank "$WORK/bank.txt" --kshot "$D/kshot.jsonl" --max-new-tokens 0 --threads 1)

set +e
mpi -np 2 "$KMOE" "${args[@]}" --output "$WORK/a.h5" 2> "$WORK/err"; rc=$?
set -e
[ $rc -ne 0 ] || fail "a bad adapter was accepted"
grep -q "adapter 'broken'" "$WORK/err" || fail "error does not name the adapter: $(cat "$WORK/err")"
[ ! -e "$WORK/a.h5" ] || fail "artifact written despite the error"

mpi -np 2 "$KMOE" "${args[@]}" --skip-bad-adapters --output "$WORK/b.h5" 2> "$WORK/err" || { cat "$WORK/err"; fail "skip run"; }
grep -q "skipped adapter broken" "$WORK/err" || fail "skip not reported: $(cat "$WORK/err")"
"$PYTHON" - "$WORK/b.h5" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
assert [s.decode() for s in f["adapters"][()]] == ["base", "a_qv", "broken"]
assert list(f["skipped"][()]) == [0, 0, 1]
r = f["skipped"].attrs["reasons"]
r = r.decode() if isinstance(r, bytes) else str(r)
assert r.startswith("broken: adapter 'broken'"), r
assert np.all(np.isnan(f["nll"][2])) and np.all(np.isfinite(f["nll"][:2]))
assert np.isnan(f["acc"][2])
PY
echo "ok"
