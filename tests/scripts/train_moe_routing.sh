# Issue 6: a mixture trained on two tasks, from two adapters each good at one, routes each
# task's tokens mostly to its own expert and beats either adapter on the mixed test set.
# Task a is runs of digits where each digit is followed by the next (mod 10), task b runs of
# letters each followed by the next (mod 26): disjoint byte tokens, so which expert fits a
# token is decidable from the token. `kmoe train --mode lora` on each alone gives adapters a
# and b; `kmoe train --mode moe --routers-only --top-k 2` on both files trains the routers of
# a mixture of a and b. Asserted from moe.h5 /router_load_by_source: more than half of
# a.jsonl's routing weight goes to expert a and of b.jsonl's to expert b (with the experts
# listed the other way round the shares follow the experts, not the list order), and from
# `kmoe score --bank --moe` on mixed held-out continuations: the mixture's mean answer NLL is
# below each adapter's.
source "$(dirname "$0")/lib.sh"
"$KMOE" init-model --output "$WORK/model" --hidden 64 --layers 2 --heads 4 --kv-heads 2 --intermediate 128 \
  --seed 3 2> "$WORK/err_init" || { cat "$WORK/err_init"; fail "init-model"; }
"$PYTHON" - "$WORK" <<'PY'
import json, random, sys
rng = random.Random(6)
alphabets = {"a": "0123456789", "b": "abcdefghijklmnopqrstuvwxyz"}
def run(letters, n):
    start = rng.randrange(len(letters))
    return "".join(letters[(start + i) % len(letters)] for i in range(n))
def write(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
test = []
for name, letters in alphabets.items():
    write("%s/%s.jsonl" % (sys.argv[1], name), [{"text": run(letters, 48)} for _ in range(64)])
    for i in range(8):
        s = run(letters, 24)
        test.append({"id": "t%s%d" % (name, i), "question": s[:12], "answer": s[12:]})
rng.shuffle(test)
write(sys.argv[1] + "/test.jsonl", test)
PY

common=(--model "$WORK/model" --global-batch 16 --micro-batch 8 --threads 1 --lora-dropout 0 --seed 1
        --checkpoint-every 0 --log-every 1000 --lr-decay constant)
for t in a b; do
  mpi -np 1 "$KMOE" train --mode lora "${common[@]}" --data "$WORK/$t.jsonl" --output "$WORK/bank/$t" \
    --max-steps 40 --lora-r 8 --lora-alpha 16 --lora-targets q_proj,v_proj,up_proj,down_proj --lr 1e-2 \
    2> "$WORK/err_$t" || { cat "$WORK/err_$t"; fail "adapter $t"; }
done
moe=(train --mode moe "${common[@]}" --data "$WORK/a.jsonl" "$WORK/b.jsonl" --top-k 2 --routers-only --max-steps 40
     --lr 5e-2)
mpi -np 2 "$KMOE" "${moe[@]}" --adapters "$WORK/bank/a" "$WORK/bank/b" --output "$WORK/moe.h5" 2> "$WORK/err_moe" ||
  { cat "$WORK/err_moe"; fail "moe"; }
mpi -np 2 "$KMOE" "${moe[@]}" --adapters "$WORK/bank/b" "$WORK/bank/a" --output "$WORK/swapped.h5" \
  2> "$WORK/err_swapped" || { cat "$WORK/err_swapped"; fail "moe with the experts swapped"; }
mpi -np 2 "$KMOE" score --model "$WORK/model" --kshot "$WORK/test.jsonl" --bank "$WORK/bank" --moe "$WORK/moe.h5" \
  --answer-format exact --max-new-tokens 0 --chunk-size 4 --threads 1 --output "$WORK/scores.h5" 2> "$WORK/err_score" ||
  { cat "$WORK/err_score"; fail "score"; }

"$PYTHON" - "$WORK" <<'PY' || fail "routing or scores"
import sys, h5py, numpy as np
w = sys.argv[1]
def shares(path):  # {expert: [share of a.jsonl, share of b.jsonl]} of the routing weight, over all modules
    with h5py.File(path, "r") as f:
        by = f["router_load_by_source"][()]
        sources = [s.decode().rsplit("/", 1)[-1] for s in f["sources"][()]]
        experts = [s.decode() for s in f["moe/expert_names"][()]]
        assert sources == ["a.jsonl", "b.jsonl"], sources
        assert by.shape == (2, len(f["moe/keys"]), 2), by.shape
        assert np.allclose(by.sum(0), f["router_load"][()], rtol=1e-5), "router_load is not the sum over sources"
        tokens = by.sum(2)  # top-2 of 2 experts: every real token adds a routing weight of 1 per module
        assert np.allclose(tokens, tokens[:, :1], rtol=1e-5), tokens
    load = by.sum(1)
    share = load / load.sum(1, keepdims=True)
    return {e: share[:, i] for i, e in enumerate(experts)}
for path, order in (("moe.h5", ["a", "b"]), ("swapped.h5", ["b", "a"])):
    s = shares(w + "/" + path)
    assert list(s) == order, list(s)
    print("%-10s routing weight share  a.jsonl -> expert a: %.3f   b.jsonl -> expert b: %.3f" % (path, s["a"][0], s["b"][1]))
    assert s["a"][0] > 0.5 and s["b"][1] > 0.5, s
with h5py.File(w + "/scores.h5", "r") as f:
    names = [s.decode() for s in f["adapters"][()]]
    nll = dict(zip(names, f["nll"][()].mean(1)))
print("mixed test set, mean answer NLL: " + "  ".join("%s %.3f" % (n, nll[n]) for n in names))
assert names == ["base", "a", "b", "moe"], names
assert nll["moe"] < min(nll["a"], nll["b"]), nll
PY
echo "ok"
