# kmoe panda learn + kmoe eval --insights (and score, generate) on the tiny scoring model (scoring_reference.py):
# the expert is the base with adapter b_all, the LLM the base, the keys' encoder the base as a
# decoder encoder. insights.h5 is the same for np 1, np 2 and a run killed mid-way and re-run;
# the expert's preferred option is its log-likelihood argmax (its rate of gold equals
# `kmoe eval`'s acc_ll); top3 pairs the same top answer with a lower one; eval --insights
# never uses a pool row holding a query, picks the nearest rows (cosine, checked in numpy
# against the queries' keys also found in the pool), and refuses another encoder, a k larger
# than the usable pool and a file that is not a pool. score --insights retrieves as eval does and
# gives the same predictions for the same prompts.
source "$(dirname "$0")/lib.sh"
: "${KMOE_PARITY_DIR:?}"
D="$KMOE_PARITY_DIR/scoring"
cat > "$WORK/train.jsonl" <<'JSONL'
{"id": "p1", "question": "Which is a fruit?", "choices": ["apple", "stone", "chair"], "answer": "A"}
{"id": "p2", "question": "Pick the colour.", "choices": ["run", "blue", "sit"], "answer": "B"}
{"id": "p3", "question": "Odd one out?", "choices": ["cat", "dog", "car", "cow"], "answer": "C"}
{"id": "p4", "question": "Which one swims?", "choices": ["fish", "rock", "lamp"], "answer": "A"}
{"id": "p5", "question": "Which is hot?", "choices": ["ice", "fire", "snow"], "answer": "B"}
{"id": "p6", "question": "Which is a number?", "choices": ["seven", "green", "table"], "answer": "A"}
{"id": "p7", "question": "Name a sweet food.", "answer": "cake"}
{"id": "p8", "question": "Say a word for big.", "answer": "large"}
JSONL
head -6 "$WORK/train.jsonl" > "$WORK/train_mc.jsonl"
cat > "$WORK/test.jsonl" <<'JSONL'
{"id": "t1", "question": "Which flies?", "choices": ["stone", "bird", "shoe"], "answer": "B"}
{"id": "t2", "question": "Which is a day?", "choices": ["Monday", "March", "Mars", "Milk"], "answer": "A"}
{"id": "t3", "question": "Which is hot?", "choices": ["ice", "fire", "snow"], "answer": "B"}
{"id": "t4", "question": "Which is wet?", "choices": ["sand", "water", "paper"], "answer": "B"}
JSONL
learn=(panda learn --expert-model "$D/model" --expert-adapter "$D/adapters/b_all" --llm "$D/model"
       --data "$WORK/train.jsonl" --encoder decoder --encoder-model "$D/model" --answer-format exact
       --max-new-tokens 6 --max-insight-tokens 10 --candidates 4 --chunk-size 2 --batch-size 2 --threads 1)
for np in 1 2; do
  mpi -np $np "$KMOE" "${learn[@]}" --output "$WORK/i$np.h5" 2> "$WORK/err$np" || { cat "$WORK/err$np"; fail "learn np=$np"; }
done
grep -q "8 examples in 4 units; skipping 0 units already done" "$WORK/err1" || fail "unit line: $(cat "$WORK/err1")"
# A kill after the first unit committed, then the same command again.
set +e
KMOE_TEST_KILL_AFTER_UNITS=1 mpi -np 2 "$KMOE" "${learn[@]}" --output "$WORK/ik.h5" > /dev/null 2>&1; rc=$?
set -e
[ $rc -ne 0 ] || fail "the killed run exited 0"
[ ! -e "$WORK/ik.h5" ] || fail "a killed run left ik.h5 under its final name"
mpi -np 2 "$KMOE" "${learn[@]}" --output "$WORK/ik.h5" 2> "$WORK/errk" || { cat "$WORK/errk"; fail "re-run"; }
grep -Eq "skipping [1-3] units already done" "$WORK/errk" || fail "the re-run redid everything: $(cat "$WORK/errk")"
mpi -np 1 "$KMOE" "${learn[@]}" --pairs top3 --output "$WORK/i3.h5" 2> "$WORK/err3" || { cat "$WORK/err3"; fail "top3"; }
# The expert's acc_ll on the choice examples: the share whose top option is the gold one.
mpi -np 1 "$KMOE" eval --model "$D/model" --test "$WORK/train_mc.jsonl" --adapters "$D/adapters/b_all" \
  --answer-format choice --max-new-tokens 0 --threads 1 --json --output "$WORK/expert.h5" > "$WORK/expert.json" \
  2> "$WORK/erre" || { cat "$WORK/erre"; fail "eval of the expert"; }
"$PYTHON" - "$WORK" <<'PY'
import sys, json, h5py, numpy as np
w = sys.argv[1]
f = {n: h5py.File(f"{w}/{n}.h5", "r") for n in ("i1", "i2", "ik", "i3")}
for name in ("ids", "keys", "answers", "preferred", "rejected", "insights", "preferred_score", "rejected_score",
             "has_pair", "key_embeddings"):
    a = f["i1"][name][()]
    for other in ("i2", "ik"):
        b = f[other][name][()]
        same = np.array_equal(a, b, equal_nan=True) if a.dtype.kind == "f" else np.array_equal(a, b)
        assert same, (name, other)
i1 = f["i1"]
s = lambda name: [x.decode() for x in i1[name][()]]
pref, rej, ins, has = s("preferred"), s("rejected"), s("insights"), i1["has_pair"][()]
ps, rs = i1["preferred_score"][()], i1["rejected_score"][()]
assert i1["key_embeddings"].shape == (8, 64), i1["key_embeddings"].shape
assert all(has[:6] == 1), has
for k in range(6):
    assert pref[k][1:3] == ". " and rej[k][1:3] == ". " and pref[k] != rej[k], (pref[k], rej[k])
    assert ps[k] >= rs[k] and ins[k], (k, ps[k], rs[k], ins[k])
for k in range(6, 8):  # free-form: sampled candidates, two distinct texts or no pair
    assert (has[k] == 1 and pref[k] != rej[k] and ps[k] >= rs[k] and ins[k]) or (has[k] == 0 and not ins[k]), k
gold = s("answers")[:6]
expert = json.load(open(f"{w}/expert.json"))["models"][0]
share = np.mean([p[0] == g for p, g in zip(pref[:6], gold)])
assert abs(share - expert["acc_ll"]) < 1e-6, (share, expert["acc_ll"])
p3, r3 = [x.decode() for x in f["i3"]["preferred"][()]], f["i3"]["rejected_score"][()]
assert p3[:6] == pref[:6] and all(r3[:6] <= rs[:6]) and any(r3[:6] < rs[:6]), (p3, r3, rs)
print("pool ok: expert acc_ll", expert["acc_ll"], "insight 0:", repr(ins[0]))
PY
ev=(eval --model "$D/model" --test "$WORK/test.jsonl" --adapters "$D/adapters/b_all" --answer-format choice
    --max-new-tokens 4 --threads 1 --insights "$WORK/i1.h5")
for np in 1 2; do
  mpi -np $np "$KMOE" "${ev[@]}" --insight-k 3 --output "$WORK/e$np.h5" > /dev/null 2> "$WORK/erv$np" ||
    { cat "$WORK/erv$np"; fail "eval --insights np=$np"; }
done
grep -q "1 left out: their key is a query's" "$WORK/erv1" || fail "exclusion line: $(cat "$WORK/erv1")"
mpi -np 1 "$KMOE" "${ev[@]}" --insight-k 3 --insight-mode random --insight-seed 3 --output "$WORK/er.h5" > /dev/null 2>&1 ||
  fail "eval --insight-mode random"
"$PYTHON" - "$WORK" <<'PY'
import sys, h5py, numpy as np
w = sys.argv[1]
e1, e2, er = (h5py.File(f"{w}/{n}.h5", "r") for n in ("e1", "e2", "er"))
pool = h5py.File(f"{w}/i1.h5", "r")
rows = e1["insight_rows"][()]
assert rows.shape == (4, 3) and np.array_equal(rows, e2["insight_rows"][()])
assert np.array_equal(e1["prediction"][()], e2["prediction"][()])
keys = [x.decode() for x in pool["keys"][()]]
hot = keys.index("Which is hot?\nA. ice\nB. fire\nC. snow")  # the pool row that is also query t3
assert hot not in rows, rows
# Query t3's key is pool row `hot`: its embedding is the query's, so its rows are the nearest by cosine.
emb = pool["key_embeddings"][()]
emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
cos = emb @ emb[hot]
cand = [r for r in range(len(keys)) if r != hot]
want = sorted(cand, key=lambda r: (-cos[r], r))[:3]
assert list(rows[2]) == want, (rows[2], want, cos)
rr = er["insight_rows"][()]
assert hot not in rr and all(len(set(r)) == 3 for r in rr) and not np.array_equal(rr, rows), rr
assert e1.attrs["insight_excluded"] == 1
print("retrieval ok:", rows.tolist())
PY
# score --insights: the same retrieval as eval's, and the same predictions for the same prompts
echo "$D/adapters/b_all" > "$WORK/bank.txt"
sc=(score --model "$D/model" --kshot "$WORK/test.jsonl" --bank "$WORK/bank.txt" --answer-format choice
    --max-new-tokens 4 --threads 1)
mpi -np 2 "$KMOE" "${sc[@]}" --insights "$WORK/i1.h5" --insight-k 3 --output "$WORK/s_ins.h5" 2> "$WORK/errs" ||
  { cat "$WORK/errs"; fail "score --insights"; }
mpi -np 1 "$KMOE" "${sc[@]}" --output "$WORK/s_plain.h5" 2> "$WORK/errs" || { cat "$WORK/errs"; fail "score"; }
"$PYTHON" - "$WORK" <<'PY' || fail "score --insights"
import json, sys, h5py, numpy as np
w = sys.argv[1]
s, p, e = (h5py.File(f"{w}/{n}.h5", "r") for n in ("s_ins", "s_plain", "e1"))
assert np.array_equal(s["insight_rows"][()], e["insight_rows"][()]), (s["insight_rows"][()], e["insight_rows"][()])
assert s.attrs["insight_excluded"] == 1 and s.attrs["insight_mode"] == "insights"
names = [x.decode() for x in s["adapters"][()]]
n = s["correct"].shape[1]
pred = np.array(s["prediction"].asstr()[()]).reshape(len(names), n)[names.index("b_all")]
assert pred.tolist() == e["prediction"].asstr()[()].tolist(), (pred, e["prediction"].asstr()[()])
assert np.abs(s["nll"][()] - p["nll"][()]).max() > 1e-3, "the insights did not change the NLLs"
opts = json.loads(s.attrs["options"])
assert opts["insight_k"] == 3 and any(i["name"] == "insights" for i in json.loads(s.attrs["inputs"]))
print("score --insights ok")
PY
root=$(cd "$(dirname "$0")/../.." && pwd)
"$PYTHON" "$root/tests/tools/check_artifacts.py" "$root/docs/artifacts.json" "$WORK/s_ins.h5" "$WORK/e1.h5" "$WORK/i1.h5" \
  --require scores.h5,eval.h5,insights.h5 || fail "the artifacts with insights do not match docs/artifacts.json"
# generate --insights: collective retrieval, then rank 0 prints the user's prompt and the reply.
mpi -np 2 "$KMOE" generate --model "$D/model" --raw --max-new-tokens 3 --threads 1 --insights "$WORK/i1.h5" \
  --insight-k 2 "Which is cold?" > "$WORK/gen" 2> "$WORK/errg" || { cat "$WORK/errg"; fail "generate --insights"; }
grep -q "generate: insights of 2 pool rows per query" "$WORK/errg" && [ "$(head -1 "$WORK/gen")" = "Which is cold?" ] ||
  fail "generate --insights: $(cat "$WORK/gen" "$WORK/errg")"
expect_error() {  # $1 message to find; the rest: the eval arguments
  local msg=$1; shift
  set +e
  mpi -np 2 "$KMOE" "${ev[@]}" "$@" > /dev/null 2> "$WORK/bad"; local rc=$?
  set -e
  [ $rc -ne 0 ] || fail "accepted: $*"
  grep -q -- "$msg" "$WORK/bad" || fail "for $*: no '$msg' in: $(cat "$WORK/bad")"
  [ ! -e "$WORK/bad.h5" ] || fail "left bad.h5"
}
expect_error "fewer than --insight-k 9" --insight-k 9 --output "$WORK/bad.h5"
cp -r "$D/model" "$WORK/other" && echo "another file, another content hash" > "$WORK/other/README.md"
expect_error "made with another encoder than $WORK/other: its model sha256" --insight-encoder "$WORK/other" \
  --output "$WORK/bad.h5"
ev=("${ev[@]/$WORK\/i1.h5/$WORK/expert.h5}")
expect_error "expert.h5: not an insight pool: made by kmoe eval" --output "$WORK/bad.h5"
echo OK
