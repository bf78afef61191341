# `kmoe eval` on the tiny scoring model (scoring_reference.py): base, two adapters and a
# mixture of LoRA experts (make_moe.py) on a multiple-choice test set. Accuracy, per-example correctness, predictions and acc_ll equal
# `kmoe score`'s on the same file; macro-F1 matches a count by hand in Python; np 1 and np 2
# give the same datasets byte for byte; a kill mid-run resumes; a bad test file names its line.
source "$(dirname "$0")/lib.sh"
: "${KMOE_PARITY_DIR:?}"
D="$KMOE_PARITY_DIR/scoring"
cat > "$WORK/test.jsonl" <<'JSONL'
{"id": "t1", "question": "Which is a fruit?", "choices": ["apple", "stone", "chair"], "answer": "A"}
{"id": "t2", "question": "Pick the colour.", "choices": ["run", "blue"], "answer": "blue"}
{"id": "t3", "question": "Odd one out?", "choices": ["cat", "dog", "car", "cow"], "answer": "C"}
{"id": "t4", "question": "Which one swims?", "choices": ["fish", "rock", "lamp"], "answer": "A"}
{"id": "t5", "question": "Which is hot?", "choices": ["ice", "fire"], "answer": "B"}
{"id": "t6", "question": "Which is a number?", "choices": ["seven", "green", "table"], "answer": "A"}
{"id": "t7", "question": "Which flies?", "choices": ["stone", "bird", "shoe"], "answer": "B"}
{"id": "t8", "question": "Which is a day?", "choices": ["Monday", "March", "Mars", "Milk"], "answer": "A"}
{"id": "t9", "question": "Which is wet?", "choices": ["sand", "water", "paper"], "answer": "water"}
JSONL
"$PYTHON" "$(dirname "$0")/make_moe.py" "$D" "$WORK/mix.h5" 2 "" a_qv:plus:1 a_qv:minus:-0.5
common=(--model "$D/model" --answer-format choice --max-new-tokens 6 --chunk-size 2 --batch-size 2 --threads 1)
eval_args=(eval "${common[@]}" --test "$WORK/test.jsonl" --base --adapters "$D/adapters/a_qv" "$D/adapters/c_mlp"
           --moe "mixed=$WORK/mix.h5")
# 4 models x 5 chunks of the 9 examples = 20 units

mpi -np 1 "$KMOE" score "${common[@]}" --kshot "$WORK/test.jsonl" --bank "$D/adapters" --moe "$WORK/mix.h5" \
  --output "$WORK/scores.h5" \
  2> "$WORK/errs" || { cat "$WORK/errs"; fail "score"; }
for np in 1 2; do
  mpi -np $np "$KMOE" "${eval_args[@]}" --output "$WORK/e$np.h5" > "$WORK/out$np" 2> "$WORK/err$np" ||
    { cat "$WORK/err$np"; fail "eval np=$np"; }
done
grep -q "20 units; skipping 0 units already done" "$WORK/err1" || fail "unit count line: $(cat "$WORK/err1")"
grep -q "^c_mlp " "$WORK/out1" && grep -q "macro-F1" "$WORK/out1" || fail "table: $(cat "$WORK/out1")"

check() {  # $1 eval.h5, $2 scores.h5: the layout, and the same results as score's
  "$PYTHON" - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
e, s = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
models = [x.decode() for x in e["models"][()]]
assert models == ["base", "a_qv", "c_mlp", "mixed"], models
assert e.attrs["task"] == "test", e.attrs["task"]
assert e["samples"].asstr()[()].tolist() == ["t%d" % i for i in range(1, 10)]
assert e["correct"].shape == (4, 9) and e["correct"].dtype == np.int64 and e["prediction"].shape == (36,)
for k in ["accuracy", "macro_f1", "acc_ll", "acc_ll_norm"]:
    assert e[k].shape == (4,) and e[k].dtype == np.float32, k
assert e["model_paths"].asstr()[()][3].endswith("/mix.h5")
srow = {n.decode(): i for i, n in enumerate(s["adapters"][()])}
pred = np.array(e["prediction"].asstr()[()]).reshape(4, 9)
spred = np.array(s["prediction"].asstr()[()]).reshape(len(srow), 9)
gold = e["gold"].asstr()[()].tolist()
assert gold == ["A", "B", "C", "A", "B", "A", "B", "A", "B"], gold
for m, name in enumerate(models):
    r = srow["mix" if name == "mixed" else name]
    assert e["accuracy"][m] == s["acc"][r], (name, e["accuracy"][m], s["acc"][r])
    assert np.array_equal(e["correct"][m], s["correct"][r]), name
    assert pred[m].tolist() == spred[r].tolist(), name
    assert e["acc_ll"][m] == s["acc_ll"][r] and e["acc_ll_norm"][m] == s["acc_ll_norm"][r], name
    f1 = []
    for c in sorted(set(gold)):
        tp = sum(g == c and p == c for g, p in zip(gold, pred[m]))
        fp = sum(g != c and p == c for g, p in zip(gold, pred[m]))
        fn = sum(g == c and p != c for g, p in zip(gold, pred[m]))
        f1.append(2 * tp / (2 * tp + fp + fn))
    assert abs(e["macro_f1"][m] - np.mean(f1)) < 1e-6, (name, e["macro_f1"][m], f1)
assert e["acc_ll"][3] != e["acc_ll"][0], "the MoE row scores as the base"
# the decoded replies, models x samples, beside the predictions extracted from them
reply = np.array(e["reply"].asstr()[()]).reshape(4, 9)
for m, name in enumerate(models):
    assert any(r.strip() for r in reply[m]), (name, "no reply")
    for p, r in zip(pred[m], reply[m]):
        assert not p or r.strip(), (name, p, r)
assert reply[0].tolist() != reply[3].tolist(), "the MoE row replies as the base"
PY
}
compare() {  # every dataset of $1 and $2 identical (bytes)
  "$PYTHON" - "$1" "$2" <<'PY'
import sys, h5py
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert sorted(a.keys()) == sorted(b.keys()), (sorted(a.keys()), sorted(b.keys()))
for k in a.keys():
    x, y = a[k][()], b[k][()]
    assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), k
assert a.attrs["task"] == b.attrs["task"]
PY
}
check "$WORK/e1.h5" "$WORK/scores.h5" || fail "eval differs from score"
compare "$WORK/e1.h5" "$WORK/e2.h5" || fail "np=1 and np=2 differ"

# A format that is no classification: accuracy as score's, macro-F1 and acc_ll NaN; a bank
# folder given to --adapters adds each adapter in it.
for i in 1 2 3 4 5 6; do
  g=$([ $((i % 2)) -eq 0 ] && echo n || echo @)
  echo "{\"id\": \"r$i\", \"question\": \"Say something $i.\", \"answer\": \"$g\"}"
done > "$WORK/exact.jsonl"
ex=(--model "$D/model" --answer-format exact --max-new-tokens 4 --chunk-size 3 --threads 1)
mpi -np 1 "$KMOE" score "${ex[@]}" --kshot "$WORK/exact.jsonl" --bank "$D/adapters" --output "$WORK/rs.h5" \
  2> "$WORK/errs" || { cat "$WORK/errs"; fail "score exact"; }
mpi -np 2 "$KMOE" eval "${ex[@]}" --test "$WORK/exact.jsonl" --base --adapters "$D/adapters" --task ex \
  --output "$WORK/re.h5" > /dev/null 2> "$WORK/err" || { cat "$WORK/err"; fail "eval exact"; }
"$PYTHON" - "$WORK/re.h5" "$WORK/rs.h5" <<'PY' || fail "exact eval differs from score"
import sys, h5py, numpy as np
e, s = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert e.attrs["task"] == "ex"
assert [x.decode() for x in e["models"][()]] == [x.decode() for x in s["adapters"][()]]  # a bank folder expands
assert np.array_equal(e["accuracy"][()], s["acc"][()]) and np.array_equal(e["correct"][()], s["correct"][()])
assert np.all(np.isnan(e["macro_f1"][()])) and np.all(np.isnan(e["acc_ll"][()]))
PY

# Complete for the same inputs: skipped, and --json prints the same numbers.
mpi -np 1 "$KMOE" "${eval_args[@]}" --output "$WORK/e1.h5" --json > "$WORK/json" 2> "$WORK/errj" ||
  { cat "$WORK/errj"; fail "re-run"; }
grep -q "eval: skipped" "$WORK/errj" || fail "complete eval not skipped: $(cat "$WORK/errj")"
"$PYTHON" - "$WORK/json" "$WORK/e1.h5" <<'PY' || fail "--json output"
import sys, json, math, h5py
j, e = json.load(open(sys.argv[1])), h5py.File(sys.argv[2], "r")
assert j["task"] == "test" and j["samples"] == 9 and [m["name"] for m in j["models"]] == ["base", "a_qv", "c_mlp", "mixed"]
for m, row in enumerate(j["models"]):
    assert math.isclose(row["accuracy"], float(e["accuracy"][m]), rel_tol=1e-6), row
    assert math.isclose(row["macro_f1"], float(e["macro_f1"][m]), rel_tol=1e-6), row
PY

# A real kill after 4 units committed, then the same command again on 2 ranks.
set +e
KMOE_TEST_KILL_AFTER_UNITS=4 mpi -np 1 "$KMOE" "${eval_args[@]}" --output "$WORK/r.h5" > /dev/null 2> "$WORK/errk"
rc=$?
set -e
[ $rc -ne 0 ] || fail "the killed run exited 0"
[ ! -e "$WORK/r.h5" ] || fail "a killed run left a final artifact"
n=$(ls "$WORK/r.h5.units" | grep -c safetensors || true)
[ "$n" -eq 4 ] || fail "expected 4 journalled units after the kill, found $n"
mpi -np 2 "$KMOE" "${eval_args[@]}" --output "$WORK/r.h5" > /dev/null 2> "$WORK/errr" || { cat "$WORK/errr"; fail "resume"; }
grep -q "skipping 4 units already done, 16 to do" "$WORK/errr" || fail "resume log: $(cat "$WORK/errr")"
[ ! -e "$WORK/r.h5.units" ] || fail "journal left after the artifact was committed"
compare "$WORK/e1.h5" "$WORK/r.h5" || fail "resumed run differs"

# Bad test files: a malformed line, and an answer that is no option; file:line, exit != 0.
head -2 "$WORK/test.jsonl" > "$WORK/bad.jsonl"
echo '{"id": "t3", "question": "broken", ' >> "$WORK/bad.jsonl"
head -2 "$WORK/test.jsonl" > "$WORK/bad_gold.jsonl"
echo '{"id": "t3", "question": "Which?", "choices": ["a", "b"], "answer": "E"}' >> "$WORK/bad_gold.jsonl"
for bad in bad bad_gold; do
  set +e
  mpi -np 2 "$KMOE" eval "${common[@]}" --base --test "$WORK/$bad.jsonl" --output "$WORK/$bad.h5" > /dev/null 2> "$WORK/errb"
  rc=$?
  set -e
  [ $rc -ne 0 ] || fail "$bad: exit 0"
  grep -q "$bad.jsonl:3" "$WORK/errb" || fail "$bad: no file:line in: $(cat "$WORK/errb")"
  [ ! -e "$WORK/$bad.h5" ] || fail "$bad: an artifact was written"
done

# Two rows with one name are refused before any work.
set +e
mpi -np 1 "$KMOE" eval "${common[@]}" --test "$WORK/test.jsonl" --adapters "$D/adapters/a_qv" "$D/adapters/a_qv" \
  --output "$WORK/dup.h5" > /dev/null 2> "$WORK/errd"
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "two models are named 'a_qv'" "$WORK/errd" || fail "duplicate names: rc $rc $(cat "$WORK/errd")"
echo "ok"
