# Issue 6: a mixture trained on two tasks, from two adapters each good at one, routes each
# task's tokens mostly to its own expert and beats either adapter on the mixed test set.
# Task A writes its question in the letters a-m and answers "red"; task B uses n-z and
# answers "blue". `kmoe train --mode lora` on each alone gives adapters a and b; `kmoe train
# --mode moe --adapters a b --data a.jsonl b.jsonl --top-k 2` trains the mixture on both.
# Asserted from moe.h5 /router_load_by_source: more than half of a.jsonl's routing weight goes
# to expert a and of b.jsonl's to expert b (and with the experts swapped the shares flip),
# and from `kmoe score --bank --moe` on mixed held-out questions: the mixture's mean answer
# NLL is below each adapter's, and its exact-match accuracy above.
source "$(dirname "$0")/lib.sh"
: "${KMOE_TINY_MODEL:?}"
"$KMOE_TINY_MODEL" write "$WORK/model"
"$PYTHON" - "$WORK" <<'PY'
import json, random, sys
rng = random.Random(6)
def question(task, letters):
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(3, 6))) for _ in range(24)]
    return "Task %s: %s" % (task, " ".join(words))
def write(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
tasks = {"a": ("A", "abcdefghijklm", "red"), "b": ("B", "nopqrstuvwxyz", "blue")}
test = []
for name, (task, letters, answer) in tasks.items():
    write("%s/%s.jsonl" % (sys.argv[1], name),
          [{"id": "%s%d" % (name, i), "question": question(task, letters), "answer": answer} for i in range(32)])
    test += [{"id": "t%s%d" % (name, i), "question": question(task, letters), "answer": answer} for i in range(8)]
rng.shuffle(test)
write(sys.argv[1] + "/test.jsonl", test)
PY

common=(--model "$WORK/model" --global-batch 8 --micro-batch 8 --threads 1 --lora-dropout 0 --seed 1
        --checkpoint-every 0 --log-every 1000)
for t in a b; do
  mpi -np 1 "$KMOE" train --mode lora "${common[@]}" --data "$WORK/$t.jsonl" --output "$WORK/bank/$t" \
    --max-steps 30 --lora-r 4 --lora-alpha 8 --lr 3e-2 2> "$WORK/err_$t" || { cat "$WORK/err_$t"; fail "adapter $t"; }
done
moe=(train --mode moe "${common[@]}" --data "$WORK/a.jsonl" "$WORK/b.jsonl" --top-k 2 --max-steps 40 --lr 2e-2)
mpi -np 2 "$KMOE" "${moe[@]}" --adapters "$WORK/bank/a" "$WORK/bank/b" --output "$WORK/moe.h5" 2> "$WORK/err_moe" ||
  { cat "$WORK/err_moe"; fail "moe"; }
mpi -np 2 "$KMOE" "${moe[@]}" --adapters "$WORK/bank/b" "$WORK/bank/a" --output "$WORK/swapped.h5" \
  2> "$WORK/err_swapped" || { cat "$WORK/err_swapped"; fail "moe with the experts swapped"; }
mpi -np 2 "$KMOE" score --model "$WORK/model" --kshot "$WORK/test.jsonl" --bank "$WORK/bank" --moe "$WORK/moe.h5" \
  --answer-format exact --max-new-tokens 6 --chunk-size 4 --threads 1 --output "$WORK/scores.h5" 2> "$WORK/err_score" ||
  { cat "$WORK/err_score"; fail "score"; }

"$PYTHON" - "$WORK" <<'PY' || fail "routing or scores"
import sys, h5py, numpy as np
w = sys.argv[1]
def shares(path):  # [source, expert]: share of each data file's routing weight, over all modules
    with h5py.File(path, "r") as f:
        by = f["router_load_by_source"][()]
        sources = [s.decode().rsplit("/", 1)[-1] for s in f["sources"][()]]
        experts = [s.decode() for s in f["moe/expert_names"][()]]
        assert sources == ["a.jsonl", "b.jsonl"], sources
        assert by.shape == (2, len(f["moe/keys"]), 2), by.shape
        assert np.allclose(by.sum(0), f["router_load"][()], rtol=1e-5), "router_load is not the sum over sources"
        # top-2 of 2 experts: every real token adds a routing weight of 1 per module
        tokens = by.sum(2)
        assert np.allclose(tokens, tokens[:, :1], rtol=1e-5), tokens
    load = by.sum(1)
    return experts, load / load.sum(1, keepdims=True)
experts, share = shares(w + "/moe.h5")
assert experts == ["a", "b"], experts
print("routing weight share  a.jsonl -> expert a: %.3f   b.jsonl -> expert b: %.3f" % (share[0, 0], share[1, 1]))
assert share[0, 0] > 0.5 and share[1, 1] > 0.5, share
swapped_experts, swapped = shares(w + "/swapped.h5")
assert swapped_experts == ["b", "a"], swapped_experts
print("experts swapped:      a.jsonl -> expert a: %.3f   b.jsonl -> expert b: %.3f" % (swapped[0, 1], swapped[1, 0]))
assert swapped[0, 0] < 0.5 and swapped[1, 1] < 0.5, swapped  # the first expert is now b: the assertion above flips
with h5py.File(w + "/scores.h5", "r") as f:
    names = [s.decode() for s in f["adapters"][()]]
    nll = dict(zip(names, f["nll"][()].mean(1)))
    acc = dict(zip(names, f["acc"][()]))
print("mixed test set, mean answer NLL: " + "  ".join("%s %.3f" % (n, nll[n]) for n in names))
print("mixed test set, exact match:     " + "  ".join("%s %.3f" % (n, acc[n]) for n in names))
assert names == ["base", "a", "b", "moe"], names
assert nll["moe"] < min(nll["a"], nll["b"]), nll
assert acc["moe"] > max(acc["a"], acc["b"]), acc
PY
echo "ok"
