#!/usr/bin/env bash
# Bank scoring throughput: `kmoe score` next to a PEFT loop doing the same scoring in the same
# script: a multiple-choice task (4 options and a rationale per example), the base and 4
# LoRA adapters, batch 8, one thread. The PEFT loop runs every request whole (prompt +
# answer, prompt + rationale + answer, prompt + each option), as lm-eval-style scorers do;
# kmoe runs each prompt once and lets its KV cache serve every continuation and the reply.
# Two cases: log-likelihoods only (--max-new-tokens 0), and with a greedy reply of up to
# GEN tokens (the peer: HF generate on the same batches). Prints wall times, the ratio,
# kmoe's NLLs against the peer's (relative difference), GFLOP/s of the work each side
# actually did next to this machine's measured fp32 GEMM peak (bench/roofline.py), and
# kmoe np = 2 vs np = 1 with one thread per rank. The model is a random LLaMA (hidden 512,
# 8 layers) with the byte-level tokenizer of scoring_reference.py, built here.
# usage: bench/score_bench.sh BUILD_DIR [EXAMPLES] [GEN]   (needs BUILD_DIR/kmoe, BUILD_DIR/refenv)
set -euo pipefail
BUILD=${1:-build}
N=${2:-32}
GEN=${3:-16}
KMOE=$BUILD/kmoe
source "$(dirname "$0")/blas_env.sh" "$KMOE"
PY=$BUILD/refenv/bin/python
W=$(mktemp -d /tmp/kmoe-score-bench-XXXXXX)
trap 'rm -rf "$W"' EXIT
export OMP_NUM_THREADS=1 KMOE_PARITY_DIR="$W"
"$PY" - "$W" "$N" <<'PY'
import json, os, sys, random, importlib.util
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM
W, n = sys.argv[1], int(sys.argv[2])
spec = importlib.util.spec_from_file_location("ref", "tests/parity/scoring_reference.py")
ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
os.makedirs(W + "/model")
tok, vocab = ref.write_tokenizer(W + "/model")
torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=vocab, hidden_size=512, intermediate_size=1376, num_hidden_layers=8,
                  num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=2048,
                  tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=0)
LlamaForCausalLM(cfg).save_pretrained(W + "/model", safe_serialization=True)
for i in range(4):
    m = get_peft_model(LlamaForCausalLM.from_pretrained(W + "/model"),
                       LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                  init_lora_weights=False))
    m.save_pretrained(W + "/bank/a%d" % i)
rng = random.Random(0)
things = "river mountain engine protein planet market violin glacier theorem harbour".split()
props = "is heavier than|moves faster than|is older than|is larger than|is warmer than".split("|")
with open(W + "/kshot.jsonl", "w") as f:
    for k in range(n):
        a, b = rng.sample(things, 2)
        choices = rng.sample(things, 4)
        gold = rng.randrange(4)
        ex = {"id": "q%d" % k,
              "question": "Consider the %s and the %s. Which of the following %s the %s in the usual sense of the word, "
                          "given what is commonly known about both of them?" % (a, b, rng.choice(props), a),
              "choices": ["the %s, as described in the textbook" % c for c in choices],
              "answer": "ABCD"[gold],
              "rationale": "The %s is compared with the %s; by the usual measure the %s wins, so option %s is right." %
                           (a, b, choices[gold], "ABCD"[gold])}
        f.write(json.dumps(ex) + "\n")
PY
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
run_kmoe() {  # np gen -> seconds
  local t0 t1
  t0=$(date +%s.%N)
  if ! mpirun --oversubscribe -np "$1" "$KMOE" score --model "$W/model" --bank "$W/bank" --kshot "$W/kshot.jsonl" \
    --answer-format choice --max-new-tokens "$2" --batch-size 8 --chunk-size 8 --threads 1 \
    --output "$W/s_$1_$2.h5" 2> "$W/log_$1_$2"; then
    cat "$W/log_$1_$2" >&2
    echo "kmoe score failed (np=$1)" >&2
    exit 1
  fi
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
# The peer: prints "seconds" and writes its answer NLLs [5, N] (base, a0..a3) to W/peft_nll_GEN.npy.
peft() {
  "$PY" - "$W" "$1" <<'PY'
import json, sys, time, importlib.util
import numpy as np
import torch
from peft import PeftModel
from tokenizers import Tokenizer
from transformers import LlamaForCausalLM
torch.set_num_threads(1)
spec = importlib.util.spec_from_file_location("ref", "tests/parity/scoring_reference.py")
ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
W, gen = sys.argv[1], int(sys.argv[2])
tok = Tokenizer.from_file(W + "/model/tokenizer.json")
exs = [json.loads(l) for l in open(W + "/kshot.jsonl")]
reqs, prompts = [], []
for i, ex in enumerate(exs):
    p = tok.encode(ref.alpaca(ex)).ids; prompts.append(p)
    targets = [" " + ref.letter(ex), " " + ex["rationale"] + " The answer is " + ref.letter(ex) + "."]
    targets += [" " + c for c in ex["choices"]]
    reqs += [(p, tok.encode(t).ids, i if j == 0 else -1) for j, t in enumerate(targets)]
reqs.sort(key=lambda r: len(r[0]) + len(r[1]))
order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
t0 = time.time()
model = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(W + "/model"), W + "/bank/a0", adapter_name="a0")
for i in range(1, 4):
    model.load_adapter(W + "/bank/a%d" % i, adapter_name="a%d" % i)
model.eval()
nll = np.zeros((5, len(exs)))
def score_all(row):
    for b in range(0, len(reqs), 8):
        batch = reqs[b:b + 8]; L = max(len(p) + len(c) for p, c, _ in batch)
        ids = torch.zeros(len(batch), L, dtype=torch.long); mask = torch.zeros_like(ids)
        for j, (p, c, _) in enumerate(batch):
            ids[j, :len(p) + len(c)] = torch.tensor(p + c); mask[j, :len(p) + len(c)] = 1
        logp = model(input_ids=ids, attention_mask=mask).logits.log_softmax(-1)
        for j, (p, c, ex) in enumerate(batch):
            if ex >= 0:
                nll[row, ex] = -sum(logp[j, len(p) - 1 + t, c[t]].item() for t in range(len(c)))
    if gen > 0:
        for b in range(0, len(order), 8):
            batch = [prompts[i] for i in order[b:b + 8]]; L = max(len(p) for p in batch)
            ids = torch.tensor([[0] * (L - len(p)) + p for p in batch])
            mask = torch.tensor([[0] * (L - len(p)) + [1] * len(p) for p in batch])
            model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=gen, do_sample=False,
                           eos_token_id=2, pad_token_id=0)
with torch.no_grad():
    with model.disable_adapter():
        score_all(0)
    for i in range(4):
        model.set_adapter("a%d" % i); score_all(i + 1)
print(time.time() - t0)
np.save(W + "/peft_nll_%d.npy" % gen, nll)
PY
}
# FLOPs of the forwards each side runs (bench/roofline.py): PEFT every request whole, kmoe
# each prompt once plus the continuations' tokens (the last token of each never fed).
FLOPS=$("$PY" - "$W" "$GEN" <<'PY'
import json, sys, importlib.util
from tokenizers import Tokenizer
sys.path.insert(0, "bench")
from roofline import forward_flops
spec = importlib.util.spec_from_file_location("ref", "tests/parity/scoring_reference.py")
ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
W, gen = sys.argv[1], int(sys.argv[2])
tok = Tokenizer.from_file(W + "/model/tokenizer.json")
f = lambda new, ctx: forward_flops(512, 1376, 8, 8, 4, tok.get_vocab_size(), new, ctx)
peft = kmoe = genf = 0
for line in open(W + "/kshot.jsonl"):
    ex = json.loads(line); p = len(tok.encode(ref.alpaca(ex)).ids)
    targets = [" " + ref.letter(ex), " " + ex["rationale"] + " The answer is " + ref.letter(ex) + "."]
    targets += [" " + c for c in ex["choices"]]
    kmoe += f(p, p / 2)
    for t in targets:
        c = len(tok.encode(t).ids)
        peft += f(p + c, (p + c) / 2)
        kmoe += f(c - 1, p + c / 2)
    genf += f(gen, p + gen / 2)
print("%d %d %d" % (5 * peft, 5 * kmoe, 5 * genf))  # base + 4 adapters
PY
)
read -r PEFT_FLOP KMOE_FLOP GEN_FLOP <<< "$FLOPS"
read -r PEAK32 PEAK16 <<< "$("$PY" bench/roofline.py peak 1)"
P0=$(peft 0)
K0=$(run_kmoe 1 0)
PG=$(peft "$GEN")
KG=$(run_kmoe 1 "$GEN")
K2=$(run_kmoe 2 0)
DIFF=$("$PY" - "$W" "$GEN" <<'PY'
import sys, h5py, numpy as np
W, gen = sys.argv[1], sys.argv[2]
ref = np.load(W + "/peft_nll_0.npy")
worst = 0.0
for name in ("s_1_0.h5", "s_1_%s.h5" % gen, "s_2_0.h5"):
    got = h5py.File(W + "/" + name)["nll"][()]
    worst = max(worst, float(np.max(np.abs(got - ref) / np.abs(ref))))
same = np.array_equal(h5py.File(W + "/s_1_0.h5")["nll"][()], h5py.File(W + "/s_2_0.h5")["nll"][()])
print("%.2e %s" % (worst, "identical" if same else "DIFFERENT"))
PY
)
gf() { echo "$1 / $2 / 1000000000" | bc -l; }
printf 'examples: %s (4 options + rationale each), base + 4 adapters, batch 8, 1 thread\n' "$N"
printf 'measured GEMM peak (torch matmul, 1 thread): fp32 %.1f GFLOP/s, bf16 %.1f GFLOP/s\n' "$PEAK32" "$PEAK16"
printf '%-34s %8s %8s %10s %8s\n' "case" "PEFT s" "kmoe s" "kmoe/PEFT" ""
printf '%-34s %8.2f %8.2f %9.2fx\n' "log-likelihoods only" "$P0" "$K0" "$(echo "$P0 / $K0" | bc -l)"
printf '%-34s %8.2f %8.2f %9.2fx\n' "with greedy replies (<= $GEN tokens)" "$PG" "$KG" "$(echo "$PG / $KG" | bc -l)"
printf 'roofline, log-likelihoods only: PEFT %.2f TFLOP done at %.1f GFLOP/s (%.0f%% of fp32 peak); kmoe %.2f TFLOP at %.1f GFLOP/s (%.0f%%)\n' \
  "$(echo "$PEFT_FLOP / 1000000000000" | bc -l)" "$(gf "$PEFT_FLOP" "$P0")" "$(echo "100 * $PEFT_FLOP / $P0 / 1000000000 / $PEAK32" | bc -l)" \
  "$(echo "$KMOE_FLOP / 1000000000000" | bc -l)" "$(gf "$KMOE_FLOP" "$K0")" "$(echo "100 * $KMOE_FLOP / $K0 / 1000000000 / $PEAK32" | bc -l)"
printf 'roofline, with replies (reply FLOPs at the full %s tokens, an upper bound): PEFT %.1f GFLOP/s, kmoe %.1f GFLOP/s\n' \
  "$GEN" "$(gf "$PEFT_FLOP + $GEN_FLOP" "$PG")" "$(gf "$KMOE_FLOP + $GEN_FLOP" "$KG")"
read -r WORST SAME <<< "$DIFF"
printf 'answer NLLs, kmoe vs PEFT: max relative difference %s; np=1 vs np=2: %s\n' "$WORST" "$SAME"
printf 'kmoe np=2, 1 thread/rank: %.2f s; np=2 / np=1 speed-up: %.2fx\n' "$K2" "$(echo "$K0 / $K2" | bc -l)"
